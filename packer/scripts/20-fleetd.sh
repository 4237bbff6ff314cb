#!/usr/bin/env bash
# fleetd: the bundle in /opt/fleetd, the wrapper at /usr/local/bin/fleetd (FLEETD_BIN_PATH in
# daemon/src/contract/cancel-document.ts, the path the SSM cancel document runs), the units,
# and fleetd's directories (DEFAULT_CONFIG_PATH /etc/fleetd/config.json, state in
# /var/lib/fleetd, per-task files and logs in /var/lib/fleetd/tasks/<task_id>/).
set -euo pipefail

staging=${FLEETD_STAGING:?FLEETD_STAGING must name the upload folder}
bundle=$staging/bundle
files=$staging/files

if [[ ! -f $bundle/fleetd.js ]]; then
  echo "20-fleetd: $bundle/fleetd.js is missing; run \`npm run bundle\` before packer build" >&2
  exit 1
fi

install -d -m 0755 /opt/fleetd
install -m 0644 "$bundle/fleetd.js" /opt/fleetd/fleetd.js
if [[ -f $bundle/fleetd.js.map ]]; then
  install -m 0644 "$bundle/fleetd.js.map" /opt/fleetd/fleetd.js.map
fi
# fleetd's EC2 tag helper: fleetd forks it from its own directory (daemon/src/instance-tags.ts).
if [[ ! -f $bundle/fleetd-ec2.js ]]; then
  echo "20-fleetd: $bundle/fleetd-ec2.js is missing; run \`npm run bundle\` before packer build" >&2
  exit 1
fi
install -m 0644 "$bundle/fleetd-ec2.js" /opt/fleetd/fleetd-ec2.js
# No proto/ any more: the bundle leaves dockerode's BuildKit (gRPC) code out (scripts/bundle.ts).
rm -rf /opt/fleetd/proto
install -m 0755 "$files/bin/fleetd" /usr/local/bin/fleetd
install -d -m 0755 /usr/local/libexec/fleetd
install -m 0755 "$files/mark-unhealthy.sh" /usr/local/libexec/fleetd/mark-unhealthy

install -d -m 0700 /etc/fleetd /var/lib/fleetd /var/lib/fleetd/tasks
install -d -m 0750 /var/log/fleetd

install -m 0644 "$files/fleetd.service" /etc/systemd/system/fleetd.service
install -m 0644 "$files/fleetd-unhealthy.service" /etc/systemd/system/fleetd-unhealthy.service
install -m 0644 "$files/fleetd-guard.service" /etc/systemd/system/fleetd-guard.service
install -m 0644 "$files/fleetd-guard.timer" /etc/systemd/system/fleetd-guard.timer
systemctl daemon-reload
# The lease guard runs apart from fleetd, so a dead fleetd cannot stop it (lease-guard.ts).
systemctl enable fleetd-guard.timer
# Enabled, but skipped at boot until user data has written /etc/fleetd/config.json
# (ConditionPathExists); user data then runs `systemctl start fleetd.service`.
systemctl enable fleetd.service

# The bundle parses under this Node (running it needs the config and AWS).
node-20 --check /opt/fleetd/fleetd.js
node-20 --check /opt/fleetd/fleetd-ec2.js
echo "20-fleetd: installed $(stat -c %s /opt/fleetd/fleetd.js) bytes of fleetd"
