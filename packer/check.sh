#!/usr/bin/env bash
# Offline checks of the AMI sources (packer/), run by .ci/run and by hand:
#
#   bash packer/check.sh
#
# 1. packer fmt -check on every *.pkr.hcl.
# 2. packer validate (both architectures) with Debian's packer 1.6.6, on a copy of packer/
#    that leaves out what 1.6 rejects: plugins.pkr.hcl (the `packer { required_plugins }`
#    block) and the lines between the "packer >= 1.7 only" markers in fleetd.pkr.hcl
#    (metadata_options, imds_support). The file provisioner checks that its source exists, so
#    the copy is validated against an empty stand-in for dist/bundle: the bundle itself is
#    `npm run bundle`'s product, not a template property.
# 3. shellcheck on every shell script in packer/ (provisioning scripts, host scripts installed
#    on the instance, the fleetd wrapper, and this file) and in test/helpers/systemd-boot/
#    (the boot test of these units).
# 4. systemd-analyze verify on the units, with ANY output on stderr counted as a failure:
#    systemd-analyze exits 0 on unknown directives and bad values, it only warns. It also
#    insists that every ExecStart= binary and every unit named in Requires= exists, and neither
#    fleetd nor docker.service is on a CI machine. So it runs against a temporary root
#    (--root): the host's own systemd units (for sysinit.target, network-online.target, ...),
#    our units in /etc/systemd/system, a stub docker.service, and empty executable stand-ins
#    at the real ExecStart paths. The units themselves are verified unmodified.
# 6. Confinement: daemon.json's userns-remap user is the one 30-host.sh creates with subuid and
#    subgid ranges, 30-host.sh puts rootflags=pquota on the kernel command line, and fleetd's
#    unit may write /var/lib/docker (a task's output volume).
# 5. The paths and names shared with daemon/src/contract (config path, socket path, work dir,
#    binary path, environment variable names, tag prefix) are the ones the unit and scripts
#    use, and fleetd's default drain budget ends 2 min or more before TimeoutStopSec.
#
# Missing tools are installed (apt-get update once, then apt-get install), so this passes on a
# fresh Debian machine. Exits non-zero if any check fails; all checks run either way.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Packer 1.6 would otherwise ask checkpoint.hashicorp.com for updates.
export CHECKPOINT_DISABLE=1

passed=0
failed=0
failures=()

