import { Command } from 'commander';
import { probeBackends, DoctorReport } from '../../backend';
import { cacheDir } from '../../util/cache';
import { GraftError } from '../../errors';
import { GRAFT_VERSION } from '../../version';
import { globalThreads } from '../common';
import { onnxRuntimeDoctorLine } from '../../engine/onnx-runtime';

/** Formats a doctor report for a terminal. */
export function formatDoctor(r: DoctorReport): string {
  const lines = [
    `graft      ${GRAFT_VERSION}`,
    `node       ${r.node}`,
    `tfjs       ${r.tfjs}`,
    `cpus       ${r.cpus} x ${r.cpuModel}`,
    `cache      ${cacheDir()}`,
    `wasm SIMD  ${r.wasmSimd === undefined ? 'n/a (wasm does not load)' : r.wasmSimd ? 'yes' : 'no'}`,
    `threads    ${r.wasmThreads === undefined ? 'n/a (wasm does not load)' : `${r.wasmThreads} for wasm (--threads or GRAFT_THREADS to change)`}`,
    'backends (fastest first):',
    ...r.backends.map((b) => `  ${b.ok ? 'ok ' : 'no '} ${b.label}${b.ok ? '' : `: ${b.reason}`}`),
    `chosen     ${r.chosen ?? 'none'}`,
  ];
  for (const [name, value] of Object.entries(r.extra)) lines.push(`${name.padEnd(10)} ${value}`);
  return lines.join('\n');
}

/** `graft doctor`: what this machine can run, and why the faster backends are unavailable. */
export function doctorCommand(): Command {
  return new Command('doctor')
    .description('report Node and tfjs versions, which backends load (and why not), wasm SIMD and threads, CPUs and the cache folder')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const report = await probeBackends({ threads: globalThreads(cmd), checks: [{ name: 'onnxruntime', check: onnxRuntimeDoctorLine }] });
      process.stdout.write(opts.json ? JSON.stringify({ graft: GRAFT_VERSION, cache: cacheDir(), ...report }, null, 2) + '\n' : formatDoctor(report) + '\n');
      if (!report.chosen) throw new GraftError('no backend loads; reinstall graft with npm ci.');
    });
}
