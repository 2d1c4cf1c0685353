"""The host itself: user-namespace prerequisites (subuid, sysctls, /dev/net/tun, newuidmap),
tool versions, the user manager, the firewall, the compose file, and the process list."""

from __future__ import annotations

import functools
import os
import pwd
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from .. import parse
from ..model import CmdOutput, ComposeFacts, DoctorError, HostFacts, HostPaths, Proc, Tool
from .files import exists, is_dir, is_file, parsed, read, read_int
from .identity import runtime_path

# compose-go's DefaultFileNames, in its order of preference.
COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")


# Looked up to be run (or, for nft, only named by the firewall fact); not in HostFacts.tools.
_NOT_TOOLS = ("systemctl", "dockerd", "nsenter", "iptables", "nft")


SYSTEMD_STATES = {"initializing", "starting", "running", "degraded", "maintenance", "stopping"}


def prerequisites(paths: HostPaths, notes: list[str], sources: list[str]) -> HostFacts:
    xdg = paths.getenv("XDG_RUNTIME_DIR")
    runtime_dir = runtime_path(paths)
    if not is_dir(paths.at(runtime_dir)):
        notes.append(f"runtime dir {runtime_dir} does not exist (no login session or linger)")
    sources.extend(("/etc/subuid", "/etc/subgid", "/proc/sys/user/max_user_namespaces"))
    userns_clone_path = paths.at("/proc/sys/kernel/unprivileged_userns_clone")
    return HostFacts(
        user=paths.user,
        uid=paths.uid,
        sudo_user=paths.getenv("SUDO_USER") or None,
        subuid=_subids(paths, "/etc/subuid"),
        subgid=_subids(paths, "/etc/subgid"),
        max_user_namespaces=read_int(paths.at("/proc/sys/user/max_user_namespaces")),
        userns_clone=read_int(userns_clone_path),
        dev_net_tun=dev_net_tun(paths),
        unprivileged_port_start=read_int(paths.at("/proc/sys/net/ipv4/ip_unprivileged_port_start")),
        ephemeral_ports=ephemeral_ports(paths),
        linger=exists(paths.at(f"/var/lib/systemd/linger/{paths.user}")) if paths.user else None,
        xdg_runtime_dir=xdg,
    )


def ephemeral_ports(paths: HostPaths) -> tuple[int, int] | None:
    """net.ipv4.ip_local_port_range as (first, last): two numbers separated by blanks (a tab
    in the kernel's output); None when unreadable or not two ports in order."""
    text = read(paths.at("/proc/sys/net/ipv4/ip_local_port_range"))
    words = (text or "").split()
    if len(words) != 2 or not all(w.isdigit() and len(w) <= 5 for w in words):
        return None
    first, last = int(words[0]), int(words[1])
    return (first, last) if 0 < first <= last <= 65535 else None


def _subids(paths: HostPaths, file: str) -> tuple[tuple[int, int], ...] | None:
    """(start, count) ranges of this user in /etc/subuid or /etc/subgid, by name or by UID."""
    text = read(paths.at(file))
    if text is None:
        return None
    keys = {paths.user, str(paths.uid)} - {""}
    ranges = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in keys and parts[1].isdigit() and parts[2].isdigit():
            ranges.append((int(parts[1]), int(parts[2])))
    return tuple(ranges)


def _setid_mode(real: Path) -> str:
    """How newuidmap gets its privilege: "setuid", "file caps", or "neither"."""
    try:
        st = real.stat()
    except OSError:
        return "neither"
    if st.st_mode & stat.S_ISUID and st.st_uid == 0:
        return "setuid"
    try:
        if os.getxattr(real, "security.capability"):
            return "file caps"
    except OSError:
        pass
    return "neither"


def dev_net_tun(paths: HostPaths) -> Literal["ok", "missing", "no-access"]:
    tun = paths.at("/dev/net/tun")
    try:
        st = tun.stat()
    except OSError:
        return "missing"
    if paths.uid == os.geteuid():
        return "ok" if os.access(tun, os.R_OK | os.W_OK) else "no-access"
    # Asked about another user (root running for them): judge by the mode bits.
    if paths.uid == 0:
        return "ok"
    if st.st_uid == paths.uid:
        bits = (st.st_mode >> 6) & 0o7
    else:
        try:
            groups = set(os.getgrouplist(paths.user, pwd.getpwnam(paths.user).pw_gid))
        except (KeyError, OSError):
            groups = set()
        bits = (st.st_mode >> 3) & 0o7 if st.st_gid in groups else st.st_mode & 0o7
    return "ok" if bits & 0o6 == 0o6 else "no-access"


