/**
 * Data flows one way through src/: each folder imports only from folders below it in LAYERS (and from the top-level
 * errors.ts and version.ts). The test reads every import, static or dynamic, so a new edge upwards fails here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const SRC = path.join(__dirname, '..', 'src');
/** Lowest first: a folder may import from the folders before it, never from one after it. */
const LAYERS = [['io'], ['util', 'web'], ['backend', 'metrics'], ['data'], ['models'], ['onnx'], ['train'], ['engine'], ['eval'], ['cli']];
const LEAVES = ['errors.ts', 'version.ts'];

function rank(folder: string): number {
  const i = LAYERS.findIndex((layer) => layer.includes(folder));
  if (i < 0) throw new Error(`src/${folder} is in no layer of test/architecture.test.ts; add it where it belongs`);
  return i;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

/** Every (file, imported path) edge whose target is another folder of src/ or a top-level file. */
function edges(): Array<{ from: string; to: string }> {
  const out: Array<{ from: string; to: string }> = [];
  const pattern = /(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)|require\(\s*['"](\.[^'"]+)['"]\s*\)/g;
  for (const file of sourceFiles(SRC)) {
    for (const m of fs.readFileSync(file, 'utf8').matchAll(pattern)) {
      const target = path.relative(SRC, path.resolve(path.dirname(file), m[1] ?? m[2] ?? m[3]));
      out.push({ from: path.relative(SRC, file).split(path.sep).join('/'), to: target.split(path.sep).join('/') });
    }
  }
  return out;
}

/** The edges that break the layering. */
function violations(list: Array<{ from: string; to: string }>): string[] {
  const wrong: string[] = [];
  for (const { from, to } of list) {
    if (!from.includes('/')) continue; // top-level files (index.ts, demo.ts) may import anything
    const fromFolder = from.split('/')[0];
    // `../backend` is the folder's index.ts; `../errors` a top-level file.
    const toFolder = to.includes('/') || fs.existsSync(path.join(SRC, to)) ? to.split('/')[0] : undefined;
    if (!toFolder) {
      if (!LEAVES.includes(`${to}.ts`)) wrong.push(`${from} imports ${to}`);
      continue;
    }
    if (fromFolder !== toFolder && rank(toFolder) >= rank(fromFolder)) wrong.push(`${from} imports ${to} (${toFolder} is not below ${fromFolder})`);
  }
  return wrong;
}

describe('src/ layering', () => {
  test('no folder imports from a folder above it, and nothing below the top imports index.ts or demo.ts', () => {
    const all = edges();
    expect(all.length).toBeGreaterThan(100); // the pattern still finds imports
    expect(violations(all)).toEqual([]);
  });

  test('the checker flags an upward import, an import of index.ts, and a folder in no layer', () => {
    expect(violations([{ from: 'models/build.ts', to: 'train/loop' }])).toEqual(['models/build.ts imports train/loop (train is not below models)']);
    expect(violations([{ from: 'train/fine-tune.ts', to: 'engine' }])).toEqual(['train/fine-tune.ts imports engine (engine is not below train)']);
    expect(violations([{ from: 'eval/x.ts', to: 'index' }])).toEqual(['eval/x.ts imports index']);
    expect(violations([{ from: 'cli/x.ts', to: 'backend' }, { from: 'data/a.ts', to: 'errors' }])).toEqual([]);
    expect(() => violations([{ from: 'cli/x.ts', to: 'plugins/a' }])).toThrow(/src\/plugins is in no layer/);
  });
});
