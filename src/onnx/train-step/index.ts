/** The compiled training step: one ONNX graph per step (forward, loss, reverse mode, clipping, optimiser update). */
export { compileTrainStep, trainStepBlocker } from './compile';
export type { CompileTrainStepOptions, CompiledTrainStep, StateTensor, StepGroup, StepOptimizer, StepOptimizerType, StepTensor } from './compile';
export { TRAIN_STEP_LAYERS } from './layers';
