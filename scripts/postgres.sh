#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests and benchmarks, on loopback only.
#
#   scripts/postgres.sh start     install the server if missing, initdb once, start, create role+db
#   scripts/postgres.sh stop      fast shutdown (running clients are disconnected)
#   scripts/postgres.sh status    exit 0 when running, 3 when not
#   scripts/postgres.sh url       print the connection URL (whether running or not)
#   scripts/postgres.sh psql      open psql on the updraft database (extra args go to psql)
#   scripts/postgres.sh destroy   stop and delete the cluster (the next start runs initdb again)
#
# Where the cluster lives (data/, run/ for the unix socket, log/postgres.log):
# - run by a user: in ${UPDRAFT_CACHE:-$HOME/.cache/updraft}/pg, and the server runs as that user;
# - run by root: PostgreSQL refuses to run as root, so the server runs as the `postgres` system
#   user, who cannot enter root's home. The cluster then lives in a folder of its own that
#   `postgres` owns (mode 700): ${UPDRAFT_PG_DIR:-/var/tmp/updraft-pg-<n>}, n a checksum of the
#   cache path (two caches, two clusters). /var/tmp survives reboots, so it stays cached. The
#   permissions of the home folder and its parents are never changed.
# The lock stays in the cache. A cluster that an earlier version of this script kept in the
# cache as root is used where it is while it runs, and moved to the new folder when it next
# starts. It listens on 127.0.0.1:${UPDRAFT_PG_PORT:-54329}, tuned for speed, not durability
# (fsync=off): never point it at data you want to keep.
#
# Invariant: every command is idempotent and safe to run concurrently (an flock serialises them);
# nothing listens on anything but 127.0.0.1 and the unix socket of the cluster; nothing outside
# the cache and the cluster's folder is created or changed.
set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${UPDRAFT_CACHE:-$HOME/.cache/updraft}"
SERVER=postgres
# daemon.sh's ROOT: where the lock is.
ROOT="$CACHE/pg"
HOST=127.0.0.1
PORT="${UPDRAFT_PG_PORT:-54329}"
START_TIMEOUT="${UPDRAFT_PG_START_TIMEOUT:-30}"
DB_USER=updraft
DB_PASSWORD=updraft
DB_NAME=updraft
# Superuser created by initdb; reached only through the unix socket (trust auth there).
ADMIN_USER=postgres
URL="postgres://$DB_USER:$DB_PASSWORD@$HOST:$PORT/$DB_NAME"
# daemon.sh's running_pid is replaced below; its MARKER is not used.
MARKER=postgres
# shellcheck source=scripts/lib/daemon.sh
source "$SCRIPTS_DIR/lib/daemon.sh"

if [[ $EUID -eq 0 ]]; then
  RUN_AS=postgres
  PG_ROOT="${UPDRAFT_PG_DIR:-/var/tmp/updraft-pg-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)}"
else
  RUN_AS=$(id -un)
  PG_ROOT="$ROOT"
fi
# Where an earlier version of this script kept root's cluster.
LEGACY_DATA="$ROOT/data"

