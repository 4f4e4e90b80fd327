/**
 * The architecture registry: the only place that lists graft's architectures. CLI choices, docs and the
 * registry-driven tests all read it; adding a family means adding its specs here.
 */
import { GraftError } from '../errors';
import { ArchitectureSpec } from './spec';
import { VGG_SPECS } from './vgg';
import { RESNET_SPECS } from './resnet';
import { INCEPTION_V3_SPEC } from './inception_v3';
import { XCEPTION_SPEC } from './xception';
import { SIMPLE_CNN_SPEC } from './simple_cnn';
import { DENSENET_SPECS } from './densenet';
import { INCEPTION_RESNET_V2_SPEC } from './inception_resnet_v2';
import { MOBILENET_SPECS } from './mobilenet';
import { MOBILENET_V2_SPECS } from './mobilenet_v2';
import { MOBILENET_V3_SPECS } from './mobilenet_v3';
import { EFFICIENTNET_SPECS } from './efficientnet';

const REGISTRY = new Map<string, ArchitectureSpec>();

/** Adds an architecture; a second spec with the same name is a programming error. */
export function registerArchitecture(spec: ArchitectureSpec): void {
  if (REGISTRY.has(spec.name)) throw new Error(`architecture ${spec.name} is registered twice`);
  REGISTRY.set(spec.name, spec);
}

/** One family per line, in the order `graft models` lists them; graft's own small CNN last. */
const FAMILIES: ArchitectureSpec[][] = [
  VGG_SPECS,
  RESNET_SPECS,
  [INCEPTION_V3_SPEC],
  [XCEPTION_SPEC],
  MOBILENET_SPECS,
  MOBILENET_V2_SPECS,
  MOBILENET_V3_SPECS,
  EFFICIENTNET_SPECS,
  DENSENET_SPECS,
  [INCEPTION_RESNET_V2_SPEC],
  [SIMPLE_CNN_SPEC],
];
for (const spec of FAMILIES.flat()) registerArchitecture(spec);

/** Every registered architecture, in registry order. */
export function listArchitectures(): ArchitectureSpec[] {
  return [...REGISTRY.values()];
}

/** Registry names, for option validation and CLI choices. */
export function architectureNames(): string[] {
  return [...REGISTRY.keys()];
}

/** The spec of `name`, or an error listing the valid names. */
export function getArchitecture(name: unknown): ArchitectureSpec {
  const spec = typeof name === 'string' ? REGISTRY.get(name) : undefined;
  if (!spec) throw new GraftError(`architecture must be one of ${architectureNames().join(', ')}; received ${JSON.stringify(name)}.`);
  return spec;
}
