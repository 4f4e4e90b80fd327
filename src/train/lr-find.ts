/**
 * The learning-rate range test (Smith 2015; fastai's `lr_find`): train briefly while the rate grows exponentially
 * from `startLr` to `endLr`, smooth the loss, stop once it diverges, and suggest a rate where the loss falls fastest.
 * The model is built and staged exactly as `train()` would (head on cached features when the trunk is frozen), and
 * nothing is saved.
 */
import { GraftError, finiteNumber, oneOf, positiveInt } from '../errors';
import { openDataset } from '../data/dataset';
import { writeSvgAsPng } from '../util/svg';
import { TrainOptions, applyStage, buildClassifier, optimizerFrom, resolveTrainOptions } from './fine-tune';
import { LR_FIND_TRAIN_KEYS } from './options';

export { LR_FIND_TRAIN_KEYS } from './options';
import { planStageData } from './stage-data';
import { IN_PROCESS_RUNTIME, TrainRuntime } from './runtime';
import { resolveClassWeights } from './losses';
import { fit } from './loop';
import { chartSvg } from './plot';

/** Options for `lrFind` (model, data and optimiser options are `train()`'s). */
export interface LrFindOptions extends Pick<TrainOptions, (typeof LR_FIND_TRAIN_KEYS)[number] | 'log'> {
  /** Which stage to probe: `head` (trunk frozen; default with pretrained weights) or `all` (default from scratch). */
  stage?: 'head' | 'all';
  /** First rate (default 1e-7). */
  startLr?: number;
  /** Last rate (default 10). */
  endLr?: number;
  /** Number of rates tried (default 100). */
  steps?: number;
  /** Stop when the smoothed loss exceeds this multiple of its minimum (default 4). */
  divergence?: number;
  /** PNG file for the loss-versus-rate plot. */
  plot?: string;
}

/** The sweep and its suggestions. */
export interface LrFindResult {
  /** Rates tried, in order. */
  lrs: number[];
  /** Raw batch losses. */
  losses: number[];
  /** Exponentially smoothed, bias-corrected losses (beta 0.98). */
  smoothed: number[];
  /** Suggested rates: fastai's valley (the default), steepest descent, and a tenth of the minimum. */
  suggestions: { valley: number; steepest: number; minimum: number };
  /** The stage probed. */
  stage: 'head' | 'all';
}

/** fastai's `valley`: the rate two thirds of the way into the longest falling run of losses. */
export function valley(lrs: number[], losses: number[]): number {
  const n = losses.length;
  const lds = new Array<number>(n).fill(1);
  let maxStart = 0;
  let maxEnd = 0;
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < i; j++) {
      if (losses[i] < losses[j] && lds[i] < lds[j] + 1) lds[i] = lds[j] + 1;
      if (lds[maxEnd] < lds[i]) {
        maxEnd = i;
        maxStart = maxEnd - lds[maxEnd];
      }
    }
  }
  const sections = (maxEnd - maxStart) / 3;
  return lrs[Math.min(n - 1, maxStart + Math.floor(sections) + Math.floor(sections / 2))];
}

/** The rate where the loss falls fastest against log(rate) (central differences, as numpy.gradient). */
export function steepest(lrs: number[], losses: number[]): number {
  if (losses.length < 2) return lrs[0];
  const x = lrs.map(Math.log);
  let best = 0;
  let bestSlope = Infinity;
  for (let i = 0; i < losses.length; i++) {
    const [a, b] = i === 0 ? [0, 1] : i === losses.length - 1 ? [i - 1, i] : [i - 1, i + 1];
    const slope = (losses[b] - losses[a]) / (x[b] - x[a]);
    if (slope < bestSlope) [best, bestSlope] = [i, slope];
  }
  return lrs[best];
}

