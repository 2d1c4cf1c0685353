#!/usr/bin/env bash
# Start CI from a clean test user. The CI user (STACK_USER, default rdtest) belongs to CI alone,
# but CI may run again on a machine where an earlier run was interrupted: its podman pause
# process, a rootless dockerd, or the files a fix test writes would then make the real-stack
# tests refuse to start ("busy before the tests", "left by an interrupted run"). Run as root,
# only from .ci/run: a developer's own stack user is never touched.
#   bash .ci/reset-ci-user.sh              the host's CI user
#   bash .ci/reset-ci-user.sh ROOT...      and the CI user inside each Debian root (.ci/roots.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

STACK_USER=${STACK_USER:-rdtest}
STACKS=${RD_STACKS:-/srv/stacks}
say() { printf 'reset-ci-user: %s\n' "$*"; }

# What the tests write into the user's home and refuse to find there before they start
# (tests/test_fix_realstack.py, test_fix_faults.py, test_roots_realstack.py). containers.conf
# stays: setup-stack.sh owns it.
LEFTOVERS=(.local/state/rootless-doctor
           .config/systemd/user/docker.service .config/systemd/user/docker.service.d
           .config/systemd/user/containerd.service .config/systemd/user/containerd.service.d
           .config/docker/daemon.json)

# $1: a command prefix that runs its arguments as the user (host: setpriv; root: roots.sh user)
# $2: the user's uid on the host (processes of a root's user are seen in the host's /proc)
# $3: the user's home as a host path
reset() {
  local -a as_user
  read -r -a as_user <<<"$1"
  local uid=$2 home=$3 pids p
  pids=$(pgrep -u "$uid" || true)
  if [ -n "$pids" ]; then
    # Podman's own way to end its containers and its pause process.
    "${as_user[@]}" podman rm -af -t0 >/dev/null 2>&1 || true
    "${as_user[@]}" podman system migrate >/dev/null 2>&1 || true
    sleep 1
    for p in $(pgrep -u "$uid" || true); do
      say "ending process $p of uid $uid left by an earlier run: $(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null | cut -c1-120)"
      kill -TERM "$p" 2>/dev/null || true
    done
    sleep 1
    for p in $(pgrep -u "$uid" || true); do kill -KILL "$p" 2>/dev/null || true; done
  fi
  for f in "${LEFTOVERS[@]}"; do
    if [ -e "$home/$f" ] || [ -L "$home/$f" ]; then
      say "removing $home/$f left by an earlier run"
      rm -rf -- "${home:?}/$f"
    fi
  done
}

if uid=$(id -u "$STACK_USER" 2>/dev/null); then
  home=$(getent passwd "$STACK_USER" | cut -d: -f6)
  reset "setpriv --reuid=$uid --regid=$(id -g "$STACK_USER") --init-groups env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME=$home XDG_RUNTIME_DIR=/run/user/$uid" "$uid" "$home"
fi

RD_ROOT_USER=${RD_ROOT_USER:-rdtest}
for root in "$@"; do
  dir="$STACKS/$root"
  [ -f "$dir/etc/passwd" ] || continue
  line=$(grep "^${RD_ROOT_USER}:" "$dir/etc/passwd" || true)
  [ -n "$line" ] || continue
  uid=$(cut -d: -f3 <<<"$line")
  home=$(cut -d: -f6 <<<"$line")
  host_name=$(getent passwd "$uid" | cut -d: -f1 || true)
  if [ -n "$host_name" ] && [ "$host_name" != "$RD_ROOT_USER" ]; then
    say "$root: uid $uid is $host_name on the host: not touching its processes"; continue
  fi
  reset "bash .ci/roots.sh user $root $RD_ROOT_USER" "$uid" "$dir$home"
done
say "done"
