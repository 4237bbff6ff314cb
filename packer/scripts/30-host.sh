#!/usr/bin/env bash
# Host isolation and hygiene: the firewall/credentials-address unit, Docker's daemon.json (log
# rotation, live-restore, user-namespace remapping), project quotas on the root file system
# (task disk bounds), journald limits, and rsyslog + logrotate for /var/log/fleetd.
set -euo pipefail

files=${FLEETD_STAGING:?FLEETD_STAGING must name the upload folder}/files

install -d -m 0755 /usr/local/libexec/fleetd
install -m 0755 "$files/host-isolation.sh" /usr/local/libexec/fleetd/host-isolation
install -m 0644 "$files/fleetd-host-isolation.service" /etc/systemd/system/fleetd-host-isolation.service

# User-namespace remapping (daemon.json "userns-remap": "dockremap"): a container's root is host
# uid/gid 700000000, unprivileged, and its users map to the 65536 ids above it. The range is
# above useradd's SUB_UID_MAX (600100000), so no login user is ever given the same ids.
readonly remap_start=700000000
id -u dockremap >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /sbin/nologin dockremap
for ids in /etc/subuid /etc/subgid; do
  grep -q '^dockremap:' "$ids" 2>/dev/null || echo "dockremap:${remap_start}:65536" >>"$ids"
done

# Task disk bounds (docs/security.md, "Confinement"): overlay2's `storage-opt size` (a task's
# writable layer) and a sized local volume (its /fleet/output) need /var/lib/docker on xfs
# mounted with project quotas. AL2023's root is xfs; a root file system's mount options come
# from the kernel command line, so pquota applies from the first boot of an instance launched
# from this AMI (the build instance is not rebooted). fleetd reads `docker info` and falls back
# to an unbounded output directory, with a warning per task, where this is missing.
if [[ $(findmnt -no FSTYPE /) == xfs ]]; then
  grubby --update-kernel=ALL --args=rootflags=pquota
  grubby --info=ALL | grep -q 'rootflags=pquota' || { echo "30-host: rootflags=pquota not on the kernel command line" >&2; exit 1; }
else
  echo "30-host: / is $(findmnt -no FSTYPE /), not xfs: task disk bounds unavailable on this AMI" >&2
fi

install -d -m 0755 /etc/docker
install -m 0644 "$files/docker-daemon.json" /etc/docker/daemon.json
jq -e . /etc/docker/daemon.json >/dev/null
if dockerd --help 2>&1 | grep -q -- '--validate'; then
  dockerd --validate --config-file /etc/docker/daemon.json
fi

install -d -m 0755 /etc/systemd/journald.conf.d
install -m 0644 "$files/journald.conf" /etc/systemd/journald.conf.d/50-agent-fleet.conf
install -m 0644 "$files/rsyslog-fleetd.conf" /etc/rsyslog.d/30-fleetd.conf
rsyslogd -N1 -f /etc/rsyslog.conf
install -m 0644 "$files/logrotate-fleetd" /etc/logrotate.d/fleetd

systemctl daemon-reload
systemctl enable fleetd-host-isolation.service rsyslog.service
systemctl restart systemd-journald.service
