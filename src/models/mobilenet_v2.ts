/**
 * MobileNetV2 as Keras Applications builds it: a ReLU6 stem, 17 inverted residual blocks (`block_<i>_expand`,
 * `_depthwise`, `_project`, the first one `expanded_conv_`), and `Conv_1` / `out_relu`. One registry entry per width
 * (alpha) that Keras ships ImageNet weights for; the bare name is alpha 1.0.
 */
import { ArchitectureSpec } from './spec';
import { Net, Sym } from './net';
import { correctPad, makeDivisible } from './mobile_blocks';

const BASE = 'https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2';
const BN = { epsilon: 1e-3, momentum: 0.999 } as const;

/** [filters, stride, expansion, blocks] per stage, as the calls in Keras's `MobileNetV2` list them. */
const STAGES: Array<[number, number, number, number]> = [
  [16, 1, 1, 1],
  [24, 2, 6, 2],
  [32, 2, 6, 3],
  [64, 2, 6, 4],
  [96, 1, 6, 3],
  [160, 2, 6, 3],
  [320, 1, 6, 1],
];

/** Keras `_inverted_res_block`. */
function invertedResBlock(net: Net, inputs: Sym, a: { expansion: number; stride: number; alpha: number; filters: number; blockId: number }): Sym {
  const inChannels = inputs.shape[3] as number;
  const pointwise = makeDivisible(Math.trunc(a.filters * a.alpha), 8);
  let x = inputs;
  let prefix = `block_${a.blockId}_`;
  if (a.blockId) {
    x = net.conv(x, { filters: a.expansion * inChannels, kernel: 1, padding: 'same', useBias: false, name: `${prefix}expand` });
    x = net.bn(x, { ...BN, name: `${prefix}expand_BN` });
    x = net.relu(x, { maxValue: 6, name: `${prefix}expand_relu` });
  } else {
    prefix = 'expanded_conv_';
  }
  if (a.stride === 2) x = net.zeroPad(x, correctPad(x, 3), `${prefix}pad`);
  x = net.depthwiseConv(x, { kernel: 3, strides: a.stride, useBias: false, padding: a.stride === 1 ? 'same' : 'valid', name: `${prefix}depthwise` });
  x = net.bn(x, { ...BN, name: `${prefix}depthwise_BN` });
  x = net.relu(x, { maxValue: 6, name: `${prefix}depthwise_relu` });
  x = net.conv(x, { filters: pointwise, kernel: 1, padding: 'same', useBias: false, name: `${prefix}project` });
  x = net.bn(x, { ...BN, name: `${prefix}project_BN` });
  if (inChannels === pointwise && a.stride === 1) return net.add([inputs, x], `${prefix}add`);
  return x;
}

function mobilenetV2(alpha: number, params: { top: number; notop: number }): ArchitectureSpec {
  const tag = Number.isInteger(alpha) ? alpha.toFixed(1) : String(alpha); // Python's float(alpha): 1.0, 0.35, 0.5, 1.4
  return {
    name: alpha === 1 ? 'mobilenet_v2' : `mobilenet_v2_${tag}`,
    keras: alpha === 1 ? 'MobileNetV2' : `MobileNetV2(alpha=${tag})`,
    defaultInputSize: 224,
    minInputSize: 32,
    preprocessing: 'tf',
    // Keras checks no hash for these files; the 224 files serve every input size (conv weights do not depend on it).
    imagenet: {
      top: { url: `${BASE}/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_${tag}_224.h5` },
      notop: { url: `${BASE}/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_${tag}_224_no_top.h5` },
    },
    params,
    variantOf: alpha === 1 ? undefined : 'mobilenet_v2',
    defaultHead: () => ({ pooling: 'avg' }),
    trunk(net, input) {
      net.group('stem');
      let x = net.conv(input, { filters: makeDivisible(32 * alpha, 8), kernel: 3, strides: 2, padding: 'same', useBias: false, name: 'Conv1' });
      x = net.bn(x, { ...BN, name: 'bn_Conv1' });
      x = net.relu(x, { maxValue: 6, name: 'Conv1_relu' });
      let blockId = 0;
      STAGES.forEach(([filters, stride, expansion, blocks], i) => {
        net.group(`stage${i + 1}`);
        for (let b = 0; b < blocks; b++) {
          x = invertedResBlock(net, x, { filters, alpha, stride: b === 0 ? stride : 1, expansion, blockId: blockId++ });
        }
      });
      // Keras widens the last conv only for alpha > 1 ("no alpha applied to last conv as stated in the paper").
      x = net.conv(x, { filters: alpha > 1 ? makeDivisible(1280 * alpha, 8) : 1280, kernel: 1, useBias: false, name: 'Conv_1' });
      x = net.bn(x, { ...BN, name: 'Conv_1_bn' });
      return net.relu(x, { maxValue: 6, name: 'out_relu' });
    },
    top(net, x, { classes, classifierActivation }) {
      x = net.globalPool(x, 'avg');
      return net.dense(x, classes, { activation: classifierActivation, name: 'predictions' });
    },
  };
}

// Parameter counts: Keras documents MobileNet 4,253,864, MobileNetV2 3,538,984 and EfficientNetB0 5,330,571, which these
// builders reproduce; the other counts are what the same builders, transcribed from the Keras source, give.
/** The MobileNetV2 architectures, one per Keras ImageNet width. */
export const MOBILENET_V2_SPECS: ArchitectureSpec[] = [
  mobilenetV2(1.0, { top: 3_538_984, notop: 2_257_984 }),
  mobilenetV2(0.35, { top: 1_691_208, notop: 410_208 }),
  mobilenetV2(0.5, { top: 1_987_224, notop: 706_224 }),
  mobilenetV2(0.75, { top: 2_663_064, notop: 1_382_064 }),
  mobilenetV2(1.3, { top: 5_431_048, notop: 3_766_048 }),
  mobilenetV2(1.4, { top: 6_156_712, notop: 4_363_712 }),
];