# The cluster's paths under PG_ROOT.
set_paths() {
  DATA_DIR="$PG_ROOT/data"
  SOCKET_DIR="$PG_ROOT/run"
  LOG_DIR="$PG_ROOT/log"
  LOG_FILE="$LOG_DIR/postgres.log"
  # Unix socket paths are limited to 107 bytes; a deep folder falls back to a short one in /tmp.
  if ((${#SOCKET_DIR} + ${#PORT} + 10 > 100)); then
    SOCKET_DIR="/tmp/updraft-pg-$(printf '%s' "$PG_ROOT" | cksum | cut -d' ' -f1)"
  fi
}
set_paths

# Runs a server binary as $RUN_AS, from a directory it can read (initdb/pg_ctl call getcwd).
# fd 9 (the lock below) is closed: the server would otherwise inherit it and hold it forever.
as_pg() {
  if [[ $EUID -eq 0 ]]; then
    (cd "$PG_ROOT" && LC_ALL=C LANG=C runuser -u "$RUN_AS" -- "$@" 9>&-)
  else
    (cd "$PG_ROOT" && LC_ALL=C LANG=C "$@" 9>&-)
  fi
}

# Picks the newest /usr/lib/postgresql/N/bin that has the server, else the one on PATH.
find_bindir() {
  local dir best=""
  while read -r dir; do
    [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres ]] && best="$dir"
  done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -V)
  if [[ -z $best ]] && command -v pg_ctl >/dev/null && command -v initdb >/dev/null; then
    best=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
  fi
  printf '%s' "$best"
}

ensure_binaries() {
  BIN_DIR=$(find_bindir)
  if [[ -z $BIN_DIR ]]; then
    apt_install postgresql
    BIN_DIR=$(find_bindir)
    [[ -n $BIN_DIR ]] || die "apt-get installed postgresql but no initdb/pg_ctl under /usr/lib/postgresql/*/bin"
  fi
  # psql/pg_isready normally sit beside the server; fall back to PATH (postgresql-client).
  PSQL="$BIN_DIR/psql"
  [[ -x $PSQL ]] || PSQL=$(command -v psql) || die "psql not found"
  PG_ISREADY="$BIN_DIR/pg_isready"
  [[ -x $PG_ISREADY ]] || PG_ISREADY=$(command -v pg_isready) || die "pg_isready not found"
  if [[ $EUID -eq 0 ]] && ! id -u "$RUN_AS" >/dev/null 2>&1; then
    log "creating system user $RUN_AS"
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash "$RUN_AS"
  fi
}

# Root's cluster folder: created for $RUN_AS, refused when it is a link or someone else's (a
# predictable name in a world-writable folder must not be taken over).
prepare_root() {
  local owner
  if [[ -L $PG_ROOT ]] || [[ -e $PG_ROOT && ! -d $PG_ROOT ]]; then
    die "$PG_ROOT is not a plain folder; remove it or set UPDRAFT_PG_DIR"
  fi
  mkdir -p "$PG_ROOT"
  owner=$(stat -c %U "$PG_ROOT")
  [[ $owner == root || $owner == "$RUN_AS" ]] ||
    die "$PG_ROOT belongs to $owner, not $RUN_AS; remove it or set UPDRAFT_PG_DIR"
  chown "$RUN_AS:" "$PG_ROOT"
  chmod 700 "$PG_ROOT"
  runuser -u "$RUN_AS" -- test -x "$PG_ROOT" ||
    die "$RUN_AS cannot reach $PG_ROOT; set UPDRAFT_PG_DIR to a folder it can reach"
}

prepare_dirs() {
  if [[ $EUID -eq 0 ]]; then
    prepare_root
  fi
  mkdir -p "$PG_ROOT" "$DATA_DIR" "$SOCKET_DIR" "$LOG_DIR"
  if [[ $EUID -eq 0 ]]; then
    chown "$RUN_AS:" "$DATA_DIR" "$SOCKET_DIR" "$LOG_DIR"
  fi
  chmod 700 "$DATA_DIR"
}

major_version() { "$BIN_DIR/pg_ctl" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/'; }

ensure_cluster() {
  local want
  want=$(major_version)
  if [[ -f $DATA_DIR/PG_VERSION ]]; then
    if [[ $(cat "$DATA_DIR/PG_VERSION") == "$want" ]]; then
      return 0
    fi
    log "cluster is from PostgreSQL $(cat "$DATA_DIR/PG_VERSION"), server is $want: re-creating it"
  fi
  # A missing PG_VERSION means no cluster or a half-finished initdb: start from empty.
  find "$DATA_DIR" -mindepth 1 -delete
  log "initdb $DATA_DIR (PostgreSQL $want)"
  as_pg "$BIN_DIR/initdb" -D "$DATA_DIR" -U "$ADMIN_USER" -E UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$PG_ROOT/initdb.log" 2>&1 ||
    {
      cat "$PG_ROOT/initdb.log" >&2
      die "initdb failed"
    }
}

# Settings are rewritten on every start so a changed port or socket dir takes effect.
write_config() {
  local conf="$DATA_DIR/updraft.conf"
  cat >"$conf" <<EOF
# Written by scripts/postgres.sh on every start; edits are lost.
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = '$SOCKET_DIR'
max_connections = 200
shared_buffers = 64MB
# A test cluster: speed over durability. A crash may lose or corrupt it; destroy and start again.
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
max_wal_size = 1GB
checkpoint_timeout = 30min
# JIT only slows the many tiny queries of a test suite.
jit = off
timezone = 'UTC'
lc_messages = 'C'
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
log_checkpoints = off
EOF
  [[ $EUID -ne 0 ]] || chown "$RUN_AS:" "$conf"
  grep -q "^include_if_exists = 'updraft.conf'" "$DATA_DIR/postgresql.conf" ||
    printf "\ninclude_if_exists = 'updraft.conf'\n" >>"$DATA_DIR/postgresql.conf"
}

# Prints the postmaster pid when the server of the cluster in $1 (default: this one) runs. A pid
# file whose process is gone, or is some other process that reused the pid after a crash, does
# not count: the postmaster runs in its data folder. (Replaces daemon.sh's, which reads a pid
# file of its own.)
running_pid() {
  local data="${1:-$DATA_DIR}" pid
  [[ -f $data/postmaster.pid ]] || return 1
  pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -d /proc/$pid ]] || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == postgres* ]] || return 1
  [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$(readlink -f "$data")" ]] || return 1
  printf '%s' "$pid"
}

