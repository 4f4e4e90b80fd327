import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { createClassifier } from '../src/models/classifier';
import { getArchitecture, listArchitectures } from '../src/models/registry';
import { allLayers, syncFrozenBatchNorm } from '../src/train/freeze';
import { classificationLoss } from '../src/train/losses';
import { randomValues, relativeError, valuesOn } from './helpers/compare-backends';

// simple_cnn has plain convs, pooling and dense layers; the other architectures add batch norm, strided 1x1 and 7x7
// convs and adds (ResNet v1 and v2), concatenations and 1x7 / 7x1 kernels (inception_v3), separable convs (xception),
// 2x2 average-pool transitions and hundreds of chained concatenations (DenseNet), weightless Rescaling before an Add
// and 1x3 / 3x1 kernels (inception_resnet_v2).
// The cpu backend's gradients of the large ones take minutes, so by default only simple_cnn runs;
// GRAFT_SLOW_TESTS=1 runs every registered architecture.
// The mobile families add strided depthwise convs, ReLU6, swish, squeeze-and-excite multiplies, Rescaling and the
// Normalization stand-in; width and depth variants (mobilenet_v2_0.35, efficientnet_b1..b7) share that code and are left out.
const ARCHS = process.env.GRAFT_SLOW_TESTS === '1' ? listArchitectures().filter((a) => !a.variantOf).map((a) => a.name) : ['simple_cnn'];

/**
 * Loss and the gradient of every weight of a fully unfrozen classifier (trunk + new head) at the architecture's
 * smallest input, with seeded weights so both backends train the same model. Batch norm stays in inference mode
 * (frozen, as Keras advises when fine-tuning): at the smallest input the last stages are 1x1 pixels, so with 2
 * images each channel's batch statistics come from 2 values, the normalised output no longer depends on its input,
 * and the exact gradient through it is zero; both backends then return rounding noise that cannot agree. Training-
 * mode batch norm is compared where its statistics are well defined (test/wasm-kernels-models.test.ts).
 */
async function fullGrads(arch: string): Promise<tf.Tensor[]> {
  const spec = getArchitecture(arch);
  const size = spec.minInputSize;
  const channels = arch === 'simple_cnn' ? 1 : 3;
  const { model } = await createClassifier({ arch, weights: null, inputShape: [size, size, channels], classNames: ['a', 'b', 'c'] });
  try {
    for (const layer of allLayers(model)) if (layer.getClassName() === 'BatchNormalization') layer.trainable = false;
    syncFrozenBatchNorm(model);
    model.setWeights(
      model.weights.map((w, i) => {
        const shape = w.shape as number[];
        const noise = randomValues(`${arch}/${i}`, tf.util.sizeFromShape(shape));
        // He-like scale keeps activations finite through 50 layers; variances stay positive.
        const fanIn = shape.length > 1 ? tf.util.sizeFromShape(shape.slice(0, -1)) : 1;
        const positive = /gamma|moving_variance/.test(w.name);
        return tf.tensor(noise.map((v) => (positive ? 1 + 0.1 * Math.abs(v) : shape.length > 1 ? v * Math.sqrt(2 / fanIn) : 0.1 * v)), shape);
      }),
    );
    // Dropout masks come from each backend's own random stream; the gradients under test are the same without them.
    for (const layer of model.layers) if (layer.getClassName() === 'Dropout') (layer as unknown as { rate: number }).rate = 0;
    const batch = 2;
    const x = tf.tensor(randomValues(`${arch}/x`, batch * size * size * channels), [batch, size, size, channels]);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(
      () => classificationLoss(model.apply(x, { training: true }) as tf.Tensor, Int32Array.from([0, 2]), { outputActivation: 'softmax' }),
      vars,
    );
    return [value, ...vars.map((v) => grads[v.name])];
  } finally {
    model.dispose();
  }
}

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: null });
});

describe('fine-tuning every architecture family with all layers unfrozen runs on wasm', () => {
  test.each(ARCHS)('%s: loss and every gradient match the cpu backend to 1e-4 relative', async (arch) => {
    // valuesOn runs inside tidy, which cannot wait for the async build, so the tensors are made first and read after.
    let cpu: Float32Array[] = [];
    let wasm: Float32Array[] = [];
    for (const backend of ['cpu', 'wasm'] as const) {
      await initBackend({ backend, log: null });
      const out = await fullGrads(arch);
      const values = await valuesOn(backend, () => out.map((t) => t.clone()));
      tf.dispose(out);
      if (backend === 'cpu') cpu = values;
      else wasm = values;
    }
    expect(wasm).toHaveLength(cpu.length);
    const worst = Math.max(...cpu.map((expected, i) => relativeError(wasm[i], expected)));
    expect(worst).toBeLessThan(1e-4);
  });
});
