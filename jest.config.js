/** Jest runs the TypeScript tests through ts-jest; type-checking is `npm run typecheck`'s job, so tests only transpile. */
module.exports = {
  // Node's typed arrays in every test realm, so onnxruntime (now also the default training engine) accepts the
  // arrays tests and graft make there (see the file).
  testEnvironment: '<rootDir>/test/helpers/onnx-environment.js',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  testTimeout: 120000,
  // Tests share two cores with tfjs kernels; more workers only thrash.
  maxWorkers: 2,
  // ...and each file runs wasm on one thread unless it asks for more (see the file).
  setupFiles: ['<rootDir>/test/helpers/one-thread.js'],
};
