#!/usr/bin/env bash
# make bench: start a dedicated slapd with BENCH_USERS users (default 100000) and BENCH_USERS/100 groups,
# build dirgate, measure dirgate and slapd side by side (cmd/dirgate-bench), write BENCHMARKS.md, stop slapd.
# The entra and google measures sync a fake Entra tenant and a fake Google Workspace customer of
# BENCH_USERS users served by cmd/dirgate-bench itself. The cluster measure also starts a private PostgreSQL
# (scripts/testenv/postgres.sh, BENCH_PG_DIR, BENCH_PG_PORT) for three `dirgate serve` replicas. The agent
# measure runs a hub with a sync agent and a direct server side by side on the same slapd (loopback).
# Loopback only; every load loop is bounded by BENCH_DURATION per round.
# BENCH_ONLY=search,bind runs some measures only (sync, search, bind, oidc, cluster, agent, entra, google; with only
# entra and google it starts no slapd); BENCH_PPROF=dir saves CPU profiles of dirgate.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
USERS=${BENCH_USERS:-100000}
export OL_DIR=${BENCH_DIR:-/tmp/dirgate-bench} OL_HOST=127.0.0.1 OL_PORT=${BENCH_PORT:-3589} OL_LDAPS_PORT=${BENCH_LDAPS_PORT:-3736}
export OL_USERS=$USERS OL_GROUPS=$((USERS / 100 > 0 ? USERS / 100 : 1)) OL_PREFIX=DIRGATE_OL
# The slapd is needed unless BENCH_ONLY names cloud measures only.
needs_slapd=true
if [ -n "${BENCH_ONLY:-}" ] && [ -z "$(tr , '\n' <<<"$BENCH_ONLY" | grep -vxE 'entra|google')" ]; then
  needs_slapd=false
fi
# PostgreSQL is needed by the cluster measure only.
needs_pg=false pg_args=()
if [ -z "${BENCH_ONLY:-}" ] || [[ ,$BENCH_ONLY, == *,cluster,* ]]; then
  needs_pg=true
  export PG_DIR=${BENCH_PG_DIR:-/tmp/dirgate-bench-pg} PG_HOST=127.0.0.1 PG_PORT=${BENCH_PG_PORT:-5439} PG_PREFIX=DIRGATE_PG
  pg_args=(-pg-env "$PG_DIR/env")
fi
cleanup() {
  if $needs_slapd; then "$HERE/testenv/openldap.sh" stop >/dev/null 2>&1 || true; fi
  if $needs_pg; then "$HERE/testenv/postgres.sh" stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
if $needs_slapd; then
  "$HERE/testenv/install.sh" openldap
  "$HERE/testenv/openldap.sh" start
  echo "export DIRGATE_OL_LDIF_BYTES='$(stat -c %s "$OL_DIR/seed.ldif")'" >>"$OL_DIR/env"
fi
if $needs_pg; then
  "$HERE/testenv/install.sh" postgres
  "$HERE/testenv/postgres.sh" start
fi
cd "$TOP"
make --no-print-directory build
go build -o bin/dirgate-bench ./cmd/dirgate-bench
# The reference reader is its own module, built twice: with stock go-ldap, and with dirgate's
# patched BER decoder (go.patched.mod adds the replace).
(cd cmd/dirgate-bench/rawread && go build -o "$TOP/bin/rawread-stock" . &&
  go build -modfile=go.patched.mod -o "$TOP/bin/rawread-patched" .)
bin/dirgate-bench -env "$OL_DIR/env" -dirgate bin/dirgate -out BENCHMARKS.md \
  -duration "${BENCH_DURATION:-3s}" -rounds "${BENCH_ROUNDS:-3}" -cloud-users "$USERS" \
  ${BENCH_ONLY:+-only "$BENCH_ONLY"} ${BENCH_PPROF:+-pprof "$BENCH_PPROF"} "${pg_args[@]}"
[ -n "${BENCH_ONLY:-}" ] || echo "wrote BENCHMARKS.md"
