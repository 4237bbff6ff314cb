/**
 * ABCA's compute-strategy surface as ABCA declares it at PR #32 ("add EC2 fleet compute
 * strategy", head dfdaa10e), in cdk/src/handlers/shared/compute-strategy.ts and repo-config.ts:
 * field names and types only, restated here (no ABCA code), so that test/types/abca-compat.ts
 * proves with `tsc --noEmit` that the adapter is assignable to ABCA's ComputeStrategy as that
 * version declares it. Keep in step with docs/abca.md ("The upstream edits").
 */

export type ComputeType = 'agentcore' | 'ecs' | 'ec2';

export interface BlueprintConfig {
  readonly compute_type: ComputeType;
  readonly runtime_arn: string;
  readonly instance_type?: string;
  readonly model_id?: string;
  readonly max_turns?: number;
  readonly max_budget_usd?: number;
  readonly system_prompt_overrides?: string;
  readonly github_token_secret_arn?: string;
  readonly poll_interval_ms?: number;
  readonly egress_allowlist?: string[];
  readonly cedar_policies?: string[];
}

export type SessionHandle =
  | { readonly sessionId: string; readonly strategyType: 'agentcore'; readonly runtimeArn: string }
  | { readonly sessionId: string; readonly strategyType: 'ecs'; readonly clusterArn: string; readonly taskArn: string }
  | { readonly sessionId: string; readonly strategyType: 'ec2'; readonly instanceId: string; readonly commandId: string };

export type SessionStatus =
  | { readonly status: 'running' }
  | { readonly status: 'completed' }
  | { readonly status: 'failed'; readonly error: string };

/** The input PR #32's orchestrator passes to startSession (no userId, no readOnly yet). */
export interface StartSessionInput {
  taskId: string;
  payload: Record<string, unknown>;
  blueprintConfig: BlueprintConfig;
}

export interface ComputeStrategy {
  readonly type: ComputeType;
  startSession(input: StartSessionInput): Promise<SessionHandle>;
  pollSession(handle: SessionHandle): Promise<SessionStatus>;
  stopSession(handle: SessionHandle): Promise<void>;
}
