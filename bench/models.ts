/**
 * `models` bench section: what it costs to get each ImageNet trunk ready on wasm. Building with Keras's random
 * initialisers versus zero kernels (what graft does when weights are loaded next), and writing then loading the
 * architecture's Keras 2 .h5 file (the `import-keras` / `weights: <file>` path, every layer shape-checked).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/backend';
import { buildModel, constructModel } from '../src/models/build';
import { loadKerasWeights, writeKerasWeights } from '../src/models/keras-h5';
import { listArchitectures } from '../src/models/registry';
import type { BenchSection } from './sections';

async function seconds<T>(work: () => Promise<T> | T): Promise<[T, number]> {
  const start = process.hrtime.bigint();
  const value = await work();
  return [value, Number(process.hrtime.bigint() - start) / 1e9];
}

async function run(): Promise<string> {
  await initBackend({ backend: 'wasm', log: null });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'graft-bench-models-'));
  const rows: string[] = [];
  try {
    for (const spec of listArchitectures().filter((s) => s.imagenet)) {
      const inputShape = [spec.defaultInputSize, spec.defaultInputSize, 3];
      const [random, tRandom] = await seconds(() => buildModel({ arch: spec.name, includeTop: false, inputShape }));
      random.model.dispose();
      const [zeros, tZeros] = await seconds(() => constructModel({ arch: spec.name, includeTop: false, inputShape }, { initializer: 'zeros' }));
      const file = path.join(dir, `${spec.name}_notop.h5`);
      const [, tWrite] = await seconds(() => writeKerasWeights(file, zeros.model));
      const [report, tLoad] = await seconds(() => loadKerasWeights(zeros.model, file));
      const mb = fs.statSync(file).size / 2 ** 20;
      fs.rmSync(file);
      zeros.model.dispose();
      rows.push(
        `| ${spec.name} | ${(spec.params!.notop / 1e6).toFixed(1)}M | ${tRandom.toFixed(2)} | ${tZeros.toFixed(2)} | ${mb.toFixed(0)} | ${tWrite.toFixed(2)} | ${tLoad.toFixed(2)} | ${report.byName} / ${report.byOrder} |`,
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return [
    '## Model zoo: build and Keras .h5 import (wasm, no top, default input size)',
    '',
    'Build times include tfjs graph construction; "zeros" skips random initialisation, as graft does when weights are loaded next.',
    '',
    '| architecture | params | build, random init (s) | build, zero init (s) | .h5 MiB | write .h5 (s) | load .h5 (s) | layers by name / by order |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
  ].join('\n');
}

/** The section registered in bench/sections.ts. */
export const modelsSection: BenchSection = { name: 'models', run };
