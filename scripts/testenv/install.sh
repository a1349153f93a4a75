#!/usr/bin/env bash
# Install the Debian packages the integration-test environment needs (idempotent).
#
#   scripts/testenv/install.sh [GROUP...]     GROUP: openldap | samba | chromium | interop | postgres | netns | all
#
# Default groups: openldap samba (the upstreams the test environment starts).
#   openldap : slapd ldap-utils openssl        private slapd instances (scripts/testenv/openldap.sh)
#   samba    : samba-ad-dc samba-ad-provision  private Samba AD DC (scripts/testenv/samba.sh); pulls samba,
#                                              python3-samba (/usr/bin/python3 only), winbind; ~80 MB
#   chromium : chromium chromium-driver fonts-liberation   browser tests of the web UI
#   interop  : haproxy python3-ldap3 ldap-utils   the real clients of the interop suite (integration/interop);
#              also `npm ci` of its OpenID Connect relying party (integration/interop/testdata/rp, needs
#              node and npm on PATH), only when node_modules does not match the committed package-lock.json
#   postgres : postgresql                      private PostgreSQL instance (scripts/testenv/postgres.sh; Debian's
#                                              supported version, 15 on bookworm)
#   netns    : iproute2 nftables               network namespaces and their firewall for the sync-agent tests
#                                              (scripts/testenv/netns.sh)
#
# Only packages that are not installed are installed; if anything is missing, `apt-get update` runs once
# first. apt/dpkg lock contention (another apt process) is waited for and retried. Package maintainer
# scripts must not start system daemons (a system slapd would sit on *:389 and block Samba later):
# if /usr/sbin/policy-rc.d does not exist, a temporary one (exit 101) is installed for the duration.
# Needs root when something is missing; prints nothing but a one-line summary when all is present.
set -euo pipefail

DEFAULT_GROUPS=(openldap samba)
LOCK_WAIT_SECS=${INSTALL_LOCK_WAIT_SECS:-300}

log() { echo "[install] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

group_openldap() { echo slapd ldap-utils openssl; }
group_samba()    { echo samba-ad-dc samba-ad-provision; }
group_chromium() { echo chromium chromium-driver fonts-liberation; }
group_interop()  { echo haproxy python3-ldap3 ldap-utils; }
group_postgres() { echo postgresql; }
group_netns()    { echo iproute2 nftables; }
ALL_GROUPS=(openldap samba chromium interop postgres netns)

RP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/integration/interop/testdata/rp

# npm_rp: install the relying party's pinned packages with `npm ci`; a copy of the lock file in
# node_modules marks an install that matches it, so a second run costs nothing.
npm_rp() {
  local stamp=$RP_DIR/node_modules/.dirgate-package-lock.json
  if cmp -s "$RP_DIR/package-lock.json" "$stamp"; then return 0; fi
  command -v npm >/dev/null || die "npm is not installed (the interop suite needs Node.js 20 or later)"
  log "npm ci in $RP_DIR"
  (cd "$RP_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2) || die "npm ci failed in $RP_DIR"
  cp "$RP_DIR/package-lock.json" "$stamp"
}

is_installed() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

# apt_retry CMD...: run an apt/dpkg command; on lock contention wait and retry (up to LOCK_WAIT_SECS),
# repair an interrupted dpkg once; any other failure is fatal and shows apt's output.
apt_retry() {
  local out rc deadline=$((SECONDS + LOCK_WAIT_SECS)) repaired=0
  out=$(mktemp)
  while :; do
    rc=0
    DEBIAN_FRONTEND=noninteractive "$@" -o DPkg::Lock::Timeout=60 >"$out" 2>&1 </dev/null || rc=$?
    if ((rc == 0)); then rm -f "$out"; return 0; fi
    if grep -qiE 'could not get lock|unable to (acquire|lock)|is another process using it|lock-frontend' "$out" &&
       ((SECONDS < deadline)); then
      log "apt/dpkg lock busy, retrying: $*"; sleep 3; continue
    fi
    if ((repaired == 0)) && grep -q 'dpkg --configure -a' "$out"; then
      log "dpkg was interrupted, running dpkg --configure -a"
      DEBIAN_FRONTEND=noninteractive dpkg --configure -a </dev/null >&2 || true
      repaired=1; continue
    fi
    cat "$out" >&2; rm -f "$out"
    die "failed (rc=$rc): $*"
  done
}

main() {
  local groups=("$@") g pkgs=() p
  ((${#groups[@]})) || groups=("${DEFAULT_GROUPS[@]}")
  [[ " ${groups[*]} " != *" all "* ]] || groups=("${ALL_GROUPS[@]}")
  for g in "${groups[@]}"; do
    case $g in
      openldap|samba|chromium|interop|postgres|netns) read -r -a p <<<"$(group_"$g")"; pkgs+=("${p[@]}") ;;
      -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
      *) die "unknown group '$g' (known: ${ALL_GROUPS[*]} all)" ;;
    esac
  done
  install_debs "${pkgs[@]}"
  [[ " ${groups[*]} " != *" interop "* ]] || npm_rp
}

# install_debs PKG...: install the packages that are missing
install_debs() {
  local pkgs=("$@") missing=() p
  for p in "${pkgs[@]}"; do
    is_installed "$p" || [[ " ${missing[*]} " == *" $p "* ]] || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    log "all present: ${pkgs[*]}"; return 0
  fi
  ((EUID == 0)) || die "missing packages (${missing[*]}) and not root"

  local t0=$SECONDS tmp_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    tmp_policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\n# temporary, written by dirgate scripts/testenv/install.sh\nexit 101\n' >"$tmp_policy"
    chmod 755 "$tmp_policy"
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  log "missing: ${missing[*]}; apt-get update"
  apt_retry apt-get update -q
  log "apt-get install ${missing[*]}"
  apt_retry apt-get install -y -q --no-install-recommends "${missing[@]}"
  for p in "${missing[@]}"; do is_installed "$p" || die "$p still not installed"; done
  log "installed ${missing[*]} in $((SECONDS - t0))s"
}

main "$@"
