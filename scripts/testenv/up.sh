#!/usr/bin/env bash
# Bring up the integration-test environment (used by `make test`; stop it with down.sh).
#
#   scripts/testenv/up.sh
#
# 1. install.sh openldap samba chromium interop postgres netns   packages, only if missing (no samba with
#                              DIRGATE_SKIP_SAMBA=1)
# 2. openldap.sh start         instance 1: OL_DIR=/tmp/dirgate-openldap, 127.0.0.1:3389 / ldaps 3636,
#                              2000 users, 20 groups, variables DIRGATE_OL_*   (OL_* env vars override)
# 3. openldap.sh start         instance 2 (alternate host for failover tests): OL_DIR=/tmp/dirgate-openldap2,
#                              127.0.0.2:3389 / ldaps 3636 (same ports, another loopback address, so one
#                              connector port serves both hosts), 50 users, 20 groups, variables DIRGATE_OL2_*,
#                              same CA as instance 1 (DIRGATE_OL_CA verifies both)
#                              (OL2_DIR OL2_HOST OL2_PORT OL2_LDAPS_PORT OL2_USERS OL2_GROUPS override)
# 4. samba.sh start            Samba AD DC: AD_DIR=/tmp/dirgate-samba, 127.0.0.1:389 / ldaps 636 / GC 3268, 3269
#                              (fixed ports), realm EXAMPLE.TEST, 300 users, G-Big with 1600 members, variables
#                              DIRGATE_AD_* (AD_* env vars override, see samba.sh). Skipped with
#                              DIRGATE_SKIP_SAMBA=1 (a previous instance in AD_DIR is then stopped).
# 5. writes ${DIRGATE_TESTENV:-/tmp/dirgate-testenv.env}: the export lines of all instances' env files
#    plus DIRGATE_TESTENV itself; `. "$DIRGATE_TESTENV"` in a shell, or parse the `export K='V'` lines.
# 5. domino.sh start x3         Domino LDAP emulators (slapd, null suffix): /tmp/dirgate-domino 127.0.0.1:3391/3637
#                              (paging, 500 users, DIRGATE_DOM_*), /tmp/dirgate-domino2 :3392/3638 (no paging,
#                              DIRGATE_DOM2_*), /tmp/dirgate-domino3 :3393/3639 (no paging, size limit 20,
#                              DIRGATE_DOM3_*); same CA as openldap.
# 6. secureldap.sh start        Google Secure LDAP emulation (slapd, client certificate required, LDAPS only):
#                              SL_DIR=/tmp/dirgate-secureldap 127.0.0.1:3640, variables DIRGATE_GSL_*; same CA as
#                              openldap (SL_DIR SL_HOST SL_LDAPS_PORT override).
# 7. postgres.sh start          PostgreSQL for the cluster-mode state stores: PG_DIR=/tmp/dirgate-postgres
#                              127.0.0.1:5433, role dirgate, database dirgate_test, variables DIRGATE_PG_* (the
#                              connection string is DIRGATE_PG_URL; PG_DIR PG_HOST PG_PORT override).
# Prints timings to stderr and the env file path to stdout. Running it again restarts everything with
# fresh data. On failure it stops what it started and exits non-zero.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ENV_FILE=${DIRGATE_TESTENV:-/tmp/dirgate-testenv.env}
OL1_DIR=${OL_DIR:-/tmp/dirgate-openldap}
OL2_DIR=${OL2_DIR:-/tmp/dirgate-openldap2}
AD_DIR=${AD_DIR:-/tmp/dirgate-samba}
SL_DIR=${SL_DIR:-/tmp/dirgate-secureldap}
PG_DIR=${PG_DIR:-/tmp/dirgate-postgres}
SKIP_SAMBA=${DIRGATE_SKIP_SAMBA:-0}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2fs", b - a }'; }
log() { echo "[testenv] $*" >&2; }

