#!/usr/bin/env bash
# Private, throw-away Samba Active Directory DC (Debian bookworm: Samba 4.17) as dirgate's AD test upstream.
#
#   scripts/testenv/samba.sh start    wipe $AD_DIR, provision, certs, smb.conf, seed, DirSync ACL, start samba,
#                                     verify, write $AD_DIR/env
#   scripts/testenv/samba.sh stop     stop the samba whose pid is in $AD_DIR/run/dirgate-samba.pid (its whole
#                                     process group), delete $AD_DIR
#   scripts/testenv/samba.sh status   exit 0 if that samba runs and answers, 1 otherwise
#
# Env (all optional):
#   AD_DIR=/tmp/dirgate-samba   instance dir (etc/smb.conf, private/sam.ldb, certs, run, log, env); wiped on start/stop
#   AD_USERS=300                Test Users (>= 10); passwords only on user00001..user00020 (hashing ~20 ms each)
#   AD_BIG=1600                 members of G-Big (> 1500 forces AD range retrieval). When AD_USERS < AD_BIG the
#                               rest are password-less users CN=Big Member NNNNN,OU=Big,OU=People (~2 ms each;
#                               users rather than contacts so that every member is a syncable user)
#   AD_MODEL=single|prefork     samba process model (single: one process, least memory)
#   AD_STRONG_AUTH=no           'ldap server require strong auth'; "yes" (Samba's default) refuses simple binds on
#                               plain ldap:// with 8 "BindSimple: Transport encryption required."
#   AD_LOCKOUT_THRESHOLD=5      bad passwords before lockout (0 = never); every account counts, not only lockme
#   AD_LOCKOUT_MINUTES=1        lockout duration and bad-password observation window
#   AD_ADMIN_PW AD_USER_PW AD_SYNC_PW AD_NODIRSYNC_PW   passwords (defaults below; must satisfy AD complexity)
#   AD_LOGLEVEL=1               samba debug level, log in $AD_DIR/log/samba.log
# Only one instance per network namespace: Samba's LDAP ports 389 (LDAP), 636 (LDAPS), 3268 (GC), 3269 (GC/TLS)
# are hard-coded; it binds them on 127.0.0.1 only. Run a second DC in a private netns (unshare -n).
#
# Domain: realm EXAMPLE.TEST, NetBIOS domain EXAMPLE, base DC=example,DC=test, DC host dc1, RFC 2307 schema;
# only the LDAP server runs (server services = ldap: no smb, kdc, dns, rpc). Policy: complexity, minimum length 7,
# history 24, maximum age 42 days as Samba's defaults; minimum age 0; lockout as above.
# Bind diagnostics (rc 49, text "... AcceptSecurityContext error, data XXX, v1db1"): wrong password 52e,
# disabled 533, must change 773, expired account 701, locked 775 (533/701/773 only with the right password).
# Data: see scripts/testenv/samba-seed.py. svc-sync holds "Replicating Directory Changes" on the domain head
# (DirSync works); svc-nodirsync does not (DirSync: 50 insufficientAccessRights).
# Samba differences from Windows AD that tests must know: DirSync evaluates the filter against the returned
# attributes only (request objectClass with (objectClass=user), or nothing matches); MaxPageSize (1000) and
# MaxValRange (1500) are not enforced (plain `member` returns all G-Big values; ranges only when asked for);
# a user's first successful bind updates lastLogonTimestamp (uSNChanged moves); no WhoAmI extended operation.
# Unlock early: samba-tool user unlock lockme -s "$DIRGATE_AD_CONF", or set lockoutTime 0 as Administrator.
# Certificates in $AD_DIR/certs (EC P-256): ca.crt/ca.key (private CA), server.crt/server.key served by Samba
# with SAN DNS:dc1.example.test, DNS:localhost, DNS:$(hostname), IP:127.0.0.1.
# $AD_DIR/env (`. $AD_DIR/env`), every name prefixed DIRGATE_AD_:
#   URL LDAPS_URL GC_URL GC_LDAPS_URL HOST PORT LDAPS_PORT GC_PORT GC_LDAPS_PORT BASE REALM DOMAIN
#   ADMIN_DN ADMIN_UPN ADMIN_PW SYNC_DN SYNC_UPN SYNC_PW NODIRSYNC_DN NODIRSYNC_UPN NODIRSYNC_PW USER_PW
#   USERS PW_USERS BIG BIG_EXTRA BIG_MEMBERS PEOPLE_USERS CA SERVER_CERT CONF
#   LOCKOUT_THRESHOLD LOCKOUT_MINUTES DIRSYNC_RIGHT
#   MUSTCHANGE_ EXPIRED_ DISABLED_ LOCKME_ JDOE_ RDSALES_ HASHUSER_ JMUELLER_ KBUSER_ SHARED1_ SHARED2_ {DN,UPN}
#   LOCK_UPN LOCK_DN (= LOCKME_UPN, LOCKME_DN)
#   SHARED_ALIAS PEOPLE_DN GROUPS_DN SERVICE_OU_DN SPECIAL_OU_DN
#   G_TOP_DN G_MID_DN G_LEAF_DN G_CYCLE_A_DN G_CYCLE_B_DN G_BIG_DN G_SALES_DN G_DIST_DN G_DIST_MAIL
#   DIR PID
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
AD_DIR=${AD_DIR:-/tmp/dirgate-samba}
AD_USERS=${AD_USERS:-300}
AD_BIG=${AD_BIG:-1600}
AD_MODEL=${AD_MODEL:-single}
AD_STRONG_AUTH=${AD_STRONG_AUTH:-no}
AD_LOCKOUT_THRESHOLD=${AD_LOCKOUT_THRESHOLD:-5}
AD_LOCKOUT_MINUTES=${AD_LOCKOUT_MINUTES:-1}
AD_LOGLEVEL=${AD_LOGLEVEL:-1}
ADMIN_PW=${AD_ADMIN_PW:-Adm1nPassw0rd!}
USER_PW=${AD_USER_PW:-Passw0rd!1}
SYNC_PW=${AD_SYNC_PW:-Repl1cate!Pw}
NODIRSYNC_PW=${AD_NODIRSYNC_PW:-N0Repl1cate!Pw}
PW_USERS=20
HOST=127.0.0.1   # Samba's LDAP ports cannot be changed, see above
PORT=389 LDAPS_PORT=636 GC_PORT=3268 GC_LDAPS_PORT=3269
REALM=EXAMPLE.TEST
DOMAIN=EXAMPLE
DC_HOST=dc1
BASE_DN=DC=example,DC=test
ADMIN_DN="CN=Administrator,CN=Users,$BASE_DN"
DIRSYNC_RIGHT=1131f6aa-9c07-11d1-f79f-00c04fc2dcd2 # DS-Replication-Get-Changes
PY=/usr/bin/python3 # Samba's bindings exist only for Debian's python, not for a pyenv/venv python3 on PATH
CONF="$AD_DIR/etc/smb.conf"
MARKER=.dirgate-samba-instance
PIDFILE="$AD_DIR/run/dirgate-samba.pid"
NAME="samba ${AD_DIR##*/}"

