import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../src/backend';
import { readTrainConfig } from '../src/cli/commands/train';
import { parseAugmentation } from '../src/data/augment';
import { constructModel } from '../src/models/build';
import { resolveSimpleCnn } from '../src/models/simple_cnn';

const RECIPES = path.join(__dirname, '..', 'docs', 'recipes');

describe('documented --config recipes', () => {
  const files = fs.readdirSync(RECIPES).filter((f) => f.endsWith('.json'));
  beforeAll(() => initBackend({ backend: 'wasm', log: null }));

  test('each recipe is a valid train config whose augmentation and simple_cnn options validate', () => {
    expect(files).toContain('fashion-mnist-full.json');
    for (const f of files) {
      const config = readTrainConfig(path.join(RECIPES, f));
      expect(parseAugmentation(config.augment).steps.length).toBeGreaterThanOrEqual(0);
      if (config.simpleCnn) resolveSimpleCnn(config.simpleCnn);
      // Every recipe is documented in the README beside it.
      expect(fs.readFileSync(path.join(RECIPES, 'README.md'), 'utf8')).toContain(f);
    }
  });

  test('the full Fashion-MNIST recipe: flips and small shifts only, and a model small enough to commit (under 5 MB)', () => {
    const config = readTrainConfig(path.join(RECIPES, 'fashion-mnist-full.json'));
    const steps = parseAugmentation(config.augment).steps;
    expect(steps.map((s) => s.op).sort()).toEqual(['horizontalFlip', 'translate']);
    expect(Math.max(...(steps.find((s) => s.op === 'translate')!.max as number[]))).toBeLessThanOrEqual(0.15);
    const { model } = constructModel({ arch: 'simple_cnn', includeTop: true, classes: 10, simpleCnn: config.simpleCnn });
    expect(model.countParams() * 4).toBeLessThan(5 * 1024 ** 2);
    model.dispose();
  });
});
