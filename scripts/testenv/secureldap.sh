#!/usr/bin/env bash
# Private, throw-away EMULATION of Google's Secure LDAP service for dirgate's integration tests: a slapd 2.5
# (Debian bookworm) instance shaped like ldap.google.com as far as password checks go. No real Google service can
# run here; verify against the real one before claiming compatibility.
#
#   scripts/testenv/secureldap.sh start    wipe $SL_DIR, create certs + config + seed, start slapd, write $SL_DIR/env
#   scripts/testenv/secureldap.sh stop     kill the slapd whose pid is in $SL_DIR/run/slapd.pid, delete $SL_DIR
#   scripts/testenv/secureldap.sh status   exit 0 if that slapd runs and answers, 1 otherwise
#
# Env (all optional):
#   SL_DIR=/tmp/dirgate-secureldap  instance dir (certs, slapd.conf, slapd.d, db, run/, seed.ldif, slapd.log, env)
#   SL_HOST=127.0.0.1 SL_LDAPS_PORT=3640   ldaps:// only (no plain ldap:// listener; + ldapi://$SL_DIR/run/ldapi)
#   SL_PREFIX=DIRGATE_GSL           name prefix of the variables written to $SL_DIR/env
#   SL_CA_FROM=<certs dir>          reuse ca.{crt,key} and wrong-ca.{crt,key} of another instance (e.g. $OL_DIR/certs,
#                                   so one CA file verifies every upstream); default: fresh CAs
#   SL_USER_PW SL_OTHER_USER_PW SL_CONFIG_PW   passwords (defaults below)
#   SL_LOGLEVEL=none                slapd debug level (e.g. "stats"); goes to $SL_DIR/slapd.log (errors always do)
#
# What it emulates:
#   * LDAP clients authenticate with a TLS client certificate: TLSVerifyClient demand, so a TLS session without a
#     certificate issued by the test CA (none, or one issued by wrong-ca) is refused during the handshake.
#   * Google's tree: users at uid=<local part of the primary email>,<their org unit>,dc=example,dc=test (the root
#     org unit is ou=Users, /Sales/EU is ou=EU,ou=Sales,ou=Users) with mail, cn, sn, givenName and a password;
#     lisa is in /Sales/EU, and ann@other.test (a secondary domain) shares ann's local part, lives in /Sales and has
#     a password of her own; groups at cn=<name>,ou=Groups. Searches are open to any client that passed the
#     certificate check (userPassword: auth only), as with Google's "Read user information" on.
#   * "Suspended users cannot bind": sue is ppolicy-locked (pwdAccountLockedTime 000001010000Z, policy with
#     pwdMaxFailure 0, so wrong passwords never lock anybody), so her binds fail with invalidCredentials (49).
# Known divergences from Google: no access credentials (client bind DN + password), no StartTLS on 389, no
#   per-client OU scoping or permission toggles, no Google-specific attributes (googleUid, memberOf, ...).
# Certificates in $SL_DIR/certs (EC P-256): ca.crt ca.key, wrong-ca.crt wrong-ca.key, server.crt server.key
#   (serverAuth, SAN DNS:localhost, DNS:$(hostname), IP:127.0.0.1, IP:$SL_HOST), client.crt client.key (clientAuth,
#   issued by ca: accepted), untrusted-client.crt untrusted-client.key (clientAuth, issued by wrong-ca: refused).
# $SL_DIR/env (`. $SL_DIR/env`), P = $SL_PREFIX:
#   P_LDAPS_URL P_HOST P_LDAPS_PORT P_BASE P_DOMAIN P_CA P_CERT_DIR P_CLIENT_CERT P_CLIENT_KEY P_UNTRUSTED_CLIENT_CERT
#   P_UNTRUSTED_CLIENT_KEY P_USER_PW P_USER (primary email of a user who binds) P_USER_DN P_USER2 P_USER2_DN
#   P_SUSPENDED_USER P_SUSPENDED_USER_DN P_NESTED_USER P_NESTED_USER_DN P_NESTED_USER_OU (org unit path) P_OTHER_DOMAIN
#   P_OTHER_USER P_OTHER_USER_DN P_OTHER_USER_OU P_OTHER_USER_PW P_DIR P_PID
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SL_DIR=${SL_DIR:-/tmp/dirgate-secureldap}
SL_HOST=${SL_HOST:-127.0.0.1}
SL_LDAPS_PORT=${SL_LDAPS_PORT:-3640}
SL_PREFIX=${SL_PREFIX:-DIRGATE_GSL}
SL_CA_FROM=${SL_CA_FROM:-}
SL_LOGLEVEL=${SL_LOGLEVEL:-none}
DOMAIN=example.test
OTHER_DOMAIN=other.test
BASE_DN=dc=example,dc=test
NESTED_PARENT="ou=EU,ou=Sales,ou=Users,$BASE_DN"
USER_PW=${SL_USER_PW:-Passw0rd!}
OTHER_USER_PW=${SL_OTHER_USER_PW:-0ther-Passw0rd!}
CONFIG_DN="cn=admin,cn=config"
CONFIG_PW=${SL_CONFIG_PW:-ConfigPassw0rd!}
POLICY_DN="cn=suspension,ou=Policies,$BASE_DN"
MARKER=.dirgate-secureldap-instance
PIDFILE="$SL_DIR/run/slapd.pid"
NAME="secureldap ${SL_DIR##*/}"
# NB: never export LDAPNOINIT=1 here: it also makes libldap ignore LDAPTLS_CACERT from the environment.