def tool_facts(
    paths: HostPaths,
    cli_paths: Mapping[str, tuple[str, Path] | None],
    result: Callable[[str], CmdOutput | None],
    notes: list[str],
) -> dict[str, Tool]:
    """The tools the checks report: where each is, its ``--version`` (from ``result``), and how
    newuidmap/newgidmap get their privilege."""
    tools: dict[str, Tool] = {}
    for n, found in cli_paths.items():
        if n in _NOT_TOOLS:
            continue
        version = None
        out = result(f"{n} --version")
        if out is not None:
            if out.ok or out.stdout:
                text = out.stdout + out.stderr
                version = parsed(functools.partial(parse.tool_version, n, text), n, notes)
            else:
                notes.append(out.why())
        if version is None and n == "pasta" and found is not None:
            # Debian's build prints "pasta unknown version"; its package version carries the
            # date ("0.0~git20230309.7c7625d-1"), as podman info reports it too.
            pkg = _dpkg_version(paths, "passt")
            version = parse.tool_version("pasta", pkg) if pkg else None
        setid = _setid_mode(found[1]) if found and n in ("newuidmap", "newgidmap") else None
        tools[n] = Tool(name=n, path=found[0] if found else None, version=version, setid=setid)
    return tools


def _dpkg_version(paths: HostPaths, package: str) -> str | None:
    """An installed Debian package's version, from dpkg's status file (no subprocess)."""
    text = read(paths.at("/var/lib/dpkg/status"))
    if text is None:
        return None
    key = f"Package: {package}\n"
    at = text.find(key)  # found, not split into stanzas: the file is ~1 MB, the cost ~2 ms
    while at >= 0:
        end = text.find("\n\n", at)
        stanza = text[at : end if end >= 0 else len(text)]
        if (at == 0 or text[at - 1] == "\n") and "Status: install ok installed" in stanza:
            m = re.search(r"(?m)^Version: (\S+)$", stanza)
            return m.group(1) if m else None
        at = text.find(key, at + len(key))
    return None


def systemd_user_state(
    out: CmdOutput | None, paths: HostPaths, runtime_dir: Path, notes: list[str]
) -> bool | None:
    """Is a user manager reachable? ``systemctl --user is-system-running`` prints its state (exit
    code non-zero for "degraded"); without systemctl, the user bus socket is the hint."""
    if out is not None:
        state = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
        if state in SYSTEMD_STATES:
            return True
        if out.error:
            notes.append(out.why())
            return None
        return False
    return exists(paths.at(runtime_dir / "bus")) or exists(
        paths.at(runtime_dir / "systemd/private")
    )


def firewall_kind(iptables: CmdOutput | None, nft: str | None) -> str | None:
    text = (iptables.stdout + iptables.stderr) if iptables is not None and iptables.ok else ""
    if "(legacy)" in text:
        return "iptables-legacy"
    if "(nf_tables)" in text:
        return "iptables-nft"
    if nft:
        return "nftables"
    return None


def find_compose(directory: Path) -> Path | None:
    """The compose file ``docker compose`` would pick in ``directory`` (COMPOSE_NAMES order)."""
    return next((directory / n for n in COMPOSE_NAMES if is_file(directory / n)), None)


def given_compose(path: Path) -> Path:
    """A compose file named on the command line: it must be a file (bad input otherwise)."""
    if not is_file(path):
        raise DoctorError(f"{path}: no such compose file; name an existing one")
    return path


def compose_facts(
    compose_file: Path | None, cwd: Path | None, notes: list[str], sources: list[str]
) -> ComposeFacts | None:
    """The compose file given (unreadable: a DoctorError, it is bad input), else the one in the
    working directory (unreadable: ComposeFacts.error, reported by the COMPOSE-FILE check)."""
    given = compose_file is not None
    if compose_file is None:
        compose_file = find_compose(cwd or Path.cwd())
        if compose_file is None:
            return None
    else:
        # named as `fix compose` names it: the compose labels of the containers made from it
        # name absolute files (knowledge.compose_file_container), so `check --compose x.yml`
        # judges the same engine as `fix compose x.yml`
        compose_file = compose_file.absolute()
    text = read(compose_file)
    try:
        if text is None:
            raise DoctorError("not readable; check its permissions")
        # .env and env_file: next to it, with this shell's environment (Compose's precedence);
        # their reader (envfile.py) loads only for a compose file
        from .composefiles import compose_env

        env = compose_env(compose_file, text, os.environ)
        notes.extend(env.notes)
        facts = parse.compose(text, str(compose_file), env)
    except DoctorError as e:
        if given:
            raise DoctorError(f"{compose_file}: {e}") from None
        return ComposeFacts(path=str(compose_file), error=str(e))
    sources.append(str(compose_file))
    return facts


