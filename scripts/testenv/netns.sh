#!/usr/bin/env bash
# Two private network namespaces for the sync-agent tests: "site" (the directory and the agent) and "hub"
# (dirgate serve), joined by one veth link on which only the site may open connections.
#
#   scripts/testenv/netns.sh up                 create the namespaces, the link and the firewall, start a private
#                                               slapd (and with NS_SAMBA=1 a Samba AD DC) in the site, write
#                                               $NS_DIR/env
#   scripts/testenv/netns.sh down               stop everything running in the namespaces, delete them and $NS_DIR
#   scripts/testenv/netns.sh exec site|hub CMD...   run CMD inside one namespace (exec, so its pid is CMD's)
#   scripts/testenv/netns.sh status             exit 0 if both namespaces and the slapd exist, 1 otherwise
#   scripts/testenv/netns.sh sweep              `down` every earlier run whose owner process (NS_OWNER_PID) is gone
#
# Env:
#   NS_PREFIX=dgns-$$             names: namespaces $NS_PREFIX-site and $NS_PREFIX-hub; letters, digits, - and _,
#                                 at most 40 characters. Give every run its own.
#   NS_DIR=/tmp/dirgate-netns-$NS_PREFIX   state (env, owner, the slapd's OL_DIR, the Samba's AD_DIR)
#   NS_OWNER_PID=$PPID            process the namespaces belong to; `up` and `sweep` delete those of dead owners,
#                                 so a test killed with SIGKILL leaves nothing behind for long
#   NS_HUB_ADDR=198.18.0.1 NS_SITE_ADDR=198.18.0.2   the two ends of the link (a /30 of the benchmarking range,
#                                 RFC 2544); they exist only inside these namespaces, which have no other route
#   NS_SAMBA=0                    1: also start a Samba AD DC in the site (scripts/testenv/samba.sh; it binds
#                                 127.0.0.1 of the site only, ~10 s and ~250 MB more); AD_* variables pass through
#   OL_USERS OL_GROUPS OL_PORT OL_LDAPS_PORT ...   pass through to scripts/testenv/openldap.sh; the slapd listens
#                                 on $NS_SITE_ADDR (ports 3389/3636 by default: the namespace has its own ports)
#
# The link: veth "vsite" (site) <-> "vhub" (hub), lo up in both. Firewall (nftables, table inet dirgate_netns in
# each namespace): the hub drops every packet it would send on the link that is not part of a connection the
# site opened (counter hub_to_site counts them), and the site drops every packet arriving on the link that is
# not; the site may open any connection to the hub. Neither namespace has a default route, and each has its own
# /etc/netns/NAME/resolv.conf (nameserver 127.0.0.1, its own loopback) and hosts (localhost only), which
# `ip netns exec` mounts over /etc's: names resolve to nothing outside the namespaces.
# $NS_DIR/env (export lines): DIRGATE_NS_{PREFIX,DIR,SITE,HUB,SITE_ADDR,HUB_ADDR,SAMBA}, the slapd's
# DIRGATE_OL_* (openldap.sh) and with NS_SAMBA=1 the Samba's DIRGATE_AD_* (samba.sh).
# Needs root, iproute2 and nftables (scripts/testenv/install.sh netns).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NS_PREFIX=${NS_PREFIX:-dgns-$$}
NS_DIR=${NS_DIR:-/tmp/dirgate-netns-$NS_PREFIX}
NS_OWNER_PID=${NS_OWNER_PID:-$PPID}
NS_HUB_ADDR=${NS_HUB_ADDR:-198.18.0.1}
NS_SITE_ADDR=${NS_SITE_ADDR:-198.18.0.2}
NS_SAMBA=${NS_SAMBA:-0}
SITE=$NS_PREFIX-site
HUB=$NS_PREFIX-hub
MARKER=.dirgate-netns
STATE_GLOB=/tmp/dirgate-netns-

log() { echo "[netns $NS_PREFIX] $*" >&2; }
die() { echo "[netns $NS_PREFIX] ERROR: $*" >&2; exit 1; }

