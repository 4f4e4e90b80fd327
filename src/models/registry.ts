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

for (const spec of [...VGG_SPECS, ...RESNET_SPECS, INCEPTION_V3_SPEC, XCEPTION_SPEC, SIMPLE_CNN_SPEC]) registerArchitecture(spec);
// The mobile families (issue 17), one line each so other families' lines merge beside them.
for (const spec of MOBILENET_SPECS) registerArchitecture(spec);
for (const spec of MOBILENET_V2_SPECS) registerArchitecture(spec);
for (const spec of MOBILENET_V3_SPECS) registerArchitecture(spec);
for (const spec of EFFICIENTNET_SPECS) registerArchitecture(spec);

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
