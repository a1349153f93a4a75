#!/usr/bin/env bash
# Stop the integration-test environment started by up.sh and remove its env file.
#
#   scripts/testenv/down.sh
#
# The instance directories are taken from ${DIRGATE_TESTENV:-/tmp/dirgate-testenv.env} (DIRGATE_OL_DIR,
# DIRGATE_OL2_DIR) if it exists, else from OL_DIR / OL2_DIR or the defaults used by up.sh. Each slapd is
# stopped through openldap.sh (by the pid in its own pid file) and its directory deleted. Succeeds when
# nothing is running.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ENV_FILE=${DIRGATE_TESTENV:-/tmp/dirgate-testenv.env}
D1=${OL_DIR:-/tmp/dirgate-openldap}
D2=${OL2_DIR:-/tmp/dirgate-openldap2}
if [[ -f $ENV_FILE ]]; then
  # shellcheck disable=SC1090
  mapfile -t v < <(. "$ENV_FILE" >/dev/null 2>&1; printf '%s\n%s\n' "${DIRGATE_OL_DIR:-}" "${DIRGATE_OL2_DIR:-}")
  D1=${v[0]:-$D1}
  D2=${v[1]:-$D2}
fi

t0=$(date +%s.%N)
rc=0
for d in "$D1" "$D2"; do
  OL_DIR=$d "$HERE/openldap.sh" stop || rc=1
done
rm -f "$ENV_FILE"
echo "[testenv] down in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2fs", b - a }')" >&2
exit "$rc"
