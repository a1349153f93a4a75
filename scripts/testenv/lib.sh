# shellcheck shell=bash
# Helpers shared by the instance scripts (openldap.sh, domino.sh, samba.sh); sourced, not run.
# The caller sets, before sourcing:
#   NAME      prefix of log lines, e.g. "openldap dirgate-openldap"
#   INST_VAR  name of the variable holding the instance directory (for messages), e.g. OL_DIR
#   INST_DIR  the instance directory (wiped by start and stop, so it must be ours)
#   INST_HOST address the instance listens on
#   INST_PROC process name (/proc/PID/comm) of the server, e.g. slapd
#   MARKER    file that marks a directory as created by the script
#   PIDFILE   the server's pid file

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2fs", b - a }'; }
log() { echo "[$NAME] $*" >&2; }
die() { echo "[$NAME] ERROR: $*" >&2; exit 1; }
port_busy() { (exec 3<>"/dev/tcp/$INST_HOST/$1") 2>/dev/null; }
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; } # single-quote for sh

# refuse to wipe a directory that is not ours
check_dir() {
  [[ $INST_DIR == /* && $INST_DIR != / && $INST_DIR != *..* ]] || die "$INST_VAR must be an absolute path: '$INST_DIR'"
  if [[ -d $INST_DIR && ! -e $INST_DIR/$MARKER ]] && [[ -n $(ls -A "$INST_DIR") ]]; then
    die "$INST_DIR exists, is not empty and was not created by $0; refusing to wipe it"
  fi
}

# process exists and is not a zombie (an exited server stays a zombie until PID 1 reaps it; in
# containers that can take seconds)
alive() {
  local st
  st=$(awk '$1 == "State:" { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
  [[ -n $st && $st != Z ]]
}

# pid of the server recorded in our own pid file, if that process is alive and is our server
our_pid() {
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$INST_PROC" ]] && alive "$pid" || return 1
  echo "$pid"
}

# stop the server of our pid file: TERM, then KILL after 5 s
stop_slapd() {
  local pid i
  pid=$(our_pid) || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do alive "$pid" || break; sleep 0.025; done
  if alive "$pid"; then log "$INST_PROC $pid ignored TERM for 5s, sending KILL"; kill -KILL "$pid" || true; fi
  log "stopped $INST_PROC pid $pid"
}
