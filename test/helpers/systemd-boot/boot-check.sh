#!/usr/bin/env bash
# Boots the AMI's units for real: systemd as PID 1 in a container on the local Docker engine
# (image from rootfs.sh), provisioned by the AMI's own scripts (packer/scripts/20-fleetd.sh and
# 30-host.sh), then checks what the issue asks of the unit:
#
#   test/helpers/systemd-boot/boot-check.sh [--bundle DIR] [--start-limit] [--keep]
#                                            [--share DIR] [--prepare-only]
#
#   boot        systemd is PID 1 and reaches "running" (or "degraded" with the reason shown)
#   provision   20-fleetd.sh and 30-host.sh run cleanly on Debian's systemd
#   reboot      the provisioned container boots again; without a config fleetd is skipped
#   isolation   fleetd-host-isolation.service applied its rules at boot, in the container's netns
#   start       fleetd.service starts; with the stand-in (default), every standin-check is ok
#   journal     fleetd's lines reach /var/log/fleetd/fleetd.log through rsyslog
#   restart     `kill -9` of the main process: systemd restarts it (NRestarts 1)
#   stop        `systemctl stop` drains (SIGTERM to fleetd only) and ends within TimeoutStopSec
#   start-limit (--start-limit) repeated crashes exhaust StartLimitBurst; OnFailure runs
#               fleetd-unhealthy.service (which then fails here: no IMDS in the container)
#
# --bundle DIR runs a real fleetd bundle (fleetd.js from `npm run bundle`) instead of the
# stand-in (standin-fleetd.cjs), with an invalid config: `start` then checks that it loads and
# runs under the hardening and that its exit 78 is not restarted. (Running tasks against the
# local stack needs its services inside the box's network namespace: not done here.)
#
# --share DIR mounts DIR at the same path in the box (read-write). --prepare-only stops after
# `isolation` and leaves the provisioned, rebooted box running (fleetd not started) for a
# driver such as e2e.ts; its last line is `boot-check: box NAME`.
#
# The engine's socket is mounted at /run/docker.sock and docker.service is a stand-in unit:
# the container runs no dockerd of its own. The host's Node 20 is mounted as /usr/bin/node-20.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
bundle=""
start_limit=false
keep=false
prepare_only=false
share=""
while (($#)); do
  case $1 in
    --bundle) bundle=$(cd "$2" && pwd); shift 2 ;;
    --start-limit) start_limit=true; shift ;;
    --keep) keep=true; shift ;;
    --prepare-only) prepare_only=true; keep=true; shift ;;
    --share) share=$(cd "$2" && pwd); shift 2 ;;
    *) echo "usage: $0 [--bundle DIR] [--start-limit] [--keep] [--share DIR] [--prepare-only]" >&2; exit 64 ;;
  esac
done

