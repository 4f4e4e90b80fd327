/**
 * `buildModel`: any registered architecture with Keras Applications' options (includeTop, inputShape, pooling,
 * classes, classifierActivation, weights), returning the model and its graft.json metadata (groups included).
 */
import * as tf from '@tensorflow/tfjs';
import { GraftError, oneOf, positiveInt, rejectUnknownKeys } from '../errors';
import { GraftMeta } from '../io/graft-json';
import { getArchitecture } from './registry';
import { ArchitectureSpec, BuildContext, defaultClasses, inputChannels } from './spec';
import { Net } from './net';
import { OUTPUT_ACTIVATIONS, OutputActivation } from './head';
import { SimpleCnnOptions, resolveSimpleCnn } from './simple_cnn';
import { WeightsProgress, loadPretrainedWeights } from './weights';

/** No-top pooling modes, as Keras's `pooling` (`none` = the 4D feature map). */
export const POOLINGS = ['none', 'avg', 'max'] as const;
/** A no-top pooling mode. */
export type Pooling = (typeof POOLINGS)[number];

/** Options for `buildModel` (Keras Applications' names, camel-cased). */
export interface BuildModelOptions {
  /** Registry architecture name. */
  arch: string;
  /** Seed of the random kernel initialisers (default: tfjs's unseeded ones). */
  seed?: number | string;
  /** Include the Keras classifier top (default true, as in Keras). */
  includeTop?: boolean;
  /** [height, width, channels]; default the architecture's default size with 3 channels (28x28x1 for simple_cnn). */
  inputShape?: number[];
  /** Without top: `none` (4D output, default), `avg` or `max` global pooling. */
  pooling?: Pooling | null;
  /** Output units of the top (default 1000, 10 for simple_cnn). */
  classes?: number;
  /** Output activation of the top (default softmax). */
  classifierActivation?: OutputActivation;
  /** `imagenet`, a Keras .h5 path or URL, or null for random initialisation (default null: no surprise downloads). */
  weights?: string | null;
  /** Configuration of `simple_cnn`. */
  simpleCnn?: SimpleCnnOptions;
  /** Class names for graft.json (default "0", "1", ...). */
  classNames?: string[];
  /** Download progress for `imagenet` / URL weights. */
  onProgress?: WeightsProgress;
}

const BUILD_KEYS = ['arch', 'includeTop', 'inputShape', 'pooling', 'classes', 'classifierActivation', 'weights', 'simpleCnn', 'classNames', 'onProgress', 'seed'];

/** The graft.json fields a builder fills in (typed, unlike the open-ended GraftMetaInit). */
export type ModelMeta = Pick<GraftMeta, 'architecture' | 'inputShape' | 'preprocessing' | 'classNames' | 'outputActivation' | 'groups' | 'weights'> & {
  [extra: string]: unknown;
};

/** A built model and its metadata. */
export interface BuiltModel {
  /** The tfjs model. */
  model: tf.LayersModel;
  /** graft.json fields for it (pass to `saveModelFolder`). */
  meta: ModelMeta;
}

/** Validated build options. */
export interface ResolvedBuild {
  /** The architecture. */
  spec: ArchitectureSpec;
  /** Whether the Keras top is built. */
  includeTop: boolean;
  /** [height, width, channels], checked against the minimum size. */
  inputShape: [number, number, number];
  /** No-top pooling. */
  pooling: Pooling;
  /** Output units of the top. */
  classes: number;
  /** Output activation of the top. */
  classifierActivation: OutputActivation;
  /** Class names for graft.json. */
  classNames: string[];
  /** What the family builders receive. */
  ctx: BuildContext;
}

/** The default input shape of an architecture. */
export function defaultInputShape(spec: ArchitectureSpec): [number, number, number] {
  return [spec.defaultInputSize, spec.defaultInputSize, inputChannels(spec)];
}

/** Checks `inputShape` against an architecture's minimum size, naming the minimum. */
export function resolveInputShape(spec: ArchitectureSpec, inputShape: number[] | undefined): [number, number, number] {
  if (inputShape === undefined) return defaultInputShape(spec);
  if (!Array.isArray(inputShape) || inputShape.length !== 3) {
    throw new GraftError(`inputShape must be [height, width, channels]; received ${JSON.stringify(inputShape)}.`);
  }
  const [h, w, c] = inputShape.map((d, i) => positiveInt(`inputShape[${i}]`, d));
  if (h < spec.minInputSize || w < spec.minInputSize) {
    throw new GraftError(
      `${spec.name} needs input at least ${spec.minInputSize}x${spec.minInputSize}; received ${h}x${w}. Use an input size of ${spec.minInputSize} or more.`,
    );
  }
  return [h, w, c];
}

