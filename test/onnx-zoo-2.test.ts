/**
 * ONNX parity, part 2 of 2 of the registry (see test/helpers/zoo-parity.ts): two files so jest's two workers share it.
 */
import { zooParityTests } from './helpers/zoo-parity';

zooParityTests(1);
