/** Metrics and reports: confusion matrices, scikit-learn-exact scores, report building, merging and formats. */
export * from './confusion';
export * from './classification';
export * from './multilabel';
export * from './topk';
export * from './decision';
export * from './report';
export * from './text';
export * from './html';
