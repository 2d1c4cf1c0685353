#!/usr/bin/env bash
# Prepare a fresh Debian 12 machine (run as root, no systemd as PID 1) for the real-stack tests:
# the rootless engines, a test user with subordinate ids, a runtime dir, and the host fixes listed in
# /work/shared/real-stack.md ("Host fixes the tests need"). Safe to re-run: every step checks first.
set -euo pipefail

STACK_USER=${STACK_USER:-rdtest}
PACKAGES=(podman rootlesskit slirp4netns passt uidmap nftables iptables runc crun
          fuse-overlayfs iproute2 busybox-static docker.io iperf3 pipx
          strace)  # strace: tests/test_fix_faults.py injects signals at the tool's syscalls

say() { printf 'setup-stack: %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "setup-stack: must run as root (sudo bash .ci/setup-stack.sh)" >&2
  exit 2
fi

# --- packages -------------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # With Recommends, as on the machine real-stack.md was verified on (podman's pause process is
  # catatonit, a Recommends).
  apt-get install -y -qq "${PACKAGES[@]}" >/dev/null
else
  say "packages already installed"
fi

# --- /dev/net/tun: mode 0600 without udev; rootlesskit/slirp4netns need to open it as the user --
if [ ! -e /dev/net/tun ]; then
  mkdir -p /dev/net
  mknod -m 0666 /dev/net/tun c 10 200
  say "created /dev/net/tun"
fi
chmod 0666 /dev/net/tun
say "/dev/net/tun mode $(stat -c %a /dev/net/tun)"

# --- the unprivileged test user -------------------------------------------------------------
if ! id -u "$STACK_USER" >/dev/null 2>&1; then
  useradd -m -s /bin/bash "$STACK_USER"
  say "created user $STACK_USER"
else
  say "user $STACK_USER exists"
fi
uid=$(id -u "$STACK_USER")
gid=$(id -g "$STACK_USER")
home=$(getent passwd "$STACK_USER" | cut -d: -f6)

# useradd normally adds subordinate ranges; add one if it did not (e.g. SUB_UID_COUNT=0).
ensure_subid() { # file
  local f=$1
  touch "$f"
  if ! grep -q "^${STACK_USER}:" "$f"; then
    # Pick a start above every range already allocated.
    local start
    start=$(awk -F: 'BEGIN{m=100000} {e=$2+$3; if (e>m) m=e} END{print m}' "$f")
    echo "${STACK_USER}:${start}:65536" >>"$f"
    say "added ${STACK_USER}:${start}:65536 to $f"
  fi
}
ensure_subid /etc/subuid
ensure_subid /etc/subgid

# --- runtime dir (no logind to create it) ---------------------------------------------------
install -d -m700 -o "$uid" -g "$gid" "/run/user/$uid"
say "runtime dir /run/user/$uid"

# --- podman: cgroups here are hybrid v1/v2, crun refuses them; no systemd for cgroups/journald --
conf_dir="$home/.config/containers"
install -d -m755 -o "$uid" -g "$gid" "$home/.config" "$conf_dir"
conf="$conf_dir/containers.conf"
want='[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"'
if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
  printf '%s\n' "$want" >"$conf.tmp"
  chown "$uid:$gid" "$conf.tmp"
  chmod 0644 "$conf.tmp"
  mv -f "$conf.tmp" "$conf"
  say "wrote $conf"
else
  say "$conf up to date"
fi

say "done: user $STACK_USER uid=$uid gid=$gid home=$home"
