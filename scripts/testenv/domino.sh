#!/usr/bin/env bash
# Private, throw-away EMULATION of an HCL Domino LDAP service (Domino Directory) for dirgate's integration
# tests: a slapd 2.5 (Debian bookworm) instance shaped like Domino. No real Domino can run here; verify against
# a real server before claiming compatibility.
#
#   scripts/testenv/domino.sh start    wipe $DOM_DIR, create certs + config + seed, start slapd, write $DOM_DIR/env
#   scripts/testenv/domino.sh stop     kill the slapd whose pid is in $DOM_DIR/run/slapd.pid, delete $DOM_DIR
#   scripts/testenv/domino.sh status   exit 0 if that slapd runs and answers, 1 otherwise
#
# Env (all optional):
#   DOM_DIR=/tmp/dirgate-domino     instance dir (certs, slapd.conf, slapd.d, db, run/, rootdse.ldif, seed.ldif,
#                                   slapd.log, env)
#   DOM_HOST=127.0.0.1 DOM_PORT=3391 DOM_LDAPS_PORT=3637   ldap:// and ldaps:// (+ ldapi://$DOM_DIR/run/ldapi)
#   DOM_USERS=500                   generated people (>= 50), see domino-seed.sh for the exact content
#   DOM_PAGING=1                    0: no RFC 2696 paging (size.prtotal=disabled: a search with the paged-results
#                                   control fails with adminLimitExceeded (11), even if the control is not
#                                   critical; the control's OID is also hidden from the root DSE supportedControl)
#   DOM_SIZELIMIT=unlimited         a number N: every non-paged search stops after N entries with
#                                   sizeLimitExceeded (4) -- Domino's "Maximum number of entries returned"
#                                   (LDAPMaxEntriesReturned); applies to the sync account too, on purpose.
#                                   With DOM_PAGING=1 paged searches still read everything.
#   DOM_LOCK_DENIED=1               members of the deny-list group CN=Terminated Users are ppolicy-locked, so
#                                   their binds fail (49) -- the emulation of "Not access server"; 0: they bind
#   DOM_PREFIX=DIRGATE_DOM          name prefix of the variables written to $DOM_DIR/env
#   DOM_CA_FROM=<certs dir>         reuse ca.{crt,key} of another instance (e.g. $OL_DIR/certs, so one CA file
#                                   verifies all upstreams); default: a fresh CA per instance
#   DOM_SYNC_PW DOM_USER_PW DOM_ADMIN_PW DOM_CONFIG_PW   passwords (defaults below)
#   DOM_LOGLEVEL=none               slapd debug level (e.g. "stats"); goes to $DOM_DIR/slapd.log (errors always do)
#
# What it emulates (scripts/testenv/domino.schema has the object classes and OIDs):
#   * DNs without DC components: one back_mdb database with the NULL suffix "", people at
#     CN=Full Name,OU=<ou>,O=Acme, flat groups at the ROOT (CN=Sales Team): a subtree search based at ""
#     returns people and groups, one based at O=Acme no groups. Root DSE namingContexts is empty.
#   * root DSE (rootdse.ldif): vendorName, vendorVersion, dominoMajMinVersion 120020, ibm-enabledCapabilities and
#     ibm-supportedCapabilities with 2.16.840.1.113678.2.2.2.2.1354 (dominoUNID) and .1355 (dominoAccessGroups)
#   * dominoAccessGroups computed at search time by dynlist for members of dominoGroups, nested groups
#     included (values come back lower-cased: dynlist returns normalised DNs)
#   * ppolicy (default policy CN=Emulator Password Policy,O=Acme: pwdLockout on, pwdMaxFailure 0) for the
#     deny-list lock; no syncprov (Domino has no RFC 4533 sync)
#   * access: userPassword is auth only; everything else (operational attributes such as entryUUID,
#     modifyTimestamp, pwdAccountLockedTime included) readable by the sync account CN=dirgate sync,O=Acme and
#     any bound user; anonymous: root DSE and schema only. The rootdn CN=Domino Admin,O=Acme (no entry, no
#     size limit) may write; cn=config is writable by root over ldapi (SASL EXTERNAL), e.g. olcSizeLimit of
#     olcDatabase={1}mdb,cn=config at run time.
# Known divergences from a real Domino: slapd returns attribute names as defined here (Domino: lower case);
#   dominoAccessGroups is a user attribute (returned with "*"; slapd refuses operational types from schema
#   files); only DN binds (no short-name or mail binds); groups need a member (groupOfNames); no computed `mail`
#   fallback chain; no LDAPGroupMembership filter-shape behaviour; no Notes-style (CN=x/O=y) names.
# Certificates in $DOM_DIR/certs (EC P-256): ca.crt ca.key (test CA), server.crt server.key (SAN DNS:localhost,
#   DNS:$(hostname), IP:127.0.0.1 and IP:$DOM_HOST).
# $DOM_DIR/env (`. $DOM_DIR/env`), P = $DOM_PREFIX:
#   P_URL P_LDAPS_URL P_LDAPI_URL P_HOST P_PORT P_LDAPS_PORT P_BASE (empty) P_ORG_BASE (O=Acme) P_SYNC_DN
#   P_SYNC_PW P_USER_PW P_ADMIN_DN P_ADMIN_PW P_USERS P_PERSONS (USERS + 3) P_GROUPS (9) P_PAGING P_SIZELIMIT
#   P_LOCK_DENIED P_CA P_CERT_DIR P_DIR P_PID and the sample DNs named by domino-seed.sh: P_USER_DN
#   P_NESTED_USER_DN P_DENIED_USER_DN P_NOSYNC_USER_DN P_IDLOCKED_USER_DN P_SPECIAL_USER_DN P_PLUS_USER_DN
#   P_UTF8_USER_DN P_DENY_GROUP_DN P_NESTED_GROUP_DN P_PARENT_GROUP_DN P_SERVER_DN
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DOM_DIR=${DOM_DIR:-/tmp/dirgate-domino}
DOM_HOST=${DOM_HOST:-127.0.0.1}
DOM_PORT=${DOM_PORT:-3391}
DOM_LDAPS_PORT=${DOM_LDAPS_PORT:-3637}
DOM_USERS=${DOM_USERS:-500}
DOM_PAGING=${DOM_PAGING:-1}
DOM_SIZELIMIT=${DOM_SIZELIMIT:-unlimited}
DOM_LOCK_DENIED=${DOM_LOCK_DENIED:-1}
DOM_PREFIX=${DOM_PREFIX:-DIRGATE_DOM}
DOM_CA_FROM=${DOM_CA_FROM:-}
DOM_LOGLEVEL=${DOM_LOGLEVEL:-none}
BASE_DN=""
ORG_BASE="O=Acme"
SYNC_DN="CN=dirgate sync,$ORG_BASE"
SYNC_PW=${DOM_SYNC_PW:-SyncPassw0rd!}
USER_PW=${DOM_USER_PW:-Passw0rd!}
ADMIN_DN="CN=Domino Admin,$ORG_BASE"
ADMIN_PW=${DOM_ADMIN_PW:-AdminPassw0rd!}
CONFIG_DN="cn=admin,cn=config"
CONFIG_PW=${DOM_CONFIG_PW:-ConfigPassw0rd!}
POLICY_DN="CN=Emulator Password Policy,$ORG_BASE"
NGROUPS=9 # dominoGroups in the seed (domino-seed.sh)
PAGED_OID_RE='^1\.2\.840\.113556\.1\.4\.319$' # RFC 2696 paged results control
MARKER=.dirgate-domino-instance
PIDFILE="$DOM_DIR/run/slapd.pid"
NAME="domino ${DOM_DIR##*/}"
# NB: never export LDAPNOINIT=1 here: it also makes libldap ignore LDAPTLS_CACERT from the environment.

