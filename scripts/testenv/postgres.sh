#!/usr/bin/env bash
# Private, throw-away PostgreSQL for dirgate's integration tests (cluster-mode state stores).
#
#   scripts/testenv/postgres.sh start    wipe $PG_DIR, initdb, start postgres, create role + database, write $PG_DIR/env
#   scripts/testenv/postgres.sh stop     stop the postgres of $PG_DIR (pg_ctl stop -m fast), delete $PG_DIR
#   scripts/testenv/postgres.sh status   exit 0 if that postgres runs and answers, 1 otherwise
#   scripts/testenv/postgres.sh halt     stop the postgres of $PG_DIR but keep $PG_DIR (an outage: tests of clients
#                                        that must survive the database going away)
#   scripts/testenv/postgres.sh resume   start the postgres of an existing $PG_DIR again, with its data, port and
#                                        passwords (the end of the outage)
#
# Env (all optional):
#   PG_DIR=/tmp/dirgate-postgres   instance dir (data/, run/ socket dir, postgres.log, env)
#   PG_HOST=127.0.0.1 PG_PORT=5433 TCP listener (the only one besides the socket in $PG_DIR/run)
#   PG_PREFIX=DIRGATE_PG           name prefix of the variables written to $PG_DIR/env
#   PG_BIN                         directory of initdb/pg_ctl/psql (default: newest /usr/lib/postgresql/*/bin)
#   PG_OS_USER=postgres            unprivileged account that owns and runs the cluster when started as root
#                                  (initdb refuses root); a non-root caller runs it as itself
#
# The cluster: initdb --no-locale -E UTF8, every login by password (scram-sha-256, also on the socket);
# superuser "postgres" and role "dirgate" (LOGIN CREATEDB, owner of database dirgate_test) with generated
# passwords. Durability is off (fsync, synchronous_commit, full_page_writes): the data is thrown away anyway and
# the tests run on a loaded machine.
# $PG_DIR/env (`. $PG_DIR/env`), P = $PG_PREFIX:
#   P_URL (postgres://dirgate:<pw>@host:port/dirgate_test?sslmode=disable) P_HOST P_PORT P_USER P_PASSWORD P_DB
#   P_ADMIN_URL (superuser, database postgres) P_DIR P_PID
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PG_DIR=${PG_DIR:-/tmp/dirgate-postgres}
PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5433}
PG_PREFIX=${PG_PREFIX:-DIRGATE_PG}
PG_OS_USER=${PG_OS_USER:-postgres}
DB_USER=dirgate
DB_NAME=dirgate_test
MARKER=.dirgate-postgres-instance
PIDFILE="$PG_DIR/data/postmaster.pid"
NAME="postgres ${PG_DIR##*/}"

INST_VAR=PG_DIR INST_DIR=$PG_DIR INST_HOST=$PG_HOST INST_PROC=postgres
# shellcheck source=scripts/testenv/lib.sh
. "$HERE/lib.sh"

if [[ -z ${PG_BIN:-} ]]; then
  PG_BIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
fi
[[ -x ${PG_BIN:-}/initdb ]] || die "no PostgreSQL server binaries (PG_BIN='${PG_BIN:-}'); run scripts/testenv/install.sh postgres"

# as_owner CMD...: run a command as the account that owns the cluster
as_owner() {
  if ((EUID == 0)); then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi
}

