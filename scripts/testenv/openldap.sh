#!/usr/bin/env bash
# Private, throw-away OpenLDAP upstream (slapd 2.5, Debian bookworm) for dirgate's integration tests.
#
#   scripts/testenv/openldap.sh start    wipe $OL_DIR, create certs + config + seed, start slapd, write $OL_DIR/env
#   scripts/testenv/openldap.sh stop     kill the slapd whose pid is in $OL_DIR/run/slapd.pid, delete $OL_DIR
#   scripts/testenv/openldap.sh status   exit 0 if that slapd runs and answers, 1 otherwise
#
# Env (all optional):
#   OL_DIR=/tmp/dirgate-openldap   instance dir (certs, slapd.conf, slapd.d, db, run/, slapd.log, env)
#   OL_PORT=3389 OL_LDAPS_PORT=3636  ldap:// and ldaps:// on 127.0.0.1 only (+ ldapi://$OL_DIR/run/ldapi)
#   OL_USERS=2000 OL_GROUPS=20     seed size (see openldap-seed.sh for the exact content)
#   OL_PREFIX=DIRGATE_OL           name prefix of the variables written to $OL_DIR/env
#   OL_CA_FROM=<certs dir>         reuse ca.{crt,key} and wrong-ca.{crt,key} of another instance (so one CA
#                                  file verifies several instances); default: a fresh CA per instance
#   OL_ADMIN_PW OL_CONFIG_PW SYNC_PW READER_PW USER_PW   passwords (defaults below)
#   OL_LOGLEVEL=none               slapd debug level (e.g. "stats"); goes to $OL_DIR/slapd.log (errors always do)
# Several instances can run at once: give each its own OL_DIR, OL_PORT, OL_LDAPS_PORT (and OL_PREFIX).
#
# Server: back_mdb (dbnosync) on BASE dc=example,dc=test with
#   syncprov  (checkpoint 100 10, sessionlog 10000: RFC 4533 refreshOnly with a cookie reports deletions)
#   ppolicy   (default policy cn=default,ou=policies with pwdLockout; ppolicy_use_lockout)
#   dynlist   (memberOf computed for groupOfNames members: direct groups only, like AD and the memberof overlay)
#   limits    size 500 for everybody (size.prtotal unlimited, i.e. paging works), unlimited for cn=sync
#   access    userPassword: auth only; everything else (incl. operational entryUUID, pwdAccountLockedTime):
#             readable by the sync account and any bound user; anonymous: nothing (root DSE/schema readable)
#   cn=config (slapd.d) writable as cn=admin,cn=config or root via ldapi EXTERNAL, for runtime changes
#             (e.g. the size limit: olcSizeLimit of olcDatabase={1}mdb,cn=config).
# Certificates in $OL_DIR/certs (EC P-256):
#   ca.crt ca.key                     test CA; signs everything below except wrong-ca-server.*
#   server.crt server.key             served by slapd: SAN DNS:localhost, DNS:$(hostname), IP:127.0.0.1
#   wrong-ca.crt wrong-ca.key         an unrelated CA (configure it to see strict verification fail)
#   wrong-ca-server.crt/.key          good SANs, but issued by wrong-ca (for a Go TLS listener)
#   expired.crt expired.key           good SANs, issued by ca, valid 2020-01-01..2020-01-02 only
#   wrong-host.crt wrong-host.key     issued by ca, SAN DNS:wrong-host.example.test only (no IP, no localhost)
# $OL_DIR/env (`. $OL_DIR/env`), P = $OL_PREFIX:
#   P_URL P_LDAPS_URL P_LDAPI_URL P_HOST P_PORT P_LDAPS_PORT P_BASE P_ADMIN_DN P_ADMIN_PW P_CONFIG_DN
#   P_CONFIG_PW P_SYNC_DN P_SYNC_PW P_READER_DN P_READER_PW P_USER_PW P_USERS P_GROUPS P_CA P_WRONG_CA
#   P_CERT_DIR P_SERVER_CERT P_SERVER_KEY P_WRONG_CA_SERVER_CERT P_WRONG_CA_SERVER_KEY P_EXPIRED_CERT
#   P_EXPIRED_KEY P_WRONG_HOST_CERT P_WRONG_HOST_KEY P_DIR P_PID
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OL_DIR=${OL_DIR:-/tmp/dirgate-openldap}
OL_PORT=${OL_PORT:-3389}
OL_LDAPS_PORT=${OL_LDAPS_PORT:-3636}
OL_USERS=${OL_USERS:-2000}
OL_GROUPS=${OL_GROUPS:-20}
OL_PREFIX=${OL_PREFIX:-DIRGATE_OL}
OL_CA_FROM=${OL_CA_FROM:-}
OL_LOGLEVEL=${OL_LOGLEVEL:-none}
OL_HOST=${OL_HOST:-127.0.0.1} # any 127.x address: a second instance may share the port on another address
BASE_DN=dc=example,dc=test
ADMIN_DN="cn=admin,$BASE_DN"
ADMIN_PW=${OL_ADMIN_PW:-AdminPassw0rd!}
CONFIG_DN="cn=admin,cn=config"
CONFIG_PW=${OL_CONFIG_PW:-ConfigPassw0rd!}
SYNC_DN="cn=sync,ou=services,$BASE_DN"
SYNC_PW=${SYNC_PW:-SyncPassw0rd!}
READER_DN="cn=reader,ou=services,$BASE_DN"
READER_PW=${READER_PW:-ReaderPassw0rd!}
USER_PW=${USER_PW:-Passw0rd!}
MARKER=.dirgate-openldap-instance
PIDFILE="$OL_DIR/run/slapd.pid"
NAME="openldap ${OL_DIR##*/}"
# NB: never export LDAPNOINIT=1 here: it also makes libldap ignore LDAPTLS_CACERT from the environment.

