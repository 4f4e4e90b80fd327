/**
 * Operator robustness (issue 15): every command given a bad path (missing, a file where a folder goes, a folder
 * where a file goes, an empty or garbage file, an unwritable output) answers with one plain line and a non-zero
 * exit, never "unexpected error" (which is for bugs).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir } from './helpers/tmp';
import { FM_0_4, tinyDataset } from './helpers/tiny-data';
import { runCli as graft } from './helpers/run-cli';

const root = tmpDir('graft-robust-paths-');
const data = tinyDataset(path.join(root, 'data'), 3, 5, FM_0_4);
const MODEL = path.join(__dirname, '..', 'models', 'fashion-mnist-0-4');
const missing = path.join(root, 'missing');
const file = path.join(root, 'file.txt');
fs.writeFileSync(file, 'not what you think');
const empty = path.join(root, 'empty.h5');
fs.writeFileSync(empty, '');
const emptyDir = path.join(root, 'empty-dir');
fs.mkdirSync(emptyDir);
const garbageModel = path.join(root, 'garbage-model');
fs.mkdirSync(garbageModel);
fs.writeFileSync(path.join(garbageModel, 'graft.json'), '{"format": "graft-model"');
const image = path.join(data, fs.readdirSync(data)[0], fs.readdirSync(path.join(data, fs.readdirSync(data)[0]))[0]);
const ro = '/sys/graft-robust-out';

const CASES: Array<[string, string[]]> = [
  ['summary missing folder', ['summary', missing]],
  ['summary a file', ['summary', file]],
  ['import-keras missing file', ['import-keras', missing, '--arch', 'simple_cnn']],
  ['import-keras empty file', ['import-keras', empty, '--arch', 'simple_cnn']],
  ['import-keras a folder', ['import-keras', emptyDir, '--arch', 'simple_cnn']],
  ['import-keras unwritable --out', ['import-keras', empty, '--arch', 'simple_cnn', '--out', ro]],
  ['features missing image', ['features', '--weights', MODEL, missing]],
  ['features empty folder', ['features', '--weights', MODEL, emptyDir]],
  ['features missing weights', ['features', '--weights', missing, '--arch', 'simple_cnn', image]],
  ['features garbage model', ['features', '--weights', garbageModel, image]],
  ['train missing data', ['train', '--data', missing, '--arch', 'simple_cnn', '--out', path.join(root, 'o1')]],
  ['train data is a text file', ['train', '--data', file, '--arch', 'simple_cnn', '--out', path.join(root, 'o2')]],
  ['train empty data folder', ['train', '--data', emptyDir, '--arch', 'simple_cnn', '--out', path.join(root, 'o3')]],
  ['train missing weights', ['train', '--data', data, '--weights', missing, '--arch', 'simple_cnn', '--out', path.join(root, 'o4')]],
  ['train missing config', ['train', '--config', missing]],
  ['train unwritable --out', ['train', '--data', data, '--arch', 'simple_cnn', '--out', ro]],
  ['train --resume with nothing to resume', ['train', '--data', data, '--arch', 'simple_cnn', '--weights', 'none', '--out', path.join(root, 'o5'), '--resume']],
  ['lr-find missing data', ['lr-find', '--data', missing, '--arch', 'simple_cnn', '--plot', path.join(root, 'lr.png')]],
  ['lr-find unwritable --plot', ['lr-find', '--data', data, '--arch', 'simple_cnn', '--plot', path.join(ro, 'lr.png')]],
  ['evaluate missing model', ['evaluate', '--model', missing, '--data', data]],
  ['evaluate garbage model', ['evaluate', '--model', garbageModel, '--data', data]],
  ['evaluate missing data', ['evaluate', '--model', MODEL, '--data', missing]],
  ['evaluate unwritable --out', ['evaluate', '--model', MODEL, '--data', data, '--out', path.join(ro, 'r.json')]],
  ['predict missing model', ['predict', '--model', missing, image]],
  ['predict missing image', ['predict', '--model', MODEL, missing]],
  ['predict --out under a file', ['predict', '--model', MODEL, '--out', path.join(file, 'p.csv'), image]],
  ['report missing predictions', ['report', '--predictions', missing, '--classes', 'a,b']],
  ['report garbage predictions', ['report', '--predictions', file, '--classes', 'a,b']],
  ['report missing shard', ['report', '--merge', missing, path.join(root, 'missing2')]],
  ['report --out is a folder', ['report', '--predictions', file, '--classes', 'a,b', '--out', path.join(emptyDir, 'x', '..'), '--format', 'html']],
  ['dataset fashion-mnist missing idx', ['dataset', 'fashion-mnist', '--idx', missing, '--out', path.join(root, 'fm')]],
  ['dataset fashion-mnist --out is a file', ['dataset', 'fashion-mnist', '--out', file]],
  ['dataset check missing', ['dataset', 'check', missing]],
  ['dataset check a text file', ['dataset', 'check', file]],
  ['augment missing data', ['augment', '--data', missing, '--out', path.join(root, 's.png')]],
  ['augment unwritable --out', ['augment', '--data', data, '--out', path.join(ro, 's.png')]],
  ['export missing model', ['export', '--onnx', missing]],
  ['export garbage model', ['export', '--onnx', garbageModel]],
  ['export --out is a folder', ['export', '--onnx', MODEL, '--out', emptyDir]],
  ['demo missing trunk', ['demo', '--trunk', missing, '--out', path.join(root, 'demo')]],
  ['demo --out under a file', ['demo', '--out', path.join(file, 'demo')]],
];

test.each(CASES)('%s: one line, no "unexpected error"', async (_name, args) => {
  const r = await graft('--backend', 'wasm', '-q', ...args);
  expect(r.err).not.toMatch(/unexpected error/);
  expect(r.code).not.toBe(0);
  expect(r.err).toMatch(/^graft: [^\n]+\n$/);
});
