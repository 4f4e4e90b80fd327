/**
 * Layer-group checks. Freezing and per-group learning rates (and splitting a model into a frozen prefix and a
 * trainable suffix) rely on two facts this file verifies: every layer is in exactly one group, and every group
 * boundary is a single tensor (the last layer of a group is the only one whose output feeds later groups).
 */
import * as tf from '@tensorflow/tfjs';
import { GraftError } from '../errors';
import { LayerGroup } from '../io/graft-json';

/** Throws a GraftError describing the first way `groups` fails to partition `model` at single-tensor boundaries. */
export function checkGroups(model: tf.LayersModel, groups: LayerGroup[]): void {
  const groupOf = new Map<string, number>();
  groups.forEach((g, gi) => {
    for (const name of g.layers) {
      if (groupOf.has(name)) throw new GraftError(`layer ${name} is in groups ${groups[groupOf.get(name)!].name} and ${g.name}; each layer belongs to one group.`);
      groupOf.set(name, gi);
    }
  });
  const inputs = new Set(model.inputLayers.map((l) => l.name));
  for (const layer of model.layers) {
    if (inputs.has(layer.name)) continue;
    const gi = groupOf.get(layer.name);
    if (gi === undefined) throw new GraftError(`layer ${layer.name} is in no group; every layer needs one.`);
    for (const node of layer.inboundNodes) {
      for (const src of node.inboundLayers) {
        const si = inputs.has(src.name) ? -1 : groupOf.get(src.name)!;
        if (si === gi) continue;
        const boundary = si < 0 ? undefined : groups[si].layers.at(-1);
        if (si > gi || si !== gi - 1 || (si >= 0 && src.name !== boundary)) {
          const from = si < 0 ? 'the input' : `${src.name} (group ${groups[si].name})`;
          throw new GraftError(`layer ${layer.name} (group ${groups[gi].name}) reads ${from}; a group may only read the last layer of the group before it.`);
        }
      }
    }
  }
  for (const name of groupOf.keys()) {
    if (!model.layers.some((l) => l.name === name)) throw new GraftError(`group layer ${name} is not in the model.`);
  }
}
