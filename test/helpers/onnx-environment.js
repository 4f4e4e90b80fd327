/* global require, module */
/**
 * Jest runs each test file in its own realm, so typed arrays made there fail onnxruntime-common's
 * `instanceof Float32Array` checks against the arrays its native binding returns from Node's realm. The ONNX tests
 * use Node's typed-array constructors in the test realm too, as a plain `node` script would.
 */
const { TestEnvironment } = require('jest-environment-node');

const TYPED = ['Float32Array', 'Float64Array', 'Int8Array', 'Int16Array', 'Int32Array', 'Uint8Array', 'Uint8ClampedArray', 'Uint16Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array', 'ArrayBuffer'];

class OnnxEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of TYPED) this.global[name] = globalThis[name];
  }
}

module.exports = OnnxEnvironment;
