/**
 * ONNX export of tfjs layers models: walks the topology in model.json (functional or sequential), converts each
 * layer with `layers.ts`, folds batch normalization into convolutions, and serialises with the `onnx-proto` schema.
 * Works from the saved artifacts alone, so a model folder exports without building the tfjs model.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { GraftError } from '../errors';
import { GRAFT_VERSION } from '../version';
import { modelArtifacts, readModelArtifacts } from '../io/model-folder';
import { writeFileAtomic } from '../io/atomic';
import { GraphBuilder, GraphIO } from './graph';
import { ExportContext, LayerSpec, Layout, Value, Weight, convertLayer } from './layers';

/** Options for `exportOnnx`. */
export interface ExportOnnxOptions {
  /** Fold each BatchNormalization into the convolution before it when nothing else reads the convolution (default true). */
  foldBatchNorm?: boolean;
  /** Graph name stored in the file (default: the tfjs model name). */
  name?: string;
}

/** An exported ONNX model. */
export interface OnnxExport {
  /** The ONNX ModelProto bytes. */
  bytes: Uint8Array;
  /** Graph input names and NHWC shapes (batch `null`), in tfjs input order. */
  inputs: GraphIO[];
  /** Graph output names and shapes in tfjs order (NHWC for feature maps). */
  outputs: GraphIO[];
  /** How many BatchNormalization layers were folded into convolutions. */
  foldedBatchNorms: number;
  /** Graph name (the tfjs model name unless given). */
  name: string;
}

/** Keras-style inbound reference: [layer name, node index, tensor index, kwargs]. */
export type InboundRef = [string, number, number, unknown?];

/** A layer entry of model.json. */
export interface TopologyLayer {
  /** tfjs / Keras class name. */
  class_name: string;
  /** Layer name (filled in from the config when absent). */
  name?: string;
  /** The layer's serialised config. */
  config: Record<string, unknown>;
  /** One list of inbound references per call of the layer. */
  inbound_nodes?: InboundRef[][];
}

/** Reads every weight of `artifacts` as float32 arrays keyed by name (`layer/kernel`). */
function decodeWeights(artifacts: tf.io.ModelArtifacts): Map<string, Weight> {
  const specs = artifacts.weightSpecs ?? [];
  const buffer = new tf.io.CompositeArrayBuffer(artifacts.weightData).slice();
  const out = new Map<string, Weight>();
  if (specs.every((s) => s.dtype === 'float32' && !s.quantization)) {
    let offset = 0;
    for (const s of specs) {
      const n = s.shape.reduce((a, b) => a * b, 1);
      out.set(s.name, { shape: s.shape, data: new Float32Array(buffer, offset, n) });
      offset += n * 4;
    }
    return out;
  }
  // Quantized or float16 weights: let tfjs decode them, then copy the values out.
  const tensors = tf.io.decodeWeights(buffer, specs);
  for (const s of specs) out.set(s.name, { shape: s.shape, data: Float32Array.from(tensors[s.name].dataSync()) });
  tf.dispose(Object.values(tensors));
  return out;
}

/** The functional graph of a model.json topology (a Sequential model becomes the equivalent chain). */
export function functionalLayers(topology: Record<string, unknown>): { layers: TopologyLayer[]; inputs: InboundRef[]; outputs: InboundRef[]; name: string } {
  const root = (topology.model_config as Record<string, unknown> | undefined) ?? topology;
  const config = root.config as Record<string, unknown> | undefined;
  if (!config || !Array.isArray(config.layers)) throw new GraftError('model.json has no layer list; it is not a tfjs layers model (graft exports layers models only).');
  const name = String(config.name ?? 'model');
  const layers = (config.layers as TopologyLayer[]).map((l) => ({ ...l, name: l.name ?? String(l.config.name) }));
  if (root.class_name !== 'Sequential') {
    return { layers, inputs: config.input_layers as InboundRef[], outputs: config.output_layers as InboundRef[], name };
  }
  const chain: TopologyLayer[] = [];
  if (layers[0]?.class_name !== 'InputLayer') {
    const shape = layers[0]?.config.batch_input_shape;
    if (!Array.isArray(shape)) throw new GraftError(`Sequential model ${name} has no input shape on its first layer; save it with an inputShape.`);
    chain.push({ class_name: 'InputLayer', name: `${name}_input`, config: { batch_input_shape: shape }, inbound_nodes: [] });
  }
  for (const l of layers) {
    const prev = chain[chain.length - 1];
    chain.push(prev ? { ...l, inbound_nodes: [[[prev.name!, 0, 0, {}]]] } : { ...l, inbound_nodes: [] });
  }
  const last = chain[chain.length - 1];
  return { layers: chain, inputs: [[chain[0].name!, 0, 0]], outputs: [[last.name!, 0, 0]], name };
}

/**
 * Converts a tfjs layers model (in memory, or its saved artifacts) to an ONNX model taking NHWC float32 input with
 * a dynamic batch dimension, as tfjs does, and giving the same outputs.
 */
