/**
 * ResNet v1 (50/101/152) and v2 (50V2/101V2/152V2) as Keras Applications builds them: one residual block function
 * per version plus a stage config (blocks per stage), with Keras's layer names (`conv2_block1_1_conv`, `conv5_block3_out`,
 * `post_bn`, ...). Only v2's strided shortcut pooling is unnamed in Keras; it gets Keras's automatic name.
 */
import { ArchitectureSpec, ImagenetWeights } from './spec';
import { Net, Sym } from './net';

const BASE = 'https://storage.googleapis.com/tensorflow/keras-applications/resnet';
const EPSILON = 1.001e-5;

/** Keras's md5s per ResNet file (top, notop); the URLs follow one pattern. */
const HASHES: Record<string, [string, string]> = {
  resnet50: ['2cb95161c43110f7111970584f804107', '4d473c1dd8becc155b73f8504c6f6626'],
  resnet101: ['f1aeb4b969a6efcfb50fad2f0c20cfc5', '88cf7a10940856eca736dc7b7e228a21'],
  resnet152: ['100835be76be38e30d865e96f2aaae62', 'ee4c566cf9a93f14d82f913c2dc6dd0c'],
  resnet50v2: ['3ef43a0b657b3be2300d5770ece849e0', 'fac2f116257151a9d068a22e544a4917'],
  resnet101v2: ['6343647c601c52e1368623803854d971', 'c0ed64b8031c3730f411d2eb4eea35b5'],
  resnet152v2: ['a49b44d1979771252814e80f8ec446f9', 'ed17cf2e0169df9d443503ef94b23b33'],
};

function weights(name: string): ImagenetWeights {
  const [top, notop] = HASHES[name];
  return {
    top: { url: `${BASE}/${name}_weights_tf_dim_ordering_tf_kernels.h5`, md5: top },
    notop: { url: `${BASE}/${name}_weights_tf_dim_ordering_tf_kernels_notop.h5`, md5: notop },
  };
}

const STAGE_FILTERS = [64, 128, 256, 512];

/** Keras `residual_block_v1`: post-activation bottleneck; the shortcut is a strided 1x1 conv in a stage's first block. */
function blockV1(net: Net, x: Sym, filters: number, a: { stride: number; convShortcut: boolean; name: string }): Sym {
  const n = a.name;
  let shortcut = x;
  if (a.convShortcut) {
    shortcut = net.conv(x, { filters: 4 * filters, kernel: 1, strides: a.stride, name: `${n}_0_conv` });
    shortcut = net.bn(shortcut, { epsilon: EPSILON, name: `${n}_0_bn` });
  }
  x = net.conv(x, { filters, kernel: 1, strides: a.stride, name: `${n}_1_conv` });
  x = net.bn(x, { epsilon: EPSILON, name: `${n}_1_bn` });
  x = net.act(x, 'relu', `${n}_1_relu`);
  x = net.conv(x, { filters, kernel: 3, padding: 'same', name: `${n}_2_conv` });
  x = net.bn(x, { epsilon: EPSILON, name: `${n}_2_bn` });
  x = net.act(x, 'relu', `${n}_2_relu`);
  x = net.conv(x, { filters: 4 * filters, kernel: 1, name: `${n}_3_conv` });
  x = net.bn(x, { epsilon: EPSILON, name: `${n}_3_bn` });
  x = net.add([shortcut, x], `${n}_add`);
  return net.act(x, 'relu', `${n}_out`);
}

/** Keras `residual_block_v2`: pre-activation bottleneck; the stride sits in the 3x3 conv of a stage's last block. */
function blockV2(net: Net, x: Sym, filters: number, a: { stride: number; convShortcut: boolean; name: string }): Sym {
  const n = a.name;
  let preact = net.bn(x, { epsilon: EPSILON, name: `${n}_preact_bn` });
  preact = net.act(preact, 'relu', `${n}_preact_relu`);
  let shortcut: Sym;
  if (a.convShortcut) shortcut = net.conv(preact, { filters: 4 * filters, kernel: 1, strides: a.stride, name: `${n}_0_conv` });
  else shortcut = a.stride > 1 ? net.pool(x, 'max', { size: 1, strides: a.stride }) : x;
  let y = net.conv(preact, { filters, kernel: 1, useBias: false, name: `${n}_1_conv` });
  y = net.bn(y, { epsilon: EPSILON, name: `${n}_1_bn` });
  y = net.act(y, 'relu', `${n}_1_relu`);
  y = net.zeroPad(y, 1, `${n}_2_pad`);
  y = net.conv(y, { filters, kernel: 3, strides: a.stride, useBias: false, name: `${n}_2_conv` });
  y = net.bn(y, { epsilon: EPSILON, name: `${n}_2_bn` });
  y = net.act(y, 'relu', `${n}_2_relu`);
  y = net.conv(y, { filters: 4 * filters, kernel: 1, name: `${n}_3_conv` });
  return net.add([shortcut, y], `${n}_out`);
}

