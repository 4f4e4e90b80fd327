import { trainSpeedSection } from './train-speed';
import { enginesSection } from './engines';
import { augmentSection } from './augment';
import { onnxSection } from './onnx';
import { evaluateSection } from './evaluate';
import { modelsSection } from './models';
import { trainStepSection } from './train-step';

/** One benchmark section: runs its measurements and returns a Markdown section (heading, table, ratios). */
export interface BenchSection {
  /** Short name used by `--only`. */
  name: string;
  /** Runs the section. */
  run(): Promise<string>;
}

/** Every section `npm run bench` runs, in order. */
export const SECTIONS: BenchSection[] = [trainSpeedSection, trainStepSection, enginesSection, augmentSection, evaluateSection, onnxSection, modelsSection];
