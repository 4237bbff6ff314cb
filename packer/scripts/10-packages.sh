#!/usr/bin/env bash
# Packages for the fleet instance (Amazon Linux 2023, dnf): Docker, Node 20, and what the host
# scripts use. awscli-2, curl and amazon-ssm-agent ship with the standard AL2023 AMI; the SSM
# agent runs the fleet's cancel document (`fleetd cancel`).
set -euo pipefail

# Security updates within the base AMI's release; the new kernel is used from the first boot
# of an instance launched from this AMI.
dnf -y upgrade
# docker pulls in containerd, runc and iptables; nodejs20 installs /usr/bin/node-20.
dnf -y install docker nodejs20 jq rsyslog logrotate

for tool in docker dockerd iptables ip jq aws curl node-20 rsyslogd logrotate; do
  command -v "$tool" >/dev/null || { echo "10-packages: $tool missing after install" >&2; exit 1; }
done
node_version=$(node-20 --version)
[[ $node_version == v20.* ]] || { echo "10-packages: expected Node 20, got $node_version" >&2; exit 1; }
echo "10-packages: docker $(docker --version), node $node_version"

systemctl enable docker.service amazon-ssm-agent.service
