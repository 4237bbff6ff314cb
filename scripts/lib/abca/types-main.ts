/**
 * ABCA's compute-strategy surface as ABCA declares it on main (2cee8800), in
 * cdk/src/handlers/shared/compute-strategy.ts and repo-config.ts: field names and types only,
 * restated here (no ABCA code). Main has no `ec2` compute type and no `ec2` handle variant;
 * the `…WithEc2` types below restates the two upstream type edits (one line each) docs/abca.md lists, and
 * test/types/abca-compat.ts proves the adapter compiles against main with exactly those.
 */

export type ComputeType = 'agentcore' | 'ecs' | 'lambda-microvm';

export interface BlueprintConfig {
  readonly compute_type: ComputeType;
  readonly runtime_arn: string;
  readonly model_id?: string;
  readonly max_turns?: number;
  readonly max_budget_usd?: number;
  readonly system_prompt_overrides?: string;
  readonly github_token_secret_arn?: string;
  readonly poll_interval_ms?: number;
  readonly build_command?: string;
  readonly lint_command?: string;
  readonly egress_allowlist?: string[];
  readonly cedar_policies?: string[];
  readonly approval_gate_cap?: number;
  readonly mcp_servers?: string[];
  readonly cedar_policy_modules?: string[];
  readonly skills?: string[];
}

export type SessionHandle =
  | { readonly sessionId: string; readonly strategyType: 'agentcore'; readonly runtimeArn: string }
  | { readonly sessionId: string; readonly strategyType: 'ecs'; readonly clusterArn: string; readonly taskArn: string }
  | { readonly sessionId: string; readonly strategyType: 'lambda-microvm'; readonly microvmId: string; readonly endpoint: string };

export type SessionStatus =
  | { readonly status: 'running' }
  | { readonly status: 'suspended' }
  | { readonly status: 'completed' }
  | { readonly status: 'failed'; readonly error: string };

/** The input main's orchestrator passes to startSession (userId required, readOnly optional). */
export interface StartSessionInput<B = BlueprintConfig> {
  taskId: string;
  userId: string;
  payload: Record<string, unknown>;
  blueprintConfig: B;
  readOnly?: boolean;
}

export interface ComputeStrategy<C extends string = ComputeType, H = SessionHandle, B = BlueprintConfig> {
  readonly type: C;
  startSession(input: StartSessionInput<B>): Promise<H>;
  pollSession(handle: H): Promise<SessionStatus>;
  stopSession(handle: H): Promise<void>;
}

/**
 * Main after the two upstream type edits: `ComputeType` gains `'ec2'` (repo-config.ts) and
 * `SessionHandle` gains PR #32's ec2 variant (compute-strategy.ts). Everything else as on main.
 */
export type ComputeTypeWithEc2 = ComputeType | 'ec2';
export type BlueprintConfigWithEc2 = Omit<BlueprintConfig, 'compute_type'> & { readonly compute_type: ComputeTypeWithEc2 };
export type SessionHandleWithEc2 =
  | SessionHandle
  | { readonly sessionId: string; readonly strategyType: 'ec2'; readonly instanceId: string; readonly commandId: string };
export type ComputeStrategyWithEc2 = ComputeStrategy<ComputeTypeWithEc2, SessionHandleWithEc2, BlueprintConfigWithEc2>;
