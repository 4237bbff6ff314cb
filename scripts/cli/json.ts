/**
 * The `--json` shapes of the CLI, in one place and in one casing: snake_case keys, as in the
 * records and events the fleet stores (so `fleet status --json` and `fleet instances --json`
 * read alike). The client library's objects are camelCase (TypeScript); each command maps them
 * here, field by field, never with a blind key converter: task records, specs, payloads and
 * results pass through as stored (their keys are the submitter's). test/unit/cli-json.test.ts
 * walks every command's output and fails on a camelCase key.
 */
import type { TaskRecord } from '../../daemon/src/contract';
import type { ArtifactEntry } from '../lib/artifacts';
import type { CancelDelivery, CancelResult, DeadLetter, InstanceList, InstanceView, RedriveOutcome, TaskPage } from '../lib/client';

/** `fleet list --json`: a page of records; `skipped` counts items that were not valid task records. */
export function listJson(page: TaskPage): { tasks: TaskRecord[]; next_cursor: string | null; skipped: number } {
  return { tasks: page.tasks, next_cursor: page.nextCursor ?? null, skipped: page.skipped };
}

function deliveryJson(d: CancelDelivery): Record<string, unknown> {
  return d.via === 'ssm' ? { via: 'ssm', instance_id: d.instanceId, command_id: d.commandId } : { via: 'heartbeat', why: d.why };
}

/** `fleet cancel --json` (with --wait, `final` is the record it ended with). */
export function cancelJson(r: CancelResult, final?: TaskRecord): Record<string, unknown> {
  const common = { outcome: r.outcome, task_id: r.taskId, message: r.message };
  const body =
    r.outcome === 'already-ended'
      ? { ...common, status: r.status }
      : r.outcome === 'cancelled'
        ? { ...common, from: r.from }
        : { ...common, from: r.from, ...(r.instanceId !== undefined ? { instance_id: r.instanceId } : {}), delivery: deliveryJson(r.delivery) };
  return final ? { ...body, final } : body;
}

export function instanceJson(i: InstanceView): Record<string, unknown> {
  return {
    instance_id: i.instanceId,
    status: i.status,
    ec2_state: i.ec2State ?? null,
    running: i.running,
    heartbeat_at: i.heartbeatAt ?? null,
    launched_at: i.launchedAt ?? null,
    stale: i.stale,
    slots: i.slots ?? null,
    availability_zone: i.availabilityZone ?? null,
    reason: i.reason ?? null,
    version: i.version ?? null,
    commit: i.commit ?? null,
    ami_id: i.amiId ?? null,
    launch_template_id: i.launchTemplateId ?? null,
    launch_template_version: i.launchTemplateVersion ?? null,
  };
}

/** `fleet instances --json`. */
export function instancesJson(list: InstanceList): { instances: Record<string, unknown>[]; warnings: string[] } {
  return { instances: list.instances.map(instanceJson), warnings: list.warnings };
}

export function deadLetterJson(l: DeadLetter): Record<string, unknown> {
  return { message_id: l.messageId, task_id: l.taskId ?? null, reason: l.reason ?? null, sent_at: l.sentAt ?? null, receive_count: l.receiveCount ?? null, body: l.body };
}

/** `fleet dlq list --json`. */
export function deadLettersJson(letters: DeadLetter[]): { dead_letters: Record<string, unknown>[] } {
  return { dead_letters: letters.map(deadLetterJson) };
}

/** `fleet dlq redrive --json`. */
export function redriveJson(dryRun: boolean, outcomes: RedriveOutcome[]): { dry_run: boolean; outcomes: Record<string, unknown>[] } {
  return {
    dry_run: dryRun,
    outcomes: outcomes.map((x) => ({
      dead_letter: deadLetterJson(x.deadLetter),
      decision: { action: x.decision.action, task_id: x.decision.taskId ?? null, why: x.decision.why },
      applied: x.applied,
      ...(x.error !== undefined ? { error: x.error } : {}),
    })),
  };
}

/** One artifact as `fleet artifacts --json` prints it. */
export function artifactJson(e: ArtifactEntry): Record<string, unknown> {
  return { key: e.key, path: e.path, size: e.size, last_modified: e.lastModified ?? null };
}
