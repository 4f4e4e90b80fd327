/** VGG16 and VGG19 as Keras Applications builds them: five blocks of 3x3 convs, each closed by a 2x2 max pool. */
import { ArchitectureSpec, ImagenetWeights } from './spec';
import { Net, Sym } from './net';

const BASE = 'https://storage.googleapis.com/tensorflow/keras-applications';

/** Keras's weight files and md5s for the VGG family. */
const WEIGHTS: Record<'vgg16' | 'vgg19', ImagenetWeights> = {
  vgg16: {
    top: { url: `${BASE}/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5`, md5: '64373286793e3c8b2b4e3219cbf3544b' },
    notop: { url: `${BASE}/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`, md5: '6d6bbae143d832006294945121d1f1fc' },
  },
  vgg19: {
    top: { url: `${BASE}/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels.h5`, md5: 'cbe5617147190e668d6c5d5026f83318' },
    notop: { url: `${BASE}/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`, md5: '253f8cb515780f3b799900260a226db6' },
  },
};

const FILTERS = [64, 128, 256, 512, 512];

/** One VGG block: `convs` same-padded 3x3 relu convs, then `blockN_pool`. */
function vggBlock(net: Net, x: Sym, block: number, filters: number, convs: number): Sym {
  for (let i = 1; i <= convs; i++) {
    x = net.conv(x, { filters, kernel: 3, padding: 'same', activation: 'relu', name: `block${block}_conv${i}` });
  }
  return net.pool(x, 'max', { size: 2, name: `block${block}_pool` });
}

function vgg(name: 'vgg16' | 'vgg19', keras: string, convsPerBlock: number[], params: { top: number; notop: number }): ArchitectureSpec {
  return {
    name,
    keras,
    defaultInputSize: 224,
    minInputSize: 32,
    preprocessing: 'caffe',
    imagenet: WEIGHTS[name],
    params,
    trunk(net, input) {
      let x = input;
      FILTERS.forEach((filters, i) => {
        net.group(`block${i + 1}`);
        x = vggBlock(net, x, i + 1, filters, convsPerBlock[i]);
      });
      return x;
    },
    top(net, x, { classes, classifierActivation }) {
      x = net.flatten(x, 'flatten');
      x = net.dense(x, 4096, { activation: 'relu', name: 'fc1' });
      x = net.dense(x, 4096, { activation: 'relu', name: 'fc2' });
      return net.dense(x, classes, { activation: classifierActivation, name: 'predictions' });
    },
  };
}

/** The VGG architectures. */
export const VGG_SPECS: ArchitectureSpec[] = [
  vgg('vgg16', 'VGG16', [2, 2, 3, 3, 3], { top: 138_357_544, notop: 14_714_688 }),
  vgg('vgg19', 'VGG19', [2, 2, 4, 4, 4], { top: 143_667_240, notop: 20_024_384 }),
];
