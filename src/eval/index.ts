/** Evaluation and prediction: run a saved model over data and turn the results into reports. */
export * from './evaluate';
export * from './predict';
export * from './reports';
export * from './tta';
export * from './predictions-csv';
