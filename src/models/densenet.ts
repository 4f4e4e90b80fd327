/**
 * DenseNet 121/169/201 as Keras Applications builds them (keras/src/applications/densenet.py): a stem, four dense
 * blocks of pre-activation bottlenecks (BN-ReLU-1x1 conv-BN-ReLU-3x3 conv) whose 32 new channels are concatenated
 * onto the block input, and between blocks a transition (BN-ReLU-1x1 conv halving the channels, 2x2 average pool).
 * Keras names every layer except the two stem paddings (`zero_padding2d`, `zero_padding2d_1`).
 */
import { ArchitectureSpec, ImagenetWeights } from './spec';
import { Net, Sym } from './net';

const BASE = 'https://storage.googleapis.com/tensorflow/keras-applications/densenet';
const EPSILON = 1.001e-5;
const GROWTH_RATE = 32;

/** Keras's md5s per DenseNet file (top, notop); the URLs follow one pattern. */
const HASHES: Record<string, [string, string]> = {
  densenet121: ['9d60b8095a5708f2dcce2bca79d332c7', '30ee3e1110167f948a6b9946edeeb738'],
  densenet169: ['d699b8f76981ab1b30698df4c175e90b', 'b8c4d4c20dd625c148057b9ff1c1176b'],
  densenet201: ['1ceb130c1ea1b78c3bf6114dbdfd8807', 'c13680b51ded0fb44dff2d8f86ac8bb1'],
};

function weights(name: string): ImagenetWeights {
  const [top, notop] = HASHES[name];
  return {
    top: { url: `${BASE}/${name}_weights_tf_dim_ordering_tf_kernels.h5`, md5: top },
    notop: { url: `${BASE}/${name}_weights_tf_dim_ordering_tf_kernels_notop.h5`, md5: notop },
  };
}

/**
 * The ImageNet files (same md5s) were saved by keras-applications' densenet.py, which named the stem `conv1/conv`
 * and `conv1/bn` and the classifier `fc1000`; Keras 3 renamed them (it loads .h5 files by layer order, graft by name).
 */
const LEGACY_NAMES: Record<string, string> = { 'conv1/conv': 'conv1_conv', 'conv1/bn': 'conv1_bn', fc1000: 'predictions' };

/** BN-ReLU before each convolution, with Keras's DenseNet epsilon. */
function bnRelu(net: Net, x: Sym, prefix: string): Sym {
  x = net.bn(x, { epsilon: EPSILON, name: `${prefix}_bn` });
  return net.act(x, 'relu', `${prefix}_relu`);
}

/** Keras `conv_block`: a 4k-channel 1x1 bottleneck, then k new 3x3 channels concatenated onto the input. */
function convBlock(net: Net, x: Sym, name: string): Sym {
  let y = bnRelu(net, x, `${name}_0`);
  y = net.conv(y, { filters: 4 * GROWTH_RATE, kernel: 1, useBias: false, name: `${name}_1_conv` });
  y = bnRelu(net, y, `${name}_1`);
  y = net.conv(y, { filters: GROWTH_RATE, kernel: 3, padding: 'same', useBias: false, name: `${name}_2_conv` });
  return net.concat([x, y], `${name}_concat`);
}

/** Keras `transition_block` with reduction 0.5: halve the channels with a 1x1 conv, then halve the grid. */
function transition(net: Net, x: Sym, name: string): Sym {
  const channels = x.shape[3] as number;
  x = bnRelu(net, x, name);
  x = net.conv(x, { filters: Math.floor(channels * 0.5), kernel: 1, useBias: false, name: `${name}_conv` });
  return net.pool(x, 'avg', { size: 2, strides: 2, name: `${name}_pool` });
}

function densenet(name: string, keras: string, blocks: number[], params: { top: number; notop: number }): ArchitectureSpec {
  return {
    name,
    keras,
    defaultInputSize: 224,
    minInputSize: 32,
    preprocessing: 'torch',
    imagenet: weights(name),
    params,
    poolingNames: { avg: 'avg_pool', max: 'max_pool' },
    legacyNames: LEGACY_NAMES,
    trunk(net, input) {
      net.group('stem');
      let x = net.zeroPad(input, 3);
      x = net.conv(x, { filters: 64, kernel: 7, strides: 2, useBias: false, name: 'conv1_conv' });
      x = bnRelu(net, x, 'conv1');
      x = net.zeroPad(x, 1);
      x = net.pool(x, 'max', { size: 3, strides: 2, name: 'pool1' });
      // Each group is a dense block and the transition after it (timm groups DenseNet the same way), so every
      // group ends at the single tensor its transition pools to.
      blocks.forEach((count, i) => {
        const stage = i + 2;
        net.group(`conv${stage}`);
        for (let b = 1; b <= count; b++) x = convBlock(net, x, `conv${stage}_block${b}`);
        if (stage < 5) x = transition(net, x, `pool${stage}`);
      });
      x = net.bn(x, { epsilon: EPSILON, name: 'bn' });
      return net.act(x, 'relu', 'relu');
    },
    top(net, x, { classes, classifierActivation }) {
      x = net.globalPool(x, 'avg', 'avg_pool');
      return net.dense(x, classes, { activation: classifierActivation, name: 'predictions' });
    },
  };
}

/** The DenseNet architectures (Keras's block counts per stage). */
export const DENSENET_SPECS: ArchitectureSpec[] = [
  densenet('densenet121', 'DenseNet121', [6, 12, 24, 16], { top: 8_062_504, notop: 7_037_504 }),
  densenet('densenet169', 'DenseNet169', [6, 12, 32, 32], { top: 14_307_880, notop: 12_642_880 }),
  densenet('densenet201', 'DenseNet201', [6, 12, 48, 32], { top: 20_242_984, notop: 18_321_984 }),
];
