"""Real-stack test harness: start real rootless engines as an unprivileged user and probe them.

Not a test module. Tests import it as ``import stack`` (tests/ is on sys.path). Everything here is
real: rootlesskit, slirp4netns, podman and rootless dockerd from the Debian 12 packages, run as the
user ``rdtest`` that ``.ci/setup-stack.sh`` creates. The tests run as root; the stack runs as the
user (through ``setpriv``, which execs, so the PID we hold is the real process and we signal only
what we started).

Traffic goes only to loopback or to the 10.200.0.x veth pair :func:`client_netns` creates. Facts
(addresses each setup shows, timings, host fixes) are in /work/shared/real-stack.md.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

# RDSTACK_USER selects another user made by `STACK_USER=name .ci/setup-stack.sh`, so two runs on
# one machine do not share a docker.sock, podman state or leftovers().
STACK_USER = os.environ.get("RDSTACK_USER", "rdtest")
SETUP_HINT = "run: sudo bash .ci/setup-stack.sh"

# dockerd-rootless.sh is not on PATH in Debian's docker.io; dockerd itself is in /usr/sbin.
# /usr/local is left out on purpose: the stack is the Debian packages, as on a fresh CI machine
# (a developer machine may have e.g. a newer docker CLI in /usr/local/bin).
DOCKER_CONTRIB = "/usr/share/docker.io/contrib"
USER_PATH = f"/usr/bin:/bin:/usr/sbin:/sbin:{DOCKER_CONTRIB}"
BUSYBOX = "/bin/busybox"  # busybox-static: one static binary, the whole container rootfs
DOCKER_IMAGE = "local/rdrootfs"

# Debian roots with current engines (.ci/roots.sh, tests/roots.py); their users run through it.
ROOTS_SH = Path(__file__).resolve().parent.parent / ".ci/roots.sh"

NETNS_NAME = "rdclient"
VETH_HOST = "rdv0"
VETH_NS = "rdv1"
HOST_ADDR = "10.200.0.1"
CLIENT_ADDR = "10.200.0.2"
NETNS_LOCK = "/run/rdstack-netns.lock"  # the veth name and addresses above are machine-wide

# Listens on 0.0.0.0:argv[1] (default 8080); answers each connection with the peer IP and closes.
# Runs with the system python3: inside rootlesskit, and in containers (with /usr mounted).
PEER_SERVER = """\
import signal, socket, sys
# As PID 1 in a container, SIGTERM is ignored unless handled.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", port))
srv.listen(64)
while True:
    conn, peer = srv.accept()
    try:
        conn.sendall(peer[0].encode() + b"\\n")
    except OSError:
        pass
    conn.close()
"""

# argv: HOST PORT TIMEOUT [SOURCE]. Prints the first non-empty reply. A published port accepts (and
# then closes) before the server inside listens, so empty replies and refusals are retried until the
# deadline; exit 1 with the last error when it passes.
_PEER_CLIENT = """\
import socket, sys, time
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
source = sys.argv[4] if len(sys.argv) > 4 else None
deadline = time.monotonic() + timeout
last = "no attempt"
while time.monotonic() < deadline:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(max(0.1, min(2.0, deadline - time.monotonic())))
            if source:
                s.bind((source, 0))
            s.connect((host, port))
            data = b""
            while chunk := s.recv(256):
                data += chunk
        if data.strip():
            print(data.decode().strip())
            sys.exit(0)
        last = "empty reply"
    except OSError as e:
        last = repr(e)
    time.sleep(0.02)
