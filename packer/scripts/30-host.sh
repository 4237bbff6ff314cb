#!/usr/bin/env bash
# Host isolation and hygiene: the firewall/credentials-address unit, Docker's daemon.json (log
# rotation, live-restore), journald limits, and rsyslog + logrotate for /var/log/fleetd.
set -euo pipefail

files=${FLEETD_STAGING:?FLEETD_STAGING must name the upload folder}/files

install -d -m 0755 /usr/local/libexec/fleetd
install -m 0755 "$files/host-isolation.sh" /usr/local/libexec/fleetd/host-isolation
install -m 0644 "$files/fleetd-host-isolation.service" /etc/systemd/system/fleetd-host-isolation.service

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