INST_VAR=OL_DIR INST_DIR=$OL_DIR INST_HOST=$OL_HOST INST_PROC=slapd
# shellcheck source=scripts/testenv/lib.sh
. "$HERE/lib.sh"

answers() { ldapsearch -x -LLL -o nettimeout=2 -H "ldap://$OL_HOST:$OL_PORT" -s base -b "" 1.1 >/dev/null 2>&1; }

cmd_stop() {
  check_dir
  stop_slapd
  rm -rf "$OL_DIR"
}

cmd_status() {
  local pid
  if pid=$(our_pid) && answers; then echo "running pid $pid ldap://$OL_HOST:$OL_PORT ($OL_DIR)"; return 0; fi
  echo "not running ($OL_DIR)"; return 1
}

# sign NAME ISSUER SAN [START END]: EC key NAME.key + NAME.crt issued by ISSUER.{crt,key} (openssl ca, so
# that the validity period can lie in the past)
sign() {
  local name=$1 issuer=$2 san=$3 start=${4:-} end=${5:-} d
  d=$(mktemp -d "$OL_DIR/certs/ca.XXXX")
  : >"$d/index.txt"
  printf '[ca]\ndefault_ca=tca\n[tca]\ndatabase=%s/index.txt\nnew_certs_dir=%s\nrand_serial=yes\n' "$d" "$d" >"$d/ca.cnf"
  printf 'default_md=sha256\ndefault_days=3650\npolicy=pol\nunique_subject=no\n[pol]\ncommonName=supplied\n' >>"$d/ca.cnf"
  printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
    "$san" >"$d/ext.cnf"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$name" \
    -keyout "$name.key" -out "$d/req.csr" 2>/dev/null
  openssl ca -batch -notext -config "$d/ca.cnf" -cert "$issuer.crt" -keyfile "$issuer.key" -extfile "$d/ext.cnf" \
    ${start:+-startdate "$start"} ${end:+-enddate "$end"} -in "$d/req.csr" -out "$name.crt" 2>"$d/err" ||
    { cat "$d/err" >&2; die "signing $name failed"; }
  rm -rf "$d"
}

