#!/usr/bin/env bash
# Installed as /usr/local/libexec/fleetd/mark-unhealthy; run by fleetd-unhealthy.service when
# fleetd.service or fleetd-host-isolation.service has failed for good. Tags the instance
# `<prefix>:status=unhealthy` and reports it Unhealthy to Auto Scaling, which replaces it
# (scale-in protection does not stop a health replacement).
#
# The tag prefix comes from fleetd's config (tagPrefix, default "bgagent": daemon/src/contract
# tags.ts DEFAULT_TAG_PREFIX; config path DEFAULT_CONFIG_PATH). The instance role allows these
# two calls on its own instance only (infra/).
set -euo pipefail

readonly CONFIG=/etc/fleetd/config.json
# The SDK's standard override (the local stack and the boot check point it elsewhere).
endpoint=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254/}
readonly IMDS=${endpoint%/}/latest
readonly CURL=(curl -sf --connect-timeout 2 --max-time 10 --retry 2)

token=$("${CURL[@]}" -X PUT "$IMDS/api/token" -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
imds() { "${CURL[@]}" -H "X-aws-ec2-metadata-token: $token" "$IMDS/$1"; }
instance_id=$(imds meta-data/instance-id)
region=$(imds meta-data/placement/region)

prefix=bgagent
if [[ -r $CONFIG ]]; then
  configured=$(jq -r '.tagPrefix // empty' "$CONFIG" 2>/dev/null || true)
  if [[ $configured =~ ^[A-Za-z][A-Za-z0-9_.-]{0,31}$ ]]; then
    prefix=$configured
  fi
fi

reason="fleetd could not run: $(systemctl --failed --no-legend --plain 2>/dev/null | awk '{print $1}' | paste -sd, - || true)"
echo "mark-unhealthy: instance ${instance_id} (${region}): ${reason}"

status=0
aws ec2 create-tags --region "$region" --resources "$instance_id" \
  --tags "Key=${prefix}:status,Value=unhealthy" || status=1
aws autoscaling set-instance-health --region "$region" --instance-id "$instance_id" \
  --health-status Unhealthy --no-should-respect-grace-period || status=1
exit "$status"
