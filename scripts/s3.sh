#!/usr/bin/env bash
# A throwaway S3-compatible server for tests, on loopback only, without Docker: moto's server
# (PyPI's moto[server]) in a virtualenv in the cache.
#
#   scripts/s3.sh start      create the virtualenv once, start, wait until it answers S3 requests
#   scripts/s3.sh stop       stop (SIGKILL after UPDRAFT_S3_STOP_TIMEOUT)
#   scripts/s3.sh status     exit 0 when running, 3 when not
#   scripts/s3.sh url        print the endpoint URL (whether running or not)
#   scripts/s3.sh python     the virtualenv's python (boto3 is there), e.g. for a quick check:
#                            scripts/s3.sh python -c 'import boto3; ...'
#
# It lives in ${UPDRAFT_CACHE:-$HOME/.cache/updraft}/s3: venv/, log/server.log, run/server.pid,
# and serves http://127.0.0.1:${UPDRAFT_S3_PORT:-19000} with path-style addressing (set the
# client's endpoint to the URL and force path style). Any access key and secret are accepted;
# use region us-east-1. Buckets live in memory: a stop loses them.
#
# Invariant: every command is idempotent and safe to run concurrently (an flock serialises them);
# every wait is bounded; nothing listens on anything but 127.0.0.1.
set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${UPDRAFT_CACHE:-$HOME/.cache/updraft}"
SERVER=s3
ROOT="$CACHE/s3"
VENV="$ROOT/venv"
# moto_server's command line is `$VENV/bin/python $VENV/bin/moto_server ...`: the path is unique
# to this cache.
MARKER="$VENV/bin/moto_server"
HOST=127.0.0.1
PORT="${UPDRAFT_S3_PORT:-19000}"
START_TIMEOUT="${UPDRAFT_S3_START_TIMEOUT:-60}"
STOP_TIMEOUT="${UPDRAFT_S3_STOP_TIMEOUT:-20}"
# Pinned: a new moto is picked up by changing this line (the venv is then rebuilt once).
REQUIREMENTS=('moto[server]==5.2.5' 'boto3')
LOG_DIR="$ROOT/log"
LOG_FILE="$LOG_DIR/server.log"
PORT_FILE="$ROOT/run/port"
URL="http://$HOST:$PORT"
# shellcheck source=scripts/lib/daemon.sh
source "$SCRIPTS_DIR/lib/daemon.sh"

# Ready: an S3 ListBuckets answers 200 with its XML (no extra tools: the venv's python).
s3_ready() {
  timeout 5 "$VENV/bin/python" - "$URL" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/", timeout=3) as r:
    body = r.read()
    sys.exit(0 if r.status == 200 and b"ListAllMyBucketsResult" in body else 1)
EOF
}

running_port() { cat "$PORT_FILE" 2>/dev/null || true; }

cmd_start() {
  local started=$SECONDS
  reuse_running_daemon "S3 answers on $URL" s3_ready && return 0
  remove_stale_pid_file
  check_port_free "$PORT" "UPDRAFT_S3_PORT"
  ensure_venv "$VENV" "${REQUIREMENTS[@]}"
  rotate_log "$LOG_FILE"
  log "starting on $URL (log: $LOG_FILE)"
  start_daemon "$LOG_FILE" "$VENV/bin/python" "$VENV/bin/moto_server" -H "$HOST" -p "$PORT"
  printf '%s\n' "$PORT" >"$PORT_FILE"
  wait_for "$START_TIMEOUT" "S3 answers on $URL" "$LOG_FILE" s3_ready
  log "ready in $((SECONDS - started))s: $URL"
}

cmd_stop() { stop_daemon "$STOP_TIMEOUT"; }

cmd_status() { daemon_status "http://$HOST:$(running_port)"; }

usage() {
  echo "usage: $0 start|stop|status|url|python [args]" >&2
  exit 2
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  start) with_lock cmd_start ;;
  stop) with_lock cmd_stop ;;
  status) cmd_status ;;
  url) echo "$URL" ;;
  python)
    [[ -x $VENV/bin/python ]] || die "no virtualenv yet: scripts/s3.sh start"
    exec "$VENV/bin/python" "$@"
    ;;
  *) usage ;;
esac