INST_VAR=SL_DIR INST_DIR=$SL_DIR INST_HOST=$SL_HOST INST_PROC=slapd
# shellcheck source=scripts/testenv/lib.sh
. "$HERE/lib.sh"

# answers over ldapi: the only listener that needs no client certificate
answers() { ldapsearch -x -LLL -o nettimeout=2 -H "ldapi://$LDAPI" -s base -b "" 1.1 >/dev/null 2>&1; }

cmd_stop() {
  check_dir
  stop_slapd
  rm -rf "$SL_DIR"
}

cmd_status() {
  local pid
  LDAPI="$(printf '%s' "$SL_DIR/run/ldapi" | sed 's|/|%2F|g')"
  if pid=$(our_pid) && answers; then echo "running pid $pid ldaps://$SL_HOST:$SL_LDAPS_PORT ($SL_DIR)"; return 0; fi
  echo "not running ($SL_DIR)"; return 1
}

make_certs() {
  local san
  san="DNS:localhost,DNS:$(hostname),IP:127.0.0.1"
  [[ $SL_HOST == 127.0.0.1 ]] || san+=",IP:$SL_HOST"
  (
    cd "$SL_DIR/certs"
    copy_or_make_cas SL_CA_FROM "dirgate ca (Secure LDAP emulation)" "dirgate wrong-ca (Secure LDAP emulation)"
    issue_cert server ca "$san" serverAuth
    issue_cert client ca "" clientAuth
    issue_cert untrusted-client wrong-ca "" clientAuth
    chmod 600 ./*.key
  )
}

write_conf() {
  local conf_hash
  conf_hash=$(slappasswd -h '{SSHA}' -s "$CONFIG_PW")
  cat >"$SL_DIR/slapd.conf" <<EOF
# generated by scripts/testenv/secureldap.sh -- converted to $SL_DIR/slapd.d (cn=config) before start
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
pidfile  $PIDFILE
argsfile $SL_DIR/run/slapd.args
# nothing to syslog: slapd runs with -d (foreground) and writes its stderr to $SL_DIR/slapd.log
loglevel none
TLSCACertificateFile  $SL_DIR/certs/ca.crt
TLSCertificateFile    $SL_DIR/certs/server.crt
TLSCertificateKeyFile $SL_DIR/certs/server.key
# Google's Secure LDAP authenticates LDAP clients by their certificate: no certificate, no session
TLSVerifyClient demand

database config
rootdn "$CONFIG_DN"
rootpw $conf_hash
access to * by dn.exact="gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth" manage by * none

database mdb
suffix "$BASE_DN"
directory $SL_DIR/db
maxsize 104857600
dbnosync
index objectClass,uid,mail eq
access to attrs=userPassword
  by * auth
access to *
  by * read
overlay ppolicy
ppolicy_default "$POLICY_DN"
ppolicy_use_lockout
EOF
}

# person PARENT UID GIVEN SN DOMAIN HASH [LOCKED]: one user entry under PARENT (ou=Users or an org unit beneath it)
person() {
  printf 'dn: uid=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s %s\ngivenName: %s\nsn: %s\n' \
    "$2" "$1" "$2" "$3" "$4" "$3" "$4"
  printf 'mail: %s@%s\nuserPassword: %s\n' "$2" "$5" "$6"
  [[ -z ${7:-} ]] || printf 'pwdAccountLockedTime: 000001010000Z\n'
  echo
}

# user UID GIVEN SN [LOCKED]: one ou=Users entry of the primary domain, with the user password
user() { person "ou=Users,$BASE_DN" "$1" "$2" "$3" "$DOMAIN" "$PW_HASH" "${4:-}"; }

# ou NAME PARENT: one org unit
ou() { printf 'dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n\n' "$1" "$2" "$1"; }

write_seed() {
  PW_HASH=$(slappasswd -h '{SSHA}' -s "$USER_PW")
  {
    printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example (Secure LDAP emulation)\n\n' "$BASE_DN"
    for n in Users Groups Policies; do ou "$n" "$BASE_DN"; done
    ou Sales "ou=Users,$BASE_DN"
    ou EU "ou=Sales,ou=Users,$BASE_DN"
    printf 'dn: %s\nobjectClass: device\nobjectClass: pwdPolicy\ncn: suspension\npwdAttribute: userPassword\n' "$POLICY_DN"
    printf 'pwdLockout: TRUE\npwdMaxFailure: 0\ndescription: lets pwdAccountLockedTime refuse the binds of suspended users\n\n'
    user ann Ann Archer
    user bob Bob Baker
    user sue Sue Suspended locked
    # Google places a user under her org unit (/Sales/EU), not directly under ou=Users
    person "$NESTED_PARENT" lisa Lisa Smith "$DOMAIN" "$PW_HASH"
    # the same local part as ann, in a secondary domain, with a password of her own: a bind to ann's entry with it
    # fails, so only a bind to this entry (found by mail) checks it
    person "ou=Sales,ou=Users,$BASE_DN" ann Ann Other "$OTHER_DOMAIN" "$(slappasswd -h '{SSHA}' -s "$OTHER_USER_PW")"
    printf 'dn: cn=staff,ou=Groups,%s\nobjectClass: groupOfNames\ncn: staff\n' "$BASE_DN"
    printf 'member: uid=ann,ou=Users,%s\nmember: uid=bob,ou=Users,%s\nmember: uid=sue,ou=Users,%s\n\n' "$BASE_DN" "$BASE_DN" "$BASE_DN"
  } >"$SL_DIR/seed.ldif"
}

write_env() {
  local p=$SL_PREFIX c="$SL_DIR/certs" k v i
  local -a kv=(
    LDAPS_URL "ldaps://$SL_HOST:$SL_LDAPS_PORT" HOST "$SL_HOST" LDAPS_PORT "$SL_LDAPS_PORT" BASE "$BASE_DN"
    DOMAIN "$DOMAIN" CA "$c/ca.crt" CERT_DIR "$c" CLIENT_CERT "$c/client.crt" CLIENT_KEY "$c/client.key"
    UNTRUSTED_CLIENT_CERT "$c/untrusted-client.crt" UNTRUSTED_CLIENT_KEY "$c/untrusted-client.key"
    USER_PW "$USER_PW" USER "ann@$DOMAIN" USER_DN "uid=ann,ou=Users,$BASE_DN"
    USER2 "bob@$DOMAIN" USER2_DN "uid=bob,ou=Users,$BASE_DN"
    SUSPENDED_USER "sue@$DOMAIN" SUSPENDED_USER_DN "uid=sue,ou=Users,$BASE_DN"
    NESTED_USER "lisa@$DOMAIN" NESTED_USER_DN "uid=lisa,$NESTED_PARENT" NESTED_USER_OU /Sales/EU
    OTHER_DOMAIN "$OTHER_DOMAIN" OTHER_USER "ann@$OTHER_DOMAIN" OTHER_USER_DN "uid=ann,ou=Sales,ou=Users,$BASE_DN"
    OTHER_USER_OU /Sales OTHER_USER_PW "$OTHER_USER_PW" DIR "$SL_DIR" PID "$1"
  )
  {
    echo "# $SL_PREFIX: Google Secure LDAP emulation (slapd), written by scripts/testenv/secureldap.sh $(date -u +%FT%TZ)"
    for ((i = 0; i < ${#kv[@]}; i += 2)); do
      k=${kv[i]} v=${kv[i + 1]}
      echo "export ${p}_$k=$(sq "$v")"
    done
  } >"$SL_DIR/env.tmp"
  mv "$SL_DIR/env.tmp" "$SL_DIR/env"
}

fail_start() {
  log "ERROR: $*"
  if [[ -s $SL_DIR/slapd.log ]]; then log "last lines of $SL_DIR/slapd.log:"; tail -n 20 "$SL_DIR/slapd.log" >&2; fi
  stop_slapd
  exit 1
}

# whoami CERT DN: ldapwhoami over LDAPS as DN with the user password, presenting certs/CERT.{crt,key} (none when
# CERT is empty); prints ldapwhoami's output, fails as it does
whoami() {
  local c="$SL_DIR/certs"
  env LDAPTLS_CACERT="$c/ca.crt" LDAPTLS_REQCERT=demand ${1:+LDAPTLS_CERT="$c/$1.crt" LDAPTLS_KEY="$c/$1.key"} \
    ldapwhoami -x -o nettimeout=5 -H "ldaps://$SL_HOST:$SL_LDAPS_PORT" -D "$2" -w "$USER_PW" 2>&1
}

cmd_start() {
  local t0 t pid n out
  t0=$(now)
  for n in slapd slapadd slaptest slappasswd ldapsearch ldapwhoami openssl; do
    command -v "$n" >/dev/null || die "$n missing: run scripts/testenv/install.sh"
  done
  [[ $SL_PREFIX =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "bad SL_PREFIX '$SL_PREFIX'"
  check_dir
  stop_slapd # a previous instance in the same dir (start twice in a row)
  port_busy "$SL_LDAPS_PORT" &&
    die "$SL_HOST:$SL_LDAPS_PORT is already in use by another process ($(ss -Htlnp "sport = :$SL_LDAPS_PORT" 2>/dev/null | awk '{print $NF}'))"
  rm -rf "$SL_DIR"
  mkdir -p "$SL_DIR"/{certs,db,run,slapd.d}
  : >"$SL_DIR/$MARKER"
  LDAPI="$(printf '%s' "$SL_DIR/run/ldapi" | sed 's|/|%2F|g')"

  t=$(now); make_certs; log "certs in $(since "$t")"
  write_conf
  write_seed
  slapd_load_and_start "$BASE_DN" "$SL_LOGLEVEL" "" "$SL_LDAPS_PORT"
  # fail loudly unless the trusted client certificate opens a session in which ann binds, and every refusal
  # this emulation promises happens
  out=$(whoami client "uid=ann,ou=Users,$BASE_DN") || fail_start "ann's bind with the client certificate failed: $out"
  [[ $out == "dn:uid=ann,ou=Users,$BASE_DN" ]] || fail_start "ann's bind answered: $out"
  out=$(whoami client "uid=lisa,$NESTED_PARENT") || fail_start "lisa's bind in a nested org unit failed: $out"
  out=$(USER_PW=$OTHER_USER_PW whoami client "uid=ann,ou=Sales,ou=Users,$BASE_DN") ||
    fail_start "ann@$OTHER_DOMAIN's bind failed: $out"
  out=$(whoami client "uid=sue,ou=Users,$BASE_DN") && fail_start "suspended sue could bind: $out"
  [[ $out == *"(49)"* ]] || fail_start "suspended sue's bind failed otherwise than with 49: $out"
  out=$(whoami "" "uid=ann,ou=Users,$BASE_DN") && fail_start "a session without a client certificate was accepted: $out"
  out=$(whoami untrusted-client "uid=ann,ou=Users,$BASE_DN") &&
    fail_start "a session with the untrusted client certificate was accepted: $out"
  log "slapd pid $pid up in $(since "$t")"

  write_env "$pid"
  log "ready in $(since "$t0"): ldaps://$SL_HOST:$SL_LDAPS_PORT (client certificate required) env=$SL_DIR/env"
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
