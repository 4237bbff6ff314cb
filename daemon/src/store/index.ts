/**
 * The store: the only code that writes the fleet's tables (tasks, events, instances). See
 * docs/architecture.md, "Who writes what".
 */
export * from './dynamo';
export * from './events';
export * from './instance-store';
export * from './task-store';
