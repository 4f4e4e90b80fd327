/**
 * EfficientNet B0-B7 as Keras Applications builds them: a preprocessing stem (Rescaling 1/255, Normalization, and
 * with ImageNet weights a second Rescaling by 1/sqrt(stddev)), `stem_conv`, seven stages of MBConv blocks with
 * squeeze-and-excitation (`block1a_`..`block7d_`), and `top_conv`. Width, depth and size scale per variant.
 * Normalization, which tfjs lacks, is a stock BatchNormalization stand-in (see `Net.normalization`); stochastic depth
 * is Keras's Dropout with noise shape [null, 1, 1, 1], which stock tfjs's Dropout supports.
 */
import { ArchitectureSpec } from './spec';
import { Net, Sym } from './net';
import { correctPad } from './mobile_blocks';

const BASE = 'https://storage.googleapis.com/keras-applications';

/** Keras's md5s per file (top, no top). */
const HASHES: Array<[string, string]> = [
  ['902e53a9f72be733fc0bcb005b3ebbac', '50bc09e76180e00e4465e1a485ddc09d'],
  ['1d254153d4ab51201f1646940f018540', '74c4e6b3e1f6a1eea24c589628592432'],
  ['b15cce36ff4dcbd00b6dd88e7857a6ad', '111f8e2ac8aa800a7a99e3239f7bfb39'],
  ['ffd1fdc53d0ce67064dc6a9c7960ede0', 'af6d107764bb5b1abb91932881670226'],
  ['18c95ad55216b8f92d7e70b3a046e2fc', 'ebc24e6d6c33eaebbd558eafbeedf1ba'],
  ['ace28f2a6363774853a83a0b21b9421a', '38879255a25d3c92d5e44e04ae6cec6f'],
  ['165f6e37dce68623721b423839de8be5', '9ecce42647a20130c1f39a5d4cb75743'],
  ['8c03f828fec3ef71311cd463b6759d99', 'cbcfe4450ddf6f3ad90b1b398090fe4a'],
];

/** Keras's `DEFAULT_BLOCKS_ARGS`: kernel, repeats, filters in, filters out, expand ratio, stride (SE ratio 0.25, id skip). */
const BLOCKS: Array<[number, number, number, number, number, number]> = [
  [3, 1, 32, 16, 1, 1],
  [3, 2, 16, 24, 6, 2],
  [5, 2, 24, 40, 6, 2],
  [3, 3, 40, 80, 6, 2],
  [5, 3, 80, 112, 6, 1],
  [5, 4, 112, 192, 6, 2],
  [3, 1, 192, 320, 6, 1],
];
const SE_RATIO = 0.25;
const DROP_CONNECT_RATE = 0.2;
const IMAGENET_STDDEV_RGB = [0.229, 0.224, 0.225];

/** Keras `block`: expand, depthwise, squeeze-and-excite, project, and the residual with stochastic depth. */
function mbConv(net: Net, inputs: Sym, a: { dropRate: number; name: string; filtersIn: number; filtersOut: number; kernel: number; strides: number; expandRatio: number }): Sym {
  const n = a.name;
  const filters = a.filtersIn * a.expandRatio;
  let x = inputs;
  if (a.expandRatio !== 1) {
    x = net.conv(x, { filters, kernel: 1, padding: 'same', useBias: false, name: `${n}expand_conv` });
    x = net.bn(x, { name: `${n}expand_bn` });
    x = net.act(x, 'swish', `${n}expand_activation`);
  }
  let padding: 'same' | 'valid' = 'same';
  if (a.strides === 2) {
    x = net.zeroPad(x, correctPad(x, a.kernel), `${n}dwconv_pad`);
    padding = 'valid';
  }
  x = net.depthwiseConv(x, { kernel: a.kernel, strides: a.strides, padding, useBias: false, name: `${n}dwconv` });
  x = net.bn(x, { name: `${n}bn` });
  x = net.act(x, 'swish', `${n}activation`);
  const filtersSe = Math.max(1, Math.trunc(a.filtersIn * SE_RATIO));
  let se = net.globalPool(x, 'avg', `${n}se_squeeze`);
  se = net.reshape(se, [1, 1, filters], `${n}se_reshape`);
  se = net.conv(se, { filters: filtersSe, kernel: 1, padding: 'same', activation: 'swish', name: `${n}se_reduce` });
  se = net.conv(se, { filters, kernel: 1, padding: 'same', activation: 'sigmoid', name: `${n}se_expand` });
  x = net.multiply([x, se], `${n}se_excite`);
  x = net.conv(x, { filters: a.filtersOut, kernel: 1, padding: 'same', useBias: false, name: `${n}project_conv` });
  x = net.bn(x, { name: `${n}project_bn` });
  if (a.strides === 1 && a.filtersIn === a.filtersOut) {
    if (a.dropRate > 0) x = net.dropout(x, a.dropRate, `${n}drop`, [null, 1, 1, 1]);
    x = net.add([x, inputs], `${n}add`);
  }
  return x;
}

