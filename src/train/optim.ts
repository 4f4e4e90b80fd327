/**
 * Parameter groups and optimisers. Each group (a run of layers from graft.json `groups`) has its own learning rate
 * and its own optimiser instance. State is keyed by variable name, not position (tfjs's optimisers key by position,
 * which silently pairs the wrong moments with the wrong weights after unfreezing), so it survives a change of the
 * trainable set and a save / resume. Update rules follow PyTorch's (SGD with dampening 0, Adam, AdamW, RMSprop).
 */
import * as tf from '@tensorflow/tfjs';
import { GraftError, finiteNumber } from '../errors';
import { LayerGroup } from '../io/graft-json';
import type { OptimizerConfig } from './config';

export { OPTIMIZERS, optimizerConfig } from './config';
export type { OptimizerConfig, OptimizerName } from './config';

/** Optimiser state as named tensors plus the step count, for checkpoints. */
export interface OptimizerState {
  /** Update steps taken. */
  step: number;
  /** Slot tensors keyed `<variable>::<slot>` (e.g. `dense/kernel::m`). */
  slots: Record<string, tf.Tensor>;
}

/** One parameter to update: its stable name, the variable and its gradient. */
export interface ParamUpdate {
  /** Stable key (the weight's original name, e.g. `block5_conv1/kernel`). */
  key: string;
  /** The variable to update in place. */
  variable: tf.Variable;
  /** Gradient of the loss with respect to it. */
  grad: tf.Tensor;
}

/** An optimiser instance for one parameter group. */
export class GroupOptimizer {
  /** Its hyper-parameters. */
  readonly config: OptimizerConfig;
  private step = 0;
  private readonly slots = new Map<string, tf.Variable>();

  constructor(config: OptimizerConfig) {
    this.config = config;
  }

  /** Applies one update with learning rate `lr` to every parameter (each update inside tidy). */
  apply(params: ParamUpdate[], lr: number): void {
    this.step += 1;
    const c = this.config;
    const t = this.step;
    for (const { key, variable: p, grad } of params) {
      tf.tidy(() => {
        let g = grad;
        if (c.type !== 'adamw' && c.weightDecay) g = g.add(p.mul(c.weightDecay));
        switch (c.type) {
          case 'sgd': {
            if (c.momentum) {
              const fresh = !this.slots.has(`${key}::momentum`);
              const buf = this.slot(key, 'momentum', p);
              // PyTorch starts the buffer at the first gradient rather than at zero.
              buf.assign(fresh ? g : buf.mul(c.momentum).add(g));
              g = c.nesterov ? g.add(buf.mul(c.momentum)) : buf;
            }
            p.assign(p.sub(g.mul(lr)));
            break;
          }
          case 'adam':
          case 'adamw': {
            if (c.type === 'adamw' && c.weightDecay) p.assign(p.mul(1 - lr * c.weightDecay));
            const m = this.slot(key, 'm', p);
            const v = this.slot(key, 'v', p);
            m.assign(m.mul(c.beta1!).add(g.mul(1 - c.beta1!)));
            v.assign(v.mul(c.beta2!).add(g.square().mul(1 - c.beta2!)));
            const mHat = m.div(1 - c.beta1! ** t);
            const vHat = v.div(1 - c.beta2! ** t);
            p.assign(p.sub(mHat.div(vHat.sqrt().add(c.epsilon!)).mul(lr)));
            break;
          }
          case 'rmsprop': {
            const sq = this.slot(key, 'sq', p);
            sq.assign(sq.mul(c.rho!).add(g.square().mul(1 - c.rho!)));
            let update = g.div(sq.sqrt().add(c.epsilon!));
            if (c.momentum) {
              const buf = this.slot(key, 'momentum', p);
              buf.assign(buf.mul(c.momentum).add(update));
              update = buf;
            }
            p.assign(p.sub(update.mul(lr)));
            break;
          }
        }
      });
    }
  }

  /** The slot variable for a parameter, created at zero the first time it is needed. */
  private slot(key: string, name: string, like: tf.Tensor): tf.Variable {
    const id = `${key}::${name}`;
    let v = this.slots.get(id);
    if (!v) {
      v = tf.variable(tf.zerosLike(like), false);
      this.slots.set(id, v);
    }
    return v;
  }

