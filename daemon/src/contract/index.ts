/**
 * The task contract: the one module every part of agent-fleet imports (fleetd, the CLI and
 * client library, the CDK app, the tests). Nothing re-declares these shapes or names.
 */
export * from './states';
export * from './timings';
export * from './tags';
export * from './ids';
export * from './validation';
export * from './spec';
export * from './envelope';
export * from './record';
export * from './takeover';
export * from './tables';
export * from './environment';
export * from './cancel-document';
export * from './scaling';
export * from './config-file';
export * from './deployment';
export * from './seal';
export * from './control';
export * from './intake';
export * from './task-state-change';
export * from './logs';
export * from './rollout';
