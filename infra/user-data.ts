/**
 * The launch template's user data. It does two things only: write fleetd's config file
 * (DEFAULT_CONFIG_PATH, the contract's FleetdConfigFile) and start fleetd. Everything else an
 * instance needs is baked into the AMI, so a boot is fast and its failure modes are fleetd's
 * preflight, which reports them (tag, instance row, SetInstanceHealth).
 *
 * The JSON travels inside a quoted heredoc: the shell expands nothing in it, and no value in it
 * can end the heredoc early (JSON on one line never equals the delimiter line).
 */
import * as path from 'node:path';
import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { DEFAULT_CONFIG_PATH, FLEETD_SYSTEMD_UNIT, type FleetdConfigFileInput } from '../daemon/src/contract';

const HEREDOC_DELIMITER = 'FLEETD_CONFIG_JSON';

/**
 * fleetd's config for this fleet. Values may be CloudFormation tokens (queue URL, table
 * names); `Stack.toJsonString` renders them into a JSON string at deploy time.
 */
export function fleetdUserData(stack: Stack, config: FleetdConfigFileInput): ec2.UserData {
  const userData = ec2.UserData.forLinux({ shebang: '#!/bin/bash' });
  const dir = path.posix.dirname(DEFAULT_CONFIG_PATH);
  const tmp = `${DEFAULT_CONFIG_PATH}.tmp`;
  userData.addCommands(
    'set -euo pipefail',
    // The AMI created the directory root-only (0700); keep it so.
    `install -d -m 0700 ${dir}`,
    `cat > ${tmp} <<'${HEREDOC_DELIMITER}'`,
    stack.toJsonString(config),
    HEREDOC_DELIMITER,
    `chmod 0600 ${tmp}`,
    `mv -f ${tmp} ${DEFAULT_CONFIG_PATH}`,
    // enable: fleetd also starts on later boots (a warm-pool instance is stopped and started).
    `systemctl enable --now ${FLEETD_SYSTEMD_UNIT}`,
  );
  return userData;
}
