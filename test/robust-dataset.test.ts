/**
 * Operator robustness (issue 15 items 5 and 6) of the dataset scan: symlinked class folders count (and a link
 * loop does not hang), loose images in the root are named, and manifest duplicates and conflicts are caught.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openDataset } from '../src/data/dataset';
import { splitDataset } from '../src/data/dataset';
import { tmpDir } from './helpers/tmp';
import { tinyDataset } from './helpers/tiny-data';

const root = tmpDir('graft-robust-ds-');
const source = tinyDataset(path.join(root, 'source'), 6, 3);
const [a, b, c] = fs.readdirSync(source).sort();

describe('class folders', () => {
  test('a symlinked class folder is a class, a link loop is skipped and named, loose root images are named', async () => {
    const ds = path.join(root, 'linked');
    fs.mkdirSync(ds);
    fs.cpSync(path.join(source, a), path.join(ds, a), { recursive: true });
    fs.symlinkSync(path.join(source, b), path.join(ds, b));
    // A class folder holding a link back to the dataset root.
    fs.cpSync(path.join(source, c), path.join(ds, c), { recursive: true });
    fs.symlinkSync(ds, path.join(ds, c, 'loop'));
    const loose = path.join(ds, 'stray.png');
    fs.copyFileSync(path.join(source, a, fs.readdirSync(path.join(source, a))[0]), loose);
    const lines: string[] = [];
    const opened = await openDataset(ds, { log: (l) => lines.push(l) });
    expect(opened.classNames).toEqual([a, b, c]);
    expect(opened.samples.filter((s) => s.label === 1)).toHaveLength(6);
    // The loop back to the root would add every class again inside c: it is skipped, so c keeps its own 6.
    expect(opened.samples.filter((s) => s.label === 2)).toHaveLength(6);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`${loose} (image outside any class folder)`);
    expect(lines[0]).toContain(`${path.join(ds, c, 'loop')} (symlink loop`);
  });
});

describe('CSV manifests', () => {
  const files = fs.readdirSync(path.join(source, a)).map((f) => path.join(source, a, f));
  const others = fs.readdirSync(path.join(source, b)).map((f) => path.join(source, b, f));
  const manifest = (name: string, rows: string[][]) => {
    const file = path.join(root, name);
    fs.writeFileSync(file, ['path,label', ...rows.map((r) => r.join(','))].join('\n') + '\n');
    return file;
  };

  test('a file listed twice with the same label is dropped with a warning and never lands in both splits', async () => {
    const rows = [...files.map((f) => [f, 'x']), ...others.map((f) => [f, 'y']), [files[0], 'x']];
    const lines: string[] = [];
    const ds = await openDataset(manifest('dup.csv', rows), { log: (l) => lines.push(l) });
    expect(ds.samples).toHaveLength(12);
    expect(lines[0]).toContain(`${files[0]} (listed again on line 14 (first on line 2); the repeat is dropped)`);
    const { train, validation } = await splitDataset(ds, { validationFraction: 0.5, seed: 1 });
    const both = train.samples.filter((s) => validation.samples.some((v) => v.source === s.source));
    expect(both).toEqual([]);
  });

  test('one file under two labels is an error naming the lines', async () => {
    const rows = [...files.map((f) => [f, 'x']), ...others.map((f) => [f, 'y']), [files[2], 'y']];
    await expect(openDataset(manifest('conflict.csv', rows), { log: null })).rejects.toThrow(
      `gives 1 image two labels: ${files[2]} is x on line 4 and y on line 14. Keep one label per image (multi-label data needs its own format).`,
    );
  });
});
