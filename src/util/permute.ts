/**
 * A row-major array in a new axis order, in plain JS: output axis i is input axis perm[i] (numpy's `transpose`).
 * Used where a whole kernel or optimizer slot changes layout once (tfjs HWIO <-> ONNX OIHW): a single pass with
 * the innermost loop stepping through the input by a fixed stride, no tensor engine, no intermediate copies.
 */
export function permute(data: ArrayLike<number>, shape: readonly number[], perm: readonly number[]): Float32Array {
  const rank = shape.length;
  const size = shape.reduce((a, b) => a * b, 1);
  if (perm.length !== rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    throw new Error(`permute: [${perm.join(', ')}] is not a permutation of the ${rank} axes of [${shape.join(', ')}].`);
  }
  if (data.length !== size) throw new Error(`permute: ${data.length} values do not fill the shape [${shape.join(', ')}] (${size}).`);
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; s *= shape[i], i--) inStrides[i] = s;
  // The output's dims and, for each, how far the input moves per step; padded in front to rank 4 (size 1, stride 0).
  const dims = [1, 1, 1, 1, ...perm.map((p) => shape[p])].slice(-Math.max(4, rank));
  const steps = [0, 0, 0, 0, ...perm.map((p) => inStrides[p])].slice(-Math.max(4, rank));
  const out = new Float32Array(size);
  if (size === 0) return out;
  const lead = dims.length - 4;
  // Axes before the last four (rank > 4) advance like an odometer; the last four are plain loops.
  const counter = new Array<number>(lead).fill(0);
  let o = 0;
  for (;;) {
    let base = 0;
    for (let k = 0; k < lead; k++) base += counter[k] * steps[k];
    const [d0, d1, d2, d3] = dims.slice(lead);
    const [s0, s1, s2, s3] = steps.slice(lead);
    for (let a = 0; a < d0; a++) {
      for (let b = 0; b < d1; b++) {
        for (let c = 0; c < d2; c++) {
          let i = base + a * s0 + b * s1 + c * s2;
          for (let d = 0; d < d3; d++, i += s3) out[o++] = data[i];
        }
      }
    }
    let k = lead - 1;
    while (k >= 0 && ++counter[k] === dims[k]) counter[k--] = 0;
    if (k < 0) return out;
  }
}

/** The permutation that undoes `perm`. */
export function inversePermutation(perm: readonly number[]): number[] {
  const inverse = new Array<number>(perm.length);
  perm.forEach((p, i) => (inverse[p] = i));
  return inverse;
}
