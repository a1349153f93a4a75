#!/usr/bin/env bash
# Bring up the integration-test environment (used by `make test`; stop it with down.sh).
#
#   scripts/testenv/up.sh
#
# 1. install.sh openldap       packages, only if missing
# 2. openldap.sh start         instance 1: OL_DIR=/tmp/dirgate-openldap, 127.0.0.1:3389 / ldaps 3636,
#                              2000 users, 20 groups, variables DIRGATE_OL_*   (OL_* env vars override)
# 3. openldap.sh start         instance 2 (alternate host for failover tests): OL_DIR=/tmp/dirgate-openldap2,
#                              127.0.0.2:3389 / ldaps 3636 (same ports, another loopback address, so one
#                              connector port serves both hosts), 50 users, 20 groups, variables DIRGATE_OL2_*,
#                              same CA as instance 1 (DIRGATE_OL_CA verifies both)
#                              (OL2_DIR OL2_HOST OL2_PORT OL2_LDAPS_PORT OL2_USERS OL2_GROUPS override)
# 4. writes ${DIRGATE_TESTENV:-/tmp/dirgate-testenv.env}: the export lines of both instances' env files
#    plus DIRGATE_TESTENV itself; `. "$DIRGATE_TESTENV"` in a shell, or parse the `export K='V'` lines.
# Prints timings to stderr and the env file path to stdout. Running it again restarts everything with
# fresh data. On failure it stops what it started and exits non-zero.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ENV_FILE=${DIRGATE_TESTENV:-/tmp/dirgate-testenv.env}
OL1_DIR=${OL_DIR:-/tmp/dirgate-openldap}
OL2_DIR=${OL2_DIR:-/tmp/dirgate-openldap2}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2fs", b - a }'; }
log() { echo "[testenv] $*" >&2; }

STARTED=()
cleanup_on_error() {
  local rc=$? d
  trap - EXIT
  if ((rc != 0)); then
    log "FAILED (rc=$rc), stopping what was started"
    for d in "${STARTED[@]}"; do OL_DIR=$d "$HERE/openldap.sh" stop || true; done
    rm -f "$ENV_FILE"
  fi
  exit "$rc"
}
trap cleanup_on_error EXIT

T0=$(now)
t=$(now); "$HERE/install.sh" openldap; T_INSTALL=$(since "$t")

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

{
  echo "# dirgate integration-test environment, written by scripts/testenv/up.sh $(date -u +%FT%TZ)"
  echo "# stop with scripts/testenv/down.sh"
  printf "export DIRGATE_TESTENV='%s'\n" "$ENV_FILE"
  cat "$OL1_DIR/env" "$OL2_DIR/env"
} >"$ENV_FILE.tmp"
mv "$ENV_FILE.tmp" "$ENV_FILE"

log "timings: install $T_INSTALL, openldap $T_OL1, openldap2 $T_OL2, total $(since "$T0")"
log "env: $ENV_FILE"
echo "$ENV_FILE"