/** Validates build options and fills Keras's defaults (every error names the valid values). */
export function resolveBuild(o: BuildModelOptions): ResolvedBuild {
  rejectUnknownKeys('buildModel', o, BUILD_KEYS);
  const spec = getArchitecture(o.arch);
  const includeTop = o.includeTop ?? true;
  if (typeof includeTop !== 'boolean') throw new GraftError(`includeTop must be true or false; received ${JSON.stringify(o.includeTop)}.`);
  const pooling = oneOf('pooling', o.pooling ?? 'none', POOLINGS);
  if (includeTop && pooling !== 'none') {
    throw new GraftError(`pooling applies only without the top; received pooling ${pooling} with includeTop true. Set includeTop false.`);
  }
  const inputShape = resolveInputShape(spec, o.inputShape);
  const classes = positiveInt('classes', o.classes ?? defaultClasses(spec));
  const classifierActivation = oneOf('classifierActivation', o.classifierActivation ?? 'softmax', OUTPUT_ACTIVATIONS);
  if (o.weights === 'imagenet') {
    if (!spec.imagenet) throw new GraftError(`${spec.name} has no ImageNet weights; use weights null or a Keras .h5 file.`);
    if (inputShape[2] !== 3) throw new GraftError(`ImageNet weights need 3 input channels; received ${inputShape[2]}. Use inputShape [h, w, 3].`);
    if (includeTop && classes !== 1000) throw new GraftError(`ImageNet weights with the top need classes 1000; received ${classes}. Set includeTop false for another class count.`);
  }
  const classNames = o.classNames ?? (includeTop ? Array.from({ length: classes }, (_, i) => String(i)) : []);
  if (includeTop && (!Array.isArray(classNames) || classNames.length !== classes)) {
    throw new GraftError(`classNames has ${classNames.length} names but classes is ${classes}; give one name per class.`);
  }
  return { spec, includeTop, inputShape, pooling, classes, classifierActivation, classNames, ctx: { simpleCnn: resolveSimpleCnn(o.simpleCnn), imagenet: isImagenetWeights(spec, o.weights) } };
}

/** Whether `weights` is Keras's ImageNet file of `spec`: `imagenet`, or that file by path or URL (e.g. placed by hand offline). */
function isImagenetWeights(spec: ArchitectureSpec, weights: string | null | undefined): boolean {
  if (weights === 'imagenet') return true;
  if (typeof weights !== 'string' || !spec.imagenet) return false;
  const base = (p: string) => p.split(/[\\/]/).pop();
  return [spec.imagenet.top.url, spec.imagenet.notop.url].some((url) => base(url) === base(weights));
}

/** Options for `constructModel`. */
export interface ConstructOptions {
  /** `zeros` skips random initialisation, for when weights are loaded next (default `random`). */
  initializer?: 'random' | 'zeros';
  /** Seed of the random kernel initialisers. */
  seed?: number | string;
}

/** Builds the layers of a request without loading weights (what `buildModel` does before loading them). */
export function constructModel(options: BuildModelOptions, c: ConstructOptions = {}): BuiltModel {
  return construct(resolveBuild(options), c);
}

function construct(r: ResolvedBuild, c: ConstructOptions): BuiltModel {
  const net = new Net({ initializer: c.initializer, seed: c.seed });
  const input = tf.input({ shape: r.inputShape, name: 'input_1' });
  let x = r.spec.trunk(net, input, r.ctx);
  if (r.includeTop) {
    net.group('head');
    x = r.spec.top(net, x, { classes: r.classes, classifierActivation: r.classifierActivation }, r.ctx);
  } else if (r.pooling !== 'none') {
    net.group('head');
    x = net.globalPool(x, r.pooling, r.spec.poolingNames?.[r.pooling]);
  }
  const model = tf.model({ inputs: input, outputs: x, name: r.spec.name });
  return {
    model,
    meta: {
      architecture: r.spec.name,
      inputShape: r.inputShape,
      preprocessing: r.spec.preprocessing,
      classNames: [...r.classNames],
      outputActivation: r.classifierActivation,
      groups: net.groups,
      weights: null,
      // simple_cnn's shape options, so a folder says how it was built and its trunk's default head matches it.
      ...(r.spec.name === 'simple_cnn' ? { simpleCnn: r.ctx.simpleCnn } : {}),
    },
  };
}

/** Builds an architecture as Keras Applications does, optionally loading ImageNet or Keras .h5 weights. */
export async function buildModel(options: BuildModelOptions): Promise<BuiltModel> {
  const r = resolveBuild(options);
  const built = construct(r, { initializer: options.weights ? 'zeros' : 'random', seed: options.seed });
  if (options.weights) {
    try {
      await loadPretrainedWeights(built.model, options.weights, { spec: r.spec, includeTop: r.includeTop, onProgress: options.onProgress });
    } catch (err) {
      built.model.dispose();
      throw err;
    }
    built.meta.weights = options.weights;
  }
  return built;
}
