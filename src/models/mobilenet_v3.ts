/**
 * MobileNetV3 Small and Large as Keras Applications builds them, preprocessing included (a Rescaling to [-1, 1]
 * first, so the model takes 0..255 pixels): `conv`, inverted residual blocks (`expanded_conv_<i>_`) with
 * squeeze-and-excitation and hard swish, `conv_1`, and a top of 1x1 convs (`conv_2`, `logits`). The minimalistic
 * variants drop SE, hard swish and 5x5 kernels. Keras's hard sigmoid / hard swish are built from stock tfjs layers
 * (mobile_blocks.ts); they carry no weights, so their automatic names do not affect weight loading.
 */
import { ArchitectureSpec } from './spec';
import { Net, Sym } from './net';
import { correctPad, hardSigmoid, hardSwish, makeDivisible } from './mobile_blocks';

const BASE = 'https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3';
const BN = { epsilon: 1e-3, momentum: 0.999 } as const;

/** Keras's md5s (top, no top) keyed by `<type>[_minimalistic]_224_<alpha>_float`. */
const HASHES: Record<string, [string, string]> = {
  'large_224_0.75_float': ['765b44a33ad4005b3ac83185abf1d0eb', '40af19a13ebea4e2ee0c676887f69a2e'],
  'large_224_1.0_float': ['59e551e166be033d707958cf9e29a6a7', '07fb09a5933dd0c8eaafa16978110389'],
  'large_minimalistic_224_1.0_float': ['675e7b876c45c57e9e63e6d90a36599c', 'ec5221f64a2f6d1ef965a614bdae7973'],
  'small_224_0.75_float': ['cb65d4e5be93758266aa0a7f2c6708b7', 'ebdb5cc8e0b497cd13a7c275d475c819'],
  'small_224_1.0_float': ['8768d4c2e7dee89b9d02b2d03d65d862', 'd3e8ec802a04aa4fc771ee12a9a9b836'],
  'small_minimalistic_224_1.0_float': ['99cd97fb2fcdad2bf028eb838de69e37', 'cde8136e733e811080d9fcd8a252f7e4'],
};

type Activation = (net: Net, x: Sym) => Sym;
const relu: Activation = (net, x) => net.relu(x);

/** One block of a stack: expansion, filters, kernel (`k` = the variant's kernel), stride, SE, activation (`a` = the variant's). */
type BlockRow = [number, number, 3 | 'k', number, boolean, 'relu' | 'a'];

/** Keras `MobileNetV3Small`'s `stack_fn`. */
const SMALL: BlockRow[] = [
  [1, 16, 3, 2, true, 'relu'],
  [72 / 16, 24, 3, 2, false, 'relu'],
  [88 / 24, 24, 3, 1, false, 'relu'],
  [4, 40, 'k', 2, true, 'a'],
  [6, 40, 'k', 1, true, 'a'],
  [6, 40, 'k', 1, true, 'a'],
  [3, 48, 'k', 1, true, 'a'],
  [3, 48, 'k', 1, true, 'a'],
  [6, 96, 'k', 2, true, 'a'],
  [6, 96, 'k', 1, true, 'a'],
  [6, 96, 'k', 1, true, 'a'],
];

/** Keras `MobileNetV3Large`'s `stack_fn`. */
const LARGE: BlockRow[] = [
  [1, 16, 3, 1, false, 'relu'],
  [4, 24, 3, 2, false, 'relu'],
  [3, 24, 3, 1, false, 'relu'],
  [3, 40, 'k', 2, true, 'relu'],
  [3, 40, 'k', 1, true, 'relu'],
  [3, 40, 'k', 1, true, 'relu'],
  [6, 80, 3, 2, false, 'a'],
  [2.5, 80, 3, 1, false, 'a'],
  [2.3, 80, 3, 1, false, 'a'],
  [2.3, 80, 3, 1, false, 'a'],
  [6, 112, 3, 1, true, 'a'],
  [6, 112, 3, 1, true, 'a'],
  [6, 160, 'k', 2, true, 'a'],
  [6, 160, 'k', 1, true, 'a'],
  [6, 160, 'k', 1, true, 'a'],
];

/** Keras `_se_block`: pooled gate, reduce, ReLU, expand, hard sigmoid, multiply. */
function seBlock(net: Net, inputs: Sym, filters: number, prefix: string): Sym {
  // Keras pools with keepdims=True, which tfjs's GlobalAveragePooling2D lacks: pool, then reshape to 1x1xC.
  let x = net.globalPool(inputs, 'avg', `${prefix}squeeze_excite_avg_pool`);
  x = net.reshape(x, [1, 1, filters]);
  x = net.conv(x, { filters: makeDivisible(filters * 0.25), kernel: 1, padding: 'same', name: `${prefix}squeeze_excite_conv` });
  x = net.relu(x, { name: `${prefix}squeeze_excite_relu` });
  x = net.conv(x, { filters, kernel: 1, padding: 'same', name: `${prefix}squeeze_excite_conv_1` });
  x = hardSigmoid(net, x);
  return net.multiply([inputs, x], `${prefix}squeeze_excite_mul`);
}