answers() { "$PG_BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -t 2; }

cmd_stop() {
  check_dir
  halt_server
  rm -rf "$PG_DIR"
}

# halt_server: stop the server, keeping the data directory
halt_server() {
  local pid
  pid=$(our_pid) || return 0
  as_owner "$PG_BIN/pg_ctl" stop -D "$PG_DIR/data" -m fast -w -t 20 >/dev/null ||
    { log "pg_ctl stop failed, sending KILL to $pid"; kill -KILL "$pid" || true; }
  log "stopped postgres pid $pid"
}

cmd_halt() {
  check_dir
  halt_server
}

cmd_resume() {
  local t0
  t0=$(now)
  check_dir
  [[ -f $PG_DIR/$MARKER && -d $PG_DIR/data ]] || die "$PG_DIR holds no instance started by $0; use start"
  if our_pid >/dev/null; then log "already running"; return 0; fi
  as_owner setsid "$PG_BIN/pg_ctl" start -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 30 \
    </dev/null >/dev/null 2>&1 || die "pg_ctl start failed (see $PG_DIR/postgres.log)"
  answers || die "postgres does not answer on $PG_HOST:$PG_PORT"
  log "resumed pid $(our_pid) on $PG_HOST:$PG_PORT in $(since "$t0")"
}

cmd_status() {
  local pid
  if pid=$(our_pid) && answers; then echo "running pid $pid $PG_HOST:$PG_PORT ($PG_DIR)"; return 0; fi
  echo "not running ($PG_DIR)"; return 1
}

fail_start() {
  [[ ! -f $PG_DIR/postgres.log ]] || tail -n 30 "$PG_DIR/postgres.log" >&2
  cmd_stop || true
  die "$*"
}

# secret: 32 hex digits
secret() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

cmd_start() {
  local t0 pid admin_pw user_pw
  t0=$(now)
  check_dir
  cmd_stop
  ! port_busy "$PG_PORT" || die "$PG_HOST:$PG_PORT is already in use"
  mkdir -p "$PG_DIR/run"
  touch "$PG_DIR/$MARKER"
  ((EUID != 0)) || chown -R "$PG_OS_USER:" "$PG_DIR"
  chmod 700 "$PG_DIR"
  admin_pw=$(secret)
  user_pw=$(secret)
  (umask 077 && printf '%s\n' "$admin_pw" >"$PG_DIR/pwfile")
  ((EUID != 0)) || chown "$PG_OS_USER:" "$PG_DIR/pwfile"

  as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --pwfile="$PG_DIR/pwfile" --auth=scram-sha-256 \
    --no-locale -E UTF8 >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; fail_start "initdb failed"; }
  rm -f "$PG_DIR/pwfile"
  cat >>"$PG_DIR/data/postgresql.conf" <<EOF
# dirgate test instance
listen_addresses = '$PG_HOST'
port = $PG_PORT
unix_socket_directories = '$PG_DIR/run'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF

  # setsid: own session, not killed with the caller's process group, outlives the script
  as_owner setsid "$PG_BIN/pg_ctl" start -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 30 \
    </dev/null >/dev/null 2>&1 || fail_start "pg_ctl start failed"
  answers || fail_start "postgres does not answer on $PG_HOST:$PG_PORT"
  pid=$(our_pid) || fail_start "pid file $PIDFILE does not name a running postgres"

  PGPASSWORD=$admin_pw "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres \
    -v pw="$user_pw" >/dev/null <<EOF || fail_start "creating role $DB_USER and database $DB_NAME failed"
CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD :'pw';
CREATE DATABASE $DB_NAME OWNER $DB_USER;
EOF

  {
    echo "# $PG_PREFIX: PostgreSQL test instance, written by scripts/testenv/postgres.sh $(date -u +%FT%TZ)"
    printf 'export %s_URL=%s\n' "$PG_PREFIX" "$(sq "postgres://$DB_USER:$user_pw@$PG_HOST:$PG_PORT/$DB_NAME?sslmode=disable")"
    printf 'export %s_HOST=%s\n' "$PG_PREFIX" "$(sq "$PG_HOST")"
    printf 'export %s_PORT=%s\n' "$PG_PREFIX" "$(sq "$PG_PORT")"
    printf 'export %s_USER=%s\n' "$PG_PREFIX" "$(sq "$DB_USER")"
    printf 'export %s_PASSWORD=%s\n' "$PG_PREFIX" "$(sq "$user_pw")"
    printf 'export %s_DB=%s\n' "$PG_PREFIX" "$(sq "$DB_NAME")"
    printf 'export %s_ADMIN_URL=%s\n' "$PG_PREFIX" "$(sq "postgres://postgres:$admin_pw@$PG_HOST:$PG_PORT/postgres?sslmode=disable")"
    printf 'export %s_DIR=%s\n' "$PG_PREFIX" "$(sq "$PG_DIR")"
    printf 'export %s_PID=%s\n' "$PG_PREFIX" "$(sq "$pid")"
  } >"$PG_DIR/env"
  log "started pid $pid on $PG_HOST:$PG_PORT in $(since "$t0"); env: $PG_DIR/env"
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  halt) cmd_halt ;;
  resume) cmd_resume ;;
  *) echo "usage: $0 start|stop|status|halt|resume" >&2; exit 2 ;;
esac
