/**
 * The small toolkit every family builder uses: Keras-style automatic layer names (so unnamed Keras layers get the
 * names a fresh Keras session would give them), and the layer-group bookkeeping (each layer lands in the group
 * that is open when it is applied, so groups come from the builder itself rather than from a second list).
 */
import * as tf from '@tensorflow/tfjs';
import { LayerGroup } from '../io/graft-json';
import { Rng, createRng } from '../util/rng';

/** A symbolic tensor flowing through a model under construction. */
export type Sym = tf.SymbolicTensor;

/** Options for `Net.conv`. */
export interface ConvArgs {
  /** Output channels. */
  filters: number;
  /** Kernel size (square) or [rows, cols]. */
  kernel: number | [number, number];
  /** Stride (square). */
  strides?: number;
  /** `same` or `valid` (Keras default `valid`). */
  padding?: 'same' | 'valid';
  /** Whether the layer has a bias (Keras default true). */
  useBias?: boolean;
  /** Activation fused into the layer (VGG and EfficientNet's squeeze-and-excite convs do this). */
  activation?: 'relu' | 'linear' | 'swish' | 'sigmoid';
  /** Layer name; omitted means a Keras automatic name (`conv2d`, `conv2d_1`, ...). */
  name?: string;
}

/** Options for `Net.bn`. */
export interface BatchNormArgs {
  /** Layer name; omitted means `batch_normalization`, `batch_normalization_1`, ... */
  name?: string;
  /** Variance epsilon (Keras default 1e-3; ResNet uses 1.001e-5). */
  epsilon?: number;
  /** Whether the layer learns gamma (Inception V3 turns it off). */
  scale?: boolean;
  /** Moving-average momentum (Keras default 0.99; MobileNet V2/V3 use 0.999). */
  momentum?: number;
}

/** Options for `Net.depthwiseConv`. */
export interface DepthwiseConvArgs {
  /** Kernel size (square). */
  kernel: number;
  /** Stride (square). */
  strides?: number;
  /** `same` or `valid` (Keras default `valid`). */
  padding?: 'same' | 'valid';
  /** Output channels per input channel (Keras default 1). */
  depthMultiplier?: number;
  /** Whether the layer has a bias (Keras default true). */
  useBias?: boolean;
  /** Layer name; omitted means `depthwise_conv2d`, `depthwise_conv2d_1`, ... */
  name?: string;
}

/** Zero padding: the same on every side, or [[top, bottom], [left, right]] as Keras's `correct_pad` gives it. */
export type Padding2D = number | [[number, number], [number, number]];

/** A model under construction: names layers like Keras and records which group each layer belongs to. */
export class Net {
  /** Groups in the order they were opened, i.e. input to output. */
  readonly groups: LayerGroup[] = [];
  private readonly counters = new Map<string, number>();
  private current: LayerGroup | undefined;
  private readonly zeros: boolean;
  private readonly rng: Rng | undefined;

  /**
   * `zeros` skips random kernel initialisation: right when weights are loaded next (VGG16's fc1 alone is 100M draws).
   * `seed` gives every random kernel its own seeded glorot-uniform initialiser (Keras's default), drawn in layer
   * order, so the same seed builds the same weights without touching Math.random.
   */
  constructor(options: { initializer?: 'random' | 'zeros'; seed?: number | string } = {}) {
    this.zeros = options.initializer === 'zeros';
    this.rng = options.seed === undefined ? undefined : createRng(`${options.seed}/init`);
  }

  /** The kernel initialiser of the next layer: zeros, a seeded glorot-uniform, or tfjs's default. */
  kernelInit(): 'zeros' | ReturnType<typeof tf.initializers.glorotUniform> | undefined {
    if (this.zeros) return 'zeros';
    return this.rng ? tf.initializers.glorotUniform({ seed: this.rng.int(2 ** 31) }) : undefined;
  }

  /** Starts a new group; layers applied from now on belong to it. */
  group(name: string): void {
    this.current = { name, layers: [] };
    this.groups.push(this.current);
  }