# Root's cluster made in the cache by an earlier version of this script: while its server runs,
# this run uses it where it is (its socket folder is in its config); `move` (at start) moves a
# stopped one into PG_ROOT, so the next start serves it from there.
adopt_legacy() {
  local socket new_root="$PG_ROOT"
  [[ $EUID -eq 0 && $PG_ROOT != "$ROOT" && -f $LEGACY_DATA/PG_VERSION ]] || return 0
  [[ ! -f $PG_ROOT/data/PG_VERSION ]] || return 0
  if running_pid "$LEGACY_DATA" >/dev/null; then
    socket=$(sed -nE "s/^unix_socket_directories = '(.*)'$/\1/p" "$LEGACY_DATA/updraft.conf" \
      2>/dev/null || true)
    PG_ROOT="$ROOT"
    set_paths
    [[ -z $socket ]] || SOCKET_DIR="$socket"
    log "using the running cluster in $LEGACY_DATA (an earlier layout); it moves to" \
      "$new_root when it next starts"
    return 0
  fi
  [[ ${1:-} == move ]] || return 0
  prepare_dirs
  rmdir "$DATA_DIR"
  mv "$LEGACY_DATA" "$DATA_DIR"
  [[ ! -f $ROOT/log/postgres.log ]] || mv "$ROOT/log/postgres.log" "$LOG_DIR/postgres.log.old"
  log "moved the cluster from $LEGACY_DATA to $DATA_DIR (an earlier version of this script may" \
    "have granted $RUN_AS search permission on folders above the cache; this one needs none)"
}

running_port() { sed -n 4p "$DATA_DIR/postmaster.pid" 2>/dev/null || true; }

remove_stale_pid_file() {
  if [[ -f $DATA_DIR/postmaster.pid ]]; then
    log "removing stale pid file (server not running)"
    rm -f "$DATA_DIR/postmaster.pid"
  fi
  rm -f "$SOCKET_DIR"/.s.PGSQL.*.lock
}

wait_ready() {
  local deadline=$((SECONDS + START_TIMEOUT))
  until "$PG_ISREADY" -q -h "$HOST" -p "$PORT" -d postgres; do
    if ((SECONDS >= deadline)); then
      tail -n 30 "$LOG_FILE" >&2 || true
      die "server did not accept connections within ${START_TIMEOUT}s (log: $LOG_FILE)"
    fi
    sleep 0.2
  done
}

admin_psql() {
  "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -p "$PORT" -U "$ADMIN_USER" -d postgres
}