def processes(paths: HostPaths) -> list[Proc]:
    """Every process of the (real or fake) ``root/proc``, by PID. On the real root without our
    own children: they are the commands this check runs side by side (``rootlesskit --version``
    is not a RootlessKit instance)."""
    live = paths.root == Path("/")
    return _proc_dir_processes(paths.at("/proc"), skip_children_of=os.getpid() if live else None)


def _proc_dir_processes(proc_dir: Path, skip_children_of: int | None = None) -> list[Proc]:
    """``cmdline`` and the PPid/Uid (real) lines of ``status`` of each ``proc_dir/PID``.

    Two small reads a process, no psutil: a host with hundreds of containers has thousands of
    processes (conmon, slirp4netns/pasta, rootlessport, the payload: about five each), and
    psutil's several reads each cost ~0.15 ms a process. A process that exits meanwhile, or
    whose files cannot be read, is left out.
    """
    base = os.fspath(proc_dir)
    try:
        pids = sorted(int(n) for n in os.listdir(base) if n.isdigit())
    except OSError:
        return []
    procs = []
    for pid in pids:
        try:
            raw = _read_small(f"{base}/{pid}/cmdline", MAX_CMDLINE)
            status = _read_small(f"{base}/{pid}/status", MAX_STATUS)
        except OSError:
            continue
        ppid = _status_int(status, b"\nPPid:")
        if skip_children_of is not None and ppid == skip_children_of:
            continue
        procs.append(
            Proc(pid=pid, ppid=ppid or 0, uid=_status_int(status, b"\nUid:"), cmdline=_argv(raw))
        )
    return procs


def _status_int(status: bytes, key: bytes) -> int | None:
    """The first number after ``key`` (a line start) in a ``status`` file: PPid, or the real
    UID of the Uid line (real, effective, saved, filesystem). Found, not split into lines: this
    runs for every process of the host."""
    at = status.find(key)
    if at < 0:
        return None
    start = at + len(key)
    end = status.find(b"\n", start)
    words = status[start : end if end >= 0 else len(status)].split(None, 1)
    return int(words[0]) if words and words[0].isdigit() else None


MAX_CMDLINE = 1 << 17  # bytes of /proc/PID/cmdline read (the kernel's ARG_MAX is 128 KiB+)
MAX_STATUS = 4096  # PPid and Uid are in the first few hundred bytes


def _read_small(path: str, limit: int) -> bytes:
    """Up to ``limit`` bytes of a file. A read shorter than asked ends it: /proc fills the
    buffer it is given (seq_file, and cmdline's loop), so the usual extra read that returns
    nothing is one syscall per file saved on every process."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            want = min(1 << 16, limit - size)
            chunk = os.read(fd, want)
            chunks.append(chunk)
            size += len(chunk)
            if len(chunk) < want:
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(fd)


def _argv(raw: bytes) -> tuple[str, ...]:
    """The arguments in a ``cmdline`` file: NUL-terminated strings. A process that rewrote its
    argv as one string (setproctitle) has no NUL between words, or none at the end: its words
    are split on spaces, as ``ps`` shows them (proc(5) /proc/pid/cmdline; psutil issue 1179)."""
    if not raw:
        return ()
    text = raw.decode(errors="replace")
    if not text.endswith("\0"):
        return tuple(text.split(" "))
    words = text[:-1].split("\0")
    if len(words) == 1 and " " in words[0]:
        return tuple(words[0].split(" "))
    return tuple(words)


def netns_ino(paths: HostPaths, path: str | Path) -> int | None:
    """The inode of a network namespace (``/proc/PID/ns/net`` or a bind-mounted netns file)."""
    try:  # no Path on the real root: asked for every container and port-handler process
        live = paths.root == _ROOT and os.fspath(path).startswith("/")
        return os.stat(path if live else paths.at(path)).st_ino
    except (OSError, ValueError):
        return None


_ROOT = Path("/")


# The processes that only exist where a user runs rootless engines: RootlessKit (Docker's and
# standalone), conmon (a running Podman container), Podman's pause process (catatonit -P).
_ENGINE_PROGS = ("rootlesskit", "conmon", "dockerd-rootless.sh")


def engine_owners(procs: Sequence[Proc]) -> tuple[str, ...]:
    """Names of the non-root users running rootless engines, in uid order."""
    uids = set()
    for p in procs:
        if not p.uid or not p.cmdline:
            continue
        prog = Path(p.cmdline[0]).name
        if prog in _ENGINE_PROGS or (prog == "catatonit" and "-P" in p.cmdline[1:2]):
            uids.add(p.uid)
    names = []
    for uid in sorted(uids):
        try:
            names.append(pwd.getpwuid(uid).pw_name)
        except KeyError:
            names.append(str(uid))
    return tuple(names)


def systemd_booted(paths: HostPaths) -> bool:
    """sd_booted(3): systemd is the init system when /run/systemd/system is a directory."""
    return is_dir(paths.at("/run/systemd/system"))
