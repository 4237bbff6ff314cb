#!/usr/bin/env bash
# CloudWatch agent shipping fleetd's log (/var/log/fleetd/fleetd.log, copied from the journal by
# rsyslog) and cloud-init's output to log groups under CLOUDWATCH_LOG_GROUP_PREFIX. Task output
# is shipped by fleetd itself (<prefix>/task-logs, docs/logs.md). Skipped when
# ENABLE_CLOUDWATCH_AGENT=false.
set -euo pipefail

if [[ ${ENABLE_CLOUDWATCH_AGENT:-true} != true ]]; then
  echo "40-cloudwatch-agent: disabled (enable_cloudwatch_agent=false)"
  exit 0
fi
prefix=${CLOUDWATCH_LOG_GROUP_PREFIX:-/agent-fleet}
if [[ ! $prefix =~ ^/[A-Za-z0-9_./#-]{1,400}$ ]]; then
  echo "40-cloudwatch-agent: cloudwatch_log_group_prefix: got '$prefix', expected a log group path like /agent-fleet" >&2
  exit 1
fi
prefix=${prefix%/}

dnf -y install amazon-cloudwatch-agent
readonly root=/opt/aws/amazon-cloudwatch-agent
config=$root/etc/amazon-cloudwatch-agent.json
jq --arg prefix "$prefix" \
  '.logs.logs_collected.files.collect_list[].log_group_name |= ($prefix + .)' \
  "${FLEETD_STAGING:?}/files/amazon-cloudwatch-agent.json" >"$config"
# Translates and validates the config now (a typo fails the bake); the agent starts at boot.
"$root/bin/amazon-cloudwatch-agent-ctl" -a fetch-config -m ec2 -c "file:$config"
"$root/bin/amazon-cloudwatch-agent-ctl" -a stop -m ec2 || true
systemctl enable amazon-cloudwatch-agent.service
echo "40-cloudwatch-agent: log groups under $prefix"