function efficientnet(variant: number, width: number, depth: number, defaultSize: number, dropoutRate: number, params: { top: number; notop: number }): ArchitectureSpec {
  const modelName = `efficientnetb${variant}`;
  /** Keras `round_filters`. */
  const roundFilters = (f: number, divisor = 8) => {
    f *= width;
    let n = Math.max(divisor, Math.trunc(Math.trunc(f + divisor / 2) / divisor) * divisor);
    if (n < 0.9 * f) n += divisor;
    return n;
  };
  const roundRepeats = (r: number) => Math.ceil(depth * r);
  return {
    name: `efficientnet_b${variant}`,
    keras: `EfficientNetB${variant}`,
    defaultInputSize: defaultSize,
    minInputSize: 32,
    // The model rescales and normalises its own 0..255 input, as Keras's does (its preprocess_input is a pass-through).
    preprocessing: 'none',
    imagenet: {
      top: { url: `${BASE}/${modelName}.h5`, md5: HASHES[variant][0] },
      notop: { url: `${BASE}/${modelName}_notop.h5`, md5: HASHES[variant][1] },
    },
    params,
    variantOf: variant === 0 ? undefined : 'efficientnet_b0',
    kerasOnlyParams: 1,
    defaultHead: () => ({ pooling: 'avg', dropout: dropoutRate }),
    trunk(net, input, ctx) {
      net.group('stem');
      let x = net.rescale(input, { scale: 1 / 255 });
      x = net.normalization(x);
      // Keras adds this only with ImageNet weights: their Normalization was fitted with stddev, not variance.
      if (ctx.imagenet) x = net.rescale(x, { scale: IMAGENET_STDDEV_RGB.map((s) => 1 / Math.sqrt(s)) });
      x = net.zeroPad(x, correctPad(x, 3), 'stem_conv_pad');
      x = net.conv(x, { filters: roundFilters(32), kernel: 3, strides: 2, useBias: false, name: 'stem_conv' });
      x = net.bn(x, { name: 'stem_bn' });
      x = net.act(x, 'swish', 'stem_activation');
      const total = BLOCKS.reduce((s, b) => s + roundRepeats(b[1]), 0);
      let b = 0;
      BLOCKS.forEach(([kernel, repeats, filtersIn, filtersOut, expandRatio, strides], i) => {
        net.group(`block${i + 1}`);
        const fin = roundFilters(filtersIn);
        const fout = roundFilters(filtersOut);
        for (let j = 0; j < roundRepeats(repeats); j++) {
          x = mbConv(net, x, {
            dropRate: (DROP_CONNECT_RATE * b) / total,
            name: `block${i + 1}${String.fromCharCode(97 + j)}_`,
            filtersIn: j === 0 ? fin : fout,
            filtersOut: fout,
            kernel,
            strides: j === 0 ? strides : 1,
            expandRatio,
          });
          b++;
        }
      });
      // top_conv stays in block7's group, so the last stage (what a last-stage fine-tune trains) is block7 + top_conv.
      x = net.conv(x, { filters: roundFilters(1280), kernel: 1, padding: 'same', useBias: false, name: 'top_conv' });
      x = net.bn(x, { name: 'top_bn' });
      return net.act(x, 'swish', 'top_activation');
    },
    top(net, x, { classes, classifierActivation }) {
      x = net.globalPool(x, 'avg', 'avg_pool');
      if (dropoutRate > 0) x = net.dropout(x, dropoutRate, 'top_dropout');
      return net.dense(x, classes, { activation: classifierActivation, name: 'predictions' });
    },
    poolingNames: { avg: 'avg_pool', max: 'max_pool' },
  };
}

// Parameter counts: Keras documents MobileNet 4,253,864, MobileNetV2 3,538,984 and EfficientNetB0 5,330,571, which these
// builders reproduce; the other counts are what the same builders, transcribed from the Keras source, give.
/** EfficientNet B0-B7: width, depth, default size and top dropout as Keras's `EfficientNetB<i>` pass them. */
export const EFFICIENTNET_SPECS: ArchitectureSpec[] = [
  efficientnet(0, 1.0, 1.0, 224, 0.2, { top: 5_330_571, notop: 4_049_571 }),
  efficientnet(1, 1.0, 1.1, 240, 0.2, { top: 7_856_239, notop: 6_575_239 }),
  efficientnet(2, 1.1, 1.2, 260, 0.3, { top: 9_177_569, notop: 7_768_569 }),
  efficientnet(3, 1.2, 1.4, 300, 0.3, { top: 12_320_535, notop: 10_783_535 }),
  efficientnet(4, 1.4, 1.8, 380, 0.4, { top: 19_466_823, notop: 17_673_823 }),
  efficientnet(5, 1.6, 2.2, 456, 0.4, { top: 30_562_527, notop: 28_513_527 }),
  efficientnet(6, 1.8, 2.6, 528, 0.5, { top: 43_265_143, notop: 40_960_143 }),
  efficientnet(7, 2.0, 3.1, 600, 0.5, { top: 66_658_687, notop: 64_097_687 }),
];
