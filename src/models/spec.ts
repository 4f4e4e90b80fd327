/**
 * What the registry knows about one architecture. Each family file exports its specs (builder, sizes,
 * preprocessing, Keras weight URLs and hashes, Keras parameter counts); `registry.ts` is the only list of them.
 */
import { PreprocessMode } from '../data/preprocess';
import { Net, Sym } from './net';
import type { SimpleCnnOptions } from './simple_cnn';
import type { HeadOptions } from './head';

/** One Keras weight file: where Keras downloads it from and the md5 Keras checks. */
export interface KerasWeightsFile {
  /** Download URL, exactly as in keras/applications. */
  url: string;
  /** md5 of the file, exactly as in keras/applications; absent where Keras checks none or a SHA-256 instead. */
  md5?: string;
  /** SHA-256 of the file, where keras/applications gives one (MobileNet V1). */
  sha256?: string;
}

/** The ImageNet weight files of an architecture, with and without the classifier top. */
export interface ImagenetWeights {
  /** File for `includeTop: true`. */
  top: KerasWeightsFile;
  /** File for `includeTop: false`. */
  notop: KerasWeightsFile;
}

/** Options that reach the family builders. */
export interface BuildContext {
  /** Resolved configuration of `simple_cnn` (ignored by the ImageNet families). */
  simpleCnn: Required<SimpleCnnOptions>;
  /** Whether Keras's ImageNet weights are being loaded (EfficientNet adds a stem layer only then, as Keras does). */
  imagenet?: boolean;
}

/** The classifier top as Keras builds it. */
export interface TopArgs {
  /** Number of output units. */
  classes: number;
  /** Output activation. */
  classifierActivation: 'softmax' | 'sigmoid';
}

/** One registered architecture. */
export interface ArchitectureSpec {
  /** Registry name (`vgg16`, `resnet50v2`, ...). */
  name: string;
  /** The Keras Applications function it mirrors (`VGG16`, ...), or `graft` for graft's own. */
  keras: string;
  /** Keras default input height and width. */
  defaultInputSize: number;
  /** Smallest input height and width the architecture accepts. */
  minInputSize: number;
  /** Keras `preprocess_input` mode. */
  preprocessing: PreprocessMode;
  /** Keras ImageNet weight files, or null when there are none. */
  imagenet: ImagenetWeights | null;
  /** Keras's parameter counts with and without top (1000 classes, default size), or null when configurable. */
  params: { top: number; notop: number } | null;
  /** Builds the trunk (everything below the top); opens its own groups on `net`. */
  trunk(net: Net, input: Sym, ctx: BuildContext): Sym;
  /** Builds the Keras classifier top on the trunk output (the `head` group is already open). */
  top(net: Net, x: Sym, args: TopArgs, ctx: BuildContext): Sym;
  /** Names Keras gives the no-top pooling layer (ResNet names them; the others leave them automatic). */
  poolingNames?: { avg: string; max: string };
  /** Layer names in Keras's ImageNet files that today's Keras spells differently (file name -> model name). */
  legacyNames?: Record<string, string>;
  /**
   * The registry entry this one is a width variant of (`mobilenet_v2` for `mobilenet_v2_0.35`); registry-wide tests
   * that build and run every entry run variants only with GRAFT_SLOW_TESTS=1, as they share all code with it.
   */
  variantOf?: string;
  /**
   * Parameters Keras counts that graft's stand-in layers do not hold (EfficientNet's Normalization has a scalar
   * sample `count` the BatchNormalization stand-in has no use for); Keras's count is graft's count plus this.
   */
  kerasOnlyParams?: number;
  /** Input channels at the default shape (default 3, RGB; graft's small CNN takes 1, grey). */
  inputChannels?: number;
  /** Classes of the default top (default 1000, ImageNet's). */
  defaultClasses?: number;
  /** The head `createClassifier` puts on this trunk unless told otherwise (default: global average pooling). */
  defaultHead?(ctx: BuildContext): HeadOptions;
}

/** An architecture's input channels at its default shape. */
export function inputChannels(spec: ArchitectureSpec): number {
  return spec.inputChannels ?? 3;
}

/** An architecture's default class count. */
export function defaultClasses(spec: ArchitectureSpec): number {
  return spec.defaultClasses ?? 1000;
}

/** The head a new classifier gets on this trunk by default. */
export function defaultHead(spec: ArchitectureSpec | undefined, ctx: BuildContext): HeadOptions {
  return spec?.defaultHead?.(ctx) ?? { pooling: 'avg' };
}
