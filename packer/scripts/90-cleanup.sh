#!/usr/bin/env bash
# Last step: nothing instance-specific or build-specific goes into the AMI.
set -euo pipefail

rm -rf "${FLEETD_STAGING:?}"
dnf clean all
rm -rf /var/cache/dnf
# No fleet config, task files or logs from the build.
rm -f /etc/fleetd/config.json /etc/fleetd/fleetd.env
find /var/lib/fleetd/tasks -mindepth 1 -delete
find /var/log/fleetd -mindepth 1 -delete
journalctl --rotate
journalctl --vacuum-time=1s
# A fresh machine-id per instance (journal directory, DHCP DUID): empty = generated at boot.
truncate -s 0 /etc/machine-id
# The build's temporary SSH key must not open instances launched from the AMI.
rm -f /home/ec2-user/.ssh/authorized_keys /root/.ssh/authorized_keys