check_names() {
  [[ $NS_PREFIX =~ ^[A-Za-z0-9_-]{1,40}$ ]] || die "NS_PREFIX must be 1-40 letters, digits, - or _: '$NS_PREFIX'"
  [[ $NS_DIR == /* && $NS_DIR != / && $NS_DIR != *..* ]] || die "NS_DIR must be an absolute path: '$NS_DIR'"
  if [[ -d $NS_DIR && ! -e $NS_DIR/$MARKER ]] && [[ -n $(ls -A "$NS_DIR") ]]; then
    die "$NS_DIR exists, is not empty and was not created by $0; refusing to wipe it"
  fi
}

ns_exists() { [[ -e /run/netns/$1 ]]; }

# kill_ns NS: SIGKILL every process still in the namespace (servers the caller started there and did not stop)
kill_ns() {
  local pids
  ns_exists "$1" || return 0
  pids=$(ip netns pids "$1" 2>/dev/null || true)
  [[ -z $pids ]] && return 0
  log "killing what still runs in $1: $(echo $pids)"
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
}

cmd_down() {
  local rc=0
  check_names
  # the servers' own scripts first: they stop by their pid files and remove their directories
  if [[ -e $NS_DIR/samba/env ]] && ns_exists "$SITE"; then
    AD_DIR=$NS_DIR/samba ip netns exec "$SITE" "$HERE/samba.sh" stop || rc=1
  fi
  if [[ -e $NS_DIR/openldap ]] && ns_exists "$SITE"; then
    OL_DIR=$NS_DIR/openldap ip netns exec "$SITE" "$HERE/openldap.sh" stop || rc=1
  fi
  for ns in "$SITE" "$HUB"; do
    kill_ns "$ns"
    if ns_exists "$ns"; then ip netns delete "$ns" || { rc=1; log "deleting namespace $ns failed"; }; fi
    rm -rf "/etc/netns/$ns"
  done
  rm -rf "$NS_DIR"
  ((rc == 0)) && log "down"
  return "$rc"
}

# sweep: down the runs whose owner is gone (a test killed before its cleanup)
cmd_sweep() {
  local d owner prefix
  for d in "$STATE_GLOB"*; do
    [[ -e $d/$MARKER && -r $d/owner ]] || continue
    read -r owner prefix <"$d/owner" || continue
    [[ $prefix != "$NS_PREFIX" ]] || continue
    if [[ $owner =~ ^[0-9]+$ ]] && ! kill -0 "$owner" 2>/dev/null; then
      NS_PREFIX=$prefix NS_DIR=$d NS_OWNER_PID=$owner "$0" down || true
    fi
  done
}

# firewall NS IFACE PEER_ADDR IS_HUB: the namespace's table (see the header)
firewall() {
  local ns=$1 ifc=$2 peer=$3 hub=$4
  if ((hub)); then
    ip netns exec "$ns" nft -f - <<EOF
table inet dirgate_netns {
  counter hub_to_site {}
  chain output {
    type filter hook output priority 0; policy accept;
    oifname "$ifc" ct state established,related accept
    oifname "$ifc" counter name hub_to_site drop
  }
  chain input {
    type filter hook input priority 0; policy accept;
    iifname "$ifc" ct state established,related accept
    iifname "$ifc" ip saddr $peer ct state new accept
    iifname "$ifc" drop
  }
}
EOF
  else
    ip netns exec "$ns" nft -f - <<EOF
table inet dirgate_netns {
  chain input {
    type filter hook input priority 0; policy accept;
    iifname "$ifc" ct state established,related accept
    iifname "$ifc" drop
  }
}
EOF
  fi
}

write_env() {
  local k v
  local -a kv=(PREFIX "$NS_PREFIX" DIR "$NS_DIR" SITE "$SITE" HUB "$HUB" SITE_ADDR "$NS_SITE_ADDR"
    HUB_ADDR "$NS_HUB_ADDR" SAMBA "$NS_SAMBA")
  {
    echo "# DIRGATE_NS: sync-agent network namespaces, written by scripts/testenv/netns.sh $(date -u +%FT%TZ)"
    for ((i = 0; i < ${#kv[@]}; i += 2)); do
      k=${kv[i]} v=${kv[i + 1]}
      printf "export DIRGATE_NS_%s='%s'\n" "$k" "${v//\'/\'\\\'\'}"
    done
    cat "$NS_DIR/openldap/env"
    [[ $NS_SAMBA != 1 ]] || cat "$NS_DIR/samba/env"
  } >"$NS_DIR/env.tmp"
  mv "$NS_DIR/env.tmp" "$NS_DIR/env"
}

fail_up() {
  local rc=$?
  trap - EXIT
  if ((rc != 0)); then
    log "up FAILED (rc=$rc), removing what was created"
    cmd_down || true
  fi
  exit "$rc"
}

cmd_up() {
  local t0=$SECONDS n
  ((EUID == 0)) || die "needs root (network namespaces)"
  check_names
  for n in ip nft; do
    command -v "$n" >/dev/null || "$HERE/install.sh" netns
  done
  cmd_sweep
  ns_exists "$SITE" || ns_exists "$HUB" && cmd_down
  trap fail_up EXIT
  mkdir -p "$NS_DIR"
  : >"$NS_DIR/$MARKER"
  echo "$NS_OWNER_PID $NS_PREFIX" >"$NS_DIR/owner"

  for n in "$SITE" "$HUB"; do
    mkdir -p "/etc/netns/$n"
    echo "nameserver 127.0.0.1" >"/etc/netns/$n/resolv.conf"
    printf '127.0.0.1 localhost\n::1 localhost\n' >"/etc/netns/$n/hosts"
    ip netns add "$n"
  done
  # created directly in the namespaces: nothing of it ever exists in the caller's namespace
  ip link add vsite netns "$SITE" type veth peer name vhub netns "$HUB"
  ip -n "$SITE" link set lo up
  ip -n "$HUB" link set lo up
  ip -n "$SITE" addr add "$NS_SITE_ADDR/30" dev vsite
  ip -n "$HUB" addr add "$NS_HUB_ADDR/30" dev vhub
  ip -n "$SITE" link set vsite up
  ip -n "$HUB" link set vhub up
  firewall "$HUB" vhub "$NS_SITE_ADDR" 1
  firewall "$SITE" vsite "$NS_HUB_ADDR" 0
  log "namespaces $SITE ($NS_SITE_ADDR) and $HUB ($NS_HUB_ADDR) up"

  OL_DIR=$NS_DIR/openldap OL_HOST=$NS_SITE_ADDR ip netns exec "$SITE" "$HERE/openldap.sh" start
  if [[ $NS_SAMBA == 1 ]]; then
    AD_DIR=$NS_DIR/samba ip netns exec "$SITE" "$HERE/samba.sh" start
  fi
  write_env
  trap - EXIT
  log "ready in $((SECONDS - t0))s: env=$NS_DIR/env"
}

cmd_status() {
  if ns_exists "$SITE" && ns_exists "$HUB" &&
    OL_DIR=$NS_DIR/openldap OL_HOST=$NS_SITE_ADDR ip netns exec "$SITE" "$HERE/openldap.sh" status; then
    return 0
  fi
  echo "not running ($NS_PREFIX)"
  return 1
}

cmd_exec() {
  local which=${1:-}
  shift || true
  case $which in
    site) exec ip netns exec "$SITE" "$@" ;;
    hub) exec ip netns exec "$HUB" "$@" ;;
    *) die "exec: the namespace is site or hub, not '$which'" ;;
  esac
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  sweep) cmd_sweep ;;
  exec) shift; (($# >= 2)) || die "usage: $0 exec site|hub CMD..."; cmd_exec "$@" ;;
  *) echo "usage: $0 up|down|status|sweep|exec site|hub CMD..." >&2; exit 2 ;;
esac