print(f"no reply from {host}:{port} within {timeout}s: {last}", file=sys.stderr)
sys.exit(1)
"""


class StackError(RuntimeError):
    """A real-stack component failed to start, answer or stop; the message carries its log."""


# --------------------------------------------------------------------------------------------
# availability


def missing() -> str | None:
    """None when the real stack can run here, else one line naming what is missing."""
    if os.geteuid() != 0:
        return f"real-stack tests run as root (the stack runs as {STACK_USER}); {SETUP_HINT}"
    try:
        pw = pwd.getpwnam(STACK_USER)
    except KeyError:
        return f"user {STACK_USER} does not exist; {SETUP_HINT}"
    lacking = [
        b
        for b in (
            "rootlesskit",
            "rootlessctl",
            "slirp4netns",
            "podman",
            "runc",
            "dockerd",
            "docker",
            "newuidmap",
            "newgidmap",
            "setpriv",
            "ip",
            "python3",
        )
        if shutil.which(b, path=USER_PATH) is None
    ]
    for path in (f"{DOCKER_CONTRIB}/dockerd-rootless.sh", BUSYBOX):
        if not os.access(path, os.X_OK):
            lacking.append(path)
    if lacking:
        return f"missing: {', '.join(lacking)}; {SETUP_HINT}"
    try:
        tun = os.stat("/dev/net/tun")
    except OSError:
        return f"/dev/net/tun does not exist; {SETUP_HINT}"
    if tun.st_mode & 0o006 != 0o006:
        mode = f"{stat.S_IMODE(tun.st_mode):o}"
        return f"/dev/net/tun is mode {mode}, not usable by {STACK_USER}; {SETUP_HINT}"
    for f in ("/etc/subuid", "/etc/subgid"):
        try:
            lines = Path(f).read_text().splitlines()
        except OSError:
            lines = []
        if not any(line.split(":")[0] in (STACK_USER, str(pw.pw_uid)) for line in lines):
            return f"no {f} range for {STACK_USER}; {SETUP_HINT}"
    runtime_dir = Path(f"/run/user/{pw.pw_uid}")
    if not runtime_dir.is_dir() or runtime_dir.stat().st_uid != pw.pw_uid:
        return f"{runtime_dir} missing or not owned by {STACK_USER}; {SETUP_HINT}"
    conf = Path(pw.pw_dir, ".config/containers/containers.conf")
    if not conf.is_file() or "runc" not in conf.read_text():
        return f"{conf} does not select runc (crun refuses hybrid cgroups); {SETUP_HINT}"
    return None


def require() -> None:
    """Skip the calling test when the stack is missing; fail instead when ``CI=true``.

    Real-stack tests must never skip silently in CI.
    """
    import pytest  # only tests call this; keep the module importable without pytest

    reason = missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"real stack required in CI: {reason}")
    pytest.skip(reason)


# --------------------------------------------------------------------------------------------
# the user and running things as the user


@dataclass(frozen=True)
class User:
    """The unprivileged user the stack runs as."""

    name: str
    uid: int
    gid: int
    home: str
    runtime_dir: str
    # Host path of the root filesystem the user lives in (tests/roots.py: a Debian root entered
    # with pivot_root); "" for a user of the host. Paths above are as the user sees them.
    root: str = ""

    def host_path(self, p: str | os.PathLike[str]) -> Path:
        """Where ``p`` (a path as the user sees it) is on the host."""
        return Path(self.root + os.fspath(p)) if self.root else Path(p)

    def inside(self, p: str | os.PathLike[str]) -> str:
        """``p`` (a host path, under the root for a root's user) as the user sees it."""
        s = os.fspath(p)
        if not self.root:
            return s
        if not s.startswith(self.root + "/"):
            raise ValueError(f"{s} is outside {self.root}")
        return s[len(self.root) :]


def user() -> User:
    """The stack user (``STACK_USER``) as a :class:`User`."""
    pw = pwd.getpwnam(STACK_USER)
    return User(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir, f"/run/user/{pw.pw_uid}")


def user_env(u: User, **extra: str) -> dict[str, str]:
    """A clean login-like environment for ``u``; ``extra`` adds or overrides variables.

    XDG_CONFIG_HOME is left unset so every tool uses ``~/.config``.
    """
    env = {
        "PATH": USER_PATH,
        "HOME": u.home,
        "USER": u.name,
        "LOGNAME": u.name,
        "XDG_RUNTIME_DIR": u.runtime_dir,
        "LANG": "C.UTF-8",
    }
    env.update(extra)
    env.pop("XDG_CONFIG_HOME", None)
    return env


def _as_user_argv(u: User, argv: Sequence[str], env: Mapping[str, str] | None) -> list[str]:
    """``setpriv ... env -i K=V ... argv``: every step execs, so the child PID is ``argv[0]``.

    A root's user is reached through ``.ci/roots.sh user`` (pivot_root, then the same setpriv and
    ``env -i``), which also execs all the way.
    """
    env = user_env(u) if env is None else dict(env)
    if u.root:
        kv = [f"{k}={v}" for k, v in env.items()]
        return ["bash", str(ROOTS_SH), "user", Path(u.root).name, u.name, *kv, *argv]
    return [
        "setpriv",
        f"--reuid={u.uid}",
        f"--regid={u.gid}",
        "--init-groups",
        "env",
        "-i",
        *(f"{k}={v}" for k, v in env.items()),
        *argv,
    ]


def run_as(
    u: User,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as ``u`` (environment ``env`` or :func:`user_env`), capture text output."""
    return subprocess.run(
        _as_user_argv(u, argv, env),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=u.host_path(u.home),
        check=False,
    )


def spawn_as(
    u: User, argv: Sequence[str], env: Mapping[str, str] | None = None, **popen_kw: object
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as ``u`` in the background; the returned PID is the program itself."""
    popen_kw.setdefault("cwd", u.host_path(u.home))
    popen_kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen(_as_user_argv(u, argv, env), **popen_kw)  # type: ignore[call-overload,no-any-return]


def _check(cp: subprocess.CompletedProcess[str], what: str) -> str:
    if cp.returncode != 0:
        raise StackError(
            f"{what} failed ({cp.returncode}): {cp.stderr.strip() or cp.stdout.strip()}"
        )
    return cp.stdout


def _stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM the one process we started and reap it; SIGKILL only if it ignores SIGTERM."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _wait_for(
    cond: Callable[[], bool], what: str, timeout: float, proc: subprocess.Popen[bytes], log: Path
) -> None:
    """Poll ``cond()`` until true; fail early with the log when ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            raise StackError(f"{what}: process exited {proc.returncode}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise StackError(f"{what}: not ready within {timeout}s:\n{_tail(log)}")
        time.sleep(0.01)


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _user_tmpdir(u: User, prefix: str) -> Path:
    """A fresh directory under /tmp owned by ``u`` (its parent must stay root-owned: /tmp is).

    The host path: :meth:`User.inside` gives the one the user sees.
    """
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=u.host_path("/tmp")))
    os.chown(d, u.uid, u.gid)
    return d


def free_port() -> int:
    """A TCP port free on the host right now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------------------
# the client side: a network namespace with a non-loopback address


@dataclass(frozen=True)
class Netns:
    """The client namespace: ``client_addr`` inside, ``host_addr`` on the host side of the veth."""

    name: str
    host_addr: str = HOST_ADDR
    client_addr: str = CLIENT_ADDR


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cp = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    if check:
        _check(cp, "ip " + " ".join(args))
    return cp


def _netns_delete(name: str) -> None:
    if name in _ip("netns", "list").stdout.split():
        _ip("netns", "del", name)
    if _ip("link", "show", VETH_HOST, check=False).returncode == 0:
        gone = _ip("link", "del", VETH_HOST, check=False)
        # Deleting the namespace takes the veth pair with it, asynchronously: it may vanish
        # between the look and the delete.
        if gone.returncode != 0 and _ip("link", "show", VETH_HOST, check=False).returncode == 0:
            _check(gone, f"ip link del {VETH_HOST}")


@contextmanager
def _machine_lock(path: str, timeout: float) -> Iterator[None]:
    """Hold an exclusive flock on ``path``; the kernel drops it when the holder dies."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StackError(f"{path} still held by another run after {timeout}s") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


@contextmanager
def client_netns(name: str = NETNS_NAME, lock_timeout: float = 300) -> Iterator[Netns]:
    """A netns joined to the host by a veth (host 10.200.0.1/24, ns 10.200.0.2/24), no route out.

    The veth name and addresses are machine-wide, so concurrent runs take turns (a lock file in
    /run). A stale namespace or veth from an interrupted run is deleted and made anew; all of it
    is deleted on exit, also on error.
    """
    with _machine_lock(NETNS_LOCK, lock_timeout), _fresh_netns(name) as ns:
        yield ns


@contextmanager
def _fresh_netns(name: str) -> Iterator[Netns]:
    _netns_delete(name)
    try:
        _ip("netns", "add", name)
        _ip("link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NS, "netns", name)
        _ip("addr", "add", f"{HOST_ADDR}/24", "dev", VETH_HOST)
        _ip("link", "set", VETH_HOST, "up")
        _ip("-n", name, "addr", "add", f"{CLIENT_ADDR}/24", "dev", VETH_NS)
        _ip("-n", name, "link", "set", VETH_NS, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield Netns(name)
    finally:
        _netns_delete(name)


def _ask(prefix: Sequence[str], host: str, port: int, timeout: float, source: str | None) -> str:
    argv = [*prefix, "python3", "-c", _PEER_CLIENT, host, str(port), str(timeout)]
    if source:
        argv.append(source)
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10, check=False)
    if cp.returncode != 0:
        raise StackError(cp.stderr.strip() or f"client exited {cp.returncode}")
    return cp.stdout.strip()


def ask_from_netns(ns: Netns, host: str, port: int, timeout: float = 10) -> str:
    """Connect from inside ``ns`` to host:port; the peer address the server reported."""
    return _ask(["ip", "netns", "exec", ns.name], host, port, timeout, None)


def ask_bound(source: str, host: str, port: int, timeout: float = 10) -> str:
    """Connect from the host with the client socket bound to ``source``; the reported peer."""
    return _ask([], host, port, timeout, source)


# --------------------------------------------------------------------------------------------
# rootlesskit alone


@dataclass(frozen=True)
class RootlessKit:
    """A running rootlesskit whose child is :data:`PEER_SERVER`, with one port published."""

    pid: int
    state_dir: str
    api_sock: str
    host_port: int
    child_port: int


@contextmanager
def rootlesskit(
    u: User,
    net: str = "slirp4netns",
    port_driver: str = "builtin",
    host_port: int | None = None,
    child_port: int = 8080,
) -> Iterator[RootlessKit]:
    """Run rootlesskit (peer server as child) as ``u``; publish 0.0.0.0:host_port->child_port."""
    host_port = host_port or free_port()
    tmp = _user_tmpdir(u, "rd-rootlesskit-")
    state = tmp / "state"
    log = tmp / "rootlesskit.log"
    argv = [
        "rootlesskit",
        f"--net={net}",
        f"--port-driver={port_driver}",
        "--copy-up=/etc",
        "--disable-host-loopback",
        f"--state-dir={u.inside(state)}",
        "python3",
        "-c",
        PEER_SERVER,
        str(child_port),
    ]
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, tmp, ignore_errors=True)
        with open(log, "wb") as out:
            proc = spawn_as(u, argv, stdout=out, stderr=subprocess.STDOUT)
        cleanup.callback(_stop, proc)
        api = state / "api.sock"
        _wait_for(api.exists, "rootlesskit api.sock", 10, proc, log)
        # rootlessctl 1.1 spec: PARENTIP:PARENTPORT:CHILDPORT/PROTO
        spec = f"0.0.0.0:{host_port}:{child_port}/tcp"
        api_in = u.inside(api)
        add = run_as(u, ["rootlessctl", "--socket", api_in, "add-ports", spec], timeout=10)
        _check(add, "rootlessctl add-ports")
        yield RootlessKit(proc.pid, u.inside(state), api_in, host_port, child_port)


# --------------------------------------------------------------------------------------------
# container rootfs (no registry): busybox-static plus the host's /usr mounted read-only


def rootfs(u: User) -> str:
    """A minimal rootfs directory owned by ``u``: busybox, /lib -> usr/lib, an empty /usr.

    Containers mount the host ``/usr`` (a root's own, for a root's user) read-only over it to get
    python3. Built once, reused. The path as the user sees it.
    """
    d = u.host_path(u.home) / ".cache/rdstack/rootfs"
    if (d / "bin/python3").is_symlink():
        return u.inside(d)
    tmp = d.with_name("rootfs.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("bin", "usr", "etc", "proc", "sys", "dev", "tmp", "run", "root"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2(u.host_path(BUSYBOX), tmp / "bin/busybox")
    (tmp / "bin/sh").symlink_to("busybox")
    for link in ("lib", "lib64"):  # merged /usr: the dynamic loader is /lib64/ld-linux-*.so.2
        (tmp / link).symlink_to(f"usr/{link}")
    (tmp / "bin/python3").symlink_to("/usr/bin/python3")  # also the "built" marker
    (tmp / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (tmp / "etc/group").write_text("root:x:0:\n")
    subprocess.run(["chown", "-R", f"{u.uid}:{u.gid}", str(tmp)], check=True)
    for parent in (d.parent, d.parent.parent):
        parent.mkdir(exist_ok=True)
        os.chown(parent, u.uid, u.gid)
    shutil.rmtree(d, ignore_errors=True)
    tmp.rename(d)
    return u.inside(d)


# --------------------------------------------------------------------------------------------
# podman


@dataclass(frozen=True)
class PodmanContainer:
    """A running podman container serving :data:`PEER_SERVER` on ``host_port``."""

    name: str
    id: str
    host_port: int
    child_port: int


def podman(u: User, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``podman ARGS`` as ``u``."""
    return run_as(u, ["podman", *args], timeout=timeout)


@contextmanager
def podman_container(
    u: User,
    network: str | None = "slirp4netns",
    host_port: int | None = None,
    name: str = "rdpeer",
    child_port: int = 8080,
) -> Iterator[PodmanContainer]:
    """``podman run -d --network NETWORK -p HOST:CHILD`` of the peer server; ``rm -f`` on exit.

    ``network=None`` leaves ``--network`` out: the user's containers.conf decides, as for a plain
    ``podman run -p``.
    """
    host_port = host_port or free_port()
    # Any podman command starts the pause process (it holds the user namespace): look first.
    pause_was_running = podman_pause_running(u)
    podman(u, "rm", "-f", "-t0", name)  # a stale one from an interrupted run
    argv = [
        "run", "-d", "--name", name, *(["--network", network] if network else []),
        "-p", f"{host_port}:{child_port}", "-v", "/usr:/usr:ro",
        "--rootfs", rootfs(u), "python3", "-c", PEER_SERVER, str(child_port),
    ]  # fmt: skip
    try:
        cid = _check(podman(u, *argv), "podman run").strip()
        yield PodmanContainer(name, cid, host_port, child_port)
    finally:
        podman(u, "rm", "-f", "-t0", name)
        # The run also started podman's pause process (it holds the user namespace); stop it too
        # when it was not running before and no other container of the user needs it.
        if not pause_was_running and not podman(u, "ps", "-aq").stdout.strip():
            podman(u, "system", "migrate")


def podman_pause_running(u: User) -> bool:
    try:
        pid = int(u.host_path(f"{u.runtime_dir}/libpod/tmp/pause.pid").read_text().strip())
    except (OSError, ValueError):
        return False
    return _alive(pid)


def _alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    try:
        # "pid (comm) S ...": a zombie (Z) has exited and only waits to be reaped.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def podman_reset(u: User) -> None:
    """Remove all of ``u``'s containers and stop podman's pause process (``system migrate``)."""
    podman(u, "rm", "-af", "-t0")
    podman(u, "system", "migrate")


# --------------------------------------------------------------------------------------------
# rootless dockerd (docker.io 20.10 + rootlesskit 1.1)


@dataclass
class RootlessDockerd:
    """A running ``dockerd-rootless.sh``; ``env`` has DOCKER_HOST for the ``docker`` CLI."""

    user: User
    pid: int
    env: dict[str, str]
    state_dir: str
    containers: list[str] = field(default_factory=list)

    def docker(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``docker ARGS`` as the user against this daemon."""
        return run_as(self.user, ["docker", *args], env=self.env, timeout=timeout)

    def run(self, publish_host_port: int, container_port: int = 8080) -> str:
        """Start the peer server in a container published on ``publish_host_port``; its id."""
        argv = [
            "run", "-d", "-p", f"{publish_host_port}:{container_port}", "-v", "/usr:/usr:ro",
            DOCKER_IMAGE, "python3", "-c", PEER_SERVER, str(container_port),
        ]  # fmt: skip
        cid = _check(self.docker(*argv), "docker run").strip()
        self.containers.append(cid)
        return cid

    def remove_containers(self) -> None:
        """``docker rm -f`` every container :meth:`run` started."""
        if self.containers:
            self.docker("rm", "-f", *self.containers)
            self.containers.clear()


def _docker_import(d: RootlessDockerd) -> None:
    if d.docker("image", "inspect", DOCKER_IMAGE).returncode == 0:
        return
    root = rootfs(d.user)
    cp = run_as(
        d.user,
        ["sh", "-c", f'tar -C "$1" -cf - . | docker import - {DOCKER_IMAGE}', "sh", root],
        env=d.env,
    )
    _check(cp, "docker import")


@contextmanager
def rootless_dockerd(
    u: User,
    port_driver: str | None = "builtin",
    net: str | None = "slirp4netns",
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[RootlessDockerd]:
    """Start ``dockerd-rootless.sh`` as ``u`` with the given rootlesskit net/port driver.

    ``net=None`` leaves DOCKERD_ROOTLESS_ROOTLESSKIT_NET unset, as the unit the setup tool writes
    does: the launcher then picks slirp4netns *and* MTU 65520 (with NET set and no MTU, 20.10 uses
    1500). ``port_driver=None`` likewise leaves DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER unset (the
    launcher's default is builtin). ``extra_env`` (e.g. built from a unit's ``Environment=`` lines)
    is applied last. Unless it sets ``--state-dir`` in ``DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS``,
    rootlesskit's state dir is a fresh temporary directory (20.10's default is a random
    /tmp/rootlesskitNNN; this one is known).
    """
    _clear_stale_dockerd(u)
    tmp = _user_tmpdir(u, "rd-dockerd-")
    log = tmp / "dockerd.log"
    sock = u.host_path(f"{u.runtime_dir}/docker.sock")
    env = user_env(u, DOCKER_HOST=f"unix://{u.runtime_dir}/docker.sock")
    if port_driver is not None:
        env["DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER"] = port_driver
    if net is not None:
        env["DOCKERD_ROOTLESS_ROOTLESSKIT_NET"] = net
    env.update(extra_env or {})
    flags = env.get("DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS", "")
    if "--state-dir" not in flags:
        env["DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS"] = (
            f"{flags} --state-dir={u.inside(tmp / 'rootlesskit')}".strip()
        )
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, tmp, ignore_errors=True)
        with open(log, "wb") as out:
            launcher = [f"{DOCKER_CONTRIB}/dockerd-rootless.sh"]
            proc = spawn_as(u, launcher, env=env, stdout=out, stderr=subprocess.STDOUT)
        cleanup.callback(_stop, proc, 30)
        d = RootlessDockerd(u, proc.pid, env, _state_dir_of(env))
        _wait_for(
            lambda: sock.exists() and d.docker("version", timeout=10).returncode == 0,
            "rootless dockerd",
            60,
            proc,
            log,
        )
        cleanup.callback(d.remove_containers)
        _docker_import(d)
        yield d


def _state_dir_of(env: Mapping[str, str]) -> str:
    """The ``--state-dir`` in DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS (``=DIR`` or `` DIR``), or ""."""
    flags = env.get("DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS", "").replace(
        "--state-dir=", "--state-dir "
    )
    words = flags.split()
    if "--state-dir" in words[:-1]:
        return words[words.index("--state-dir") + 1]
    return ""


def _clear_stale_dockerd(u: User) -> None:
    """Remove a pid file / socket left by a daemon that is gone (a killed earlier run)."""
    pidfile = u.host_path(f"{u.runtime_dir}/docker.pid")
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        pid = 0
    if pid and _alive(pid):
        raise StackError(f"a rootless dockerd of {u.name} is already running (pid {pid})")
    for stale in ("docker.pid", "docker.sock"):
        u.host_path(f"{u.runtime_dir}/{stale}").unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# leftovers


def leftovers(u: User, wait: float = 2.0) -> list[str]:
    """Processes of ``u`` still running and TCP ports ``u`` listens on in the host namespace.

    Helpers of a stopped engine (conmon, shims, slirp4netns) exit asynchronously, so this polls for
    up to ``wait`` seconds until nothing is left, and returns what is still there. Zombies count as
    gone (PID 1 here reaps them late). Meaningful only while nothing else uses the stack user.
    """
    deadline = time.monotonic() + wait
    while (found := _leftovers_now(u)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _leftovers_now(u: User) -> list[str]:
    found: list[str] = []
    for proc in sorted(Path("/proc").iterdir(), key=lambda p: p.name):
        if not proc.name.isdigit():
            continue
        try:
            if proc.stat().st_uid != u.uid or not _alive(int(proc.name)):
                continue
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # exited meanwhile
            continue
        found.append(f"process {proc.name}: {cmd.strip()[:200]}")
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == "0A" and int(cols[7]) == u.uid:  # 0A = LISTEN
                port = int(cols[1].rsplit(":", 1)[1], 16)
                found.append(f"listening {table.rsplit('/', 1)[1]} port {port}")
    return found