/** Keras `_inverted_res_block` (MobileNetV3's). */
function invertedResBlock(net: Net, x: Sym, a: { expansion: number; filters: number; kernel: number; stride: number; se: boolean; activation: Activation; blockId: number }): Sym {
  const shortcut = x;
  let prefix = 'expanded_conv_';
  const inFilters = x.shape[3] as number;
  if (a.blockId) {
    prefix = `expanded_conv_${a.blockId}_`;
    x = net.conv(x, { filters: makeDivisible(inFilters * a.expansion), kernel: 1, padding: 'same', useBias: false, name: `${prefix}expand` });
    x = net.bn(x, { ...BN, name: `${prefix}expand_bn` });
    x = a.activation(net, x);
  }
  if (a.stride === 2) x = net.zeroPad(x, correctPad(x, a.kernel), `${prefix}depthwise_pad`);
  x = net.depthwiseConv(x, { kernel: a.kernel, strides: a.stride, padding: a.stride === 1 ? 'same' : 'valid', useBias: false, name: `${prefix}depthwise` });
  x = net.bn(x, { ...BN, name: `${prefix}depthwise_bn` });
  x = a.activation(net, x);
  if (a.se) x = seBlock(net, x, makeDivisible(inFilters * a.expansion), prefix);
  x = net.conv(x, { filters: a.filters, kernel: 1, padding: 'same', useBias: false, name: `${prefix}project` });
  x = net.bn(x, { ...BN, name: `${prefix}project_bn` });
  if (a.stride === 1 && inFilters === a.filters) x = net.add([shortcut, x], `${prefix}add`);
  return x;
}

function mobilenetV3(type: 'small' | 'large', alpha: number, minimalistic: boolean, params: { top: number; notop: number }): ArchitectureSpec {
  const rows = type === 'small' ? SMALL : LARGE;
  const lastPointCh = type === 'small' ? 1024 : 1280;
  const kernel = minimalistic ? 3 : 5;
  const activation: Activation = minimalistic ? relu : hardSwish;
  const key = `${type}${minimalistic ? '_minimalistic' : ''}_224_${alpha.toFixed(alpha === 1 ? 1 : 2)}_float`;
  const title = type === 'small' ? 'MobileNetV3Small' : 'MobileNetV3Large';
  const args = [alpha !== 1 ? `alpha=${alpha}` : '', minimalistic ? 'minimalistic=True' : ''].filter(Boolean).join(', ');
  const dropoutRate = 0.2;
  return {
    name: `mobilenet_v3_${type}${minimalistic ? '_minimalistic' : ''}${alpha === 1 ? '' : `_${alpha}`}`,
    keras: args ? `${title}(${args})` : title,
    defaultInputSize: 224,
    minInputSize: 32,
    // The model rescales its own 0..255 input to [-1, 1] (Keras's include_preprocessing=True).
    preprocessing: 'none',
    imagenet: {
      top: { url: `${BASE}/weights_mobilenet_v3_${key}.h5`, md5: HASHES[key][0] },
      notop: { url: `${BASE}/weights_mobilenet_v3_${key}_no_top_v2.h5`, md5: HASHES[key][1] },
    },
    params,
    variantOf: alpha === 1 && !minimalistic ? undefined : `mobilenet_v3_${type}`,
    defaultHead: () => ({ pooling: 'avg', dropout: dropoutRate }),
    trunk(net, input) {
      net.group('stem');
      let x = net.rescale(input, { scale: 1 / 127.5, offset: -1 });
      x = net.conv(x, { filters: 16, kernel: 3, strides: 2, padding: 'same', useBias: false, name: 'conv' });
      x = net.bn(x, { ...BN, name: 'conv_bn' });
      x = activation(net, x);
      let stage = 0;
      rows.forEach(([expansion, filters, k, stride, se, act], blockId) => {
        if (blockId === 0 || stride === 2) net.group(`stage${++stage}`);
        x = invertedResBlock(net, x, {
          expansion,
          filters: makeDivisible(filters * alpha),
          kernel: k === 'k' ? kernel : k,
          stride,
          se: se && !minimalistic,
          activation: act === 'relu' ? relu : activation,
          blockId,
        });
      });
      x = net.conv(x, { filters: makeDivisible((x.shape[3] as number) * 6), kernel: 1, padding: 'same', useBias: false, name: 'conv_1' });
      x = net.bn(x, { ...BN, name: 'conv_1_bn' });
      return activation(net, x);
    },
    top(net, x, { classes, classifierActivation }) {
      const channels = x.shape[3] as number;
      x = net.globalPool(x, 'avg');
      x = net.reshape(x, [1, 1, channels]);
      x = net.conv(x, { filters: alpha > 1 ? makeDivisible(lastPointCh * alpha) : lastPointCh, kernel: 1, padding: 'same', name: 'conv_2' });
      x = activation(net, x);
      x = net.dropout(x, dropoutRate);
      x = net.conv(x, { filters: classes, kernel: 1, padding: 'same', name: 'logits' });
      x = net.flatten(x);
      return net.act(x, classifierActivation, 'predictions');
    },
    poolingNames: { avg: 'avg_pool', max: 'max_pool' },
  };
}

// Parameter counts: Keras documents MobileNet 4,253,864, MobileNetV2 3,538,984 and EfficientNetB0 5,330,571, which these
// builders reproduce; the other counts are what the same builders, transcribed from the Keras source, give.
/** The MobileNetV3 architectures Keras ships ImageNet weights for. */
export const MOBILENET_V3_SPECS: ArchitectureSpec[] = [
  mobilenetV3('small', 1, false, { top: 2_554_968, notop: 939_120 }),
  mobilenetV3('small', 0.75, false, { top: 2_051_552, notop: 583_160 }),
  mobilenetV3('small', 1, true, { top: 2_056_848, notop: 441_000 }),
  mobilenetV3('large', 1, false, { top: 5_507_432, notop: 2_996_352 }),
  mobilenetV3('large', 0.75, false, { top: 4_012_616, notop: 1_808_736 }),
  mobilenetV3('large', 1, true, { top: 3_948_688, notop: 1_437_608 }),
];
