#!/bin/sh
# Demo agent: behaves as its environment says, so the demo and the tests can exercise every
# outcome with one image. Reads the payload the way an ABCA agent would (AGENT_PAYLOAD, or the
# read-only file at FLEET_PAYLOAD_FILE) and writes result.json into FLEET_OUTPUT_DIR.
#   DEMO_SLEEP_S      seconds of "work" (default 1)
#   DEMO_EXIT_CODE    exit code (default 0)
#   DEMO_MODE         oom | flood | ignore-term | bad-result | huge-result (optional)
set -u
echo "demo agent: task ${TASK_ID} attempt ${FLEET_ATTEMPT}"
bytes=$(wc -c < "${FLEET_PAYLOAD_FILE}")
echo "demo agent: payload file has ${bytes} bytes"
if [ -n "${DEMO_SECRET_ECHO:-}" ]; then
  # Prints a secret on purpose: fleetd must redact it from every log tail.
  echo "demo agent: the token is ${DEMO_SECRET_ECHO}"
fi
mode="${DEMO_MODE:-}"
case "$mode" in
  oom) echo "demo agent: allocating without bound"; exec tail /dev/zero ;;
  flood) echo "demo agent: flooding stdout"; yes "flood line to fill the log" | head -c 50000000 ;;
  ignore-term) trap '' TERM; echo "demo agent: ignoring SIGTERM" ;;
esac
sleep "${DEMO_SLEEP_S:-1}" &
wait $!
echo "demo agent: writing result" >&2
case "$mode" in
  bad-result) echo '{"not json' > "${FLEET_OUTPUT_DIR}/result.json" ;;
  huge-result) head -c 200000 /dev/zero | tr '\0' 'x' > "${FLEET_OUTPUT_DIR}/result.json" ;;
  *) printf '{"summary":"demo agent finished","task_id":"%s","payload_bytes":%s}\n' "${TASK_ID}" "${bytes}" > "${FLEET_OUTPUT_DIR}/result.json" ;;
esac
exit "${DEMO_EXIT_CODE:-0}"
