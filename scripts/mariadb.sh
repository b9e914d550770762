#!/usr/bin/env bash
# A throwaway MariaDB server for tests and examples, on loopback only.
#
#   scripts/mariadb.sh start     install Debian's mariadb-server if missing, initialise the data
#                                folder once, start, create the user and database
#   scripts/mariadb.sh stop      clean shutdown (SIGTERM; SIGKILL after 60 s)
#   scripts/mariadb.sh status    exit 0 when running, 3 when not
#   scripts/mariadb.sh url       print the connection URL (whether running or not)
#   scripts/mariadb.sh client    open the mariadb client on the updraft database
#   scripts/mariadb.sh destroy   stop and delete the data (the next start initialises again)
#
# Where the server lives (data/, run/ for the socket and pid file, log/mariadb.log):
# - run by a user: in ${UPDRAFT_CACHE:-$HOME/.cache/updraft}/mariadb, and the server runs as
#   that user;
# - run by root: mariadbd refuses to run as root, so it runs as the `mysql` system user (made
#   by the Debian package), who cannot enter root's home. Its folder is then one of its own that
#   `mysql` owns (mode 700): ${UPDRAFT_MARIADB_DIR:-/var/tmp/updraft-mariadb-<n>}, n a checksum
#   of the cache path, as scripts/postgres.sh does. The home folder's permissions are never
#   changed.
# It listens on 127.0.0.1:${UPDRAFT_MARIADB_PORT:-13306}; user, password and database are
# `updraft`; the server's time zone is UTC; tuned for speed, not durability (no binary log,
# InnoDB flushes once a second): never point it at data you want to keep.
#
# Invariant: every command is idempotent and serialised by a lock; every wait is bounded;
# nothing listens on anything but 127.0.0.1 and the server's own socket; nothing outside the
# cache and the server's folder is created or changed (but the Debian package, when missing).
set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${UPDRAFT_CACHE:-$HOME/.cache/updraft}"
SERVER=mariadb
# daemon.sh's ROOT: the lock (and, for a user, everything else).
ROOT="$CACHE/mariadb"
HOST=127.0.0.1
PORT="${UPDRAFT_MARIADB_PORT:-13306}"
START_TIMEOUT="${UPDRAFT_MARIADB_START_TIMEOUT:-60}"
DB_USER=updraft
DB_PASSWORD=updraft
DB_NAME=updraft
URL="mysql://$DB_USER:$DB_PASSWORD@$HOST:$PORT/$DB_NAME"

if [[ $EUID -eq 0 ]]; then
  RUN_AS=mysql
  MY_ROOT="${UPDRAFT_MARIADB_DIR:-/var/tmp/updraft-mariadb-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)}"
else
  RUN_AS=$(id -un)
  MY_ROOT="$ROOT"
fi
DATA_DIR="$MY_ROOT/data"
RUN_DIR="$MY_ROOT/run"
LOG_DIR="$MY_ROOT/log"
LOG_FILE="$LOG_DIR/mariadb.log"
SOCKET="$RUN_DIR/mariadb.sock"
# A pid is this server's only when its command line names this data folder.
MARKER="--datadir=$DATA_DIR"
# shellcheck source=scripts/lib/daemon.sh
source "$SCRIPTS_DIR/lib/daemon.sh"
# daemon.sh keeps its pid file under ROOT; root's server lives elsewhere.
PID_FILE="$RUN_DIR/server.pid"

find_binaries() {
  MARIADBD=$(command -v mariadbd || true)
  [[ -n $MARIADBD ]] || MARIADBD=$(compgen -G '/usr/sbin/mariadbd' || true)
  INSTALL_DB=$(command -v mariadb-install-db || command -v mysql_install_db || true)
  CLIENT=$(command -v mariadb || command -v mysql || true)
}

ensure_binaries() {
  find_binaries
  if [[ -z $MARIADBD || -z $INSTALL_DB || -z $CLIENT ]]; then
    apt_install mariadb-server mariadb-client
    find_binaries
    [[ -n $MARIADBD && -n $INSTALL_DB && -n $CLIENT ]] ||
      die "apt-get installed mariadb-server but mariadbd, mariadb-install-db or mariadb is missing"
  fi
  if [[ $EUID -eq 0 ]] && ! id -u "$RUN_AS" >/dev/null 2>&1; then
    die "the Debian package did not create the $RUN_AS user"
  fi
}

