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

# pid of the server recorded in the first line of our own pid file (postgres writes more lines), if that
# process is alive and is our server
our_pid() {
  local pid
  pid=$(head -n 1 "$PIDFILE" 2>/dev/null) || return 1
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

# slapd_load_and_start BASE_DN LOGLEVEL PORT LDAPS_PORT: slapadd $INST_DIR/seed.ldif with slapd.conf, convert
# the configuration to cn=config (only possible once slapadd created the mdb files), start slapd in its own
# session on ldap:// (none when PORT is empty), ldaps:// and ldapi://$LDAPI, and wait until it answers. The
# caller defines answers and fail_start.
slapd_load_and_start() {
  local base=$1 level=$2 port=$3 ldaps_port=$4 t i urls
  urls="ldaps://$INST_HOST:$ldaps_port/ ldapi://$LDAPI"
  [[ -z $port ]] || urls="ldap://$INST_HOST:$port/ $urls"
  t=$(now)
  slapadd -q -f "$INST_DIR/slapd.conf" -b "$base" -l "$INST_DIR/seed.ldif" || die "slapadd of $INST_DIR/seed.ldif failed"
  log "seeded $(grep -c '^dn:' "$INST_DIR/seed.ldif") entries in $(since "$t")"
  slaptest -Q -f "$INST_DIR/slapd.conf" -F "$INST_DIR/slapd.d" || die "slaptest (config conversion) failed"

  # -d: stay in the foreground, messages of that level (and errors, always) go to slapd.log;
  # setsid: own session, not killed with the caller's process group, outlives the script
  setsid slapd -d "$level" -F "$INST_DIR/slapd.d" -h "$urls" \
    </dev/null >"$INST_DIR/slapd.log" 2>&1 &
  pid=$!
  for ((i = 0; i < 200; i++)); do
    alive "$pid" || fail_start "slapd exited during start-up"
    answers && break
    sleep 0.05
  done
  answers || fail_start "slapd (pid $pid) does not answer on $urls after 10s"
  [[ $(our_pid) == "$pid" ]] || fail_start "pid file $PIDFILE does not name slapd pid $pid"
}

# make_ca NAME CN: self-signed EC P-256 CA NAME.key + NAME.crt (CN=CN, 10 years) in the current directory
make_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$1.key" -out "$1.crt" 2>/dev/null || die "creating $1 failed"
}

# copy_or_make_cas FROM_VAR CA_CN WRONG_CA_CN: ca.{crt,key} and wrong-ca.{crt,key} in the current directory,
# copied from the directory in the variable named FROM_VAR when that is set (one CA file then verifies every
# upstream), created by make_ca with those CNs otherwise
copy_or_make_cas() {
  local from_var=$1 from=${!1} ca
  if [[ -n $from ]]; then
    for ca in ca wrong-ca; do
      [[ -r $from/$ca.crt && -r $from/$ca.key ]] || die "$from_var=$from has no $ca.crt/$ca.key"
      cp "$from/$ca.crt" "$from/$ca.key" .
    done
  else
    make_ca ca "$2"
    make_ca wrong-ca "$3"
  fi
}

# issue_cert NAME ISSUER SAN EKU: EC P-256 key NAME.key + NAME.crt (CN=NAME, 10 years) issued by ISSUER.{crt,key}
# in the current directory, for extended key usage EKU (serverAuth or clientAuth); SAN may be empty
issue_cert() {
  local name=$1 issuer=$2 san=$3 eku=$4
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$name" \
    -keyout "$name.key" -out "$name.csr" 2>/dev/null || die "creating the key of $name failed"
  {
    [[ -z $san ]] || echo "subjectAltName=$san"
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\n' "$eku"
  } >"$name.ext"
  openssl x509 -req -sha256 -days 3650 -in "$name.csr" -CA "$issuer.crt" -CAkey "$issuer.key" \
    -set_serial "0x$(openssl rand -hex 8)" -extfile "$name.ext" -out "$name.crt" 2>/dev/null || die "signing $name failed"
  rm -f "$name.csr" "$name.ext"
  chmod 600 "$name.key"
}
