/** A tiny class-per-folder dataset copied from the bundled Fashion-MNIST sample, for fast CLI and fault tests. */
import * as fs from 'node:fs';
import * as path from 'node:path';

const FM = path.join(__dirname, '..', '..', 'datasets', 'fashion-mnist-5-9', 'train');

/** `perClass` 28x28 PNGs of each of the first `classes` classes under `dir`. */
export function tinyDataset(dir: string, perClass = 8, classes = 2): string {
  for (const c of fs.readdirSync(FM).sort().slice(0, classes)) {
    fs.mkdirSync(path.join(dir, c), { recursive: true });
    for (const f of fs.readdirSync(path.join(FM, c)).sort().slice(0, perClass)) fs.copyFileSync(path.join(FM, c, f), path.join(dir, c, f));
  }
  return dir;
}