# Root's folder: created for $RUN_AS, refused when it is a link or someone else's.
prepare_dirs() {
  local owner
  if [[ $EUID -eq 0 ]]; then
    if [[ -L $MY_ROOT ]] || [[ -e $MY_ROOT && ! -d $MY_ROOT ]]; then
      die "$MY_ROOT is not a plain folder; remove it or set UPDRAFT_MARIADB_DIR"
    fi
    mkdir -p "$MY_ROOT"
    owner=$(stat -c %U "$MY_ROOT")
    [[ $owner == root || $owner == "$RUN_AS" ]] ||
      die "$MY_ROOT belongs to $owner, not $RUN_AS; remove it or set UPDRAFT_MARIADB_DIR"
    chown "$RUN_AS:" "$MY_ROOT"
    chmod 700 "$MY_ROOT"
  fi
  mkdir -p "$DATA_DIR" "$RUN_DIR" "$LOG_DIR"
  [[ $EUID -ne 0 ]] || chown "$RUN_AS:" "$DATA_DIR" "$RUN_DIR" "$LOG_DIR"
  chmod 700 "$DATA_DIR"
}

# The server's own options; --no-defaults keeps /etc/mysql out of it.
server_args() {
  printf '%s\n' --no-defaults "--datadir=$DATA_DIR" "--socket=$SOCKET" "--port=$PORT" \
    "--bind-address=$HOST" "--pid-file=$RUN_DIR/mariadbd.pid" "--log-error=$LOG_FILE" \
    "--user=$RUN_AS" --default-time-zone=+00:00 --skip-log-bin --skip-name-resolve \
    --innodb-flush-log-at-trx-commit=0 --innodb-buffer-pool-size=64M --max-connections=200 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci
}

ensure_datadir() {
  [[ -d $DATA_DIR/mysql ]] && return 0
  find "$DATA_DIR" -mindepth 1 -delete
  log "initialising $DATA_DIR"
  (cd "$MY_ROOT" && "$INSTALL_DB" --no-defaults "--datadir=$DATA_DIR" "--user=$RUN_AS" \
    --auth-root-authentication-method=socket --skip-test-db >"$LOG_DIR/install.log" 2>&1 9>&-) || {
    tail -n 30 "$LOG_DIR/install.log" >&2
    find "$DATA_DIR" -mindepth 1 -delete
    die "mariadb-install-db failed (log: $LOG_DIR/install.log)"
  }
}

admin_sql() { "$CLIENT" --no-defaults --protocol=socket "--socket=$SOCKET" -uroot "$@"; }

ping() { admin_sql -e 'SELECT 1' >/dev/null 2>&1; }

# Idempotent: the user always ends up with the known password and every right (a throwaway
# server: tests may create databases and kill queries), the database exists once.
ensure_user_and_db() {
  admin_sql <<SQL
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\`;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
ALTER USER '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'localhost' WITH GRANT OPTION;
SQL
  # The path the tests take: TCP on loopback with the password.
  "$CLIENT" --no-defaults -h "$HOST" -P "$PORT" "-u$DB_USER" "-p$DB_PASSWORD" "$DB_NAME" \
    -e 'SELECT 1' >/dev/null || die "cannot connect with $URL"
}

cmd_start() {
  local -a args
  ensure_binaries
  prepare_dirs
  ensure_datadir
  if running_pid >/dev/null; then
    log "already running (pid $(running_pid))"
  else
    remove_stale_pid_file
    check_port_free "$PORT" "MariaDB; set UPDRAFT_MARIADB_PORT"
    mapfile -t args < <(server_args)
    log "starting on $HOST:$PORT (log: $LOG_FILE)"
    start_daemon "$LOG_DIR/stdout.log" "$MARIADBD" "${args[@]}"
  fi
  wait_for "$START_TIMEOUT" "answer on $SOCKET" "$LOG_FILE" ping
  ensure_user_and_db
  log "ready: $URL"
}

cmd_stop() { stop_daemon 60; }

cmd_destroy() {
  cmd_stop
  rm -rf "$DATA_DIR" "$RUN_DIR" "$LOG_DIR"
  [[ $MY_ROOT == "$ROOT" ]] || rmdir "$MY_ROOT" 2>/dev/null || true
  log "removed the server's data in $MY_ROOT"
}

usage() {
  echo "usage: $0 start|stop|status|url|client [client args]|destroy" >&2
  exit 2
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  start) with_lock cmd_start ;;
  stop) with_lock cmd_stop ;;
  status) daemon_status "$HOST:$PORT: $URL" ;;
  url) echo "$URL" ;;
  client)
    ensure_binaries
    exec "$CLIENT" --no-defaults -h "$HOST" -P "$PORT" "-u$DB_USER" "-p$DB_PASSWORD" "$DB_NAME" "$@"
    ;;
  destroy) with_lock cmd_destroy ;;
  *) usage ;;
esac