/** Runs the range test; see `LrFindOptions`. */
export async function runLrFind(options: LrFindOptions, runtime: TrainRuntime = IN_PROCESS_RUNTIME): Promise<LrFindResult> {
  const startLr = finiteNumber('start-lr', options.startLr ?? 1e-7, { min: 0 });
  const endLr = finiteNumber('end-lr', options.endLr ?? 10, { min: startLr });
  const steps = positiveInt('steps', options.steps ?? 100);
  const divergence = finiteNumber('divergence', options.divergence ?? 4, { min: 1 });
  if (steps < 5) throw new GraftError(`lr-find needs at least 5 steps to suggest anything; received ${steps}.`);
  const { stage: stageOpt, startLr: _s, endLr: _e, steps: _n, divergence: _d, plot, ...rest } = options;
  const o = resolveTrainOptions(rest, { needOut: false });
  const log = o.log === undefined ? (line: string) => process.stderr.write(`${line}\n`) : o.log;
  const ds = typeof o.data === 'string' ? await openDataset(o.data, { log }) : o.data;
  const { model, meta } = await buildClassifier(o, ds.classNames);
  try {
    const pretrained = meta.weights !== null && meta.weights !== undefined;
    const stage = oneOf('stage', stageOpt ?? (pretrained ? 'head' : 'all'), ['head', 'all'] as const);
    applyStage(model, { name: stage, epochs: 1, train: stage, lr: endLr }, { groups: meta.groups, trainBn: Boolean(o.trainBn) });
    const seed = `${o.seed}/lr-find`;
    const plan = await planStageData({ model, meta, data: { train: ds }, options: o, seed, log, runtime });
    const lrs: number[] = [];
    const losses: number[] = [];
    const smoothed: number[] = [];
    const controller = new AbortController();
    const rateAt = (i: number) => startLr * (endLr / startLr) ** (i / (steps - 1));
    const epochs = Math.ceil(steps / plan.train.steps);
    const total = epochs * plan.train.steps;
    let avg = 0;
    let best = Infinity;
    try {
      await fit({
        model: plan.model,
        groups: plan.groups,
        train: plan.train,
        epochs,
        lr: endLr,
        optimizer: optimizerFrom(o),
        // The loop multiplies the rate by the schedule; this one walks the exponential sweep step by step.
        schedule: (p) => rateAt(Math.round(p * total)) / endLr,
        loss: {
          outputActivation: meta.outputActivation,
          labelSmoothing: o.labelSmoothing,
          classWeights: resolveClassWeights(o.classWeights, ds.classNames, Int32Array.from(ds.samples, (s) => s.label)),
        },
        seed,
        signal: controller.signal,
        stepEngine: runtime.stepEngine(o.trainEngine, { log, workers: 1 }),
        batchSize: o.batchSize,
        callbacks: {
          onBatchEnd: (info) => {
            const loss = info.batchLoss;
            const k = losses.length;
            lrs.push(rateAt(k));
            losses.push(loss);
            avg = 0.98 * avg + 0.02 * loss;
            const s = avg / (1 - 0.98 ** (k + 1));
            smoothed.push(s);
            best = Math.min(best, s);
            if (losses.length >= steps || (k > 0 && (s > divergence * best || !Number.isFinite(s)))) controller.abort();
          },
        },
      });
    } catch (err) {
      // A diverged sweep may overflow before the divergence check sees it; what was recorded still counts.
      if (!(err instanceof GraftError && /loss became/.test(err.message)) || losses.length < 5) throw err;
    } finally {
      plan.dispose();
    }
    const suggestions = {
      valley: valley(lrs, smoothed),
      steepest: steepest(lrs, smoothed),
      minimum: lrs[smoothed.indexOf(Math.min(...smoothed))] / 10,
    };
    if (plot) {
      await writeSvgAsPng(
        lrFindChartSvg({ lrs, losses, smoothed, suggestions, stage }),
        plot,
      );
    }
    return { lrs, losses, smoothed, suggestions, stage };
  } finally {
    model.dispose();
  }
}

/** What the suggestions are called on the plot: `minimum` is a tenth of the rate at the lowest loss, and says so. */
const MARKER_NAMES = { valley: 'valley', steepest: 'steepest', minimum: 'minimum/10' } as const;

/** The lr-find plot: batch and smoothed loss against the rate (log scale), with a marker per suggestion. */
export function lrFindChartSvg(r: { lrs: number[]; losses: number[]; smoothed: number[]; suggestions: Record<keyof typeof MARKER_NAMES, number>; stage: string }): string {
  const colours = { valley: '#2ca02c', steepest: '#ff7f0e', minimum: '#9467bd' };
  const { lrs, losses, smoothed } = r;
  return chartSvg([
    {
      title: `Learning-rate finder (${r.stage})`,
      xLabel: 'learning rate (log scale)',
      yLabel: 'loss',
      logX: true,
      series: [
        { name: 'batch loss', color: '#c7c7c7', points: lrs.map((lr, i) => [lr, losses[i]]) },
        { name: 'smoothed', color: '#1f77b4', points: lrs.map((lr, i) => [lr, smoothed[i]]) },
      ],
      markers: (Object.keys(MARKER_NAMES) as Array<keyof typeof MARKER_NAMES>).map((name) => ({
        x: r.suggestions[name],
        label: `${MARKER_NAMES[name]} ${r.suggestions[name].toExponential(1)}`,
        color: colours[name],
      })),
      yRange: [Math.min(...smoothed) * 0.9, Math.min(Math.max(...smoothed), smoothed[0] * 2) * 1.05],
    },
  ]);
}