export async function exportOnnx(source: tf.LayersModel | tf.io.ModelArtifacts, options: ExportOnnxOptions = {}): Promise<OnnxExport> {
  const artifacts = source instanceof tf.LayersModel ? await modelArtifacts(source) : source;
  const topology = artifacts.modelTopology as Record<string, unknown> | undefined;
  if (!topology || topology instanceof ArrayBuffer) throw new GraftError('the model has no JSON topology (a graph model?); graft exports tfjs layers models only.');
  const { layers, inputs, outputs, name } = functionalLayers(topology);
  const weights = decodeWeights(artifacts);
  const g = new GraphBuilder();
  const transposed = new Map<string, Value>();
  const ctx: ExportContext = {
    g,
    weight(layer: LayerSpec, suffix: string): Weight {
      const w = weights.get(`${layer.name}/${suffix}`);
      if (!w) throw new GraftError(`layer "${layer.name}" (${layer.className}) has no weight ${suffix} in the model's weights; the model folder is damaged, save it again.`);
      return w;
    },
    as(v: Value, layout: Layout): Value {
      if (v.layout === layout || v.shape.length !== 3) return v;
      const key = `${v.name}>${layout}`;
      let t = transposed.get(key);
      if (!t) {
        const perm = layout === 'nchw' ? [0, 3, 1, 2] : [0, 2, 3, 1];
        t = { name: g.node('Transpose', [v.name], `${v.name}/${layout}`, { perm }), shape: v.shape, layout };
        transposed.set(key, t);
      }
      return t;
    },
  };

  // Graph outputs keep the output layers' names (the layers' own nodes get suffixed names).
  const outputNames = outputs.map((ref) => g.fresh(ref[0]));
  const values = new Map<string, Value>();
  const key = (ref: InboundRef) => `${ref[0]}:${ref[1]}:${ref[2]}`;
  const graphInputs: GraphIO[] = [];
  for (const layer of layers) {
    const spec: LayerSpec = { name: layer.name!, className: layer.class_name, config: layer.config };
    if (layer.class_name === 'InputLayer') {
      // tfjs and Keras 2 write batch_input_shape; Keras 3 writes batch_shape.
      const shape = ((layer.config.batch_input_shape ?? layer.config.batch_shape) as Array<number | null>).slice(1);
      if (shape.some((d) => d === null)) {
        throw new GraftError(`input "${spec.name}" has an unknown size (${JSON.stringify(shape)}); ONNX export needs a fixed input shape: build the model with one.`);
      }
      const io = { name: g.reserve(spec.name), shape: [null, ...(shape as number[])] };
      graphInputs.push(io);
      values.set(`${spec.name}:0:0`, { name: io.name, shape: shape as number[], layout: 'native' });
      continue;
    }
    if (['Model', 'Functional', 'Sequential'].includes(layer.class_name)) {
      throw new GraftError(`cannot export layer "${spec.name}" (${layer.class_name}): nested models are not supported; rebuild the model flat (graft's builders do).`);
    }
    (layer.inbound_nodes ?? []).forEach((node, index) => {
      const args = node.map((ref) => {
        const v = values.get(key(ref));
        if (!v) throw new GraftError(`model.json is inconsistent: layer "${spec.name}" reads ${ref[0]} before it is defined; save the model again.`);
        return v;
      });
      values.set(`${spec.name}:${index}:0`, convertLayer(ctx, spec, args));
    });
  }

  const graphOutputs: GraphIO[] = outputs.map((ref, i) => {
    const v = ctx.as(values.get(key(ref))!, 'native');
    const out = outputNames[i];
    g.nodeTo('Identity', [v.name], out);
    return { name: out, shape: [null, ...v.shape] };
  });
  const folded = options.foldBatchNorm === false ? 0 : g.foldBatchNorm(graphOutputs.map((o) => o.name));
  const orderedInputs = inputs.map((ref) => graphInputs.find((io) => io.name === ref[0])!);
  const graphName = options.name ?? name;
  const bytes = g.encode({ name: graphName, inputs: orderedInputs, outputs: graphOutputs, producerVersion: GRAFT_VERSION, docString: `exported by graft ${GRAFT_VERSION} from a tfjs layers model` });
  return { bytes, inputs: orderedInputs, outputs: graphOutputs, foldedBatchNorms: folded, name: graphName };
}

/** Options for `exportModelFolderOnnx`. */
export interface ExportModelFolderOnnxOptions extends ExportOnnxOptions {
  /** Where to write the .onnx file (default `<model folder>/model.onnx`). */
  out?: string;
}

/** Exports a graft model folder to an ONNX file (written atomically); returns the file and the export summary. */
export async function exportModelFolderOnnx(modelDir: string, options: ExportModelFolderOnnxOptions = {}): Promise<OnnxExport & { file: string }> {
  const { out, ...rest } = options;
  const file = out ?? path.join(modelDir, 'model.onnx');
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) throw new GraftError(`--out ${file} is a folder; pass a file name such as ${path.join(file, 'model.onnx')}.`);
  const result = await exportOnnx(readModelArtifacts(modelDir), rest);
  await writeFileAtomic(file, result.bytes);
  return { ...result, file };
}