  /** A copy of the state (the caller owns and disposes the tensors). */
  getState(): OptimizerState {
    const slots: Record<string, tf.Tensor> = {};
    for (const [id, v] of this.slots) slots[id] = v.clone();
    return { step: this.step, slots };
  }

  /** Replaces the state with a copy of `state`. */
  setState(state: OptimizerState): void {
    this.reset();
    this.step = state.step;
    for (const [id, t] of Object.entries(state.slots)) this.slots.set(id, tf.variable(t, false));
  }

  /** Forgets all state. */
  reset(): void {
    for (const v of this.slots.values()) v.dispose();
    this.slots.clear();
    this.step = 0;
  }

  /** Frees the state. */
  dispose(): void {
    this.reset();
  }
}

/** A named set of variables trained with one learning rate and one optimiser instance. */
export interface ParamGroup {
  /** Group name (from graft.json `groups`). */
  name: string;
  /** Its trainable weights, in model order. */
  variables: tf.LayerVariable[];
  /** Its base learning rate (before schedule and plateau scaling). */
  lr: number;
  /** Its optimiser. */
  optimizer: GroupOptimizer;
}

/** How to give each group its learning rate. */
export interface ParamGroupOptions {
  /** Learning rate of the last (head) group. */
  lr: number;
  /** Discriminative rates: spread geometrically from lr / lrMult (first trainable group) to lr (fastai `slice`). */
  lrMult?: number;
  /** Explicit rate per group name; groups not named get `lr` (overrides lrMult). */
  groupLr?: Record<string, number>;
  /** The optimiser each group gets its own instance of. */
  optimizer: OptimizerConfig;
}

/** fastai's `even_mults`: n values spread geometrically from start to end. */
export function evenMults(start: number, end: number, n: number): number[] {
  if (n === 1) return [end];
  const step = (end / start) ** (1 / (n - 1));
  return Array.from({ length: n }, (_, i) => start * step ** i);
}

/**
 * Builds the parameter groups for the currently trainable weights: one per layer group that has any, in model order,
 * plus `other` for trainable layers outside every group. Groups without trainable weights are left out.
 */
export function buildParamGroups(model: tf.LayersModel, groups: LayerGroup[], options: ParamGroupOptions): ParamGroup[] {
  finiteNumber('lr', options.lr, { min: 0 });
  const byName = new Map(model.layers.map((l) => [l.name, l]));
  const seen = new Set<string>();
  const found: Array<{ name: string; variables: tf.LayerVariable[] }> = [];
  for (const g of groups) {
    const variables = g.layers.flatMap((n) => (byName.get(n)?.trainableWeights ?? []));
    g.layers.forEach((n) => seen.add(n));
    if (variables.length) found.push({ name: g.name, variables });
  }
  const others = model.layers.filter((l) => !seen.has(l.name)).flatMap((l) => l.trainableWeights);
  if (others.length) found.push({ name: 'other', variables: others });
  if (!found.length) throw new GraftError('nothing to train: every layer is frozen; unfreeze at least the head.');

  for (const name of Object.keys(options.groupLr ?? {})) {
    if (!groups.some((g) => g.name === name)) {
      throw new GraftError(`--group-lr names group ${JSON.stringify(name)}, which does not exist; valid groups are ${groups.map((g) => g.name).join(', ')}.`);
    }
  }
  const mult = options.lrMult === undefined ? 1 : finiteNumber('lr-mult', options.lrMult, { min: 1 });
  const rates = evenMults(options.lr / mult, options.lr, found.length);
  return found.map((g, i) => ({
    name: g.name,
    variables: g.variables,
    lr: options.groupLr?.[g.name] ?? (options.groupLr ? options.lr : rates[i]),
    optimizer: new GroupOptimizer(options.optimizer),
  }));
}

/** The names of the trainable weights, in order: when it changes, the groups must be rebuilt with fresh state. */
export function trainableSignature(model: tf.LayersModel): string {
  return model.trainableWeights.map((w) => w.originalName).join('|');
}

/** The tf.Variable behind a layer weight (tfjs types `read()` as a plain Tensor). */
export function variableOf(weight: tf.LayerVariable): tf.Variable {
  return weight.read() as tf.Variable;
}

/** Frees every group's optimiser state. */
export function disposeParamGroups(groups: ParamGroup[]): void {
  for (const g of groups) g.optimizer.dispose();
}
