/**
 * The fleet's own CloudWatch metrics: published by the scaler Lambda every tick (and the reconciler), read by the
 * construct's alarms, dashboard and `metricX()` methods. Plain constants (no aws-cdk-lib import)
 * because the Lambda bundle includes this file.
 */
export const FLEET_METRICS_NAMESPACE = 'AgentFleet';

/** Environment variable that overrides the namespace for the fleet's Lambdas. */
export const METRICS_NAMESPACE_ENV = 'FLEET_METRICS_NAMESPACE';

/** Every fleet metric carries this one dimension, valued with the fleet name. */
export const FLEET_METRIC_DIMENSION = 'FleetName';

export const FleetMetric = {
  /** Tasks waiting or running: ApproximateNumberOfMessages + ApproximateNumberOfMessagesNotVisible. */
  BACKLOG: 'Backlog',
  /** The scaler's decision: the desired capacity after this tick (never below the group's). */
  DESIRED_CAPACITY: 'ScalerDesiredCapacity',
  /** Instances the scaler added this tick (0 when it left the group alone). */
  CAPACITY_RAISED: 'ScalerCapacityRaised',
  /** Age in seconds of the oldest task not yet claimed (QUEUED or INTERRUPTED); 0 when none. */
  OLDEST_UNCLAIMED_TASK_AGE: 'OldestUnclaimedTaskAgeSeconds',
  /** Group members whose Auto Scaling health status is Unhealthy (fleetd's boot failures included). */
  UNHEALTHY_INSTANCES: 'UnhealthyInstances',
  /** Instances whose instance-row heartbeat is stale (published by the reconciler). */
  STALE_INSTANCES: 'StaleInstances',
} as const;
export type FleetMetric = (typeof FleetMetric)[keyof typeof FleetMetric];
