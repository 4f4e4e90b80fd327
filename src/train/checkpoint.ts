/**
 * Resume checkpoints: a model folder (weights and trainable flags) plus `train-state.json` / `train-state.bin`
 * holding the loop state (epoch, batch, history, monitor bookkeeping), the optimiser slots and the best weights, and
 * whatever the caller needs to rebuild the run (the recipe's stage and options). Written in one atomic swap.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { GraftError } from '../errors';
import { GraftMeta, GraftMetaInit } from '../io/graft-json';
import { loadModelFolder, saveModelFolder } from '../io/model-folder';
import { syncFrozenBatchNorm } from './freeze';
import { LoopState } from './loop';

const STATE_JSON = 'train-state.json';
const STATE_BIN = 'train-state.bin';
const FORMAT = 'graft-train-state';

/** Where one tensor sits in `train-state.bin`. */
interface TensorSpec {
  /** Name (`opt/<group>/<slot>` or `best/<weight>`). */
  name: string;
  /** Shape. */
  shape: number[];
  /** Offset in float32 elements. */
  offset: number;
}

/** A checkpoint as read back. */
export interface Checkpoint {
  /** The model with its saved weights and trainable flags (BN inference mode restored). */
  model: tf.LayersModel;
  /** Its graft.json. */
  meta: GraftMeta;
  /** The loop state (owns its tensors; pass to `fit({resume})`, then dispose with `disposeLoopState`). */
  state: LoopState;
  /** What the caller stored alongside. */
  extra: Record<string, unknown>;
}

/** Flattens named tensors into one float32 buffer and its index. */
function encodeTensors(tensors: Record<string, tf.Tensor>): { specs: TensorSpec[]; data: Uint8Array } {
  const specs: TensorSpec[] = [];
  const parts: Float32Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const values = t.dataSync() as Float32Array;
    specs.push({ name, shape: t.shape, offset });
    parts.push(values);
    offset += values.length;
  }
  const all = new Float32Array(offset);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return { specs, data: new Uint8Array(all.buffer) };
}

/** Writes a checkpoint folder (replacing any previous one atomically). */
export async function saveCheckpoint(
  dir: string,
  model: tf.LayersModel,
  meta: GraftMetaInit | GraftMeta,
  state: LoopState,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const named: Record<string, tf.Tensor> = {};
  for (const [group, o] of Object.entries(state.optimizers)) for (const [slot, t] of Object.entries(o.slots)) named[`opt/${group}/${slot}`] = t;
  for (const [w, t] of Object.entries(state.bestWeights ?? {})) named[`best/${w}`] = t;
  const { specs, data } = encodeTensors(named);
  const json = {
    format: FORMAT,
    formatVersion: 1,
    savedAt: new Date().toISOString(),
    loop: {
      ...state,
      optimizers: Object.fromEntries(Object.entries(state.optimizers).map(([g, o]) => [g, { step: o.step }])),
      bestWeights: state.bestWeights ? true : undefined,
    },
    tensors: specs,
    extra,
  };
  await saveModelFolder(dir, model, meta, { files: { [STATE_JSON]: JSON.stringify(json), [STATE_BIN]: data } });
}

/** Whether `dir` holds a checkpoint. */
export function hasCheckpoint(dir: string): boolean {
  return fs.existsSync(path.join(dir, STATE_JSON));
}

/** Reads a checkpoint folder written by `saveCheckpoint`. */
export async function loadCheckpoint(dir: string): Promise<Checkpoint> {
  const file = path.join(dir, STATE_JSON);
  if (!fs.existsSync(file)) throw new GraftError(`${dir} holds no training checkpoint (${STATE_JSON}); train without --resume to start afresh.`);
  let json: {
    format: string;
    loop: Omit<LoopState, 'optimizers' | 'bestWeights'> & { optimizers: Record<string, { step: number }>; bestWeights?: boolean };
    tensors: TensorSpec[];
    extra: Record<string, unknown>;
  };
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new GraftError(`${file} is not valid JSON (${(err as Error).message}); delete the checkpoint folder and train afresh.`);
  }
  if (json.format !== FORMAT) throw new GraftError(`${file} is not a graft training checkpoint (format ${JSON.stringify(json.format)}).`);
  const bytes = fs.readFileSync(path.join(dir, STATE_BIN));
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const { model, meta } = await loadModelFolder(dir);
  syncFrozenBatchNorm(model);
  const state: LoopState = {
    ...json.loop,
    optimizers: Object.fromEntries(Object.entries(json.loop.optimizers).map(([g, o]) => [g, { step: o.step, slots: {} }])),
    bestWeights: json.loop.bestWeights ? {} : undefined,
  };
  for (const spec of json.tensors) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const t = tf.tensor(values.subarray(spec.offset, spec.offset + size), spec.shape);
    const [kind, ...rest] = spec.name.split('/');
    if (kind === 'opt') state.optimizers[rest[0]].slots[rest.slice(1).join('/')] = t;
    else state.bestWeights![rest.join('/')] = t;
  }
  return { model, meta, state, extra: json.extra ?? {} };
}
