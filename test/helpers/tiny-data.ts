/** A tiny class-per-folder dataset copied from the bundled Fashion-MNIST sample, for fast CLI and fault tests. */
import * as fs from 'node:fs';
import * as path from 'node:path';

const FM = path.join(__dirname, '..', '..', 'datasets', 'fashion-mnist-5-9', 'train');
/** The bundled sample with the classes of `models/fashion-mnist-0-4` (for evaluating that model). */
export const FM_0_4 = path.join(__dirname, '..', '..', 'datasets', 'fashion-mnist-0-4', 'train');

/** `perClass` 28x28 PNGs of each of the first `classes` classes of `from` (default Fashion-MNIST 5-9) under `dir`. */
export function tinyDataset(dir: string, perClass = 8, classes = 2, from = FM): string {
  for (const c of fs.readdirSync(from).sort().slice(0, classes)) {
    fs.mkdirSync(path.join(dir, c), { recursive: true });
    for (const f of fs.readdirSync(path.join(from, c)).sort().slice(0, perClass)) fs.copyFileSync(path.join(from, c, f), path.join(dir, c, f));
  }
  return dir;
}
