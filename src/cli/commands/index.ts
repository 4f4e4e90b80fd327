import { Command } from 'commander';
import { doctorCommand } from './doctor';
import { demoCommand } from './demo';
import { datasetCommand } from './dataset';
import { augmentCommand } from './augment';
import { exportCommand } from './export';
import { evaluateCommand } from './evaluate';
import { predictCommand } from './predict';
import { reportCommand } from './report';
import { trainCommand } from './train';
import { lrFindCommand } from './lr-find';
import { modelsCommand } from './models';
import { summaryCommand } from './summary';
import { importKerasCommand } from './import-keras';
import { featuresCommand } from './features';
import { serveCommand } from './serve';

/**
 * Every graft subcommand, in the order `graft --help` lists them. Each command file parses and validates its
 * options, then calls the same library function the API exports.
 */
export const COMMANDS: Array<() => Command> = [demoCommand, doctorCommand, datasetCommand, modelsCommand, summaryCommand, importKerasCommand, featuresCommand, augmentCommand, trainCommand, lrFindCommand, exportCommand, serveCommand, evaluateCommand, predictCommand, reportCommand];
