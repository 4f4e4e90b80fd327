import { ProfileEvent, formatStepProfile, gflopsPerSecond, nodeFlops, summarizeProfile } from '../bench/step-profile';

describe('nodeFlops', () => {
  it('counts a convolution as 2 x outputs x taps per output, whatever the weight layout', () => {
    // 8x14x14x256 -> 512, 3x3: 2 * 8*512*14*14 * 256*9
    const expected = 2 * 8 * 512 * 14 * 14 * 256 * 9;
    expect(nodeFlops('Conv', [[8, 256, 14, 14], [512, 256, 3, 3], [512]], [[8, 512, 14, 14]])).toBe(expected);
    expect(nodeFlops('FusedConv', [[8, 256, 14, 14], [512, 256, 3, 3]], [[8, 512, 14, 14]])).toBe(expected);
    // NCHWc: channels padded and the filter blocked into 6 dims; the weight's size per output channel is unchanged.
    expect(nodeFlops('Conv', [[8, 256, 14, 14], [64, 32, 3, 3, 8, 8]], [[8, 512, 14, 14]])).toBe(expected);
    expect(nodeFlops('NhwcFusedConv', [[8, 14, 14, 256], [512, 3, 3, 256]], [[8, 14, 14, 512]])).toBe(expected);
  });

  it('counts a depthwise convolution by its one input channel per output', () => {
    expect(nodeFlops('Conv', [[2, 32, 10, 10], [32, 1, 3, 3]], [[2, 32, 10, 10]])).toBe(2 * 2 * 32 * 100 * 9);
  });

  it('counts a ConvTranspose from its input: every input value scatters into (M / group) x taps outputs', () => {
    // dX of a stride-2 3x3 conv 64 -> 128: input 4x128x7x7, weight 128x64x3x3, output 4x64x14x14
    expect(nodeFlops('ConvTranspose', [[4, 128, 7, 7], [128, 64, 3, 3]], [[4, 64, 14, 14]])).toBe(2 * 4 * 128 * 49 * 64 * 9);
  });

  it('counts Gemm and MatMul as 2MNK, transposed A included', () => {
    expect(nodeFlops('Gemm', [[6272, 288], [6272, 64]], [[288, 64]])).toBe(2 * 288 * 64 * 6272); // A^T B
    expect(nodeFlops('Gemm', [[32, 3136], [3136, 128], [128]], [[32, 128]])).toBe(2 * 32 * 128 * 3136);
    expect(nodeFlops('MatMul', [[5, 32, 64], [5, 64, 16]], [[5, 32, 16]])).toBe(2 * 5 * 32 * 16 * 64);
    expect(nodeFlops('FusedMatMul', [[64, 32], [64, 16]], [[32, 16]])).toBe(2 * 32 * 16 * 64);
  });

  it('has no count for other operators or missing shapes', () => {
    expect(nodeFlops('Relu', [[2, 3]], [[2, 3]])).toBeUndefined();
    expect(nodeFlops('Conv', [[2, 3, 4, 4]], [[2, 8, 4, 4]])).toBeUndefined();
    expect(nodeFlops('Gemm', [], [[2, 2]])).toBeUndefined();
  });
});

/** A synthetic profile: `runs` model_run events, each with a conv (2 ms + run index), a relu (1 ms) and fences. */
function profile(runs: number): ProfileEvent[] {
  const events: ProfileEvent[] = [{ cat: 'Session', name: 'session_initialization', ts: 0, dur: 500 }];
  const conv = { op_name: 'Conv', input_type_shape: [{ float: [1, 2, 4, 4] }, { float: [3, 2, 3, 3] }], output_type_shape: [{ float: [1, 3, 4, 4] }] };
  for (let r = 0; r < runs; r++) {
    const ts = 1000 + r * 10000;
    events.push({ cat: 'Session', name: 'model_run', ts, dur: 5000 + r * 1000 });
    events.push({ cat: 'Node', name: 'c1/conv_fence_before', ts: ts + 1, dur: 0, args: { op_name: 'Conv' } });
    events.push({ cat: 'Node', name: 'c1/conv_kernel_time', ts: ts + 2, dur: 2000 + r * 1000, args: conv });
    events.push({ cat: 'Node', name: 'c1/conv_fence_after', ts: ts + 3, dur: 50, args: { op_name: 'Conv' } });
    events.push({ cat: 'Node', name: 'c1/relu_kernel_time', ts: ts + 4, dur: 1000, args: { op_name: 'Relu', input_type_shape: [{ float: [1, 3, 4, 4] }] } });
  }
  return events;
}

describe('summarizeProfile', () => {
  it('averages kernel time per step over the runs after the first, fences left out', () => {
    const p = summarizeProfile(profile(3));
    expect(p.runs).toBe(2);
    expect(p.runMs).toBeCloseTo((6 + 7) / 2, 10);
    // Conv took 3 ms and 4 ms in the two counted runs; the warm-up's 2 ms is left out.
    expect(p.nodes.map((n) => [n.node, n.op, n.ms])).toEqual([
      ['c1/conv', 'Conv', 3.5],
      ['c1/relu', 'Relu', 1],
    ]);
    expect(p.kernelMs).toBeCloseTo(4.5, 10);
    expect(p.ops.map((o) => [o.op, o.nodes, o.ms])).toEqual([
      ['Conv', 1, 3.5],
      ['Relu', 1, 1],
    ]);
    const flops = 2 * 3 * 16 * 2 * 9;
    expect(p.ops[0].flops).toBe(flops);
    expect(p.nodes[0].inputs).toEqual([[1, 2, 4, 4], [3, 2, 3, 3]]);
    expect(p.ops[1].flops).toBeUndefined();
  });

  it('keeps a single run rather than dropping everything', () => {
    const p = summarizeProfile(profile(1));
    expect(p.runs).toBe(1);
    expect(p.nodes[0].ms).toBe(2);
  });

  it('formats GFLOP/s from FLOPs and milliseconds', () => {
    expect(gflopsPerSecond(2e9, 100)).toBeCloseTo(20, 10);
    const text = formatStepProfile('tiny', summarizeProfile(profile(3))).join('\n');
    expect(text).toContain(`| Conv | 1 | 3.50 | 78% | 0.00 | ${gflopsPerSecond(2 * 3 * 16 * 2 * 9, 3.5).toFixed(1)} |`);
    expect(text).toContain('| c1/relu | Relu | 1x3x4x4 | 1.00 |  |');
  });
});
