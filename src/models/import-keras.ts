/** `importKeras`: a Keras 2 .h5 weight file plus its architecture becomes a graft model folder. */
import * as path from 'node:path';
import { GraftError } from '../errors';
import { saveModelFolder } from '../io/model-folder';
import { GraftMeta } from '../io/graft-json';
import { constructModel } from './build';
import { KerasLoadReport, loadKerasWeights, readKerasH5Layers } from './keras-h5';
import { getArchitecture } from './registry';
import { inputChannels } from './spec';

/** Options for `importKeras`. */
export interface ImportKerasOptions {
  /** Registry architecture the file was saved from. */
  arch: string;
  /** Whether the file has the classifier top (default false). */
  includeTop?: boolean;
  /** Input size (default the architecture's; VGG with top needs 224). */
  inputSize?: number;
  /** Model folder to write (default the file name without `.h5`, beside the file). */
  out?: string;
  /** Class names for the top (default "0", "1", ...; the count comes from the file's `predictions` layer). */
  classNames?: string[];
}

/** What `importKeras` wrote. */
export interface ImportKerasResult {
  /** The model folder. */
  dir: string;
  /** Its graft.json. */
  meta: GraftMeta;
  /** How layers were matched. */
  report: KerasLoadReport;
}

/** Builds `arch`, loads the .h5 file into it (every layer checked) and saves a graft model folder. */
export async function importKeras(file: string, o: ImportKerasOptions): Promise<ImportKerasResult> {
  const spec = getArchitecture(o.arch);
  const includeTop = o.includeTop ?? false;
  let classes: number | undefined;
  if (includeTop) {
    const predictions = (await readKerasH5Layers(file)).find((l) => (spec.legacyNames?.[l.name] ?? l.name) === 'predictions');
    if (!predictions) throw new GraftError(`${file} has no predictions layer, so it has no top; import it without --top.`);
    classes = predictions.weights[0].shape.at(-1);
  }
  const size = o.inputSize ?? spec.defaultInputSize;
  const channels = inputChannels(spec);
  const built = constructModel(
    { arch: spec.name, includeTop, inputShape: [size, size, channels], classes, classNames: o.classNames },
    { initializer: 'zeros' },
  );
  try {
    const report = await loadKerasWeights(built.model, file, { aliases: spec.legacyNames });
    const dir = o.out ?? path.join(path.dirname(file), path.basename(file).replace(/\.(h5|hdf5|keras)$/i, '') || 'model');
    const meta = await saveModelFolder(dir, built.model, { ...built.meta, weights: path.resolve(file) });
    return { dir, meta, report };
  } finally {
    built.model.dispose();
  }
}
