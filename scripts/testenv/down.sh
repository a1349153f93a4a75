#!/usr/bin/env bash
# Stop the integration-test environment started by up.sh and remove its env file.
#
#   scripts/testenv/down.sh
#
# The instance directories are taken from ${DIRGATE_TESTENV:-/tmp/dirgate-testenv.env} (DIRGATE_OL_DIR,
# DIRGATE_OL2_DIR, DIRGATE_AD_DIR, DIRGATE_DOM*_DIR, DIRGATE_GSL_DIR, DIRGATE_PG_DIR) if it exists, else from OL_DIR /
# OL2_DIR / AD_DIR / SL_DIR / PG_DIR or the defaults used by up.sh. Each slapd is stopped through its script
# (openldap.sh, domino.sh, secureldap.sh), the Samba AD DC through samba.sh, PostgreSQL through postgres.sh (each by
# the pid in its own pid file) and its directory deleted. Succeeds when nothing is running.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ENV_FILE=${DIRGATE_TESTENV:-/tmp/dirgate-testenv.env}
dv=()
D1=${OL_DIR:-/tmp/dirgate-openldap}
D2=${OL2_DIR:-/tmp/dirgate-openldap2}
DA=${AD_DIR:-/tmp/dirgate-samba}
DS=${SL_DIR:-/tmp/dirgate-secureldap}
DP=${PG_DIR:-/tmp/dirgate-postgres}
if [[ -f $ENV_FILE ]]; then
  # shellcheck disable=SC1090
  mapfile -t v < <(. "$ENV_FILE" >/dev/null 2>&1; printf '%s\n%s\n%s\n' "${DIRGATE_OL_DIR:-}" "${DIRGATE_OL2_DIR:-}" "${DIRGATE_AD_DIR:-}")
  mapfile -t dv < <(. "$ENV_FILE" >/dev/null 2>&1; printf '%s\n%s\n%s\n' "${DIRGATE_DOM_DIR:-}" "${DIRGATE_DOM2_DIR:-}" "${DIRGATE_DOM3_DIR:-}")
  DS=$(. "$ENV_FILE" >/dev/null 2>&1; printf '%s' "${DIRGATE_GSL_DIR:-$DS}")
  DP=$(. "$ENV_FILE" >/dev/null 2>&1; printf '%s' "${DIRGATE_PG_DIR:-$DP}")
  D1=${v[0]:-$D1}
  D2=${v[1]:-$D2}
  DA=${v[2]:-$DA}
fi

t0=$(date +%s.%N)
rc=0
for d in "$D1" "$D2"; do
  OL_DIR=$d "$HERE/openldap.sh" stop || rc=1
done
AD_DIR=$DA "$HERE/samba.sh" stop || rc=1
for i in 0 1 2; do
  def=/tmp/dirgate-domino$([[ $i == 0 ]] || echo $((i + 1)))
  DOM_DIR=${dv[$i]:-$def} "$HERE/domino.sh" stop || rc=1
done
SL_DIR=$DS "$HERE/secureldap.sh" stop || rc=1
PG_DIR=$DP "$HERE/postgres.sh" stop || rc=1
rm -f "$ENV_FILE"
echo "[testenv] down in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2fs", b - a }')" >&2
exit "$rc"