INST_VAR=AD_DIR INST_DIR=$AD_DIR INST_HOST=$HOST INST_PROC=samba
# shellcheck source=scripts/testenv/lib.sh
. "$HERE/lib.sh"

# pids of the live (non-zombie) members of process group $1
group_pids() { ps -e -o pgid=,pid=,stat= | awk -v g="$1" '$1 == g && $3 !~ /^Z/ { print $2 }'; }

# samba was started with setsid, so its pid is also the id of its process group (prefork workers and helper
# processes are in it); TERM the main process, wait for the whole group, KILL the group after 10s
stop_samba() {
  local pid i
  pid=$(our_pid) || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do [[ -z $(group_pids "$pid") ]] && break; sleep 0.05; done
  if [[ -n $(group_pids "$pid") ]]; then
    log "samba process group $pid still alive 10s after TERM, sending KILL"
    kill -KILL -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do [[ -z $(group_pids "$pid") ]] && break; sleep 0.05; done
  fi
  log "stopped samba pid $pid"
}

answers() { ldapsearch -x -LLL -o nettimeout=2 -H "ldap://$HOST:$PORT" -s base -b "" 1.1 >/dev/null 2>&1; }

cmd_stop() {
  check_dir
  stop_samba
  rm -rf "$AD_DIR"
}

cmd_status() {
  local pid
  if pid=$(our_pid) && answers; then echo "running pid $pid ldap://$HOST:$PORT ($AD_DIR)"; return 0; fi
  echo "not running ($AD_DIR)"; return 1
}

