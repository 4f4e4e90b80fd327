/**
 * Inception V3 as Keras Applications builds it. Keras leaves every conv / batch-norm / activation unnamed, so they get
 * the automatic names a fresh Keras session gives (`conv2d`, `conv2d_1`, `batch_normalization`, `activation_1`, ...)
 * in Keras's creation order; the block outputs are `mixed0`..`mixed10`.
 */
import { ArchitectureSpec } from './spec';
import { Net, Sym } from './net';

const BASE = 'https://storage.googleapis.com/tensorflow/keras-applications/inception_v3';

/** Keras `conv2d_bn`: bias-free conv, batch norm without gamma, relu. */
function convBn(net: Net, x: Sym, filters: number, rows: number, cols: number, a: { strides?: number; padding?: 'same' | 'valid' } = {}): Sym {
  x = net.conv(x, { filters, kernel: [rows, cols], strides: a.strides ?? 1, padding: a.padding ?? 'same', useBias: false });
  x = net.bn(x, { scale: false });
  return net.act(x, 'relu');
}

/** 3x3 average pool (stride 1, same) then a 1x1 conv: the pooling branch of most blocks. */
function poolBranch(net: Net, x: Sym, filters: number): Sym {
  return convBn(net, net.pool(x, 'avg', { size: 3, strides: 1, padding: 'same' }), filters, 1, 1);
}

/** mixed0..2 (35x35): 1x1, 5x5, double 3x3 and pool branches. */
function blockA(net: Net, x: Sym, poolFilters: number, name: string): Sym {
  const b1 = convBn(net, x, 64, 1, 1);
  const b5 = convBn(net, convBn(net, x, 48, 1, 1), 64, 5, 5);
  const b3 = convBn(net, convBn(net, convBn(net, x, 64, 1, 1), 96, 3, 3), 96, 3, 3);
  const bp = poolBranch(net, x, poolFilters);
  return net.concat([b1, b5, b3, bp], name);
}

/** mixed3: grid reduction 35 -> 17. */
function blockB(net: Net, x: Sym): Sym {
  const b3 = convBn(net, x, 384, 3, 3, { strides: 2, padding: 'valid' });
  let bd = convBn(net, convBn(net, x, 64, 1, 1), 96, 3, 3);
  bd = convBn(net, bd, 96, 3, 3, { strides: 2, padding: 'valid' });
  const bp = net.pool(x, 'max', { size: 3, strides: 2 });
  return net.concat([b3, bd, bp], 'mixed3');
}

/** mixed4..7 (17x17): factorised 7x7 branches with `c7` inner channels. */
function blockC(net: Net, x: Sym, c7: number, name: string): Sym {
  const b1 = convBn(net, x, 192, 1, 1);
  let b7 = convBn(net, x, c7, 1, 1);
  b7 = convBn(net, b7, c7, 1, 7);
  b7 = convBn(net, b7, 192, 7, 1);
  let bd = convBn(net, x, c7, 1, 1);
  bd = convBn(net, bd, c7, 7, 1);
  bd = convBn(net, bd, c7, 1, 7);
  bd = convBn(net, bd, c7, 7, 1);
  bd = convBn(net, bd, 192, 1, 7);
  const bp = poolBranch(net, x, 192);
  return net.concat([b1, b7, bd, bp], name);
}

/** mixed8: grid reduction 17 -> 8. */
function blockD(net: Net, x: Sym): Sym {
  const b3 = convBn(net, convBn(net, x, 192, 1, 1), 320, 3, 3, { strides: 2, padding: 'valid' });
  let b7 = convBn(net, x, 192, 1, 1);
  b7 = convBn(net, b7, 192, 1, 7);
  b7 = convBn(net, b7, 192, 7, 1);
  b7 = convBn(net, b7, 192, 3, 3, { strides: 2, padding: 'valid' });
  const bp = net.pool(x, 'max', { size: 3, strides: 2 });
  return net.concat([b3, b7, bp], 'mixed8');
}

/** mixed9..10 (8x8): split 1x3 / 3x1 branches; the inner concat of the first split is `mixed9_<i>`, the second is unnamed. */
function blockE(net: Net, x: Sym, i: number): Sym {
  const b1 = convBn(net, x, 320, 1, 1);
  const b3 = convBn(net, x, 384, 1, 1);
  const b3cat = net.concat([convBn(net, b3, 384, 1, 3), convBn(net, b3, 384, 3, 1)], `mixed9_${i}`);
  const bd = convBn(net, convBn(net, x, 448, 1, 1), 384, 3, 3);
  const bdcat = net.concat([convBn(net, bd, 384, 1, 3), convBn(net, bd, 384, 3, 1)]);
  const bp = poolBranch(net, x, 192);
  return net.concat([b1, b3cat, bdcat, bp], `mixed${9 + i}`);
}

/** The Inception V3 architecture. */
export const INCEPTION_V3_SPEC: ArchitectureSpec = {
  name: 'inception_v3',
  keras: 'InceptionV3',
  defaultInputSize: 299,
  minInputSize: 75,
  preprocessing: 'tf',
  imagenet: {
    top: { url: `${BASE}/inception_v3_weights_tf_dim_ordering_tf_kernels.h5`, md5: '9a0d58056eeedaa3f26cb7ebd46da564' },
    notop: { url: `${BASE}/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`, md5: 'bcbd6486424b2319ff4ef7d526e38f63' },
  },
  params: { top: 23_851_784, notop: 21_802_784 },
  trunk(net, input) {
    net.group('stem');
    let x = convBn(net, input, 32, 3, 3, { strides: 2, padding: 'valid' });
    x = convBn(net, x, 32, 3, 3, { padding: 'valid' });
    x = convBn(net, x, 64, 3, 3);
    x = net.pool(x, 'max', { size: 3, strides: 2 });
    x = convBn(net, x, 80, 1, 1, { padding: 'valid' });
    x = convBn(net, x, 192, 3, 3, { padding: 'valid' });
    x = net.pool(x, 'max', { size: 3, strides: 2 });
    net.group('mixed0-2');
    [32, 64, 64].forEach((poolFilters, i) => (x = blockA(net, x, poolFilters, `mixed${i}`)));
    net.group('mixed3-7');
    x = blockB(net, x);
    [128, 160, 160, 192].forEach((c7, i) => (x = blockC(net, x, c7, `mixed${4 + i}`)));
    net.group('mixed8-10');
    x = blockD(net, x);
    for (let i = 0; i < 2; i++) x = blockE(net, x, i);
    return x;
  },
  top(net, x, { classes, classifierActivation }) {
    x = net.globalPool(x, 'avg', 'avg_pool');
    return net.dense(x, classes, { activation: classifierActivation, name: 'predictions' });
  },
};
