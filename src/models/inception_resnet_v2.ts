/**
 * Inception-ResNet V2 as Keras Applications builds it (keras/src/applications/inception_resnet_v2.py): the stem and
 * mixed_5b, 10 block35, the mixed_6a reduction, 20 block17, the mixed_7a reduction, 10 block8 and conv_7b. Keras
 * leaves the branch convs, their batch norms, activations and poolings unnamed; they get the automatic names of a
 * fresh Keras session (`conv2d` .. `conv2d_202`, `max_pooling2d` .. `max_pooling2d_3`, ...) in Keras's creation order.
 *
 * Each residual block ends in Keras's `CustomScaleLayer` (x + up * scale), a layer tfjs does not have, so a saved
 * model would need graft's code to load. graft builds the same function from two stock layers instead: a
 * weightless Rescaling (`<block>_scale`) of the block's 1x1 conv output, then an Add named as Keras names its
 * scale layer (`custom_scale_layer`, `custom_scale_layer_1`, ...). Neither has weights, so parameter counts and
 * .h5 files are Keras's.
 */
import * as tf from '@tensorflow/tfjs';
import { ArchitectureSpec } from './spec';
import { Net, Sym } from './net';

const BASE = 'https://storage.googleapis.com/tensorflow/keras-applications/inception_resnet_v2';

/** Options for `convBn`. */
interface ConvBnArgs {
  /** Stride (default 1). */
  strides?: number;
  /** Padding (default same, as Keras's `conv2d_bn`). */
  padding?: 'same' | 'valid';
  /** Layer-name stem: `<name>`, `<name>_bn`, `<name>_ac`; omitted means automatic names. */
  name?: string;
}

/** Keras `conv2d_bn` with its defaults: bias-free conv, batch norm without gamma, relu. */
function convBn(net: Net, x: Sym, filters: number, kernel: number | [number, number], a: ConvBnArgs = {}): Sym {
  x = net.conv(x, { filters, kernel, strides: a.strides ?? 1, padding: a.padding ?? 'same', useBias: false, name: a.name });
  x = net.bn(x, { scale: false, name: a.name && `${a.name}_bn` });
  return net.act(x, 'relu', a.name && `${a.name}_ac`);
}

type BlockType = 'block35' | 'block17' | 'block8';

/** The residual branches of each block type: [filters, kernel] per conv, one list per branch. */
const BRANCHES: Record<BlockType, Array<Array<[number, number | [number, number]]>>> = {
  block35: [[[32, 1]], [[32, 1], [32, 3]], [[32, 1], [48, 3], [64, 3]]],
  block17: [[[192, 1]], [[128, 1], [160, [1, 7]], [192, [7, 1]]]],
  block8: [[[192, 1]], [[192, 1], [224, [1, 3]], [256, [3, 1]]]],
};

/** Keras `inception_resnet_block`: branches, concat, a biased 1x1 conv back to the input width, x + scale * up. */
function residualBlock(net: Net, x: Sym, type: BlockType, index: number, scale: number, activation: boolean): Sym {
  const branches = BRANCHES[type].map((convs) => convs.reduce((y, [filters, kernel]) => convBn(net, y, filters, kernel), x));
  const name = `${type}_${index}`;
  const mixed = net.concat(branches, `${name}_mixed`);
  let up = net.conv(mixed, { filters: x.shape[3] as number, kernel: 1, padding: 'same', name: `${name}_conv` });
  // Keras's CustomScaleLayer(scale)([x, up]) from stock layers (see the file comment); scale 1 needs no Rescaling.
  if (scale !== 1) up = net.apply(tf.layers.rescaling({ scale, offset: 0, name: `${name}_scale` }), up);
  x = net.add([x, up], net.autoName('custom_scale_layer'));
  return activation ? net.act(x, 'relu', `${name}_ac`) : x;
}

/** The Inception-ResNet V2 architecture. */
export const INCEPTION_RESNET_V2_SPEC: ArchitectureSpec = {
  name: 'inception_resnet_v2',
  keras: 'InceptionResNetV2',
  defaultInputSize: 299,
  minInputSize: 75,
  preprocessing: 'tf',
  imagenet: {
    top: { url: `${BASE}/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5`, md5: 'e693bd0210a403b3192acc6073ad2e96' },
    notop: { url: `${BASE}/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5`, md5: 'd19885ff4a710c122648d3b5c3b684e4' },
  },
  params: { top: 55_873_736, notop: 54_336_736 },
  trunk(net, input) {
    net.group('stem');
    let x = convBn(net, input, 32, 3, { strides: 2, padding: 'valid' });
    x = convBn(net, x, 32, 3, { padding: 'valid' });
    x = convBn(net, x, 64, 3);
    x = net.pool(x, 'max', { size: 3, strides: 2 });
    x = convBn(net, x, 80, 1, { padding: 'valid' });
    x = convBn(net, x, 192, 3, { padding: 'valid' });
    x = net.pool(x, 'max', { size: 3, strides: 2 });
    // mixed_5b (Inception-A): 35x35x320 at the default size.
    const b0 = convBn(net, x, 96, 1);
    const b1 = convBn(net, convBn(net, x, 48, 1), 64, 5);
    const b2 = convBn(net, convBn(net, convBn(net, x, 64, 1), 96, 3), 96, 3);
    const bp = convBn(net, net.pool(x, 'avg', { size: 3, strides: 1, padding: 'same' }), 64, 1);
    x = net.concat([b0, b1, b2, bp], 'mixed_5b');

    net.group('block35');
    for (let i = 1; i <= 10; i++) x = residualBlock(net, x, 'block35', i, 0.17, true);

    // Each reduction opens the group of the blocks that follow it, as a ResNet stage opens with its strided block.
    net.group('block17');
    {
      const r0 = convBn(net, x, 384, 3, { strides: 2, padding: 'valid' });
      const r1 = convBn(net, convBn(net, convBn(net, x, 256, 1), 256, 3), 384, 3, { strides: 2, padding: 'valid' });
      const rp = net.pool(x, 'max', { size: 3, strides: 2 });
      x = net.concat([r0, r1, rp], 'mixed_6a');
    }
    for (let i = 1; i <= 20; i++) x = residualBlock(net, x, 'block17', i, 0.1, true);

    net.group('block8');
    {
      const r0 = convBn(net, convBn(net, x, 256, 1), 384, 3, { strides: 2, padding: 'valid' });
      const r1 = convBn(net, convBn(net, x, 256, 1), 288, 3, { strides: 2, padding: 'valid' });
      const r2 = convBn(net, convBn(net, convBn(net, x, 256, 1), 288, 3), 320, 3, { strides: 2, padding: 'valid' });
      const rp = net.pool(x, 'max', { size: 3, strides: 2 });
      x = net.concat([r0, r1, r2, rp], 'mixed_7a');
    }
    for (let i = 1; i <= 9; i++) x = residualBlock(net, x, 'block8', i, 0.2, true);
    x = residualBlock(net, x, 'block8', 10, 1, false);
    return convBn(net, x, 1536, 1, { name: 'conv_7b' });
  },
  top(net, x, { classes, classifierActivation }) {
    x = net.globalPool(x, 'avg', 'avg_pool');
    return net.dense(x, classes, { activation: classifierActivation, name: 'predictions' });
  },
};
