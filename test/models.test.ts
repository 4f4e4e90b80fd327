import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { buildModel, constructModel } from '../src/models/build';
import { listArchitectures, getArchitecture } from '../src/models/registry';
import { checkGroups } from '../src/models/groups';
import { GraftError } from '../src/errors';
import { architectureMultiplyAdds, multiplyAdds } from '../src/models/multiply-adds';

describe('model registry: every architecture', () => {
  beforeAll(() => initBackend({ backend: 'wasm', log: null }));

  const specs = listArchitectures();
  test('the registry lists the issue 3 architectures', () => {
    expect(specs.map((s) => s.name)).toEqual([
      'vgg16', 'vgg19', 'resnet50', 'resnet101', 'resnet152', 'resnet50v2', 'resnet101v2', 'resnet152v2', 'inception_v3', 'xception',
      // issue 17's mobile families (test/models-mobile.test.ts checks them in detail)
      'mobilenet', 'mobilenet_0.75', 'mobilenet_0.5', 'mobilenet_0.25',
      'mobilenet_v2', 'mobilenet_v2_0.35', 'mobilenet_v2_0.5', 'mobilenet_v2_0.75', 'mobilenet_v2_1.3', 'mobilenet_v2_1.4',
      'mobilenet_v3_small', 'mobilenet_v3_small_0.75', 'mobilenet_v3_small_minimalistic', 'mobilenet_v3_large', 'mobilenet_v3_large_0.75', 'mobilenet_v3_large_minimalistic',
      'efficientnet_b0', 'efficientnet_b1', 'efficientnet_b2', 'efficientnet_b3', 'efficientnet_b4', 'efficientnet_b5', 'efficientnet_b6', 'efficientnet_b7',
      'densenet121', 'densenet169', 'densenet201', 'inception_resnet_v2', 'simple_cnn',
    ]);
  });

  test.each(specs.map((s) => [s.name]))('%s: Keras parameter counts, output shapes, groups, no leaks', (name) => {
    const spec = getArchitecture(name);
    const channels = name === 'simple_cnn' ? 1 : 3;
    const start = tf.memory().numTensors;
    // The top is independent of input size except for VGG's flatten, which Keras counts at 224.
    const topSize = name.startsWith('vgg') ? 224 : spec.minInputSize;
    const { model, meta } = constructModel({ arch: name, inputShape: [topSize, topSize, channels] }, { initializer: 'zeros' });
    try {
      expect(model.outputs[0].shape).toEqual([null, name === 'simple_cnn' ? 10 : 1000]);
      expect(meta.groups.at(-1)!.name).toBe('head');
      checkGroups(model, meta.groups);
      const headParams = meta.groups.at(-1)!.layers.reduce((n, l) => n + model.getLayer(l).countParams(), 0);
      if (spec.params) {
        expect(model.countParams() + (spec.kerasOnlyParams ?? 0)).toBe(spec.params.top);
        expect(model.countParams() + (spec.kerasOnlyParams ?? 0) - headParams).toBe(spec.params.notop);
      }
      // The shapes-only count (what graft models prints) is the built model's.
      expect(architectureMultiplyAdds({ arch: name, inputShape: [topSize, topSize, channels] })).toBe(multiplyAdds(model));
    } finally {
      model.dispose();
    }
    const noTop = constructModel({ arch: name, includeTop: false, inputShape: [spec.minInputSize, spec.minInputSize, channels] }, { initializer: 'zeros' });
    try {
      checkGroups(noTop.model, noTop.meta.groups);
      expect(noTop.meta.groups.map((g) => g.name)).not.toContain('head');
      if (spec.params) expect(noTop.model.countParams() + (spec.kerasOnlyParams ?? 0)).toBe(spec.params.notop);
      expect(noTop.model.outputs[0].shape.length).toBe(4);
      expect(noTop.model.outputs[0].shape.slice(1).every((d) => (d ?? 0) > 0)).toBe(true);
      expect(noTop.meta.preprocessing).toBe(spec.preprocessing);
    } finally {
      noTop.model.dispose();
    }
    expect(tf.memory().numTensors).toBe(start);
  });

  test('no-top output shapes at the default input size are Keras\'s (strides and padding in the right places)', () => {
    const keras: Record<string, number[]> = {
      vgg16: [7, 7, 512], vgg19: [7, 7, 512], inception_v3: [8, 8, 2048], xception: [10, 10, 2048], simple_cnn: [7, 7, 64],
      resnet50: [7, 7, 2048], resnet101: [7, 7, 2048], resnet152: [7, 7, 2048], resnet50v2: [7, 7, 2048], resnet101v2: [7, 7, 2048], resnet152v2: [7, 7, 2048],
      densenet121: [7, 7, 1024], densenet169: [7, 7, 1664], densenet201: [7, 7, 1920], inception_resnet_v2: [8, 8, 1536],
      mobilenet: [7, 7, 1024], mobilenet_v2: [7, 7, 1280], mobilenet_v3_small: [7, 7, 576], mobilenet_v3_large: [7, 7, 960], efficientnet_b0: [7, 7, 1280],
    };
    // Block outputs Keras documents (inception_v3.py comments) or that follow from where each stage strides.
    const inner: Record<string, Array<[string, number[]]>> = {
      inception_v3: [['mixed0', [35, 35, 256]], ['mixed2', [35, 35, 288]], ['mixed3', [17, 17, 768]], ['mixed7', [17, 17, 768]], ['mixed8', [8, 8, 1280]]],
      resnet50: [['pool1_pool', [56, 56, 64]], ['conv2_block3_out', [56, 56, 256]], ['conv3_block4_out', [28, 28, 512]], ['conv4_block6_out', [14, 14, 1024]]],
      resnet50v2: [['conv2_block3_out', [28, 28, 256]], ['conv3_block4_out', [14, 14, 512]], ['conv4_block6_out', [7, 7, 1024]]],
      xception: [['block1_conv2_act', [147, 147, 64]], ['add_2', [19, 19, 728]], ['add_10', [19, 19, 728]], ['block13_pool', [10, 10, 1024]]],
      // DenseNet121: 64 + 6 * 32 = 256 channels halved by pool2, 128 + 12 * 32 = 512 halved by pool3, 256 + 24 * 32 = 1024.
      densenet121: [['pool1', [56, 56, 64]], ['conv2_block6_concat', [56, 56, 256]], ['pool2_pool', [28, 28, 128]], ['pool3_pool', [14, 14, 256]], ['conv4_block24_concat', [14, 14, 1024]], ['pool4_pool', [7, 7, 512]]],
      // The sizes inception_resnet_v2.py's comments give for each stage.
      inception_resnet_v2: [['max_pooling2d_1', [35, 35, 192]], ['mixed_5b', [35, 35, 320]], ['block35_10_ac', [35, 35, 320]], ['mixed_6a', [17, 17, 1088]], ['block17_20_ac', [17, 17, 1088]], ['mixed_7a', [8, 8, 2080]], ['custom_scale_layer_39', [8, 8, 2080]]],
    };
    // Width and depth variants share their family's code; building B7 at 600 px alone takes longer than the rest.
    for (const spec of specs.filter((s) => !s.variantOf)) {
      const { model } = constructModel({ arch: spec.name, includeTop: false }, { initializer: 'zeros' });
      expect([spec.name, model.outputs[0].shape.slice(1)]).toEqual([spec.name, keras[spec.name]]);
      for (const [layer, shape] of inner[spec.name] ?? []) {
        expect([spec.name, layer, (model.getLayer(layer).outputShape as number[]).slice(1)]).toEqual([spec.name, layer, shape]);
      }
      model.dispose();
    }
  });

  test('ImageNet trunks run forward at their minimum input size; pooling avg/max give vectors', async () => {
    const start = tf.memory().numTensors;
    // DenseNet and Inception-ResNet V2 run forward in the ONNX parity and stock-tfjs tests.
    for (const name of ['vgg16', 'resnet50', 'resnet50v2', 'inception_v3', 'xception']) {
      const spec = getArchitecture(name);
      const s = spec.minInputSize;
      // Zero kernels keep the test fast (random init of 100M weights is the slow part); shapes are what is checked.
      const { model, meta } = constructModel({ arch: name, includeTop: false, inputShape: [s, s, 3], pooling: name === 'vgg16' ? 'avg' : 'max' }, { initializer: 'zeros' });
      expect(meta.groups.at(-1)).toEqual({ name: 'head', layers: [model.layers.at(-1)!.name] });
      const out = tf.tidy(() => model.predict(tf.randomUniform([1, s, s, 3], -1, 1, 'float32', 3)) as tf.Tensor);
      const channels = name === 'vgg16' ? 512 : 2048;
      expect(out.shape).toEqual([1, channels]);
      expect(Number.isFinite((await out.data())[0])).toBe(true);
      out.dispose();
      model.dispose();
    }
    expect(tf.memory().numTensors).toBe(start);
  });

  test('DenseNet and Inception-ResNet V2: Keras\'s parameter counts, groups and default head', () => {
    // Keras Applications' table and model.summary(): total and trainable (the rest are BN moving statistics); the
    // DenseNet totals also equal torchvision's parameter counts plus two moving statistics per BN channel.
    const keras: Record<string, { top: number; notop: number; trainable: number; groups: string[] }> = {
      densenet121: { top: 8_062_504, notop: 7_037_504, trainable: 7_978_856, groups: ['stem', 'conv2', 'conv3', 'conv4', 'conv5', 'head'] },
      densenet169: { top: 14_307_880, notop: 12_642_880, trainable: 14_149_480, groups: ['stem', 'conv2', 'conv3', 'conv4', 'conv5', 'head'] },
      densenet201: { top: 20_242_984, notop: 18_321_984, trainable: 20_013_928, groups: ['stem', 'conv2', 'conv3', 'conv4', 'conv5', 'head'] },
      inception_resnet_v2: { top: 55_873_736, notop: 54_336_736, trainable: 55_813_192, groups: ['stem', 'block35', 'block17', 'block8', 'head'] },
    };
    for (const [arch, k] of Object.entries(keras)) {
      const size = getArchitecture(arch).minInputSize;
      const { model, meta } = constructModel({ arch, inputShape: [size, size, 3] }, { initializer: 'zeros' });
      const trainable = model.trainableWeights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
      const head = meta.groups.at(-1)!;
      const got = { top: model.countParams(), notop: model.countParams() - head.layers.reduce((n, l) => n + model.getLayer(l).countParams(), 0), trainable, groups: meta.groups.map((g) => g.name) };
      expect([arch, got]).toEqual([arch, k]);
      expect(head.layers).toEqual(['avg_pool', 'predictions']);
      model.dispose();
    }
  });

  test('Keras layer names where Keras names layers; automatic names where it does not', () => {
    const names = (arch: string, size: number) => {
      const { model } = constructModel({ arch, inputShape: [size, size, 3] }, { initializer: 'zeros' });
      const n = model.layers.map((l) => l.name);
      model.dispose();
      return n;
    };
    const r = names('resnet50', 32);
    expect(r).toEqual(expect.arrayContaining(['conv1_pad', 'conv1_conv', 'pool1_pad', 'conv2_block1_1_conv', 'conv2_block1_0_bn', 'conv5_block3_out', 'avg_pool', 'predictions']));
    expect(names('resnet50v2', 32)).toEqual(expect.arrayContaining(['post_bn', 'post_relu', 'conv2_block1_preact_bn', 'conv4_block6_out', 'max_pooling2d_2']));
    const inc = names('inception_v3', 75);
    expect(inc).toEqual(expect.arrayContaining(['conv2d', 'conv2d_93', 'batch_normalization_93', 'activation_93', 'mixed0', 'mixed10', 'mixed9_1', 'concatenate_1']));
    expect(inc).not.toContain('conv2d_94');
    const xc = names('xception', 71);
    expect(xc).toEqual(expect.arrayContaining(['block1_conv1', 'block2_sepconv2_act', 'block14_sepconv2_act', 'conv2d_3', 'add_11']));
    expect(xc).not.toContain('add_12');
    const dn = names('densenet121', 32);
    expect(dn).toEqual(expect.arrayContaining(['zero_padding2d', 'conv1_conv', 'conv1_bn', 'conv1_relu', 'zero_padding2d_1', 'pool1', 'conv2_block1_0_bn',
      'conv2_block1_1_conv', 'conv2_block1_2_conv', 'conv2_block6_concat', 'pool2_bn', 'pool2_relu', 'pool2_conv', 'pool2_pool', 'conv5_block16_concat', 'bn', 'relu', 'avg_pool', 'predictions']));
    expect(dn).not.toContain('conv5_block17_concat');
    expect(names('densenet201', 32)).toContain('conv4_block48_concat');
    // Keras leaves 203 convs (conv2d .. conv2d_202), 4 poolings and 40 CustomScaleLayers unnamed in Inception-ResNet V2.
    const irv2 = names('inception_resnet_v2', 75);
    expect(irv2).toEqual(expect.arrayContaining(['conv2d', 'conv2d_202', 'batch_normalization_202', 'activation_202', 'max_pooling2d_3', 'average_pooling2d', 'mixed_5b',
      'block35_1_mixed', 'block35_1_conv', 'block35_1_ac', 'block17_20_ac', 'block8_9_ac', 'block8_10_conv', 'custom_scale_layer', 'custom_scale_layer_39',
      'conv_7b', 'conv_7b_bn', 'conv_7b_ac', 'avg_pool', 'predictions']));
    expect(irv2).not.toContain('conv2d_203');
    expect(irv2).not.toContain('custom_scale_layer_40');
    expect(irv2).not.toContain('block8_10_ac');
  });

  test('Inception-ResNet V2 computes Keras\'s CustomScaleLayer (x + up * scale) with stock layers only', () => {
    const { model } = constructModel({ arch: 'inception_resnet_v2', includeTop: false, inputShape: [75, 75, 3] }, { initializer: 'zeros' });
    try {
      const classes = new Set(model.layers.map((l) => l.getClassName()));
      expect([...classes].sort()).toEqual(['Activation', 'Add', 'AveragePooling2D', 'BatchNormalization', 'Concatenate', 'Conv2D', 'InputLayer', 'MaxPooling2D', 'Rescaling']);
      const scaleOf = (block: string) => (model.getLayer(`${block}_scale`).getConfig() as { scale: number }).scale;
      expect([scaleOf('block35_1'), scaleOf('block35_10'), scaleOf('block17_1'), scaleOf('block17_20'), scaleOf('block8_1'), scaleOf('block8_9')]).toEqual([0.17, 0.17, 0.1, 0.1, 0.2, 0.2]);
      // block8_10 scales by 1: Keras's layer is then a plain sum.
      expect(model.layers.some((l) => l.name === 'block8_10_scale')).toBe(false);
      // The sum reads the block input and the scaled 1x1 conv, as CustomScaleLayer()([x, up]) does.
      const add = model.getLayer('custom_scale_layer');
      expect(add.inboundNodes[0].inboundLayers.map((l) => l.name)).toEqual(['mixed_5b', 'block35_1_scale']);
      expect(model.getLayer('block35_1_scale').inboundNodes[0].inboundLayers.map((l) => l.name)).toEqual(['block35_1_conv']);
      const x = tf.tensor4d([1, -2, 3, 4], [1, 2, 2, 1]);
      const y = tf.tidy(() => (model.getLayer('block35_1_scale').apply(x) as tf.Tensor).dataSync());
      x.dispose();
      expect(Array.from(y)).toEqual(Array.from(Float32Array.from([1, -2, 3, 4].map((v) => v * 0.17))));
    } finally {
      model.dispose();
    }
  });

  test('Keras options are validated with errors listing the valid values or the minimum', async () => {
    await expect(buildModel({ arch: 'vgg17' })).rejects.toThrow(/architecture must be one of vgg16, vgg19, .*; received "vgg17"/);
    await expect(buildModel({ arch: 'inception_v3', includeTop: false, inputShape: [74, 74, 3] })).rejects.toThrow(/at least 75x75; received 74x74/);
    await expect(buildModel({ arch: 'xception', includeTop: false, inputShape: [70, 80, 3] })).rejects.toThrow(/at least 71x71/);
    await expect(buildModel({ arch: 'resnet50', includeTop: false, inputShape: [31, 31, 3] })).rejects.toThrow(/at least 32x32/);
    await expect(buildModel({ arch: 'densenet169', includeTop: false, inputShape: [31, 40, 3] })).rejects.toThrow(/densenet169 needs input at least 32x32; received 31x40/);
    await expect(buildModel({ arch: 'inception_resnet_v2', includeTop: false, inputShape: [74, 74, 3] })).rejects.toThrow(/at least 75x75; received 74x74/);
    await expect(buildModel({ arch: 'resnet50', includeTop: false, pooling: 'mean' as 'avg' })).rejects.toThrow(/pooling must be one of none, avg, max; received "mean"/);
    await expect(buildModel({ arch: 'resnet50', classifierActivation: 'relu' as 'softmax' })).rejects.toThrow(/classifierActivation must be one of softmax, sigmoid/);
    await expect(buildModel({ arch: 'resnet50', weights: 'imagenet', classes: 10 })).rejects.toThrow(/classes 1000; received 10/);
    await expect(buildModel({ arch: 'resnet50', includeTop: false, weights: 'imagenet', inputShape: [64, 64, 1] })).rejects.toThrow(/3 input channels/);
    await expect(buildModel({ arch: 'resnet50', inculdeTop: false } as never)).rejects.toThrow(GraftError);
    await expect(buildModel({ arch: 'simple_cnn', simpleCnn: { pooling: 'mean' as 'max' } })).rejects.toThrow(/simpleCnn.pooling must be one of max, avg/);
    await expect(buildModel({ arch: 'resnet50', includeTop: false, weights: '/nonexistent.h5' })).rejects.toThrow(/not an existing file/);
  });

  test('simple_cnn is configurable: blocks, batch norm, average pooling, global pooling, 3 channels', async () => {
    const { model, meta } = await buildModel({
      arch: 'simple_cnn',
      inputShape: [32, 32, 3],
      classes: 4,
      simpleCnn: { filters: [8, 16, 32], batchNorm: true, pooling: 'avg', topPooling: 'avg', dense: [], dropout: 0, activation: 'elu' },
    });
    expect(meta.groups.map((g) => g.name)).toEqual(['block1', 'block2', 'block3', 'head']);
    expect(model.getLayer('block3_conv1_bn').getClassName()).toBe('BatchNormalization');
    expect(model.getLayer('block2_pool').getClassName()).toBe('AveragePooling2D');
    expect(model.getLayer('avg_pool').getClassName()).toBe('GlobalAveragePooling2D');
    expect(model.outputs[0].shape).toEqual([null, 4]);
    checkGroups(model, meta.groups);
    model.dispose();
  });
});
