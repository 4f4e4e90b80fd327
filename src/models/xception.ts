/**
 * Xception as Keras Applications builds it: entry flow (block1-4), middle flow (block5-12, identity residuals) and
 * exit flow (block13-14). Keras leaves the residual 1x1 convs, their batch norms and the adds unnamed; they get the
 * automatic names of a fresh Keras session (`conv2d`..`conv2d_3`, `batch_normalization`.., `add`..`add_11`).
 */
import { ArchitectureSpec } from './spec';
import { Net, Sym } from './net';

const BASE = 'https://storage.googleapis.com/tensorflow/keras-applications/xception';

/** relu (optional) -> separable 3x3 -> batch norm, named `<block>_sepconv<step>{_act,,_bn}` as Keras names them. */
function sepStep(net: Net, x: Sym, filters: number, prefix: string, step: number, a: { preRelu: boolean }): Sym {
  if (a.preRelu) x = net.act(x, 'relu', `${prefix}_sepconv${step}_act`);
  x = net.sepConv(x, { filters, kernel: 3, padding: 'same', useBias: false, name: `${prefix}_sepconv${step}` });
  return net.bn(x, { name: `${prefix}_sepconv${step}_bn` });
}

/** Entry/exit block with a strided conv shortcut: two separable steps, max pool, add. */
function reductionBlock(net: Net, x: Sym, b: { block: number; filters: [number, number]; firstRelu: boolean }): Sym {
  const { block, filters, firstRelu } = b;
  let residual = net.conv(x, { filters: filters[1], kernel: 1, strides: 2, padding: 'same', useBias: false });
  residual = net.bn(residual);
  const p = `block${block}`;
  // Keras names block2's only pre-activation `block2_sepconv2_act`; the first step there has no relu.
  x = sepStep(net, x, filters[0], p, 1, { preRelu: firstRelu });
  x = sepStep(net, x, filters[1], p, 2, { preRelu: true });
  x = net.pool(x, 'max', { size: 3, strides: 2, padding: 'same', name: `${p}_pool` });
  return net.add([x, residual]);
}

/** Middle-flow block: three relu-separable steps and an identity residual. */
function middleBlock(net: Net, x: Sym, block: number): Sym {
  const residual = x;
  for (let step = 1; step <= 3; step++) x = sepStep(net, x, 728, `block${block}`, step, { preRelu: true });
  return net.add([x, residual]);
}

/** The Xception architecture. */
export const XCEPTION_SPEC: ArchitectureSpec = {
  name: 'xception',
  keras: 'Xception',
  defaultInputSize: 299,
  minInputSize: 71,
  preprocessing: 'tf',
  imagenet: {
    top: { url: `${BASE}/xception_weights_tf_dim_ordering_tf_kernels.h5`, md5: '0a58e3b7378bc2990ea3b43d5981f1f6' },
    notop: { url: `${BASE}/xception_weights_tf_dim_ordering_tf_kernels_notop.h5`, md5: 'b0042744bf5b25fce3cb969f33bebb97' },
  },
  params: { top: 22_910_480, notop: 20_861_480 },
  trunk(net, input) {
    net.group('stem');
    let x = net.conv(input, { filters: 32, kernel: 3, strides: 2, useBias: false, name: 'block1_conv1' });
    x = net.bn(x, { name: 'block1_conv1_bn' });
    x = net.act(x, 'relu', 'block1_conv1_act');
    x = net.conv(x, { filters: 64, kernel: 3, useBias: false, name: 'block1_conv2' });
    x = net.bn(x, { name: 'block1_conv2_bn' });
    x = net.act(x, 'relu', 'block1_conv2_act');
    net.group('entry');
    x = reductionBlock(net, x, { block: 2, filters: [128, 128], firstRelu: false });
    x = reductionBlock(net, x, { block: 3, filters: [256, 256], firstRelu: true });
    x = reductionBlock(net, x, { block: 4, filters: [728, 728], firstRelu: true });
    net.group('middle');
    for (let block = 5; block <= 12; block++) x = middleBlock(net, x, block);
    net.group('exit');
    x = reductionBlock(net, x, { block: 13, filters: [728, 1024], firstRelu: true });
    x = net.sepConv(x, { filters: 1536, kernel: 3, padding: 'same', useBias: false, name: 'block14_sepconv1' });
    x = net.bn(x, { name: 'block14_sepconv1_bn' });
    x = net.act(x, 'relu', 'block14_sepconv1_act');
    x = net.sepConv(x, { filters: 2048, kernel: 3, padding: 'same', useBias: false, name: 'block14_sepconv2' });
    x = net.bn(x, { name: 'block14_sepconv2_bn' });
    return net.act(x, 'relu', 'block14_sepconv2_act');
  },
  top(net, x, { classes, classifierActivation }) {
    x = net.globalPool(x, 'avg', 'avg_pool');
    return net.dense(x, classes, { activation: classifierActivation, name: 'predictions' });
  },
};
