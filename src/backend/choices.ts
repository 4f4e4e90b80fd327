/** What a user may ask for (`--backend`, `GRAFT_BACKEND`); apart from index.ts so the CLI can list them without loading tfjs. */
export const BACKEND_CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
/** A backend request. */
export type BackendChoice = (typeof BACKEND_CHOICES)[number];