STARTED=()
cleanup_on_error() {
  local rc=$? d
  trap - EXIT
  if ((rc != 0)); then
    log "FAILED (rc=$rc), stopping what was started"
    for d in "${STARTED[@]}"; do
      if [[ $d == samba ]]; then AD_DIR=$AD_DIR "$HERE/samba.sh" stop || true
      elif [[ $d == dom:* ]]; then DOM_DIR=${d#dom:} "$HERE/domino.sh" stop || true
      elif [[ $d == gsl:* ]]; then SL_DIR=${d#gsl:} "$HERE/secureldap.sh" stop || true
      elif [[ $d == pg:* ]]; then PG_DIR=${d#pg:} "$HERE/postgres.sh" stop || true
      else OL_DIR=$d "$HERE/openldap.sh" stop || true; fi
    done
    rm -f "$ENV_FILE"
  fi
  exit "$rc"
}
trap cleanup_on_error EXIT

T0=$(now)
t=$(now)
if [[ $SKIP_SAMBA == 1 ]]; then "$HERE/install.sh" openldap chromium interop postgres netns; else "$HERE/install.sh" openldap samba chromium interop postgres netns; fi
T_INSTALL=$(since "$t")

t=$(now)
STARTED+=("$OL1_DIR")
OL_DIR=$OL1_DIR OL_PREFIX=DIRGATE_OL "$HERE/openldap.sh" start
T_OL1=$(since "$t")

t=$(now)
STARTED+=("$OL2_DIR")
OL_DIR=$OL2_DIR OL_HOST=${OL2_HOST:-127.0.0.2} OL_PORT=${OL2_PORT:-3389} OL_LDAPS_PORT=${OL2_LDAPS_PORT:-3636} \
  OL_USERS=${OL2_USERS:-50} OL_GROUPS=${OL2_GROUPS:-20} OL_PREFIX=DIRGATE_OL2 \
  OL_CA_FROM="$OL1_DIR/certs" "$HERE/openldap.sh" start
T_OL2=$(since "$t")

t=$(now)
ENV_PARTS=("$OL1_DIR/env" "$OL2_DIR/env")
if [[ $SKIP_SAMBA == 1 ]]; then
  log "DIRGATE_SKIP_SAMBA=1: no Samba AD DC"
  AD_DIR=$AD_DIR "$HERE/samba.sh" stop # a Samba of an earlier run must not outlive its env file
  T_AD=skipped
else
  STARTED+=(samba)
  AD_DIR=$AD_DIR "$HERE/samba.sh" start
  ENV_PARTS+=("$AD_DIR/env")
  T_AD=$(since "$t")
fi

# Domino LDAP emulators (same CA as openldap): the main one (paging, 500 users), one that refuses
# paging, and one that refuses paging and stops unpaged searches at 20 entries.
t=$(now)
for spec in "dirgate-domino DIRGATE_DOM 3391 3637 500 1 unlimited" \
  "dirgate-domino2 DIRGATE_DOM2 3392 3638 50 0 unlimited" \
  "dirgate-domino3 DIRGATE_DOM3 3393 3639 50 0 20"; do
  read -r name prefix port lport users paging limit <<<"$spec"
  STARTED+=("dom:/tmp/$name")
  DOM_DIR=/tmp/$name DOM_PREFIX=$prefix DOM_PORT=$port DOM_LDAPS_PORT=$lport DOM_USERS=$users DOM_PAGING=$paging \
    DOM_SIZELIMIT=$limit DOM_CA_FROM="$OL1_DIR/certs" "$HERE/domino.sh" start
  ENV_PARTS+=("/tmp/$name/env")
done
T_DOM=$(since "$t")

t=$(now)
STARTED+=("gsl:$SL_DIR")
SL_DIR=$SL_DIR SL_HOST=${SL_HOST:-127.0.0.1} SL_LDAPS_PORT=${SL_LDAPS_PORT:-3640} SL_CA_FROM="$OL1_DIR/certs" \
  "$HERE/secureldap.sh" start
ENV_PARTS+=("$SL_DIR/env")
T_GSL=$(since "$t")

t=$(now)
STARTED+=("pg:$PG_DIR")
PG_DIR=$PG_DIR "$HERE/postgres.sh" start
ENV_PARTS+=("$PG_DIR/env")
T_PG=$(since "$t")

{
  echo "# dirgate integration-test environment, written by scripts/testenv/up.sh $(date -u +%FT%TZ)"
  echo "# stop with scripts/testenv/down.sh"
  printf "export DIRGATE_TESTENV='%s'\n" "$ENV_FILE"
  cat "${ENV_PARTS[@]}"
} >"$ENV_FILE.tmp"
mv "$ENV_FILE.tmp" "$ENV_FILE"

log "timings: install $T_INSTALL, openldap $T_OL1, openldap2 $T_OL2, samba $T_AD, domino x3 $T_DOM, secureldap $T_GSL, postgres $T_PG, total $(since "$T0")"
log "env: $ENV_FILE"
echo "$ENV_FILE"
