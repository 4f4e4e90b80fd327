/**
 * Child process of the `onnx` benchmark: the whole job of extracting pooled features with graft, from a cold Node
 * process: open the model folder on an engine, decode and resize the JPEGs, preprocess, predict in batches.
 * Usage: node dist/bench/onnx-features.js <model folder> <image folder> <engine> <batch>. Prints one JSON line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../src/backend';
import { createPredictor } from '../src/engine';
import { loadImage } from '../src/data/image';
import { preprocessPixels } from '../src/data/preprocess';

async function main(): Promise<void> {
  const start = process.hrtime.bigint();
  const [modelDir, imageDir, engine, batchArg] = process.argv.slice(2);
  const batch = Number(batchArg);
  // The tfjs engine needs a backend; onnxruntime does not, so it does not pay for wasm start-up.
  if (engine === 'tfjs') await initBackend({ backend: 'wasm', log: null });
  const predictor = await createPredictor(modelDir, { engine, log: null });
  const [h, w, c] = predictor.meta.inputShape;
  const files = fs.readdirSync(imageDir).filter((f) => f.endsWith('.jpg')).sort().map((f) => path.join(imageDir, f));
  let width = 0;
  let inference = 0;
  for (let i = 0; i < files.length; i += batch) {
    const chunk = files.slice(i, i + batch);
    const pixels = await Promise.all(chunk.map((f) => loadImage(f, { inputShape: [h, w, c] })));
    const input = new Float32Array(chunk.length * h * w * c);
    pixels.forEach((p, j) => input.set(preprocessPixels(p, c, predictor.meta.preprocessing), j * h * w * c));
    const t = process.hrtime.bigint();
    const out = await predictor.predict(input, chunk.length);
    inference += Number(process.hrtime.bigint() - t) / 1e9;
    width = out.length / chunk.length;
  }
  await predictor.dispose();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  process.stdout.write(JSON.stringify({ engine: predictor.engine, images: files.length, width, seconds, inference_s: inference }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.message : err}\n`);
  process.exitCode = 1;
});
