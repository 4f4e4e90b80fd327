/**
 * What the registry knows about one architecture. Each family file exports its specs (builder, sizes,
 * preprocessing, Keras weight URLs and hashes, Keras parameter counts); `registry.ts` is the only list of them.
 */
import { PreprocessMode } from './preprocess';
import { Net, Sym } from './net';
import type { SimpleCnnOptions } from './simple_cnn';

/** One Keras weight file: where Keras downloads it from and the md5 Keras checks. */
export interface KerasWeightsFile {
  /** Download URL, exactly as in keras/applications. */
  url: string;
  /** md5 of the file, exactly as in keras/applications. */
  md5: string;
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
}