make_certs() {
  (
    cd "$AD_DIR/certs"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=dirgate AD test CA" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$DC_HOST.${REALM,,}" \
      -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:%s,DNS:localhost,DNS:%s,IP:%s\nbasicConstraints=critical,CA:FALSE\n%s\n%s\n' \
      "$DC_HOST.${REALM,,}" "$(hostname)" "$HOST" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth" >ext.cnf
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
      -extfile ext.cnf -out server.crt 2>/dev/null
    rm -f server.csr ext.cnf ca.srl
    chmod 600 ./*.key # samba refuses a key file others can read
  ) || die "certificate generation failed"
}

# Our own smb.conf (provision's has paths in it, but not all, and ignores most --option values): every path
# inside $AD_DIR, nothing from /etc/samba or /var/lib/samba, LDAP service only.
write_conf() {
  cat >"$CONF" <<EOF
# generated by scripts/testenv/samba.sh
[global]
	netbios name = ${DC_HOST^^}
	realm = $REALM
	workgroup = $DOMAIN
	server role = active directory domain controller
	idmap_ldb:use rfc2307 = yes
	private dir = $AD_DIR/private
	lock directory = $AD_DIR/lock
	state directory = $AD_DIR/state
	cache directory = $AD_DIR/cache
	binddns dir = $AD_DIR/bind-dns
	pid directory = $AD_DIR/run
	ncalrpc dir = $AD_DIR/run/ncalrpc
	winbindd socket directory = $AD_DIR/run/winbindd
	ntp signd socket directory = $AD_DIR/run/ntp_signd
	log file = $AD_DIR/log/samba.log
	logging = file
	log level = $AD_LOGLEVEL
	interfaces = $HOST
	bind interfaces only = yes
	server services = ldap
	ldap server require strong auth = $AD_STRONG_AUTH
	tls enabled = yes
	tls keyfile = $AD_DIR/certs/server.key
	tls certfile = $AD_DIR/certs/server.crt
	tls cafile = $AD_DIR/certs/ca.crt
EOF
}

write_env() {
  local k v
  local -a kv=(
    URL "ldap://$HOST:$PORT" LDAPS_URL "ldaps://$HOST:$LDAPS_PORT"
    GC_URL "ldap://$HOST:$GC_PORT" GC_LDAPS_URL "ldaps://$HOST:$GC_LDAPS_PORT"
    HOST "$HOST" PORT "$PORT" LDAPS_PORT "$LDAPS_PORT" GC_PORT "$GC_PORT" GC_LDAPS_PORT "$GC_LDAPS_PORT"
    BASE "$BASE_DN" REALM "$REALM" DOMAIN "$DOMAIN"
    ADMIN_DN "$ADMIN_DN" ADMIN_UPN "Administrator@${REALM,,}" ADMIN_PW "$ADMIN_PW"
    SYNC_PW "$SYNC_PW" NODIRSYNC_PW "$NODIRSYNC_PW" USER_PW "$USER_PW"
    USERS "$AD_USERS" PW_USERS "$PW_USERS" BIG "$AD_BIG"
    LOCKOUT_THRESHOLD "$AD_LOCKOUT_THRESHOLD" LOCKOUT_MINUTES "$AD_LOCKOUT_MINUTES" DIRSYNC_RIGHT "$DIRSYNC_RIGHT"
    CA "$AD_DIR/certs/ca.crt" SERVER_CERT "$AD_DIR/certs/server.crt" CONF "$CONF"
  )
  while IFS=$'\t' read -r k v; do kv+=("$k" "$v"); done <"$AD_DIR/seed.tsv"
  kv+=(LOCK_UPN "$(seed_get LOCKME_UPN)" LOCK_DN "$(seed_get LOCKME_DN)" DIR "$AD_DIR" PID "$1")
  {
    echo "# DIRGATE_AD: Samba AD DC test upstream, written by scripts/testenv/samba.sh $(date -u +%FT%TZ)"
    for ((i = 0; i < ${#kv[@]}; i += 2)); do
      k=${kv[i]} v=${kv[i + 1]}
      echo "export DIRGATE_AD_$k=$(sq "$v")"
    done
  } >"$AD_DIR/env.tmp"
  mv "$AD_DIR/env.tmp" "$AD_DIR/env"
}

seed_get() { awk -F'\t' -v k="$1" '$1 == k { print $2; f = 1 } END { exit !f }' "$AD_DIR/seed.tsv"; }

fail_start() {
  log "ERROR: $*"
  if [[ -s $AD_DIR/log/samba.log ]]; then log "last lines of $AD_DIR/log/samba.log:"; tail -n 20 "$AD_DIR/log/samba.log" >&2; fi
  stop_samba
  exit 1
}

# ad_search URL DN PW [ldapsearch args...]: simple bind + search, prints output, status of ldapsearch
ad_search() {
  local url=$1 dn=$2 pw=$3
  shift 3
  LDAPTLS_CACERT="$AD_DIR/certs/ca.crt" LDAPTLS_REQCERT=demand \
    ldapsearch -x -LLL -o ldif-wrap=no -o nettimeout=5 -H "$url" -D "$dn" -w "$pw" "$@" 2>&1
}

cmd_start() {
  local t0 t pid n i out sync_dn
  t0=$(now)
  for n in samba samba-tool ldapsearch openssl; do
    command -v "$n" >/dev/null || die "$n missing: run scripts/testenv/install.sh samba"
  done
  if [[ ! -x $PY ]] || ! "$PY" -c 'import samba.samdb' 2>/dev/null; then
    die "$PY cannot import samba (python3-samba): run scripts/testenv/install.sh samba"
  fi
  [[ -d /usr/share/samba/setup ]] || die "/usr/share/samba/setup missing (samba-ad-provision): run scripts/testenv/install.sh samba"
  [[ $AD_USERS =~ ^[0-9]+$ && $AD_USERS -ge 10 ]] || die "AD_USERS must be a number >= 10"
  [[ $AD_BIG =~ ^[0-9]+$ ]] || die "AD_BIG must be a number"
  [[ $AD_LOCKOUT_THRESHOLD =~ ^[0-9]+$ && $AD_LOCKOUT_MINUTES =~ ^[0-9]+$ ]] ||
    die "AD_LOCKOUT_THRESHOLD/AD_LOCKOUT_MINUTES must be numbers"
  [[ $AD_MODEL == single || $AD_MODEL == prefork ]] || die "AD_MODEL must be single or prefork"
  [[ $AD_STRONG_AUTH == yes || $AD_STRONG_AUTH == no ]] || die "AD_STRONG_AUTH must be yes or no"
  ((PW_USERS <= AD_USERS)) || PW_USERS=$AD_USERS
  check_dir
  stop_samba # a previous instance in the same dir (start twice in a row)
  for n in "$PORT" "$LDAPS_PORT" "$GC_PORT" "$GC_LDAPS_PORT"; do
    port_busy "$n" && die "$HOST:$n is already in use by another process ($(ss -Htlnp "sport = :$n" 2>/dev/null | awk '{print $NF}' | sort -u | tr '\n' ' '| sed 's/ $//')); Samba's LDAP ports are fixed; stop it or use a private netns (unshare -n)"
  done
  rm -rf "$AD_DIR"
  mkdir -p "$AD_DIR"/{etc,certs,run,log,lock,state,cache,bind-dns}
  : >"$AD_DIR/$MARKER"

  t=$(now)
  # an empty -s config: provision must not inherit /etc/samba/smb.conf ([homes], [printers], paths, ...)
  : >"$AD_DIR/etc/provision.conf"
  samba-tool domain provision -s "$AD_DIR/etc/provision.conf" --targetdir="$AD_DIR" \
    --realm="$REALM" --domain="$DOMAIN" --server-role=dc --dns-backend=NONE --use-rfc2307 \
    --host-name="$DC_HOST" --host-ip="$HOST" --adminpass="$ADMIN_PW" \
    --option="interfaces=$HOST" --option="bind interfaces only=yes" >"$AD_DIR/log/provision.log" 2>&1 ||
    { tail -n 30 "$AD_DIR/log/provision.log" >&2; die "samba-tool domain provision failed (log: $AD_DIR/log/provision.log)"; }
  log "provisioned $REALM in $(since "$t")"

  t=$(now); make_certs; write_conf; log "certs + smb.conf in $(since "$t")"

  t=$(now)
  "$PY" "$HERE/samba-seed.py" -s "$CONF" --out "$AD_DIR/seed.tsv" --users "$AD_USERS" --big "$AD_BIG" \
    --pw-users "$PW_USERS" --password "$USER_PW" --sync-pw "$SYNC_PW" --nodirsync-pw "$NODIRSYNC_PW" \
    --lockout-threshold "$AD_LOCKOUT_THRESHOLD" --lockout-minutes "$AD_LOCKOUT_MINUTES" ||
    die "seeding failed (samba-seed.py)"
  log "seeded in $(since "$t")"

  t=$(now)
  sync_dn=$(seed_get SYNC_DN) || die "seed summary has no SYNC_DN"
  samba-tool dsacl set -s "$CONF" --objectdn="$BASE_DN" --trusteedn="$sync_dn" --car=get-changes --action=allow \
    >"$AD_DIR/log/dsacl.log" 2>&1 || { cat "$AD_DIR/log/dsacl.log" >&2; die "samba-tool dsacl set failed"; }
  grep -q "(OA;;CR;$DIRSYNC_RIGHT;;S-" "$AD_DIR/log/dsacl.log" || die "DirSync ACE not in the new descriptor ($AD_DIR/log/dsacl.log)"
  log "granted Replicating Directory Changes to svc-sync in $(since "$t")"
  t=$(now)
  nodirsync_dn=$(seed_get NODIRSYNC_DN) || die "seed summary has no NODIRSYNC_DN"
  "$PY" "$HERE/samba-deleted-acl.py" "$CONF" "$BASE_DN" "$sync_dn" "$nodirsync_dn" >"$AD_DIR/log/deleted-acl.log" 2>&1 ||
    { cat "$AD_DIR/log/deleted-acl.log" >&2; die "granting read access to CN=Deleted Objects failed"; }
  log "granted List/Read on CN=Deleted Objects to both sync accounts in $(since "$t")"

  t=$(now)
  # -F: foreground; setsid: own session and process group (stop kills the group), outlives this script;
  # -l: samba opens its log before reading smb.conf, keep it out of /var/log/samba
  setsid samba -s "$CONF" -l "$AD_DIR/log" -F -M "$AD_MODEL" </dev/null >"$AD_DIR/log/stdout.log" 2>&1 &
  pid=$!
  echo "$pid" >"$PIDFILE"
  for ((i = 0; i < 600; i++)); do
    alive "$pid" || fail_start "samba exited during start-up (see $AD_DIR/log/stdout.log)"
    answers && break
    sleep 0.05
  done
  answers || fail_start "samba (pid $pid) does not answer on ldap://$HOST:$PORT after 30s"
  [[ $(our_pid) == "$pid" ]] || fail_start "pid $pid in $PIDFILE is not a running samba"
  # fail loudly unless the sync account can bind and read, LDAPS verifies with our CA, and DirSync is allowed
  out=$(ad_search "ldap://$HOST:$PORT" "$sync_dn" "$SYNC_PW" -b "$BASE_DN" -s base 1.1 || true)
  if [[ $AD_STRONG_AUTH == no ]]; then
    [[ $out == "dn: $BASE_DN"* ]] || fail_start "bind as $sync_dn + base search on ldap:// failed: $out"
  fi
  out=$(ad_search "ldaps://$HOST:$LDAPS_PORT" "$sync_dn" "$SYNC_PW" -b "$BASE_DN" -s base 1.1 || true)
  [[ $out == "dn: $BASE_DN"* ]] || fail_start "LDAPS on $LDAPS_PORT does not verify with $AD_DIR/certs/ca.crt or bind fails: $out"
  # (Samba's DirSync matches the filter against the *returned* attributes: request the filter's attribute)
  out=$(ad_search "ldaps://$HOST:$LDAPS_PORT" "$sync_dn" "$SYNC_PW" -b "$BASE_DN" -E '!dirSync=0/0' \
    '(sAMAccountName=svc-sync)' sAMAccountName || true)
  [[ $out == *"dn: $sync_dn"* && $out == *"# cookie::"* ]] || fail_start "DirSync as svc-sync failed: $out"
  log "samba pid $pid (model $AD_MODEL) up in $(since "$t")"

  write_env "$pid"
  log "ready in $(since "$t0"): ldap://$HOST:$PORT ldaps://$HOST:$LDAPS_PORT users=$AD_USERS big=$AD_BIG env=$AD_DIR/env"
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