make_certs() {
  local good_san
  good_san="DNS:localhost,DNS:$(hostname),IP:$OL_HOST"
  (
    cd "$OL_DIR/certs"
    copy_or_make_cas OL_CA_FROM "dirgate test CA" "dirgate WRONG test CA"
    sign server ca "$good_san"
    sign wrong-ca-server wrong-ca "$good_san"
    sign expired ca "$good_san" 20200101000000Z 20200102000000Z
    sign wrong-host ca "DNS:wrong-host.example.test"
    chmod 600 ./*.key
  )
}

write_conf() {
  local root_hash conf_hash
  root_hash=$(slappasswd -h '{SSHA}' -s "$ADMIN_PW")
  conf_hash=$(slappasswd -h '{SSHA}' -s "$CONFIG_PW")
  cat >"$OL_DIR/slapd.conf" <<EOF
# generated by scripts/testenv/openldap.sh -- converted to $OL_DIR/slapd.d (cn=config) before start
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/dyngroup.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload syncprov
moduleload ppolicy
moduleload dynlist
pidfile  $PIDFILE
argsfile $OL_DIR/run/slapd.args
# nothing to syslog: slapd runs with -d (foreground) and writes its stderr to $OL_DIR/slapd.log
loglevel none
TLSCACertificateFile  $OL_DIR/certs/ca.crt
TLSCertificateFile    $OL_DIR/certs/server.crt
TLSCertificateKeyFile $OL_DIR/certs/server.key
# 500 entries per search for everybody (like AD's MaxPageSize), but paged searches may read everything
sizelimit size.soft=500 size.hard=500 size.prtotal=unlimited

database config
rootdn "$CONFIG_DN"
rootpw $conf_hash
access to * by dn.exact="gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth" manage by * none

database mdb
suffix "$BASE_DN"
rootdn "$ADMIN_DN"
rootpw $root_hash
directory $OL_DIR/db
maxsize 1073741824
dbnosync
index objectClass eq
index uid,mail,cn,sn,givenName eq,sub
index member eq
index entryCSN,entryUUID eq
limits dn.exact="$SYNC_DN" size=unlimited time=unlimited
access to attrs=userPassword
  by * auth
access to *
  by dn.exact="$SYNC_DN" read
  by users read
  by * none
overlay syncprov
syncprov-checkpoint 100 10
syncprov-sessionlog 10000
overlay ppolicy
ppolicy_default "cn=default,ou=policies,$BASE_DN"
ppolicy_use_lockout
overlay dynlist
dynlist-attrset groupOfURLs memberURL member+memberOf@groupOfNames
EOF
}

write_env() {
  local p=$OL_PREFIX c="$OL_DIR/certs" k v
  local -a kv=(
    URL "ldap://$OL_HOST:$OL_PORT" LDAPS_URL "ldaps://$OL_HOST:$OL_LDAPS_PORT" LDAPI_URL "ldapi://$LDAPI"
    HOST "$OL_HOST" PORT "$OL_PORT" LDAPS_PORT "$OL_LDAPS_PORT" BASE "$BASE_DN"
    ADMIN_DN "$ADMIN_DN" ADMIN_PW "$ADMIN_PW" CONFIG_DN "$CONFIG_DN" CONFIG_PW "$CONFIG_PW"
    SYNC_DN "$SYNC_DN" SYNC_PW "$SYNC_PW" READER_DN "$READER_DN" READER_PW "$READER_PW" USER_PW "$USER_PW"
    USERS "$OL_USERS" GROUPS "$OL_GROUPS" CA "$c/ca.crt" WRONG_CA "$c/wrong-ca.crt" CERT_DIR "$c"
    SERVER_CERT "$c/server.crt" SERVER_KEY "$c/server.key"
    WRONG_CA_SERVER_CERT "$c/wrong-ca-server.crt" WRONG_CA_SERVER_KEY "$c/wrong-ca-server.key"
    EXPIRED_CERT "$c/expired.crt" EXPIRED_KEY "$c/expired.key"
    WRONG_HOST_CERT "$c/wrong-host.crt" WRONG_HOST_KEY "$c/wrong-host.key"
    DIR "$OL_DIR" PID "$1"
  )
  {
    echo "# $OL_PREFIX: OpenLDAP test upstream, written by scripts/testenv/openldap.sh $(date -u +%FT%TZ)"
    for ((i = 0; i < ${#kv[@]}; i += 2)); do
      k=${kv[i]} v=${kv[i + 1]}
      echo "export ${p}_$k=$(sq "$v")"
    done
  } >"$OL_DIR/env.tmp"
  mv "$OL_DIR/env.tmp" "$OL_DIR/env"
}

fail_start() {
  log "ERROR: $*"
  if [[ -s $OL_DIR/slapd.log ]]; then log "last lines of $OL_DIR/slapd.log:"; tail -n 20 "$OL_DIR/slapd.log" >&2; fi
  stop_slapd
  exit 1
}

cmd_start() {
  local t0 t pid n i out
  t0=$(now)
  for n in slapd slapadd slaptest slappasswd ldapsearch ldapwhoami openssl; do
    command -v "$n" >/dev/null || die "$n missing: run scripts/testenv/install.sh"
  done
  [[ $OL_USERS =~ ^[0-9]+$ && $OL_GROUPS =~ ^[0-9]+$ ]] || die "OL_USERS/OL_GROUPS must be numbers"
  [[ $OL_PREFIX =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "bad OL_PREFIX '$OL_PREFIX'"
  check_dir
  stop_slapd # a previous instance in the same dir (start twice in a row)
  for n in "$OL_PORT" "$OL_LDAPS_PORT"; do
    port_busy "$n" && die "$OL_HOST:$n is already in use by another process ($(ss -Htlnp "sport = :$n" 2>/dev/null | awk '{print $NF}'))"
  done
  rm -rf "$OL_DIR"
  mkdir -p "$OL_DIR"/{certs,db,run,slapd.d}
  : >"$OL_DIR/$MARKER"
  LDAPI="$(printf '%s' "$OL_DIR/run/ldapi" | sed 's|/|%2F|g')"

  t=$(now); make_certs; log "certs in $(since "$t")"
  write_conf
  BASE_DN=$BASE_DN USER_PW=$USER_PW SYNC_PW=$SYNC_PW READER_PW=$READER_PW \
    "$HERE/openldap-seed.sh" "$OL_USERS" "$OL_GROUPS" >"$OL_DIR/seed.ldif"
  slapd_load_and_start "$BASE_DN" "$OL_LOGLEVEL" "$OL_PORT" "$OL_LDAPS_PORT"
  # fail loudly unless authenticated reads, LDAPS with our CA and the sync account work
  out=$(ldapsearch -x -LLL -H "ldap://$OL_HOST:$OL_PORT" -D "$SYNC_DN" -w "$SYNC_PW" -b "$BASE_DN" -s base 1.1 2>&1 || true)
  [[ $out == "dn: $BASE_DN"* ]] || fail_start "bind as $SYNC_DN + base search of $BASE_DN failed: $out"
  LDAPTLS_CACERT="$OL_DIR/certs/ca.crt" LDAPTLS_REQCERT=demand \
    ldapwhoami -x -H "ldaps://$OL_HOST:$OL_LDAPS_PORT" -D "$SYNC_DN" -w "$SYNC_PW" >/dev/null 2>&1 ||
    fail_start "LDAPS on $OL_LDAPS_PORT does not verify with $OL_DIR/certs/ca.crt"
  log "slapd pid $pid up in $(since "$t")"

  write_env "$pid"
  log "ready in $(since "$t0"): ldap://$OL_HOST:$OL_PORT ldaps://$OL_HOST:$OL_LDAPS_PORT users=$OL_USERS groups=$OL_GROUPS env=$OL_DIR/env"
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
