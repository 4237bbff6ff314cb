#!/usr/bin/env bash
# A Debian rootfs with systemd as PID 1, imported as a Docker image, for booting the AMI's
# fleetd units for real in a container on the local Docker engine (issue 8's boot test).
#
#   test/helpers/systemd-boot/rootfs.sh [image]   build (cached) and print the image name
#
# Idempotent and cached: the rootfs tarball lives in .fleet/systemd-boot/ (git-ignored) under a
# key derived from its inputs, and the image is imported into the engine at $DOCKER_HOST only
# when that engine lacks it. First build: a few minutes (debootstrap; 6 min on a 2-core CI
# machine); afterwards seconds.
#
# The image is a minimal Debian bookworm with systemd, iproute2, iptables and curl/jq (what
# packer/files/host-isolation.sh and mark-unhealthy.sh call) and libstdc++ (the host's Node 20
# binary is bind-mounted as /usr/bin/node-20, the path of AL2023's nodejs20 that
# packer/files/bin/fleetd runs). Units that make no sense in a container are masked.
# `docker import` cannot set a stop signal: run it with --stop-signal SIGRTMIN+3 (systemd's
# "halt"), as boot-check.sh does.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
cache=$repo/.fleet/systemd-boot
readonly suite=bookworm
readonly mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly packages=systemd,systemd-sysv,dbus,iproute2,iptables,curl,ca-certificates,jq,procps,libstdc++6,netcat-openbsd,rsyslog,logrotate
readonly masked=(getty.target console-getty.service systemd-udevd.service systemd-udev-trigger.service
  systemd-firstboot.service systemd-resolved.service systemd-networkd.service systemd-timesyncd.service
  apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer)

# Cache key: what goes into the rootfs (bump rootfs_version when the build steps below change).
readonly rootfs_version=1
key=$(printf '%s\n' "$rootfs_version" "$suite" "$packages" "${masked[@]}" | sha256sum | cut -c1-12)
image=${1:-agent-fleet/systemd-boot:$key}
tarball=$cache/rootfs-$key.tar

log() { printf 'systemd-boot rootfs: %s\n' "$*" >&2; }

# shellcheck source=SCRIPTDIR/engine.sh
source "$here/engine.sh"
use_engine "$repo"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi

if [[ ! -s $tarball ]]; then
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  mkdir -p "$cache"
  root=$(mktemp -d "$cache/build.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  log "debootstrap $suite into $root (a few minutes)"
  started=$SECONDS
  debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  for unit in "${masked[@]}"; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  ln -sf /lib/systemd/system/multi-user.target "$root/etc/systemd/system/default.target"
  # A fresh machine-id per boot, like an instance from the AMI (90-cleanup.sh).
  : >"$root/etc/machine-id"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  log "rootfs cached: $tarball ($((SECONDS - started)) s)"
fi

log "importing $image into the engine at ${DOCKER_HOST:-default}"
docker import \
  --change 'ENTRYPOINT ["/lib/systemd/systemd"]' \
  --change 'ENV container=docker' \
  "$tarball" "$image" >/dev/null
echo "$image"