/** Keras `stack_residual_blocks_v1`: the first block is strided (except conv2) and has the conv shortcut. */
function stackV1(net: Net, x: Sym, filters: number, blocks: number, stage: number): Sym {
  const stride1 = stage === 2 ? 1 : 2;
  for (let b = 1; b <= blocks; b++) {
    x = blockV1(net, x, filters, { stride: b === 1 ? stride1 : 1, convShortcut: b === 1, name: `conv${stage}_block${b}` });
  }
  return x;
}

/** Keras `stack_residual_blocks_v2`: conv shortcut in the first block, stride in the last (none in conv5). */
function stackV2(net: Net, x: Sym, filters: number, blocks: number, stage: number): Sym {
  const stride1 = stage === 5 ? 1 : 2;
  for (let b = 1; b <= blocks; b++) {
    x = blockV2(net, x, filters, { stride: b === blocks ? stride1 : 1, convShortcut: b === 1, name: `conv${stage}_block${b}` });
  }
  return x;
}

function resnet(name: string, keras: string, v2: boolean, blocks: number[], params: { top: number; notop: number }): ArchitectureSpec {
  return {
    name,
    keras,
    defaultInputSize: 224,
    minInputSize: 32,
    preprocessing: v2 ? 'tf' : 'caffe',
    imagenet: weights(name),
    params,
    poolingNames: { avg: 'avg_pool', max: 'max_pool' },
    trunk(net, input) {
      net.group('stem');
      let x = net.zeroPad(input, 3, 'conv1_pad');
      x = net.conv(x, { filters: 64, kernel: 7, strides: 2, name: 'conv1_conv' });
      if (!v2) {
        x = net.bn(x, { epsilon: EPSILON, name: 'conv1_bn' });
        x = net.act(x, 'relu', 'conv1_relu');
      }
      x = net.zeroPad(x, 1, 'pool1_pad');
      x = net.pool(x, 'max', { size: 3, strides: 2, name: 'pool1_pool' });
      blocks.forEach((count, i) => {
        net.group(`conv${i + 2}`);
        x = (v2 ? stackV2 : stackV1)(net, x, STAGE_FILTERS[i], count, i + 2);
      });
      if (v2) {
        x = net.bn(x, { epsilon: EPSILON, name: 'post_bn' });
        x = net.act(x, 'relu', 'post_relu');
      }
      return x;
    },
    top(net, x, { classes, classifierActivation }) {
      x = net.globalPool(x, 'avg', 'avg_pool');
      return net.dense(x, classes, { activation: classifierActivation, name: 'predictions' });
    },
  };
}

/** The ResNet architectures. */
export const RESNET_SPECS: ArchitectureSpec[] = [
  resnet('resnet50', 'ResNet50', false, [3, 4, 6, 3], { top: 25_636_712, notop: 23_587_712 }),
  resnet('resnet101', 'ResNet101', false, [3, 4, 23, 3], { top: 44_707_176, notop: 42_658_176 }),
  resnet('resnet152', 'ResNet152', false, [3, 8, 36, 3], { top: 60_419_944, notop: 58_370_944 }),
  resnet('resnet50v2', 'ResNet50V2', true, [3, 4, 6, 3], { top: 25_613_800, notop: 23_564_800 }),
  resnet('resnet101v2', 'ResNet101V2', true, [3, 4, 23, 3], { top: 44_675_560, notop: 42_626_560 }),
  resnet('resnet152v2', 'ResNet152V2', true, [3, 8, 36, 3], { top: 60_380_648, notop: 58_331_648 }),
];