ensure_tools() {
  local -a missing=()
  command -v packer >/dev/null || missing+=(packer)
  command -v shellcheck >/dev/null || missing+=(shellcheck)
  command -v systemd-analyze >/dev/null || missing+=(systemd)
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  echo "check: installing ${missing[*]} (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# run NAME FUNCTION: run one check, timed, and record its result.
run() {
  local name=$1 started result=ok ms
  shift
  started=${EPOCHREALTIME/./}
  if "$@"; then
    passed=$((passed + 1))
  else
    result=FAIL
    failed=$((failed + 1))
    failures+=("$name")
  fi
  ms=$(((${EPOCHREALTIME/./} - started) / 1000))
  printf 'check: %-4s %-28s %4d.%01ds\n' "$result" "$name" $((ms / 1000)) $((ms % 1000 / 100))
}

check_fmt() {
  packer fmt -check -diff "$here"
}

check_validate() {
  local copy=$work/packer-1.6 arch
  mkdir -p "$copy" "$work/empty-bundle"
  cp "$here"/*.pkr.hcl "$copy"/
  cp -r "$here/files" "$here/scripts" "$copy"/
  rm "$copy/plugins.pkr.hcl"
  sed -i '/# packer >= 1.7 only: begin/,/# packer >= 1.7 only: end/d' "$copy/fleetd.pkr.hcl"
  for arch in arm64 x86_64; do
    packer validate -var "region=us-east-1" -var "arch=$arch" \
      -var "fleetd_bundle_dir=$work/empty-bundle" "$copy" || return 1
  done
}

shell_scripts() {
  find "$here" "$repo/test/helpers/systemd-boot" -type f \( -name '*.sh' -o -path '*/files/bin/*' \) | sort
}

check_shellcheck() {
  local -a scripts
  mapfile -t scripts < <(shell_scripts)
  echo "shellcheck: ${#scripts[@]} scripts"
  shellcheck -x "${scripts[@]}"
}

check_units() {
  local root=$work/root stub
  local system_units=/usr/lib/systemd/system
  [[ -d $system_units ]] || system_units=/lib/systemd/system
  mkdir -p "$root/etc/systemd/system" "$root/usr/lib/systemd"
  cp -r "$system_units" "$root/usr/lib/systemd/"
  cp "$here"/files/*.service "$here"/files/*.timer "$root/etc/systemd/system/"
  printf '[Unit]\nDescription=stand-in for Docker\n[Service]\nExecStart=/usr/bin/dockerd\n' \
    >"$root/etc/systemd/system/docker.service"
  # Every absolute ExecStart path in our units, plus the stub's.
  for stub in /usr/bin/dockerd $(sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\(\/[^ ]*\).*/\1/p' "$here"/files/*.service | sort -u); do
    mkdir -p "$root$(dirname "$stub")"
    printf '#!/bin/sh\n' >"$root$stub"
    chmod +x "$root$stub"
  done
  local -a units=()
  local unit
  for unit in "$here"/files/*.service "$here"/files/*.timer; do
    units+=("$root/etc/systemd/system/$(basename "$unit")")
  done
  if ! systemd-analyze verify --man=no --root="$root" "${units[@]}" 2>"$work/verify.err"; then
    cat "$work/verify.err"
    return 1
  fi
  if [[ -s $work/verify.err ]]; then
    echo "systemd-analyze verify exited 0 but warned (counted as failure):"
    cat "$work/verify.err"
    return 1
  fi
}

# The unit and scripts repeat names from daemon/src/contract (systemd and bash cannot import
# them). This reads them from the contract and greps for each in the file that uses it.
check_contract() {
  local tsx=$repo/node_modules/.bin/tsx
  if [[ ! -x $tsx ]]; then
    echo "node_modules missing: run npm ci first"
    return 1
  fi
  local -a lines
  # shellcheck disable=SC2016 # ${...} below is TypeScript, not shell.
  mapfile -t lines < <(cd "$repo" && "$tsx" --eval '
    const c = require("./daemon/src/contract");
    const socketDir = c.DEFAULT_SOCKET_PATH.replace(/\/[^/]+$/, "");
    const u = "packer/files/fleetd.service";
    // SIGTERM drains within drainBudgetSeconds; systemd SIGKILLs after TimeoutStopSec (15 min).
    const drain = c.FleetdConfigFileSchema.shape.drainBudgetSeconds.parse(undefined);
    if (!(drain + 120 <= 15 * 60)) console.log(`${u}\tdefault drainBudgetSeconds ${drain} s leaves under 2 min before TimeoutStopSec=15min`);
    for (const [file, text] of [
      [u, `Environment=${c.FLEET_ENV.config}=${c.DEFAULT_CONFIG_PATH}`],
      [u, `ConditionPathExists=${c.DEFAULT_CONFIG_PATH}`],
      [u, `Environment=${c.FLEET_ENV.socket}=${c.DEFAULT_SOCKET_PATH}`],
      [u, `RuntimeDirectory=${socketDir.replace(/^\/run\//, "")}`],
      [u, `ExecStart=${c.FLEETD_BIN_PATH} run`],
      [u, `StateDirectory=${c.DEFAULT_WORK_DIR.replace(/^\/var\/lib\//, "")}`],
      ...Object.entries(c.FLEETD_PROCESS_ENV).map(([k, v]) => [u, `Environment=${k}=${v}`]),
      ["packer/files/bin/fleetd", `exec /usr/bin/node-20 ${c.FLEETD_NODE_FLAGS.join(" ")} /opt/fleetd/fleetd.js`],
      ["packer/scripts/20-fleetd.sh", `"$files/bin/fleetd" ${c.FLEETD_BIN_PATH}`],
      ["packer/files/mark-unhealthy.sh", `prefix=${c.DEFAULT_TAG_PREFIX}`],
      ["packer/files/mark-unhealthy.sh", `CONFIG=${c.DEFAULT_CONFIG_PATH}`],
    ]) console.log(`${file}\t${text}`);
  ')
  if ((${#lines[@]} == 0)); then
    echo "could not read daemon/src/contract"
    return 1
  fi
  local line file text bad=0
  for line in "${lines[@]}"; do
    file=${line%%$'\t'*}
    text=${line#*$'\t'}
    if ! grep -qF -- "$text" "$repo/$file"; then
      echo "$file: expected '$text' (from daemon/src/contract)"
      bad=1
    fi
  done
  return "$bad"
}

# Confinement (docs/security.md): dockerd remaps to the user 30-host.sh gives subordinate ids,
# the root file system gets project quotas for the engine's disk bounds, and fleetd may open a
# task's output volume (the one ReadWritePaths outside its own directories).
check_confinement() {
  local user bad=0 host=$here/scripts/30-host.sh
  user=$(jq -er '."userns-remap"' "$here/files/docker-daemon.json") || { echo "docker-daemon.json: no userns-remap"; return 1; }
  grep -q "^id -u $user .*useradd .* $user\$" "$host" || { echo "30-host.sh: does not create the remap user $user"; bad=1; }
  grep -qF "echo \"$user:\${remap_start}:65536\"" "$host" || { echo "30-host.sh: no subuid/subgid range for $user"; bad=1; }
  grep -qF 'grubby --update-kernel=ALL --args=rootflags=pquota' "$host" || { echo "30-host.sh: no rootflags=pquota"; bad=1; }
  grep -qx 'ReadWritePaths=-/var/lib/docker' "$here/files/fleetd.service" || { echo "fleetd.service: no ReadWritePaths=-/var/lib/docker"; bad=1; }
  return "$bad"
}

ensure_tools
run "packer fmt -check" check_fmt
run "packer validate (1.6 set)" check_validate
run "shellcheck" check_shellcheck
run "systemd-analyze verify" check_units
run "contract names" check_contract
run "confinement settings" check_confinement

if ((failed > 0)); then
  echo "check: failed: ${failures[*]}"
fi
echo "packer-check: ${passed} passed, ${failed} failed"
((failed == 0))
