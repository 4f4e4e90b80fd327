/* global process */
/**
 * Jest loads a fresh tfjs for every test file in the same worker process, and a threaded wasm module keeps its pool
 * of pthread workers (and its shared heap) for as long as the process lives: a file that initialises threaded wasm
 * leaves them behind. Test files run two at a time on the two cores anyway, so they default to one wasm thread;
 * the tests of threading itself ask for threads explicitly.
 */
if (process.env.GRAFT_THREADS === undefined) process.env.GRAFT_THREADS = '1';
