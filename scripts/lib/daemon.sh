# shellcheck shell=bash
# Sourced by scripts/kafka.sh, scripts/cassandra.sh, scripts/s3.sh, scripts/smtp.sh (and others):
# what a server that runs as one plain process (a JVM, a Python server) needs to be started, found
# and stopped again.
#
# The caller sets, before calling anything here:
#   SERVER   short name, for log lines
#   ROOT     the server's directory in the cache (lock, pid file, downloads, data, logs)
#   MARKER   a string that only this server's command line contains (a -D property or a path
#            inside ROOT): a pid is ours only when /proc/<pid>/cmdline contains it, so a pid file
#            left by a crash whose pid was since reused by another process does not count
#
# Invariant: every wait here is bounded; nothing started here outlives a failed start (it is
# killed before the script dies); the lock's fd 9 is never inherited by a server.

PID_FILE="$ROOT/run/server.pid"

log() { printf '[%s] %s\n' "$SERVER" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT (no extra tools: bash's
# /dev/tcp, bounded to 2 s).
port_open() {
  # shellcheck disable=SC2016 # $1 belongs to the inner shell
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# is_ours PID: PID is alive and its command line carries MARKER (a zombie's is empty: not ours).
is_ours() {
  local cmdline
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$MARKER"* ]]
}

# Prints the server's pid when it is running.
running_pid() {
  local pid
  [[ -f $PID_FILE ]] || return 1
  pid=$(head -n 1 "$PID_FILE" 2>/dev/null || true)
  is_ours "$pid" || return 1
  printf '%s' "$pid"
}

remove_stale_pid_file() {
  if [[ -f $PID_FILE ]] && ! running_pid >/dev/null; then
    log "removing stale pid file (server not running)"
    rm -f "$PID_FILE"
  fi
}

# start_daemon OUT CMD...: runs CMD in the background in a session of its own (a Ctrl-C or a
# closed terminal aimed at the caller does not reach it), in ROOT (where a JVM's crash file
# lands), stdout and stderr appended to OUT, and records its pid. The pid is written by the
# process itself just before it execs CMD, so it is right whether or not setsid had to fork.
start_daemon() {
  local out="$1" deadline
  shift
  mkdir -p "$(dirname "$PID_FILE")" "$(dirname "$out")"
  rm -f "$PID_FILE"
  # shellcheck disable=SC2016 # $$, $1 and $2 belong to the inner shell
  setsid bash -c 'cd "$1" && echo $$ >"$2.tmp" && mv "$2.tmp" "$2" && shift 2 && exec "$@"' \
    _ "$ROOT" "$PID_FILE" "$@" </dev/null >>"$out" 2>&1 9>&- &
  deadline=$((SECONDS + 10))
  until [[ -s $PID_FILE ]]; do
    ((SECONDS < deadline)) || die "the server process did not start (output: $out)"
    sleep 0.1
  done
}

# stop_daemon TIMEOUT: SIGTERM (the server's own clean shutdown), SIGKILL after TIMEOUT seconds.
stop_daemon() {
  local timeout="$1" pid deadline
  if ! pid=$(running_pid); then
    remove_stale_pid_file
    log "not running"
    return 0
  fi
  log "stopping (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + timeout))
  while is_ours "$pid"; do
    if ((SECONDS >= deadline)); then
      log "no clean shutdown within ${timeout}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 10))
      while is_ours "$pid"; do
        ((SECONDS < deadline)) || die "pid $pid survived SIGKILL for 10s"
        sleep 0.2
      done
      break
    fi
    sleep 0.2
  done
  rm -f "$PID_FILE"
  log "stopped"
}

# kill_failed_start: a start that failed half way leaves nothing running behind it.
kill_failed_start() {
  local pid
  pid=$(running_pid) || return 0
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PID_FILE"
}

# wait_for TIMEOUT WHAT LOGFILE CMD...: polls CMD until it succeeds. Fails (killing the server)
# when the server exits first or TIMEOUT seconds pass, showing the end of LOGFILE.
wait_for() {
  local timeout="$1" what="$2" logfile="$3" deadline
  shift 3
  deadline=$((SECONDS + timeout))
  until "$@"; do
    if ! running_pid >/dev/null; then
      tail -n 40 "$logfile" >&2 2>/dev/null || true
      die "the server exited before $what (log: $logfile)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$logfile" >&2 2>/dev/null || true
      kill_failed_start
      die "no $what within ${timeout}s (log: $logfile)"
    fi
    sleep 0.5
  done
}

# check_port_free PORT WHAT: a port that something else already listens on is a clear error,
# not a server that dies later with a bind exception in its log.
check_port_free() {
  ! port_open "$1" || die "127.0.0.1:$1 ($2) is already in use by another process"
}

# start/stop/destroy take a lock: two scripts starting the same server at once must not race.
with_lock() {
  mkdir -p "$ROOT"
  exec 9>"$ROOT/.lock"
  flock -w 300 9 || die "another scripts/$SERVER.sh holds $ROOT/.lock"
  "$@"
}

apt_install() {
  [[ $EUID -eq 0 ]] || die "$1 not found; install the Debian package(s): $*"
  log "installing the Debian package(s): $*"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq >&2 || die "apt-get update failed"
  timeout 900 apt-get install -y -qq "$@" >&2 || die "apt-get install $* failed"
}

java_major() {
  java -XshowSettings:properties -version 2>&1 |
    sed -nE 's/^ *java\.specification\.version = ([0-9]+).*/\1/p'
}

# Java 17 or newer on PATH (Debian's openjdk-17 when missing).
ensure_java() {
  local major
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  major=$(java_major)
  [[ $major =~ ^[0-9]+$ && $major -ge 17 ]] || die "java on PATH is version '${major:-?}', need 17 or newer"
}

# fetch_jars POM DIR: the runtime dependency jars of POM, copied into DIR by Maven once. DIR/.pom
# holds the pom's checksum: an unchanged pom (the usual case) touches no network at all, a
# changed one (a version bump) fetches again. Maven's own repository is the cache's maven/
# folder, not ~/.m2, so everything the suite downloads sits in one place.
fetch_jars() {
  local pom="$1" dir="$2" sum
  sum=$(sha256sum "$pom" | cut -d' ' -f1)
  if [[ -f $dir/.pom && $(cat "$dir/.pom") == "$sum" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || apt_install maven
  log "fetching the jars with Maven ($pom -> $dir; once, then cached)"
  rm -rf "$dir.tmp"
  if ! timeout 1200 mvn -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
    -Dmaven.repo.local="${UPDRAFT_CACHE:-$HOME/.cache/updraft}/maven" \
    -DoutputDirectory="$dir.tmp" >"$dir.mvn.log" 2>&1 9>&-; then
    tail -n 40 "$dir.mvn.log" >&2
    rm -rf "$dir.tmp"
    die "Maven could not fetch the dependencies of $pom (log: $dir.mvn.log)"
  fi
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
  printf '%s\n' "$sum" >"$dir/.pom"
}

# ensure_venv DIR REQUIREMENT...: a Python virtualenv at DIR with REQUIREMENTs installed by pip,
# once: DIR/.requirements records them, and the same list again touches no network.
ensure_venv() {
  local venv="$1" want
  shift
  want="$*"
  if [[ -x $venv/bin/python && -f $venv/.requirements && $(cat "$venv/.requirements") == "$want" ]]; then
    return 0
  fi
  command -v python3 >/dev/null || apt_install python3 python3-venv
  log "creating the virtualenv $venv with: $want (once, then cached)"
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >&2; then
    apt_install python3-venv
    rm -rf "$venv"
    python3 -m venv "$venv" >&2 || die "python3 -m venv failed"
  fi
  if ! timeout 1200 "$venv/bin/python" -m pip install -q "$@" >&2 9>&-; then
    rm -rf "$venv"
    die "pip install $want failed"
  fi
  printf '%s\n' "$want" >"$venv/.requirements"
}

# rotate_log FILE: keeps the previous run's log as FILE.1, so the readiness check reads only
# this run's lines.
rotate_log() {
  mkdir -p "$(dirname "$1")"
  [[ ! -f $1 ]] || mv -f "$1" "$1.1"
}

# `status` of a daemon script: where it runs, or exit 3 (the LSB code for "not running").
# $1: the address to print, e.g. "$HOST:$(running_port)".
daemon_status() {
  local pid
  if pid=$(running_pid); then
    echo "running (pid $pid) on $1"
  else
    echo "not running"
    return 3
  fi
}

# Start-up of a daemon script when one may already run. Returns 0 when it runs on $PORT and
# answers (`$@` is the readiness check given to wait_for); otherwise stops one running on
# another port and returns 1, so that the caller starts a fresh one.
reuse_running_daemon() {
  local pid what=$1
  shift
  pid=$(running_pid) || return 1
  if [[ $(running_port) == "$PORT" ]]; then
    log "already running (pid $pid)"
    wait_for "$START_TIMEOUT" "$what" "$LOG_FILE" "$@"
    log "ready: $URL"
    return 0
  fi
  log "running on port $(running_port), wanted $PORT: restarting"
  stop_daemon "$STOP_TIMEOUT"
  return 1
}
