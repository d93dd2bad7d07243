export { Communicator, communicator, type CollectiveOptions, type CommunicatorOptions, type ReduceOptions } from './communicator';
export { defaultThresholds, largeMessageAlgorithms, type Thresholds } from './schedules';
export { dataTypes, reduceOps, type DataTypeName, type ReduceOpName } from './types';