  /** The next automatic name for a layer class, counted per model the way a fresh Keras session counts. */
  autoName(base: string): string {
    const n = this.counters.get(base) ?? 0;
    this.counters.set(base, n + 1);
    return n === 0 ? base : `${base}_${n}`;
  }

  /** Applies a layer and records it in the open group. */
  apply(layer: tf.layers.Layer, x: Sym | Sym[]): Sym {
    if (!this.current) throw new Error('Net.apply called before Net.group');
    this.current.layers.push(layer.name);
    return layer.apply(x) as Sym;
  }

  /** The arguments every convolution shares, with Keras's defaults (valid padding, bias, stride 1). */
  private convBase(a: Omit<ConvArgs, 'activation'>, autoBase: string) {
    return {
      filters: a.filters,
      kernelSize: a.kernel,
      strides: a.strides ?? 1,
      padding: a.padding ?? 'valid',
      useBias: a.useBias ?? true,
      name: a.name ?? this.autoName(autoBase),
    } as const;
  }

  /** Conv2D with Keras defaults (valid padding, bias, glorot-uniform kernel). */
  conv(x: Sym, a: ConvArgs): Sym {
    const layer = tf.layers.conv2d({
      ...this.convBase(a, 'conv2d'),
      activation: (a.activation ?? 'linear') as 'linear',
      kernelInitializer: this.kernelInit(),
    });
    return this.apply(layer, x);
  }

  /** SeparableConv2D (depthwise then pointwise) with Keras defaults. */
  sepConv(x: Sym, a: Omit<ConvArgs, 'activation'>): Sym {
    const layer = tf.layers.separableConv2d({
      ...this.convBase(a, 'separable_conv2d'),
      depthwiseInitializer: this.kernelInit(),
      pointwiseInitializer: this.kernelInit(),
    });
    return this.apply(layer, x);
  }

  /** BatchNormalization over the channel axis. */
  bn(x: Sym, a: BatchNormArgs = {}): Sym {
    const layer = tf.layers.batchNormalization({
      axis: -1,
      epsilon: a.epsilon ?? 1e-3,
      scale: a.scale ?? true,
      momentum: a.momentum ?? 0.99,
      name: a.name ?? this.autoName('batch_normalization'),
    });
    return this.apply(layer, x);
  }

  /** An activation layer (`leaky_relu` becomes tfjs's LeakyReLU layer with Keras's default slope). */
  act(x: Sym, activation: string, name?: string): Sym {
    if (activation === 'leaky_relu') {
      return this.apply(tf.layers.leakyReLU({ alpha: 0.3, name: name ?? this.autoName('leaky_re_lu') }), x);
    }
    const layer = tf.layers.activation({ activation: activation as 'relu', name: name ?? this.autoName('activation') });
    return this.apply(layer, x);
  }

  /** Max or average pooling. */
  pool(x: Sym, kind: 'max' | 'avg', a: { size: number; strides?: number; padding?: 'same' | 'valid'; name?: string }): Sym {
    const args = { poolSize: a.size, strides: a.strides ?? a.size, padding: a.padding ?? 'valid' } as const;
    const layer =
      kind === 'max'
        ? tf.layers.maxPooling2d({ ...args, name: a.name ?? this.autoName('max_pooling2d') })
        : tf.layers.averagePooling2d({ ...args, name: a.name ?? this.autoName('average_pooling2d') });
    return this.apply(layer, x);
  }

  /** Global average or max pooling (Keras automatic names unless named). */
  globalPool(x: Sym, kind: 'avg' | 'max', name?: string): Sym {
    const layer =
      kind === 'avg'
        ? tf.layers.globalAveragePooling2d({ name: name ?? this.autoName('global_average_pooling2d') })
        : tf.layers.globalMaxPooling2d({ name: name ?? this.autoName('global_max_pooling2d') });
    return this.apply(layer, x);
  }

  /** Zero padding, symmetric or per side. */
  zeroPad(x: Sym, pad: Padding2D, name?: string): Sym {
    const padding: [[number, number], [number, number]] = typeof pad === 'number' ? [[pad, pad], [pad, pad]] : pad;
    const layer = tf.layers.zeroPadding2d({ padding, name: name ?? this.autoName('zero_padding2d') });
    return this.apply(layer, x);
  }

