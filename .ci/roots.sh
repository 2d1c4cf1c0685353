#!/usr/bin/env bash
# Debian trixie and sid as root filesystems next to the host, with the engines users run today
# (Podman 5.4/5.8, Docker 26/28, RootlessKit 2, passt 2025/2026) and rootless-doctor installed by
# each root's own python3. Recipe and facts: /work/shared/modern-stack.md.
#
#   bash .ci/roots.sh build [ROOT...]        build (in parallel), mount, add the test user, install
#                                            the tool; a complete root is not rebuilt. ROOT: trixie sid
#   bash .ci/roots.sh mount ROOT             (re)mount proc, sys, dev, run, tmp; user runtime dirs
#   bash .ci/roots.sh adduser ROOT NAME      a user inside ROOT (subuid/subgid, runtime dir, conf)
#   bash .ci/roots.sh tool ROOT [SRC [VENV]] install the checkout SRC (default: this one) into VENV
#                                            (default /opt/rootless-doctor) made by ROOT's python3
#   bash .ci/roots.sh enter ROOT CMD...      run CMD as root inside ROOT (pivot_root, not chroot)
#   bash .ci/roots.sh user ROOT NAME [K=V...] CMD...
#                                            run CMD as NAME inside ROOT, clean env (+ K=V, e.g.
#                                            DOCKER_HOST=unix:///run/user/UID/docker.sock); the
#                                            PID of this command is CMD's own (everything execs)
#   bash .ci/roots.sh umount ROOT            unmount everything under ROOT
#
# Roots live under $RD_STACKS (default /srv/stacks); $RD_STACKS/READY exists once `build` made all
# the roots it was asked for usable. The CI test user is $RD_ROOT_USER (default rdtest).
set -euo pipefail

STACKS=${RD_STACKS:-/srv/stacks}
ROOT_USER=${RD_ROOT_USER:-rdtest}
REPO=$(cd "$(dirname "$0")/.." && pwd)
VENV_DEFAULT=/opt/rootless-doctor
DOCKER_CONTRIB=/usr/share/docker.io/contrib
USER_PATH="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin:$DOCKER_CONTRIB"

# passwd: --variant=apt has no useradd. mount: not Essential, needed after pivot_root.
# docker-cli: only a Recommends of docker.io (mmdebstrap installs no Recommends): no `docker`
# command without it, on trixie as on sid.
INCLUDE=passwd,mount,podman,rootlesskit,passt,slirp4netns,uidmap,docker.io,python3,python3-venv
INCLUDE+=,iproute2,busybox-static,procps,runc,fuse-overlayfs,nftables,iptables,catatonit,netavark
INCLUDE+=,aardvark-dns,ca-certificates,kmod,docker-cli
# iperf3: bench/dataplane.py (#12) inside the roots. pipx: the README install line as a new user.
INCLUDE+=,iperf3,pipx
# Distinct uid ranges per root, away from the host's users (a process listing shows numbers).
declare -A UID_BASE=([trixie]=3100 [sid]=3200)
declare -A SUBID_BASE=([trixie]=1100000 [sid]=1200000)
MARKER=.rd-root-complete

say() { printf 'roots: %s\n' "$*" >&2; }
die() { printf 'roots: %s\n' "$*" >&2; exit 2; }

