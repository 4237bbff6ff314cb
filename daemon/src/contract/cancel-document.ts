/**
 * The fleet's own SSM Command document for cancel. `TaskId` is constrained by the same pattern
 * as every task id, and `fleetd cancel` checks it again (moto does not enforce allowedPattern).
 */
import { TASK_ID_PATTERN_SOURCE } from './ids';

export const CANCEL_DOCUMENT_PARAMETER = 'TaskId';
/** Absolute path of the cancel entry point the AMI installs; the local SSM agent maps it. */
export const FLEETD_BIN_PATH = '/usr/local/bin/fleetd';

export function cancelDocumentContent(): Record<string, unknown> {
  return {
    schemaVersion: '2.2',
    description: 'agent-fleet: cancel a task on this instance through fleetd (SIGTERM, grace, SIGKILL).',
    parameters: {
      [CANCEL_DOCUMENT_PARAMETER]: {
        type: 'String',
        description: 'The task id to cancel.',
        allowedPattern: TASK_ID_PATTERN_SOURCE,
      },
    },
    mainSteps: [
      {
        action: 'aws:runShellScript',
        name: 'cancelTask',
        inputs: {
          timeoutSeconds: '120',
          runCommand: [`${FLEETD_BIN_PATH} cancel --task-id {{${CANCEL_DOCUMENT_PARAMETER}}}`],
        },
      },
    ],
  };
}