  /** DepthwiseConv2D with Keras defaults (valid padding, bias, depth multiplier 1). */
  depthwiseConv(x: Sym, a: DepthwiseConvArgs): Sym {
    const layer = tf.layers.depthwiseConv2d({
      kernelSize: a.kernel,
      strides: a.strides ?? 1,
      padding: a.padding ?? 'valid',
      depthMultiplier: a.depthMultiplier ?? 1,
      useBias: a.useBias ?? true,
      name: a.name ?? this.autoName('depthwise_conv2d'),
      depthwiseInitializer: this.kernelInit(),
    });
    return this.apply(layer, x);
  }

  /** Keras's ReLU layer, capped at `maxValue` when given (ReLU6 is `maxValue` 6). */
  relu(x: Sym, a: { maxValue?: number; name?: string } = {}): Sym {
    return this.apply(tf.layers.reLU({ maxValue: a.maxValue, name: a.name ?? this.autoName('re_lu') }), x);
  }

  /** Rescaling: x * scale + offset; `scale` may be one factor per channel, as EfficientNet's third stem layer has it. */
  rescale(x: Sym, a: { scale: number | number[]; offset?: number; name?: string }): Sym {
    // tfjs types `scale` as a number, but its call is a broadcasting mul, so a per-channel list works and round-trips.
    const layer = tf.layers.rescaling({ scale: a.scale as number, offset: a.offset ?? 0, name: a.name ?? this.autoName('rescaling') });
    return this.apply(layer, x);
  }

  /**
   * Keras's Normalization layer ((x - mean) / max(sqrt(variance), 1e-7), per channel, weights `mean` and
   * `variance`), which tfjs 4.22 lacks: built as a BatchNormalization without gamma and beta whose moving mean and
   * variance are those weights, so stock tfjs loads it. epsilon 1e-14 makes sqrt(var + eps) equal Keras's floor of
   * 1e-7 where the variance is 0. Keras's third weight, the scalar sample `count`, is not needed to apply it.
   */
  normalization(x: Sym, name?: string): Sym {
    const layer = tf.layers.batchNormalization({ axis: -1, epsilon: 1e-14, center: false, scale: false, name: name ?? this.autoName('normalization') });
    return this.apply(layer, x);
  }

  /** Reshape (batch dimension excluded). */
  reshape(x: Sym, targetShape: number[], name?: string): Sym {
    return this.apply(tf.layers.reshape({ targetShape, name: name ?? this.autoName('reshape') }), x);
  }

  /** Element-wise product, broadcasting a [1, 1, C] gate over a feature map. */
  multiply(xs: Sym[], name?: string): Sym {
    return this.apply(tf.layers.multiply({ name: name ?? this.autoName('multiply') }), xs);
  }

  /** Element-wise sum. */
  add(xs: Sym[], name?: string): Sym {
    return this.apply(tf.layers.add({ name: name ?? this.autoName('add') }), xs);
  }

  /** Channel concatenation. */
  concat(xs: Sym[], name?: string): Sym {
    return this.apply(tf.layers.concatenate({ axis: -1, name: name ?? this.autoName('concatenate') }), xs);
  }

  /** Flatten. */
  flatten(x: Sym, name?: string): Sym {
    return this.apply(tf.layers.flatten({ name: name ?? this.autoName('flatten') }), x);
  }

  /** Dense with an optional fused activation. */
  dense(x: Sym, units: number, a: { activation?: string; name?: string } = {}): Sym {
    const layer = tf.layers.dense({
      units,
      activation: (a.activation ?? 'linear') as 'linear',
      name: a.name ?? this.autoName('dense'),
      kernelInitializer: this.kernelInit(),
    });
    return this.apply(layer, x);
  }

  /** Dropout (active only while training); `noiseShape` [null, 1, 1, 1] drops whole samples (stochastic depth). */
  dropout(x: Sym, rate: number, name?: string, noiseShape?: Array<number | null>): Sym {
    return this.apply(tf.layers.dropout({ rate, noiseShape: noiseShape as number[] | undefined, name: name ?? this.autoName('dropout') }), x);
  }
}
