#!/usr/bin/env bash
# agent-fleet host isolation, installed as /usr/local/libexec/fleetd/host-isolation and run by
# fleetd-host-isolation.service at every boot, before docker.service starts.
#
#   host-isolation apply   add whatever is missing (idempotent), then check
#   host-isolation check   exit non-zero unless every rule and the address are in place
#
# What it enforces, for every container on a Docker bridge (docker0 and user-defined br-*):
# 1. No route to the instance metadata service (the instance role's credentials): packets to
#    169.254.169.254 (and IPv6 fd00:ec2::254) are rejected in Docker's DOCKER-USER chain, on
#    top of the launch template's IMDS hop limit of 1. Docker never flushes DOCKER-USER.
# 2. The per-task credentials endpoint: 169.254.170.2/32 is added to lo, so a container
#    reaches fleetd's credentials server bound to 169.254.170.2:80 through its default gateway
#    (see docs/lifecycle.md, per-task credentials; the SDKs accept plain http there for
#    AWS_CONTAINER_CREDENTIALS_FULL_URI).
# 3. Containers reach nothing else on the host itself: INPUT from a bridge accepts only replies
#    and tcp to 169.254.170.2:80.
set -euo pipefail

readonly IMDS_V4=169.254.169.254/32
readonly IMDS_V6=fd00:ec2::254/128
# Credentials endpoint address and port: docs/lifecycle.md, per-task credentials; fleetd's
# credentials server binds here.
readonly CREDS_ADDR=169.254.170.2
readonly CREDS_PORT=80
readonly INPUT_CHAIN=FLEET-CONTAINER-INPUT
readonly BRIDGES=(docker0 br-+)
readonly IPT=(iptables -w)
readonly IP6T=(ip6tables -w)

log() { printf 'host-isolation: %s\n' "$*"; }

# ensure_rule CMD... -- CHAIN RULE...: insert RULE at the top of CHAIN unless present.
ensure_rule() {
  local -a cmd=()
  while [[ $1 != -- ]]; do cmd+=("$1"); shift; done
  shift
  local chain=$1
  shift
  if ! "${cmd[@]}" -C "$chain" "$@" 2>/dev/null; then
    "${cmd[@]}" -I "$chain" 1 "$@"
    log "added to $chain: $*"
  fi
}

ensure_chain() {
  local chain=$1
  "${IPT[@]}" -n -L "$chain" >/dev/null 2>&1 || "${IPT[@]}" -N "$chain"
}

imds_rule() { printf '%s\n' -d "$IMDS_V4" -m comment --comment "agent-fleet: no IMDS from containers" -j REJECT; }

apply() {
  # 2. Credentials endpoint address on lo.
  if ! ip -4 addr show dev lo | grep -q "inet ${CREDS_ADDR}/32"; then
    ip addr add "${CREDS_ADDR}/32" dev lo
    log "added ${CREDS_ADDR}/32 to lo"
  fi

  # 1. IMDS. DOCKER-USER exists once dockerd ran; creating it first is what Docker expects.
  ensure_chain DOCKER-USER
  local -a rule
  mapfile -t rule < <(imds_rule)
  ensure_rule "${IPT[@]}" -- DOCKER-USER "${rule[@]}"
  if command -v ip6tables >/dev/null 2>&1; then
    # Docker's IPv6 is off by default; this guards hosts where someone turns it on.
    ensure_rule "${IP6T[@]}" -- FORWARD -d "$IMDS_V6" -j REJECT
  fi

  # 3. Nothing else on the host. The chain is rebuilt each time so it holds exactly this.
  ensure_chain "$INPUT_CHAIN"
  "${IPT[@]}" -F "$INPUT_CHAIN"
  "${IPT[@]}" -A "$INPUT_CHAIN" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  "${IPT[@]}" -A "$INPUT_CHAIN" -d "${CREDS_ADDR}/32" -p tcp --dport "$CREDS_PORT" -j ACCEPT
  "${IPT[@]}" -A "$INPUT_CHAIN" -j REJECT
  local bridge
  for bridge in "${BRIDGES[@]}"; do
    ensure_rule "${IPT[@]}" -- INPUT -i "$bridge" -j "$INPUT_CHAIN"
  done
}

check() {
  local -a rule
  mapfile -t rule < <(imds_rule)
  local failed=0
  ip -4 addr show dev lo | grep -q "inet ${CREDS_ADDR}/32" || { log "missing: ${CREDS_ADDR}/32 on lo"; failed=1; }
  "${IPT[@]}" -C DOCKER-USER "${rule[@]}" 2>/dev/null || { log "missing: DOCKER-USER IMDS reject"; failed=1; }
  local bridge
  for bridge in "${BRIDGES[@]}"; do
    "${IPT[@]}" -C INPUT -i "$bridge" -j "$INPUT_CHAIN" 2>/dev/null || { log "missing: INPUT -i $bridge -j $INPUT_CHAIN"; failed=1; }
  done
  if ((failed)); then
    return 1
  fi
  log "in place: IMDS rejected from containers, ${CREDS_ADDR}:${CREDS_PORT} on lo, host closed to containers"
}

case "${1:-}" in
  apply)
    apply
    check
    ;;
  check) check ;;
  *)
    echo "usage: $0 apply|check" >&2
    exit 64
    ;;
esac