# Idempotent: the role always ends up with the known password, the database exists once.
# The role is a superuser: this cluster is a throwaway that tests may use freely (create
# databases, terminate sessions), never a model of production permissions.
ensure_role_and_db() {
  admin_psql <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE $DB_USER LOGIN SUPERUSER PASSWORD '$DB_PASSWORD';
  ELSE
    ALTER ROLE $DB_USER LOGIN SUPERUSER PASSWORD '$DB_PASSWORD';
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME')\gexec
SQL
  # The path the tests take: TCP on loopback with the password.
  "$PSQL" -X -q -At "$URL" -c 'select 1' >/dev/null || die "cannot connect with $URL"
}

stop_server() {
  local pid
  if ! pid=$(running_pid); then
    remove_stale_pid_file
    log "not running"
    return 0
  fi
  log "stopping (pid $pid)"
  if ! as_pg "$BIN_DIR/pg_ctl" stop -D "$DATA_DIR" -m fast -w -t "$START_TIMEOUT" -s; then
    log "fast shutdown timed out: immediate shutdown"
    as_pg "$BIN_DIR/pg_ctl" stop -D "$DATA_DIR" -m immediate -w -t "$START_TIMEOUT" -s
  fi
}

start_server() {
  local pid
  prepare_dirs
  ensure_cluster
  if pid=$(running_pid); then
    if [[ $(running_port) == "$PORT" ]]; then
      log "already running (pid $pid)"
      wait_ready
      ensure_role_and_db
      log "ready: $URL"
      return 0
    fi
    log "running on port $(running_port), wanted $PORT: restarting"
    stop_server
  fi
  remove_stale_pid_file
  write_config
  log "starting on $HOST:$PORT (log: $LOG_FILE)"
  if ! as_pg "$BIN_DIR/pg_ctl" start -D "$DATA_DIR" -l "$LOG_FILE" -w -t "$START_TIMEOUT" -s; then
    tail -n 30 "$LOG_FILE" >&2 || true
    die "pg_ctl start failed (is port $PORT taken? set UPDRAFT_PG_PORT)"
  fi
  wait_ready
  ensure_role_and_db
  log "ready: $URL"
}

cmd_start() {
  ensure_binaries
  adopt_legacy move
  start_server
}

cmd_stop() {
  ensure_binaries
  adopt_legacy
  stop_server
}

# Drops the databases earlier test and benchmark runs created (one per test: t_*, bench_*),
# which would otherwise pile up in the cache. A database still in use is left alone.
cmd_clean_test_dbs() {
  local db
  for db in $("$PSQL" -X -At "$URL" -c "SELECT datname FROM pg_database WHERE datname ~ '^(t|bench)_[a-z0-9_]+$'"); do
    "$PSQL" -X -q "$URL" -c "DROP DATABASE \"$db\"" >/dev/null 2>&1 || true
  done
}

cmd_status() {
  adopt_legacy
  daemon_status "$HOST:$(running_port): $URL"
}

cmd_destroy() {
  adopt_legacy
  if [[ -d $DATA_DIR ]]; then
    ensure_binaries
    stop_server
  fi
  rm -rf "$DATA_DIR" "$LOG_DIR" "$SOCKET_DIR" "$PG_ROOT/initdb.log"
  # Root's folder of its own goes too (the cache's folder keeps the lock).
  [[ $PG_ROOT == "$ROOT" ]] || rmdir "$PG_ROOT" 2>/dev/null || true
  log "removed the cluster in $PG_ROOT"
}

usage() {
  echo "usage: $0 start|stop|status|url|psql [psql args]|clean-test-dbs|destroy" >&2
  exit 2
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  start) with_lock cmd_start ;;
  stop) with_lock cmd_stop ;;
  status) cmd_status ;;
  url) echo "$URL" ;;
  psql)
    ensure_binaries
    exec "$PSQL" "$URL" "$@"
    ;;
  clean-test-dbs) ensure_binaries && cmd_clean_test_dbs ;;
  destroy) with_lock cmd_destroy ;;
  *) usage ;;
esac
