# shellcheck shell=bash
# Sourced by rootfs.sh and boot-check.sh: point `docker` at an engine that answers. Uses
# $DOCKER_HOST when set, else the local stack's (DOCKER_HOST in .fleet/local.env, written by
# `npm run local -- up`). Starts no engine of its own.
use_engine() {
  local env_file=$1/.fleet/local.env
  if [[ -z ${DOCKER_HOST:-} && -r $env_file ]]; then
    DOCKER_HOST=$(sed -n 's/^DOCKER_HOST=//p' "$env_file")
    export DOCKER_HOST
  fi
  if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    echo "no Docker engine answers at ${DOCKER_HOST:-the default socket}; run npm run local -- up" >&2
    return 1
  fi
}