known() { [ -n "${UID_BASE[$1]+x}" ] || die "unknown root '$1' (known: ${!UID_BASE[*]})"; }
root_dir() { printf '%s/%s' "$STACKS" "$1"; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

# --- mounts -------------------------------------------------------------------------------------
mounted() { mountpoint -q "$1"; }

do_mount() { # ROOT
  local r; r=$(root_dir "$1")
  [ -f "$r/$MARKER" ] || die "$r is not built (bash .ci/roots.sh build $1)"
  mounted "$r/proc" || mount -t proc proc "$r/proc"
  mounted "$r/sys" || { mount --rbind /sys "$r/sys"; mount --make-rslave "$r/sys"; }
  mounted "$r/dev" || { mount --rbind /dev "$r/dev"; mount --make-rslave "$r/dev"; }
  mounted "$r/run" || mount -t tmpfs -o mode=0755 tmpfs "$r/run"
  mounted "$r/tmp" || mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
  chmod 1777 "$r/tmp"
  # /dev is the host's: no udev makes /dev/net/tun 0600 (real-stack.md, host fixes).
  [ -e /dev/net/tun ] || { mkdir -p /dev/net; mknod -m 0666 /dev/net/tun c 10 200; }
  chmod 0666 /dev/net/tun
  # /run is a fresh tmpfs after each mount: the users' runtime dirs go with it.
  local name uid gid
  while IFS=: read -r name _ uid gid _; do
    [ "$uid" -ge "${UID_BASE[$1]}" ] && [ "$uid" -lt 60000 ] || continue
    install -d -m700 -o "$uid" -g "$gid" "$r/run/user/$uid"
  done <"$r/etc/passwd"
}

do_umount() { # ROOT
  local r m; r=$(root_dir "$1")
  for m in tmp run dev sys proc; do
    if mounted "$r/$m"; then umount -R -l "$r/$m"; fi
  done
}

# --- users --------------------------------------------------------------------------------------
do_adduser() { # ROOT NAME
  local root=$1 name=$2 r; r=$(root_dir "$1")
  if ! chroot "$r" getent passwd "$name" >/dev/null; then
    chroot "$r" useradd -m -s /bin/bash -K UID_MIN="${UID_BASE[$root]}" -K UID_MAX=59999 \
      -K GID_MIN="${UID_BASE[$root]}" -K GID_MAX=59999 \
      -K SUB_UID_MIN="${SUBID_BASE[$root]}" -K SUB_GID_MIN="${SUBID_BASE[$root]}" \
      -K SUB_UID_MAX=$((SUBID_BASE[$root] + 99999999)) \
      -K SUB_GID_MAX=$((SUBID_BASE[$root] + 99999999)) "$name"
    say "$root: created user $name"
  fi
  local uid gid home
  IFS=: read -r _ _ uid gid _ home _ < <(chroot "$r" getent passwd "$name")
  grep -q "^$name:" "$r/etc/subuid" || die "$root: useradd gave $name no /etc/subuid range"
  grep -q "^$name:" "$r/etc/subgid" || die "$root: useradd gave $name no /etc/subgid range"
  if mounted "$r/run"; then install -d -m700 -o "$uid" -g "$gid" "$r/run/user/$uid"; fi
  # cgroups are hybrid here: crun refuses them; no systemd for cgroups or journald.
  install -d -m755 -o "$uid" -g "$gid" "$r$home/.config" "$r$home/.config/containers"
  printf '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' \
    >"$r$home/.config/containers/containers.conf"
  chown "$uid:$gid" "$r$home/.config/containers/containers.conf"
}

# --- entering -----------------------------------------------------------------------------------
# A chrooted process may not create user namespaces (rootless podman: "cannot clone: Operation not
# permitted"): enter with pivot_root in a private mount namespace. Every step execs.
# shellcheck disable=SC2016
PIVOT='R=$1; shift; mount --rbind "$R" "$R"; cd "$R"; mkdir -p .oldroot; pivot_root . .oldroot
mount -t proc proc /proc; umount -l /.oldroot; mount --make-rshared /; exec "$@"'

do_enter() { # ROOT CMD...
  local r; r=$(root_dir "$1"); shift
  mounted "$r/proc" || die "$r is not mounted (bash .ci/roots.sh mount ${r##*/})"
  exec unshare -m --propagation private sh -c "$PIVOT" sh "$r" "$@"
}

do_user() { # ROOT NAME [K=V...] CMD...
  local root=$1 name=$2 r uid gid home; r=$(root_dir "$1"); shift 2
  IFS=: read -r _ _ uid gid _ home _ < <(grep "^$name:" "$r/etc/passwd") ||
    die "no user $name in $r (bash .ci/roots.sh adduser $root $name)"
  local env=(PATH="$USER_PATH" HOME="$home" USER="$name" LOGNAME="$name" LANG=C.UTF-8
    XDG_RUNTIME_DIR="/run/user/$uid"
    PODMAN_IGNORE_CGROUPSV1_WARNING=1)
  while [ $# -gt 0 ] && [[ $1 == [A-Za-z_]*=* ]]; do env+=("$1"); shift; done
  [ $# -gt 0 ] || die "user: no command"
  do_enter "$root" setpriv --reuid="$uid" --regid="$gid" --init-groups \
    sh -c 'cd "$1" && shift && exec env -i "$@"' sh "$home" "${env[@]}" "$@"
}

# --- the tool -----------------------------------------------------------------------------------
do_tool() { # ROOT [SRC [VENV]]
  local root=$1 src=${2:-$REPO} venv=${3:-$VENV_DEFAULT} r; r=$(root_dir "$1")
  local stage="$r/opt/.rd-src-$$"
  rm -rf "$stage"; mkdir -p "$stage"
  # The package and what it ships (pyproject: package-dir maps systemd/ and podman/ into it).
  (cd "$src" && tar -cf - --exclude=__pycache__ pyproject.toml README.md rootless_doctor systemd \
    podman) | tar -C "$stage" -xf -
  # The package index is reached through the host's TLS setup: its CA bundle, as PIP_CERT.
  install -D -m644 /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/rd-host-ca.crt"
  local in_stage=/opt/${stage##*/}
  # A clean environment: the host's pip settings (find-links, config paths) do not exist inside.
  local ca=/etc/ssl/rd-host-ca.crt
  env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME=/root LANG=C.UTF-8 PIP_CERT=$ca \
    SSL_CERT_FILE=$ca REQUESTS_CA_BUNDLE=$ca PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=60 chroot "$r" sh -c '
    set -e
    [ -x "$2/bin/python3" ] || python3 -m venv "$2"
    if [ -x "$2/bin/rootless-doctor" ]; then   # a newer checkout: same version number
      "$2/bin/pip" install -q --force-reinstall --no-deps "$1"
      "$2/bin/pip" check >/dev/null || "$2/bin/pip" install -q "$1"   # a dependency it gained
    else
      "$2/bin/pip" install -q "$1" "podman-compose>=1.6,<2"
    fi' sh "$in_stage" "$venv"
  rm -rf "$stage"
  chmod -R a+rX "$r$venv"
  say "$root: rootless-doctor in $venv ($(chroot "$r" "$venv/bin/python3" --version))"
}

# A root built by an older recipe gets the packages added since (apt-get, not a rebuild).
ensure_packages() { # ROOT
  local r missing=() p; r=$(root_dir "$1")
  for p in ${INCLUDE//,/ }; do
    chroot "$r" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  say "$1: installing ${missing[*]}"
  local opt=(-o Acquire::Check-Valid-Until=false -qq)
  env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin DEBIAN_FRONTEND=noninteractive chroot "$r" \
    sh -c 'apt-get "$@" update && apt-get "$@" install -y --no-install-recommends '"${missing[*]}" \
    sh "${opt[@]}" >>"$STACKS/$1.log" 2>&1 || die "$1: apt-get install failed, see $STACKS/$1.log"
}

# --- building -----------------------------------------------------------------------------------
build_one() { # ROOT
  local root=$1 r t0; r=$(root_dir "$1"); t0=$(date +%s)
  if [ -f "$r/$MARKER" ]; then
    say "$root: complete, not rebuilt"
    ensure_packages "$root"
  else
    do_umount "$root" 2>/dev/null || true
    local tmp="$r.building"
    rm -rf "$tmp" "$r"
    say "$root: mmdebstrap (log $STACKS/$root.log)"
    # The registry's index may be past its Valid-Until date; apt inside needs the same option.
    mmdebstrap --variant=apt --aptopt='Acquire::Check-Valid-Until "false"' \
      --include="$INCLUDE" "$root" "$tmp" >"$STACKS/$root.log" 2>&1 ||
      die "$root: mmdebstrap failed, see $STACKS/$root.log"
    mv "$tmp" "$r"
    date -u +%FT%TZ >"$r/$MARKER"
    say "$root: built in $(($(date +%s) - t0)) s"
  fi
  do_mount "$root"
  do_adduser "$root" "$ROOT_USER"
  do_tool "$root"
  say "$root: ready in $(($(date +%s) - t0)) s"
}

do_build() { # ROOT...
  local roots=("$@") pids=() root failed=0
  [ ${#roots[@]} -gt 0 ] || roots=(trixie sid)
  for root in "${roots[@]}"; do known "$root"; done
  mkdir -p "$STACKS"
  # Both at once: mostly download and unpack; 2 cores cope (about a minute each alone).
  for root in "${roots[@]}"; do build_one "$root" & pids+=($!); done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || { say "${roots[$i]}: FAILED"; failed=1; }; done
  [ $failed = 0 ] || exit 1
  touch "$STACKS/READY"
}

cmd=${1:-}; shift || true
case $cmd in
  build) need_root; do_build "$@" ;;
  mount) need_root; known "${1:?root}"; do_mount "$1" ;;
  umount) need_root; known "${1:?root}"; do_umount "$1" ;;
  adduser) need_root; known "${1:?root}"; do_adduser "$1" "${2:?user name}" ;;
  tool) need_root; known "${1:?root}"; do_tool "$@" ;;
  enter) need_root; known "${1:?root}"; do_enter "$@" ;;
  user) need_root; known "${1:?root}"; [ -n "${2:-}" ] || die "user ROOT NAME CMD..."; do_user "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