INST_VAR=DOM_DIR INST_DIR=$DOM_DIR INST_HOST=$DOM_HOST INST_PROC=slapd
# shellcheck source=scripts/testenv/lib.sh
. "$HERE/lib.sh"

answers() { ldapsearch -x -LLL -o nettimeout=2 -H "ldap://$DOM_HOST:$DOM_PORT" -s base -b "" 1.1 >/dev/null 2>&1; }

cmd_stop() {
  check_dir
  stop_slapd
  rm -rf "$DOM_DIR"
}

cmd_status() {
  local pid
  if pid=$(our_pid) && answers; then echo "running pid $pid ldap://$DOM_HOST:$DOM_PORT ($DOM_DIR)"; return 0; fi
  echo "not running ($DOM_DIR)"; return 1
}

make_certs() {
  local san
  san="DNS:localhost,DNS:$(hostname),IP:127.0.0.1"
  [[ $DOM_HOST == 127.0.0.1 ]] || san+=",IP:$DOM_HOST"
  (
    cd "$DOM_DIR/certs"
    if [[ -n $DOM_CA_FROM ]]; then
      [[ -r $DOM_CA_FROM/ca.crt && -r $DOM_CA_FROM/ca.key ]] || die "DOM_CA_FROM=$DOM_CA_FROM has no ca.crt/ca.key"
      cp "$DOM_CA_FROM/ca.crt" "$DOM_CA_FROM/ca.key" .
    else
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
        -subj "/CN=dirgate test CA (Domino emulation)" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout ca.key -out ca.crt 2>/dev/null || die "creating the test CA failed"
    fi
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
      -keyout server.key -out server.csr 2>/dev/null || die "creating the server key failed"
    printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
      "$san" >server.ext
    openssl x509 -req -sha256 -days 3650 -in server.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
      -extfile server.ext -out server.crt 2>/dev/null || die "signing the server certificate failed"
    rm -f server.csr server.ext
    chmod 600 ./*.key
  )
}

write_rootdse() {
  cat >"$DOM_DIR/rootdse.ldif" <<EOF
# generated by scripts/testenv/domino.sh: Domino-specific root DSE attributes (emulation; the values follow
# HCL's "LDAP root DSE attributes"; vendorName/vendorVersion text is illustrative)
dn:
vendorName: HCL Technologies Ltd.
vendorVersion: Release 12.0.2
dominoMajMinVersion: 120020
ibm-enabledCapabilities: 2.16.840.1.113678.2.2.2.2.1354
ibm-enabledCapabilities: 2.16.840.1.113678.2.2.2.2.1355
ibm-supportedCapabilities: 2.16.840.1.113678.2.2.2.2.1354
ibm-supportedCapabilities: 2.16.840.1.113678.2.2.2.2.1355
EOF
}

write_conf() {
  local root_hash conf_hash prtotal=unlimited hide_paging=""
  root_hash=$(slappasswd -h '{SSHA}' -s "$ADMIN_PW")
  conf_hash=$(slappasswd -h '{SSHA}' -s "$CONFIG_PW")
  if [[ $DOM_PAGING == 0 ]]; then
    prtotal=disabled
    # supportedControl has no EQUALITY rule, so the value is matched by regex
    hide_paging="access to dn.base=\"\" attrs=supportedControl val.regex=\"$PAGED_OID_RE\" by * none"
  fi
  cat >"$DOM_DIR/slapd.conf" <<EOF
# generated by scripts/testenv/domino.sh -- converted to $DOM_DIR/slapd.d (cn=config) before start
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/dyngroup.schema
include $HERE/domino.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
moduleload dynlist
pidfile  $PIDFILE
argsfile $DOM_DIR/run/slapd.args
# nothing to syslog: slapd runs with -d (foreground) and writes its stderr to $DOM_DIR/slapd.log
loglevel none
TLSCACertificateFile  $DOM_DIR/certs/ca.crt
TLSCertificateFile    $DOM_DIR/certs/server.crt
TLSCertificateKeyFile $DOM_DIR/certs/server.key
# DOM_SIZELIMIT=$DOM_SIZELIMIT DOM_PAGING=$DOM_PAGING: non-paged searches stop at the size limit (for everybody but
# the rootdn); size.prtotal=disabled refuses the paged-results control, unlimited lets paged searches read all
sizelimit size.soft=$DOM_SIZELIMIT size.hard=$DOM_SIZELIMIT size.prtotal=$prtotal

# frontend ACLs (root DSE, cn=Subschema): readable by anybody${hide_paging:+; paged results not advertised}
$hide_paging
access to * by * read

database config
rootdn "$CONFIG_DN"
rootpw $conf_hash
access to * by dn.exact="gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth" manage by * none

# Domino has no DC components: one database with the NULL suffix holds O=Acme and the flat root-level groups
database mdb
suffix ""
rootdn "$ADMIN_DN"
rootpw $root_hash
directory $DOM_DIR/db
maxsize 1073741824
dbnosync
index objectClass,availableForDirSync,groupType,checkPassword eq
index cn,uid,mail,internetAddress,sn,givenName eq,sub
index member,mailServer,dominoUNID eq
access to attrs=userPassword
  by * auth
access to *
  by dn.exact="$SYNC_DN" read
  by users read
  by * none
overlay ppolicy
ppolicy_default "$POLICY_DN"
ppolicy_use_lockout
overlay dynlist
dynlist-attrset groupOfURLs memberURL member+dominoAccessGroups@dominoGroup*
EOF
}

write_env() {
  local p=$DOM_PREFIX c="$DOM_DIR/certs" k v i
  local -a kv=(
    URL "ldap://$DOM_HOST:$DOM_PORT" LDAPS_URL "ldaps://$DOM_HOST:$DOM_LDAPS_PORT" LDAPI_URL "ldapi://$LDAPI"
    HOST "$DOM_HOST" PORT "$DOM_PORT" LDAPS_PORT "$DOM_LDAPS_PORT" BASE "$BASE_DN" ORG_BASE "$ORG_BASE"
    SYNC_DN "$SYNC_DN" SYNC_PW "$SYNC_PW" USER_PW "$USER_PW" ADMIN_DN "$ADMIN_DN" ADMIN_PW "$ADMIN_PW"
    USERS "$DOM_USERS" PERSONS "$((DOM_USERS + 3))" GROUPS "$NGROUPS"
    PAGING "$DOM_PAGING" SIZELIMIT "$DOM_SIZELIMIT" LOCK_DENIED "$DOM_LOCK_DENIED"
    CA "$c/ca.crt" CERT_DIR "$c" DIR "$DOM_DIR" PID "$1"
  )
  # the sample DNs: "# sample NAME DN" comment lines at the top of the seed
  while read -r k v; do kv+=("$k" "$v"); done < <(sed -n 's/^# sample \([A-Z0-9_]*\) \(.*\)$/\1 \2/p' "$DOM_DIR/seed.ldif")
  {
    echo "# $DOM_PREFIX: Domino LDAP emulation (slapd), written by scripts/testenv/domino.sh $(date -u +%FT%TZ)"
    for ((i = 0; i < ${#kv[@]}; i += 2)); do
      k=${kv[i]} v=${kv[i + 1]}
      echo "export ${p}_$k=$(sq "$v")"
    done
  } >"$DOM_DIR/env.tmp"
  mv "$DOM_DIR/env.tmp" "$DOM_DIR/env"
}

fail_start() {
  log "ERROR: $*"
  if [[ -s $DOM_DIR/slapd.log ]]; then log "last lines of $DOM_DIR/slapd.log:"; tail -n 20 "$DOM_DIR/slapd.log" >&2; fi
  stop_slapd
  exit 1
}

cmd_start() {
  local t0 t pid n i out
  t0=$(now)
  for n in slapd slapadd slaptest slappasswd ldapsearch ldapwhoami ldapmodify openssl perl; do
    command -v "$n" >/dev/null || die "$n missing: run scripts/testenv/install.sh"
  done
  if ! [[ $DOM_USERS =~ ^[0-9]+$ ]] || ((DOM_USERS < 50)); then die "DOM_USERS must be a number >= 50: '$DOM_USERS'"; fi
  [[ $DOM_PAGING == [01] ]] || die "DOM_PAGING must be 0 or 1: '$DOM_PAGING'"
  [[ $DOM_LOCK_DENIED == [01] ]] || die "DOM_LOCK_DENIED must be 0 or 1: '$DOM_LOCK_DENIED'"
  [[ $DOM_SIZELIMIT == unlimited || $DOM_SIZELIMIT =~ ^[1-9][0-9]*$ ]] ||
    die "DOM_SIZELIMIT must be 'unlimited' or a positive number: '$DOM_SIZELIMIT'"
  [[ $DOM_PREFIX =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "bad DOM_PREFIX '$DOM_PREFIX'"
  [[ -r $HERE/domino.schema && -x $HERE/domino-seed.sh ]] || die "$HERE/domino.schema or domino-seed.sh missing"
  check_dir
  stop_slapd # a previous instance in the same dir (start twice in a row)
  for n in "$DOM_PORT" "$DOM_LDAPS_PORT"; do
    port_busy "$n" && die "$DOM_HOST:$n is already in use by another process ($(ss -Htlnp "sport = :$n" 2>/dev/null | awk '{print $NF}'))"
  done
  rm -rf "$DOM_DIR"
  mkdir -p "$DOM_DIR"/{certs,db,run,slapd.d}
  : >"$DOM_DIR/$MARKER"
  LDAPI="$(printf '%s' "$DOM_DIR/run/ldapi" | sed 's|/|%2F|g')"

  t=$(now); make_certs; log "certs in $(since "$t")"
  write_rootdse
  write_conf
  USER_PW=$USER_PW SYNC_PW=$SYNC_PW LOCK_DENIED=$DOM_LOCK_DENIED \
    "$HERE/domino-seed.sh" "$DOM_USERS" >"$DOM_DIR/seed.ldif"
  slapd_load_and_start "$BASE_DN" "$DOM_LOGLEVEL" "$DOM_PORT" "$DOM_LDAPS_PORT"
  # The root DSE file is added at run time: as olcRootDSE in slapd.d it would be read before the schema
  # (cn=config is loaded before cn=schema), making the Domino attributes "UNKNOWN attributeDescription"s.
  out=$(printf 'dn: cn=config\nchangetype: modify\nadd: olcRootDSE\nolcRootDSE: %s\n' "$DOM_DIR/rootdse.ldif" |
    ldapmodify -x -H "ldapi://$LDAPI" -D "$CONFIG_DN" -w "$CONFIG_PW" 2>&1) || fail_start "adding olcRootDSE failed: $out"
  # fail loudly unless the Domino root DSE, authenticated reads and LDAPS with our CA work
  out=$(ldapsearch -x -LLL -H "ldap://$DOM_HOST:$DOM_PORT" -s base -b "" dominoMajMinVersion 2>&1 || true)
  [[ $out == *"dominoMajMinVersion: 120020"* ]] || fail_start "root DSE lacks dominoMajMinVersion: $out"
  out=$(ldapsearch -x -LLL -H "ldap://$DOM_HOST:$DOM_PORT" -D "$SYNC_DN" -w "$SYNC_PW" -b "CN=All Staff" -s base dominoUNID 2>&1 || true)
  [[ $out == *"dominoUNID: "* ]] || fail_start "bind as $SYNC_DN + base search of CN=All Staff failed: $out"
  LDAPTLS_CACERT="$DOM_DIR/certs/ca.crt" LDAPTLS_REQCERT=demand \
    ldapwhoami -x -H "ldaps://$DOM_HOST:$DOM_LDAPS_PORT" -D "$SYNC_DN" -w "$SYNC_PW" >/dev/null 2>&1 ||
    fail_start "LDAPS on $DOM_LDAPS_PORT does not verify with $DOM_DIR/certs/ca.crt"
  log "slapd pid $pid up in $(since "$t")"

  write_env "$pid"
  log "ready in $(since "$t0"): ldap://$DOM_HOST:$DOM_PORT ldaps://$DOM_HOST:$DOM_LDAPS_PORT users=$DOM_USERS" \
    "paging=$DOM_PAGING sizelimit=$DOM_SIZELIMIT lock_denied=$DOM_LOCK_DENIED env=$DOM_DIR/env"
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
