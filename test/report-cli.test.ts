import * as fs from 'node:fs';
import * as path from 'node:path';
import { main } from '../src/cli/main';
import { CLASSES, pngFolder, saveColourModel } from './helpers/eval-fixtures';
import { tmpDir } from './helpers/tmp';

/** Runs the CLI in-process and captures what it prints. */
async function graft(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  try {
    // Evaluation is under test, not engines: pin tfjs in this thread (no onnxruntime, no worker threads).
    const pin = ['evaluate', 'predict'].includes(args.find((a) => !a.startsWith('-')) ?? '') && !args.includes('--engine');
    const code = await main(['node', 'graft', '--backend', 'wasm', ...args, ...(pin ? ['--engine', 'tfjs', '--threads', '1'] : [])]);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('graft evaluate / predict / report on the command line', () => {
  const root = tmpDir();
  const model = path.join(root, 'model');
  const data = path.join(root, 'data');

  beforeAll(async () => {
    await saveColourModel(model);
    await pngFolder(data, CLASSES, 5);
  });

  test('evaluate --shard i/n twice, then report --merge, equals one whole evaluate', async () => {
    const whole = await graft('evaluate', '--model', model, '--data', data, '--out', path.join(root, 'whole.json'), '--batch-size', '4');
    expect(whole.code).toBe(0);
    // The familiar table goes to stdout, throughput to stderr.
    expect(whole.stdout).toMatch(/^ {14}precision {4}recall {2}f1-score {3}support$/m);
    expect(whole.stdout).toMatch(/^ {4}accuracy {27}\d\.\d\d {8}15$/m);
    expect(whole.stderr).toMatch(/evaluated 15 images in [\d.]+ s: [\d.]+ images\/s \(tfjs wasm[^)]*\)/);
    for (const i of [1, 2]) {
      const r = await graft('-q', 'evaluate', '--model', model, '--data', data, '--shard', `${i}/2`, '--out', path.join(root, `s${i}.json`));
      expect(r.code).toBe(0);
    }
    const merged = await graft('-q', 'report', '--merge', path.join(root, 's1.json'), path.join(root, 's2.json'), '--out', path.join(root, 'merged.json'), '--format', 'json,md');
    expect(merged.code).toBe(0);
    const a = JSON.parse(fs.readFileSync(path.join(root, 'whole.json'), 'utf8'));
    const b = JSON.parse(fs.readFileSync(path.join(root, 'merged.json'), 'utf8'));
    expect(b.counts).toEqual(a.counts);
    expect(b.metrics).toEqual(a.metrics);
    expect(fs.existsSync(path.join(root, 'merged.md'))).toBe(true);
  });

  test('predict prints CSV rows for every image', async () => {
    // --tta is a plain flag, so the path after it is an input, not its value.
    const r = await graft('-q', 'predict', '--model', model, '--tta', path.join(data, 'green'), '--top-k', '2');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('path,prediction,confidence,top_k');
    expect(lines).toHaveLength(6);
    expect(lines[1]).toMatch(/green\/00\.png,(blue|green|red),0\.\d+,\w+:[\d.]+;\w+:[\d.]+$/);
  });

  test('bad input is one line on stderr, exit 1, and an existing report is left untouched', async () => {
    const existing = path.join(root, 'keep.json');
    fs.writeFileSync(existing, '{"old": true}');
    const badCsv = path.join(root, 'bad.csv');
    fs.writeFileSync(badCsv, 'label,prediction\nred,red\nred,magenta\n');
    const unknown = await graft('report', '--predictions', badCsv, '--model', model, '--out', existing);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^graft: .*bad\.csv row 3: prediction "magenta" is not a known class \(blue, green, red\)/);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect(fs.readFileSync(existing, 'utf8')).toBe('{"old": true}');

    fs.writeFileSync(badCsv, 'truth,guess\nred,red\n');
    const columns = await graft('report', '--predictions', badCsv);
    expect(columns.stderr).toMatch(/has no label and prediction column \(columns found: truth, guess\)/);

    const bare = path.join(root, 'bare');
    fs.mkdirSync(bare);
    const noMeta = await graft('evaluate', '--model', bare, '--data', data);
    expect(noMeta.code).toBe(1);
    expect(noMeta.stderr).toMatch(/has no graft\.json; it is not a graft model folder/);

    const html = await graft('evaluate', '--model', model, '--data', data, '--format', 'html');
    expect(html.stderr).toMatch(/--format html writes files; add --out <path>/);
    const typo = await graft('evaluate', '--model', model, '--data', data, '--format', 'htm');
    expect(typo.stderr).toMatch(/--format must be one of text, json, md, html, csv; received "htm"/);
    const engine = await graft('evaluate', '--model', model, '--data', data, '--engine', 'onxx');
    expect(engine.stderr).toMatch(/engine must be one of auto, onnx, tfjs; received "onxx"/);
    const both = await graft('report');
    expect(both.stderr).toMatch(/pass exactly one of --predictions/);
  });
});
