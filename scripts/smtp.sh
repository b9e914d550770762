#!/usr/bin/env bash
# A throwaway SMTP server for tests, on loopback only, without Docker: PyPI's aiosmtpd in a
# virtualenv in the cache, run by scripts/smtp_server.py, which saves every message to a folder.
#
#   scripts/smtp.sh start      create the virtualenv once, start, wait until it greets (220)
#   scripts/smtp.sh stop       stop (SIGKILL after UPDRAFT_SMTP_STOP_TIMEOUT)
#   scripts/smtp.sh status     exit 0 when running, 3 when not
#   scripts/smtp.sh url        print host:port (whether running or not)
#   scripts/smtp.sh maildir    print the folder the messages are saved in
#   scripts/smtp.sh clear      delete the saved messages (the server may keep running)
#   scripts/smtp.sh python     the virtualenv's python (smtplib is in the standard library), e.g.
#                              scripts/smtp.sh python -c 'import smtplib; ...'
#
# It lives in ${UPDRAFT_CACHE:-$HOME/.cache/updraft}/smtp: venv/, log/server.log, run/server.pid,
# mail/, and listens on 127.0.0.1:${UPDRAFT_SMTP_PORT:-11025}: plain SMTP, no TLS and no
# STARTTLS; AUTH PLAIN and LOGIN accept any user and password over the plain connection, and
# mail without AUTH is accepted too. Any sender and recipient is accepted; nothing is relayed.
#
# Every message is saved in mail/ as two files with the same NAME, which sorts by arrival
# (<nanoseconds since the epoch, 20 digits>-<counter>): NAME.json, the envelope ({"mail_from",
# "rcpt_tos": [...], "auth_user": user or null, "mail_options", "rcpt_options", "helo", "peer",
# "received_at", "size", "message": "NAME.eml"}), written first, then NAME.eml, the raw RFC 5322
# message exactly as received (CRLF line ends, dot-stuffing undone, no header added). Both are
# written in mail/.tmp/ and renamed, so a reader never sees half a file: look for *.eml, and its
# .json is there. Messages survive a stop; `clear` (or deleting the files) removes them. Tests
# share the folder: find your message by something unique in it (a recipient, a subject), not
# by counting files.
#
# Invariant: every command is idempotent and safe to run concurrently (an flock serialises
# start, stop and clear); every wait is bounded; nothing listens on anything but 127.0.0.1.
set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${UPDRAFT_CACHE:-$HOME/.cache/updraft}"
SERVER=smtp
ROOT="$CACHE/smtp"
VENV="$ROOT/venv"
MAILDIR="$ROOT/mail"
# The server's command line is `$VENV/bin/python .../smtp_server.py ... --maildir=$MAILDIR`: the
# path is unique to this cache.
MARKER="--maildir=$MAILDIR"
HOST=127.0.0.1
PORT="${UPDRAFT_SMTP_PORT:-11025}"
START_TIMEOUT="${UPDRAFT_SMTP_START_TIMEOUT:-30}"
STOP_TIMEOUT="${UPDRAFT_SMTP_STOP_TIMEOUT:-10}"
# Pinned: a new aiosmtpd is picked up by changing this line (the venv is then rebuilt once).
REQUIREMENTS=('aiosmtpd==1.4.6')
LOG_DIR="$ROOT/log"
LOG_FILE="$LOG_DIR/server.log"
PORT_FILE="$ROOT/run/port"
URL="$HOST:$PORT"
# shellcheck source=scripts/lib/daemon.sh
source "$SCRIPTS_DIR/lib/daemon.sh"

# Ready: the port answers with an SMTP greeting (220) and a QUIT is answered (221), read with
# the venv's python (no extra tools).
smtp_ready() {
  timeout 5 "$VENV/bin/python" - "$HOST" "$PORT" <<'EOF' >/dev/null 2>&1
import smtplib, sys
s = smtplib.SMTP(timeout=3)
code, _ = s.connect(sys.argv[1], int(sys.argv[2]))
ok = code == 220
code, _ = s.docmd("QUIT")
s.close()
sys.exit(0 if ok and code == 221 else 1)
EOF
}

running_port() { cat "$PORT_FILE" 2>/dev/null || true; }

cmd_start() {
  local started=$SECONDS
  reuse_running_daemon "an SMTP greeting on $URL" smtp_ready && return 0
  remove_stale_pid_file
  check_port_free "$PORT" "UPDRAFT_SMTP_PORT"
  ensure_venv "$VENV" "${REQUIREMENTS[@]}"
  mkdir -p "$MAILDIR"
  rotate_log "$LOG_FILE"
  log "starting on $URL, saving messages to $MAILDIR (log: $LOG_FILE)"
  start_daemon "$LOG_FILE" "$VENV/bin/python" -u "$SCRIPTS_DIR/smtp_server.py" \
    --host="$HOST" --port="$PORT" "--maildir=$MAILDIR"
  printf '%s\n' "$PORT" >"$PORT_FILE"
  wait_for "$START_TIMEOUT" "an SMTP greeting on $URL" "$LOG_FILE" smtp_ready
  log "ready in $((SECONDS - started))s: $URL"
}

cmd_stop() { stop_daemon "$STOP_TIMEOUT"; }

cmd_status() { daemon_status "$HOST:$(running_port), messages in $MAILDIR"; }

# Only our own files: NAME.eml and NAME.json, and what a crash left in .tmp/.
cmd_clear() {
  [[ -d $MAILDIR ]] || return 0
  find "$MAILDIR" -mindepth 1 -maxdepth 2 -type f \( -name '*.eml' -o -name '*.json' \) -delete
  log "cleared $MAILDIR"
}

usage() {
  echo "usage: $0 start|stop|status|url|maildir|clear|python [args]" >&2
  exit 2
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  start) with_lock cmd_start ;;
  stop) with_lock cmd_stop ;;
  status) cmd_status ;;
  url) echo "$URL" ;;
  maildir) echo "$MAILDIR" ;;
  clear) with_lock cmd_clear ;;
  python)
    [[ -x $VENV/bin/python ]] || die "no virtualenv yet: scripts/smtp.sh start"
    exec "$VENV/bin/python" "$@"
    ;;
  *) usage ;;
esac