# shellcheck source=SCRIPTDIR/engine.sh
source "$here/engine.sh"
use_engine "$repo"
image=$(bash "$here/rootfs.sh")
engine_socket=${DOCKER_HOST#unix://}
[[ -S $engine_socket ]] || { echo "boot-check: DOCKER_HOST must be a local unix socket, got $DOCKER_HOST" >&2; exit 1; }
node_bin=$(readlink -f "$(command -v node)")
[[ $(node --version) == v20.* ]] || { echo "boot-check: needs Node 20 on the host" >&2; exit 1; }

name=agent-fleet-boot-$$
staging=$(mktemp -d)
cleanup() {
  if [[ $prepare_only == true ]]; then
    echo "boot-check: box $name"
  elif [[ $keep == true ]]; then
    echo "boot-check: kept container $name (docker rm -f $name)"
  else
    docker rm -f "$name" >/dev/null 2>&1 || true
  fi
  rm -rf "$staging"
}
trap cleanup EXIT

# What packer uploads to the build instance: the bundle and packer/files (+ the scripts).
mkdir -p "$staging/bundle"
if [[ -n $bundle ]]; then
  cp -r "$bundle"/. "$staging/bundle/"
else
  cp "$here/standin-fleetd.cjs" "$staging/bundle/fleetd.js"
fi
cp -r "$repo/packer/files" "$repo/packer/scripts" "$staging/"
chmod -R a+rX "$staging"

passed=0
failed=0
result() {
  if [[ $2 == ok ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  printf 'boot-check: %-4s %-12s %s\n' "$2" "$1" "${*:3}"
}
in_box() { docker exec "$name" "$@"; }
# wait_for SECONDS COMMAND...: poll until the command succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}
prop() { in_box systemctl show -p "$2" --value "$1"; }
# shellcheck disable=SC2016 # expanded by the container's shell
system_up() { in_box sh -c 's=$(systemctl is-system-running); [ "$s" = running ] || [ "$s" = degraded ]'; }
failed_units() { in_box systemctl --failed --no-legend --plain | awk '{print $1}' | paste -sd' ' - || true; }

# --privileged needs every capability; where the engine lacks one (CAP_SYS_RESOURCE in some
# sandboxes), grant all it has, unconfined, with a writable cgroup tree instead.
# --network none: the box needs no network (the engine is a mounted Unix socket, host
# isolation works on its own lo), and nothing it runs can send a packet off this machine.
run_args=(-d --name "$name" --hostname fleet-boot --stop-signal SIGRTMIN+3 --network none
  --tmpfs /run --tmpfs /run/lock --tmpfs /tmp
  -v "$engine_socket:/run/docker.sock" -v "$node_bin:/usr/bin/node-20:ro"
  -v "$staging:/fleetd-staging:ro")
if [[ -n $share ]]; then
  run_args+=(-v "$share:$share")
fi
started=$SECONDS
if ! docker run --privileged "${run_args[@]}" "$image" >/dev/null 2>"$staging.err"; then
  docker rm -f "$name" >/dev/null 2>&1 || true
  echo "boot-check: --privileged refused ($(tail -1 "$staging.err")); using all available capabilities"
  docker run --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined \
    --security-opt apparmor=unconfined --cgroupns host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
    "${run_args[@]}" "$image" >/dev/null
fi
rm -f "$staging.err"

# boot
if wait_for 60 system_up; then
  state=$(in_box systemctl is-system-running || true)
  failed_units=$(failed_units)
  result boot "$([[ $(in_box ps -p 1 -o comm=) == systemd ]] && echo ok || echo FAIL)" \
    "PID 1 $(in_box ps -p 1 -o comm=), $state in $((SECONDS - started)) s${failed_units:+ (failed: $failed_units)}"
else
  result boot FAIL "systemd did not reach running: $(in_box systemctl is-system-running 2>&1 || true)"
  exit 1
fi

# provision: the AMI's own scripts; docker.service is a stand-in here.
docker exec -i "$name" sh -c 'cat >/etc/systemd/system/docker.service' <<'EOF'
[Unit]
Description=stand-in for Docker (boot-check: the local engine's socket is mounted)
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
EOF
# mark-unhealthy (OnFailure) must not look for a real IMDS: point it at a closed local port.
in_box mkdir -p /etc/systemd/system/fleetd-unhealthy.service.d
docker exec -i "$name" sh -c 'cat >/etc/systemd/system/fleetd-unhealthy.service.d/boot-check.conf' <<'EOF'
[Service]
Environment=AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:9/
EOF
if in_box sh -c 'systemctl daemon-reload &&
    FLEETD_STAGING=/fleetd-staging bash /fleetd-staging/scripts/20-fleetd.sh &&
    FLEETD_STAGING=/fleetd-staging bash /fleetd-staging/scripts/30-host.sh' >"$staging.prov" 2>&1; then
  result provision ok "20-fleetd.sh, 30-host.sh"
else
  result provision FAIL "$(tail -5 "$staging.prov")"
fi
rm -f "$staging.prov"

# reboot: the provisioned disk boots again, as an instance from the AMI does. At this first
# boot there is no config yet: fleetd.service must be skipped (condition), not failed.
in_box systemctl enable docker.service >/dev/null 2>&1
t0=$SECONDS
docker restart -t 60 "$name" >/dev/null
if wait_for 60 system_up; then
  condition=$(prop fleetd.service ConditionResult)
  state=$(in_box systemctl is-system-running || true)
  result reboot "$([[ $state == running && $condition == no && $(prop fleetd.service ActiveState) == inactive ]] && echo ok || echo FAIL)" \
    "$state again in $((SECONDS - t0)) s$( [[ $state == running ]] || echo " (failed: $(failed_units))"); without config fleetd is skipped: ConditionResult=$condition ActiveState=$(prop fleetd.service ActiveState)"
else
  result reboot FAIL "after restart: $(in_box systemctl is-system-running 2>&1 || true)"
fi

# isolation: applied at boot, before docker.service (which requires it)
if in_box /usr/local/libexec/fleetd/host-isolation check >/dev/null 2>&1; then
  result isolation ok "at boot: $(in_box iptables -S DOCKER-USER | grep -c 169.254.169.254) IMDS reject in DOCKER-USER, $(in_box ip -4 -o addr show dev lo | grep -c 169.254.170.2) creds address on lo, $(in_box iptables -S INPUT | grep -c FLEET-CONTAINER-INPUT) bridge INPUT jumps"
else
  result isolation FAIL "$(in_box /usr/local/libexec/fleetd/host-isolation check 2>&1 | tail -3)"
fi

if [[ $prepare_only == true ]]; then
  echo "boot-check: prepared: ${passed} passed, ${failed} failed"
  ((failed == 0))
  exit
fi

# start, as user data does: write the config, then start the unit
in_box sh -c 'echo "{}" >/etc/fleetd/config.json'
in_box systemctl start fleetd.service || true
journal() { in_box journalctl -u fleetd.service --no-pager -o cat; }
ready_count() { journal | grep -c '^standin-ready' || true; }
if [[ -n $bundle ]]; then
  # The real fleetd with an invalid config ({}): it must load and run under the unit's
  # hardening, report the problem, and exit 78, which systemd must not restart.
  wait_for 20 sh -c "[ \"\$(docker exec $name systemctl show -p ActiveState --value fleetd.service)\" = failed ]" || true
  status=$(prop fleetd.service ExecMainStatus)
  restarts=$(prop fleetd.service NRestarts)
  problem=$(journal | grep -m1 'invalid configuration' | cut -c1-160)
  result start "$([[ $status == 78 && $restarts == 0 && -n $problem ]] && echo ok || echo FAIL)" \
    "real bundle, config {}: exit $status, NRestarts=$restarts, $(prop fleetd.service ActiveState); ${problem:-no 'invalid configuration' line: $(journal | tail -3 | paste -sd'|' -)}"
else
  if wait_for 20 sh -c "[ \"\$(docker exec $name journalctl -u fleetd.service -o cat | grep -c '^standin-ready')\" -ge 1 ]"; then
    checks=$(journal | grep '^standin-check' || true)
    bad=$(grep -c ' FAIL ' <<<"$checks" || true)
    result start "$([[ $bad == 0 ]] && echo ok || echo FAIL)" "$(awk '{print $2"="$3}' <<<"$checks" | paste -sd' ' -)"
    [[ $bad == 0 ]] || grep ' FAIL ' <<<"$checks" | sed 's/^/    /'
  else
    result start FAIL "no standin-ready; $(prop fleetd.service ActiveState): $(journal | tail -5 | paste -sd'|' -)"
  fi

  # journal -> rsyslog -> /var/log/fleetd/fleetd.log (what the CloudWatch agent tails)
  if wait_for 10 in_box grep -q standin-ready /var/log/fleetd/fleetd.log; then
    result journal ok "/var/log/fleetd/fleetd.log has $(in_box grep -c standin /var/log/fleetd/fleetd.log) fleetd lines"
  else
    result journal FAIL "/var/log/fleetd/fleetd.log lacks fleetd's lines"
  fi

  # restart after kill -9
  pid=$(prop fleetd.service MainPID)
  ((pid > 0)) && in_box kill -9 "$pid"
  if ((pid > 0)) && wait_for 30 sh -c "[ \"\$(docker exec $name journalctl -u fleetd.service -o cat | grep -c '^standin-ready')\" -ge 2 ]"; then
    result restart ok "kill -9 $pid: restarted as $(prop fleetd.service MainPID), NRestarts=$(prop fleetd.service NRestarts)"
  else
    result restart FAIL "after kill -9: $(prop fleetd.service ActiveState) NRestarts=$(prop fleetd.service NRestarts)"
  fi

  # stop = drain, within TimeoutStopSec
  timeout_us=$(prop fleetd.service TimeoutStopUSec)
  t0=$SECONDS
  in_box systemctl stop fleetd.service
  took=$((SECONDS - t0))
  stop_result=$(prop fleetd.service Result)
  drained=$(journal | grep -c '^standin-stopped' || true)
  result stop "$([[ $stop_result == success && $drained -ge 1 ]] && echo ok || echo FAIL)" \
    "stopped in ${took} s (TimeoutStopSec ${timeout_us}), Result=$stop_result, drained and exited 0: $drained"

  if [[ $start_limit == true ]]; then
    in_box systemctl reset-failed fleetd.service fleetd-unhealthy.service || true
    in_box systemctl start fleetd.service
    burst=$(prop fleetd.service StartLimitBurst)
    for ((i = 1; i <= burst; i++)); do
      wait_for 30 sh -c "[ \"\$(docker exec $name systemctl show -p ActiveState --value fleetd.service)\" = active ]" || break
      sleep 1
      in_box sh -c "kill -9 \$(systemctl show -p MainPID --value fleetd.service)" || true
    done
    if wait_for 40 sh -c "docker exec $name journalctl -u fleetd.service -o cat | grep -q 'Start request repeated too quickly'" &&
      wait_for 30 sh -c "docker exec $name journalctl -u fleetd-unhealthy.service -o cat | grep -q 'mark-unhealthy\\|Finished\\|Failed'"; then
      unhealthy=$(in_box journalctl -u fleetd-unhealthy.service --no-pager -o cat | grep -v '^$' | tail -3 | paste -sd'|' -)
      result start-limit ok "fleetd $(prop fleetd.service ActiveState) after $burst crashes (start request repeated too quickly); OnFailure ran fleetd-unhealthy: $unhealthy"
    else
      result start-limit FAIL "Result=$(prop fleetd.service Result) ActiveState=$(prop fleetd.service ActiveState)"
    fi
  fi
fi

# The container itself stops cleanly on SIGRTMIN+3.
t0=$SECONDS
docker stop -t 60 "$name" >/dev/null
result shutdown ok "docker stop took $((SECONDS - t0)) s"

echo "boot-check: ${passed} passed, ${failed} failed"
((failed == 0))
