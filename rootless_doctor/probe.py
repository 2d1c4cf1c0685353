"""The end-to-end source-IP probe: real sockets through the engine's own published-port path.

Configuration can lie (a drop-in written but never loaded, a distribution patch), so ``probe``
starts a throwaway listener behind the engine's port forwarding, connects to it from a
NON-loopback address of this host and compares the address the listener saw with the one the
client used. A loopback client proves nothing: slirp4netns shows it as 10.0.2.2 whatever the port
driver (the slirp4netns gateway, docs/facts.md "RootlessKit port drivers").

- podman: ``podman run -d --rm -p SRC:PORT:PORT`` with the engine's defaults (no ``--network``),
  so it measures what a default container gets (containers.conf ``network_cmd_options`` apply).
- docker: ``docker run`` of ``--image`` or of an image ``docker import``-ed from a throwaway rootfs
  (removed afterwards).
- rootlesskit: a listener started in a running standalone RootlessKit's user+net namespace
  (``nsenter -U -n --preserve-credentials``) and a port published through its ``api.sock``
  (``POST /v1/ports``, the API ``rootlessctl add-ports`` uses).

Without ``--image`` no registry is touched: the container rootfs is a temp directory holding only
the host's merged-/usr symlinks, with the host's ``/usr`` bind-mounted read-only for python3. With
``--image`` the host's static busybox (``nc -ll`` + ``netstat``) is mounted in when there is
one, else the image's own ``python3`` runs the listener.

Everything started is undone in ``finally`` (container, made image, temp rootfs, published port,
listener process), also on SIGINT/SIGTERM, which are turned into :class:`ProbeInterrupted`
for the time of the probe and ignored while cleaning up.

What a probe result means (verdict words, the PROBE-* findings, disagreements with ``check``,
the exit code, the JSON shape) is in :mod:`rootless_doctor.checks.probe`: pure, like every check.

What the host has (its addresses, running RootlessKits and their state dirs, programs on PATH,
a static busybox, the merged-/usr layout, the engines' CLI environment) comes from
:mod:`rootless_doctor.host`; this module only runs the probe: listener, containers, sockets and
the undoing of all it started.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType

from . import host
from . import knowledge as kb
from .checks.probe import expected_from
from .host import files as host_files
from .host import system as host_system
from .model import (
    CmdOutput,
    DoctorError,
    EngineName,
    HostFacts,
    HostPaths,
    ProbeResult,
    Report,
    RootlessKitFacts,
)

ENGINES: tuple[EngineName, ...] = ("podman", "docker", "rootlesskit")
LABEL = "io.github.rootless-doctor.probe"  # on every container the probe starts

# The listener: binds 0.0.0.0:argv[1] (0 = any free port), prints the port once it listens (our
# readiness signal for rootlesskit), then answers every connection with the peer address.
LISTENER = """\
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
print(s.getsockname()[1], flush=True)
while True:
    c, peer = s.accept()
    try:
        c.sendall(peer[0].encode() + b"\\n")
    except OSError:
        pass
    c.close()
"""


class ProbeInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived during the probe; everything it started has been removed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class CouldNotRun(Exception):
    """The probe cannot give a verdict; the message says why and what to do."""


# --------------------------------------------------------------------------------------------
# the source address


def _usable(addr: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast)


def choose_source(source: str | None, addresses: list[tuple[str, str]]) -> str:
    """The address the client binds to and connects to; raises CouldNotRun when there is none.

    Without ``source``: the first IPv4, else IPv6, non-loopback non-link-local address. The kernel
    uses that address as the source of a local connection to it, unprivileged.
    """
    if source is not None:
        try:
            ip = ipaddress.ip_address(source)
        except ValueError:
            raise CouldNotRun(f"--source {source!r} is not an IP address") from None
        if ip.is_loopback:
            raise CouldNotRun(
                f"--source {source} is a loopback address: slirp4netns shows loopback clients as "
                "10.0.2.2, so it cannot tell; give a non-loopback address of this host"
            )
        if str(ip) not in {a for _, a in addresses}:
            raise CouldNotRun(f"--source {source} is not an address of this host")
        return str(ip)
    usable = [a for _, a in addresses if _usable(a)]
    v4 = [a for a in usable if ":" not in a]
    if not (v4 or usable):
        raise CouldNotRun(
            "no non-loopback address: a loopback client cannot tell (slirp4netns shows it as "
            "10.0.2.2); add an address or pass --source"
        )
    return (v4 or usable)[0]


def source_addresses(source: str | None) -> list[tuple[str, str]]:
    """What :func:`choose_source` needs: with ``--source`` only whether it is local."""
    if source is None:
        return host.local_addresses()
    try:
        addr = str(ipaddress.ip_address(source))
    except ValueError:
        return []  # choose_source says why
    return [("", addr)] if host.is_local_address(addr) else []


def port_is_free(port: int, *, time_wait_ok: bool = False) -> bool:
    """Nothing listens on ``port`` on any address (the engines publish on all of them).

    ``time_wait_ok``: connections of a moment ago (TIME_WAIT) do not count, as for the engines'
    forwarders, which bind with SO_REUSEADDR (a port reused by ``probe --throughput``)."""
    for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        try:
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                if time_wait_ok:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if fam == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((addr, port))
        except OSError as err:
            if fam == socket.AF_INET6 and err.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                continue  # no IPv6 on this host
            return False
    return True


def pick_port(
    ephemeral: tuple[int, int] | None,
    unprivileged_start: int | None,
    free: Callable[[int], bool] = port_is_free,
    tries: int = 64,
) -> int:
    """A free port every port driver forwards: below net.ipv4.ip_local_port_range (pasta's
    automatic forwarding skips that range from passt 2026_05_07: knowledge.PASTA_AUTO_SKIPS_...)
    and not below ip_unprivileged_port_start (rootless engines cannot bind there)."""
    start = (ephemeral or kb.LINUX_EPHEMERAL)[0]
    low = max(kb.PRIVILEGED_PORT_LIMIT, unprivileged_start or 0)
    top = start - 1
    if top < low:
        raise CouldNotRun(
            f"no port between ip_unprivileged_port_start ({low}) and the ephemeral range "
            f"({start}-): pass --port"
        )
    bottom = max(low, top - 16383)
    for _ in range(tries):
        port = bottom + int.from_bytes(os.urandom(4), "big") % (top - bottom + 1)
        if free(port):
            return port
    raise CouldNotRun(f"no free port between {bottom} and {top}: pass --port")


def in_range_hint(port: int, ephemeral: tuple[int, int] | None) -> str:
    """Empty, or a message tail saying why ``port`` may not be forwarded (inside the ephemeral range
    pasta's automatic forwarding skips)."""
    first, last = ephemeral or kb.LINUX_EPHEMERAL
    if not first <= port <= last:
        return ""
    return (
        f"; port {port} is inside net.ipv4.ip_local_port_range ({first}-{last}), which pasta's "
        f"automatic forwarding (RootlessKit implicit, passt ≥ {kb.PASTA_AUTO_SKIPS_EPHEMERAL}) "
        f"does not forward: pass a --port below {first}"
    )


def hostport(source: str, port: int) -> str:
    """``source:port`` as a message names it (IPv6 in brackets)."""
    return f"[{source}]:{port}" if ":" in source else f"{source}:{port}"


# --------------------------------------------------------------------------------------------
# cleanup and signals


@dataclass
class Undo:
    """Undo actions, run last-in first-out exactly once, with SIGINT/SIGTERM ignored meanwhile."""

    steps: list[tuple[str, Callable[[], object]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def push(self, what: str, fn: Callable[[], object]) -> None:
        self.steps.append((what, fn))

    def run(self) -> None:
        with _signals_ignored():
            while self.steps:
                what, fn = self.steps.pop()
                try:
                    res = fn()
                except Exception as err:  # keep undoing the rest
                    self.errors.append(f"{what}: {err}")
                    continue
                if isinstance(res, CmdOutput) and not res.ok and not _nothing_there(res):
                    self.errors.append(f"{what}: {failure_line(res, ' '.join(res.argv[:2]))}")


def failure_line(out: CmdOutput, what: str) -> str:
    """One line for a failed command, named short (the full argv holds the listener's code)."""
    if out.error:
        return f"`{what}`: {out.error}"
    # The docker CLI ends its errors with "See 'docker run --help'.": the reason is above it.
    lines = [ln.strip() for ln in out.stderr.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not _HELP_POINTER.match(ln)] or lines
    last = (lines or [out.stdout.strip() or "no output"])[-1]
    return f"`{what}` exited {out.code}: {last}"


_HELP_POINTER = re.compile(r"(See|Run) '[^']*--help'")


def _nothing_there(out: CmdOutput) -> bool:
    """An undo step that failed because there was nothing to undo (never created)."""
    text = (out.stderr + out.stdout).lower()
    return "no such" in text or "cannot connect to the docker daemon" in text


_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class Guard:
    """SIGINT/SIGTERM → :class:`ProbeInterrupted`, held back inside :meth:`critical` sections.

    A critical section starts something and registers its undo step; a signal arriving in it is
    raised at its end, so nothing started is ever left unregistered. (Not a kernel signal mask:
    children would inherit it and ignore our SIGTERM.)
    """

    def __init__(self) -> None:
        self.depth = 0
        self.pending: int | None = None

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        if self.depth:
            self.pending = self.pending or signum
            return
        raise ProbeInterrupted(signum)

    def installed(self) -> contextlib.AbstractContextManager[None]:
        return _handling_signals(self._handler)

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if not self.depth and self.pending is not None:
            signum, self.pending = self.pending, None
            raise ProbeInterrupted(signum)


def _signals_ignored() -> contextlib.AbstractContextManager[None]:
    return _handling_signals(signal.SIG_IGN)


@contextlib.contextmanager
def _handling_signals(handler: _Handler) -> Iterator[None]:
    """SIGINT/SIGTERM go to ``handler`` inside, the previous handlers are back afterwards.
    Only the main thread may set handlers (``check``'s detection thread probes nothing)."""
    if not _main_thread():
        yield
        return
    old = {s: signal.signal(s, handler) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# --------------------------------------------------------------------------------------------
# the client


UNPRIVILEGED_PORT_START = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
# How long a published port may refuse every connection while the listener's container runs and
# nothing listens on it here before the path counts as closed: pasta's automatic forwarding
# (RootlessKit implicit) binds a new port only when its scan finds it (passt(1): "derived
# (every second)"), measured up to ~1.5 s on a loaded 2-core machine; every other forwarder
# listens before `run` returns, so a refusal while one listens (a reject rule) ends after
# ANSWER_GRACE, and so does a port inside ip_local_port_range nothing took (passt >= 2026_05_07
# never forwards it automatically: the hint says so).
REFUSED_GRACE = 2.0
# How long the first answer may take once a connection got further than a refusal (accepted and
# closed or held: the forwarder is up, the listener inside starts in tens of ms; timed out: the
# path drops the traffic) before the probe ends with what the connections got. With the engine's
# start and clean-up, both keep a failing probe under 3 s (bench/probe.py --fail-cases).
ANSWER_GRACE = 1.0
# The least time given to an answer once the port stopped refusing (pasta forwards it now).
ANSWER_AFTER_REFUSALS = 0.3
# How long before the window closes the engine is asked whether the listener still runs (an
# inspect takes ~100-250 ms here), so that its answer is there when the window closes.
ALIVE_LEAD = 0.3
# One connection attempt: a local connect and the listener's one-line answer take milliseconds;
# a dropped SYN or a forwarder that holds the connection open is retried after this.
ATTEMPT_TIMEOUT = 0.5


def _ask(
    source: str,
    port: int,
    deadline: float,
    alive: Callable[[], str | None],
    hint: str = "",
    refused_grace: float = REFUSED_GRACE,
    answer_grace: float = ANSWER_GRACE,
) -> str:
    """Connect from ``source`` to ``source:port`` until the reply is a non-empty address.

    A published port accepts (and closes) before the listener inside listens, so refusals and
    empty replies are retried every few ms. Nothing but refusals for ``refused_grace`` seconds
    ends the probe with the reason (``hint`` says why the port may not be forwarded); so does no
    answer within ``answer_grace`` seconds (and ANSWER_AFTER_REFUSALS after the first attempt
    that got further than a refusal), named after what the attempts got. Only near the end of
    that window is ``alive()`` asked (in a thread, ALIVE_LEAD before it closes) why the listener
    is gone (None: it runs): it is an engine command (``podman inspect``, ~100 ms of a core),
    which asked while the answer is still coming would take CPU from the engine starting the
    listener.
    """
    fam = socket.AF_INET6 if ":" in source else socket.AF_INET
    where = hostport(source, port)
    last = "no attempt"
    started = time.monotonic()
    further: float | None = None  # when the first attempt that got further than a refusal began
    attempt = started
    check: _Later | None = None
    # True: a forwarder listens on the port here (a refusal is a reject rule); False: nothing
    # does and the port is one pasta never forwards (hint); None: not known (yet). Looked at
    # every 0.2 s while only refusals came: pasta's scan may bind the port at any moment.
    bound: bool | None = None
    bound_at = next_look = started + answer_grace - ALIVE_LEAD
    got: set[str] = set()  # what the attempts ended with: refused, empty, held, dropped, other
    while True:
        now = time.monotonic()
        if now >= deadline:
            raise CouldNotRun(f"no reply from {where} in time ({last}){hint}")
        if further is None and got - {"refused"}:
            further, check = attempt, None  # the window moved: a check started earlier is early
        if further is None and not bound and now >= next_look:
            next_look = now + 0.2
            if host.port_listening(port):
                bound, bound_at = True, max(bound_at, now)
            elif hint:
                bound = False
        if further is None:  # only refusals: see REFUSED_GRACE
            # refusals while a forwarder listens (a reject rule): end soon after it was seen
            close = bound_at + ALIVE_LEAD if bound is not None else started + refused_grace
            close = min(close, started + refused_grace)
        else:
            # After refusals (pasta picking the port up) the listener has long been up: an
            # answer comes at once, so the window ends answer_grace after the start or soon after.
            close = max(started + answer_grace, further + ANSWER_AFTER_REFUSALS)
        if check is None and now >= close - ALIVE_LEAD:
            check = _Later(alive)  # asked meanwhile, the answer is ready when the window closes
        if now >= close:
            gone = check.result() if check is not None else alive()
            if gone:
                raise CouldNotRun(f"the listener stopped before answering: {gone}")
            raise CouldNotRun(_no_answer(where, got, now - started, last, hint, bound))
        connected, attempt = False, now
        try:
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                # no longer than up to the next step: the alive check's start, the window's end
                wake = close - ALIVE_LEAD if check is None else close
                s.settimeout(max(0.05, min(ATTEMPT_TIMEOUT, deadline - now, wake - now)))
                s.bind((source, 0))
                s.connect((source, port))
                connected = True
                data = b""
                while len(data) < 256 and (chunk := s.recv(256)):
                    data += chunk
            reply = data.decode(errors="replace").strip()
            if reply:
                try:
                    return str(ipaddress.ip_address(reply.splitlines()[0].strip()))
                except ValueError:
                    last = f"unexpected reply {reply[:60]!r}"
                    got.add("other")
            else:
                last = "closed without an answer"
                got.add("empty")
        except ConnectionRefusedError as err:
            last = f"{type(err).__name__}: {err}"
            got.add("refused")
        except TimeoutError:
            # A connect that times out had its request dropped; one that connected was held
            # open by a forwarder that reaches nothing (or a listener that does not answer).
            last = f"{'no answer' if connected else 'connect timed out'} in {ATTEMPT_TIMEOUT:g} s"
            got.add("held" if connected else "dropped")
        except OSError as err:
            last = f"{type(err).__name__}: {err}"
            got.add("empty" if connected else "other")
        time.sleep(0.003)


class _Later:
    """``fn()`` run in a daemon thread now, its result taken later."""

    def __init__(self, fn: Callable[[], str | None]) -> None:
        self._fn = fn
        self._out: str | None = None
        self._thread = threading.Thread(target=self._run, name="rd-alive", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self._out = self._fn()

    def result(self) -> str | None:
        self._thread.join()
        return self._out


def _no_answer(
    where: str, got: set[str], waited: float, last: str, hint: str, bound: bool | None = None
) -> str:
    """Why the listener's answer never came, from what the connection attempts got."""
    if got == {"refused"} and bound:
        return (
            f"{where} refused every connection for {waited:.1f} s although the engine's forwarder "
            f"listens there: something on the path rejects the traffic (a firewall rule?){hint}"
        )
    if got == {"refused"}:
        return (
            f"{where} refused every connection for {waited:.1f} s while the listener ran: the "
            f"engine does not forward this port{hint}"
        )
    if "dropped" in got and not got & {"empty", "held"}:
        return (
            f"connections to {where} timed out for {waited:.1f} s while the listener ran: "
            f"something on the path drops the traffic (a firewall rule?){hint}"
        )
    if got & {"empty", "held"}:
        return (
            f"{where} accepted connections but the listener's answer never came in "
            f"{waited:.1f} s ({last}): the engine's forwarder does not reach the listener{hint}"
        )
    return f"no answer from {where} in {waited:.1f} s while the listener ran ({last}){hint}"


# --------------------------------------------------------------------------------------------
# what runs the listener in a container


def run_bounded(argv: list[str], deadline: float, env: Mapping[str, str]) -> CmdOutput:
    """``argv`` through host.run, its timeout what is left before ``deadline`` (at least 0.5 s, so
    an undo step still runs after the deadline); never raises: a failure is in the CmdOutput."""
    return host.run(argv, timeout=max(0.5, deadline - time.monotonic()), env=env)


@dataclass(frozen=True)
class Listener:
    """What runs in the container: its -v mounts, its command, and how ProbeResult.used names it.
    Shared with throughput_probe.py (the sink is a Listener too)."""

    mounts: tuple[str, ...]  # -v values
    argv: tuple[str, ...]  # command run in the container
    what: str  # for ProbeResult.used


def _rootfs_dir(r: Run) -> Path:
    """A throwaway rootfs: empty dirs plus the host's top-level merged-/usr symlinks.

    The container mounts the host's /usr read-only over ``usr``; a top-level dir that is not a
    symlink on the host (no merged /usr) is mounted read-only as well (see ``rootfs_mounts``).
    """
    with r.guard.critical():  # a signal between mkdtemp and push would leave it behind
        d = Path(tempfile.mkdtemp(prefix="rd-probe-rootfs-"))
        r.undo.push(f"remove {d}", lambda: shutil.rmtree(d, ignore_errors=True))
    d.chmod(0o755)
    for sub in ("usr", "etc", "proc", "sys", "dev", "tmp", "run", "root"):
        (d / sub).mkdir()
    for name, link in host.root_layout().items():
        if link is not None:
            (d / name).symlink_to(link)
        else:
            (d / name).mkdir()
    (d / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (d / "etc/group").write_text("root:x:0:\n")
    return d


def rootfs_mounts() -> tuple[str, ...]:
    """The read-only -v mounts a Listener without --image needs over the throwaway rootfs that
    start_container makes (podman --rootfs, docker import): the host's /usr and its top-level
    dirs that are not merged-/usr symlinks."""
    real_dirs = [name for name, link in host.root_layout().items() if link is None]
    return ("/usr:/usr:ro", *(f"/{name}:/{name}:ro" for name in real_dirs))


def _listener(image: str | None, port: int) -> Listener:
    if image is None:
        py = host.usr_python()
        if py is None:
            raise CouldNotRun("no python3 under /usr on this host for the listener; pass --image")
        return Listener(
            rootfs_mounts(),
            (py, "-I", "-S", "-c", LISTENER, str(port)),
            f"throwaway rootfs + host /usr ({Path(py).name} listener)",
        )
    bb = host.static_busybox()
    if bb is not None:
        # Debian's busybox has no tcpsvd: `nc -ll -e` serves each connection, and the peer is
        # read from netstat inside the container's netns (the established connection on PORT).
        # busybox's applet dispatch needs argv[0] to start with "busybox".
        box = "/.rd-probe/busybox"
        peer = (
            f'exec {box} netstat -tn | {box} awk \'$6 == "ESTABLISHED" && $4 ~ /:{port}$/ '
            '{ a = $5; sub(/:[0-9]+$/, "", a); sub(/^::ffff:/, "", a); print a; exit }\''
        )
        return Listener(
            (f"{bb}:{box}:ro",),
            (box, "nc", "-ll", "-p", str(port), "-e", box, "sh", "-c", peer),
            f"image {image} + host static busybox (nc listener)",
        )
    return Listener(
        (), ("python3", "-c", LISTENER, str(port)), f"image {image} (its own python3 listener)"
    )


# --------------------------------------------------------------------------------------------
# engines


@dataclass
class Run:
    """What one engine run produced (filled in as it goes)."""

    source: str
    port: int
    deadline: float
    undo: Undo
    guard: Guard
    used: list[str] = field(default_factory=list)
    hint: str = ""  # why the port may not be forwarded (inside the ephemeral range), or ""


def _container_alive(cli: str, name: str, env: Mapping[str, str], deadline: float) -> str | None:
    out = run_bounded([cli, "inspect", "--format", "{{.State.Status}}", name], deadline, env)
    if out.ok and out.stdout.strip() == "running":
        return None
    if out.ok:
        return f"container {name} is {out.stdout.strip()}"
    return f"container {name} is gone (it exited; run it without --rm to see its output)"


def _probe_container(cli: str, r: Run, image: str | None, env: Mapping[str, str]) -> str:
    alive = start_container(cli, r, _listener(image, r.port), image, env)
    return _ask(r.source, r.port, r.deadline, alive, r.hint)


def start_container(
    cli: str,
    r: Run,
    lst: Listener,
    image: str | None,
    env: Mapping[str, str],
    extra: tuple[str, ...] = (),
) -> Callable[[], str | None]:
    """Run ``lst`` in a throwaway container published on ``r.port`` (``extra``: more ``run``
    options, e.g. ``--network``), its removal registered in ``r.undo`` before it starts; a
    function saying why it is gone (None while it runs). Also ``probe --throughput``'s."""
    name = f"rd-probe-{os.getpid()}-{os.urandom(3).hex()}"
    argv = [cli, "run", "-d", "--rm", "--name", name, "--label", f"{LABEL}=1"]
    # `-p PORT:PORT` on every address, as users publish: with a host IP given, rootless Docker
    # 20.10 with the slirp4netns port driver takes another path (docker-proxy → 172.17.0.1).
    argv += ["-p", f"{r.port}:{r.port}", *extra]
    for m in lst.mounts:
        argv += ["-v", m]
    if image is None and cli.endswith("podman"):
        root = _rootfs_dir(r)
        target = ["--rootfs", str(root)]  # a flag: every option must come before it
        what = f"{lst.what} at {root}"
    elif image is None:
        img = _docker_image(cli, r, env)
        target = ["--pull=never", img]
        what = f"{lst.what}, image {img} made with docker import"
    else:
        target = ["--pull=never", image]
        what = lst.what
    # Registered before the run, so an interrupted `run` is removed by name as well.
    r.undo.push(f"remove container {name}", _remover(cli, env, "containers", name))
    with r.guard.critical():  # an interrupted `run` would still create the container
        out = run_bounded([*argv, *target, *lst.argv], r.deadline, env)
    r.used.append(f"{Path(cli).name} run {name}: {what}, published port {r.port}")
    if not out.ok:
        raise CouldNotRun(failure_line(out, f"{Path(cli).name} run"))
    return lambda: _container_alive(cli, name, env, r.deadline)


def _remover(cli: str, env: Mapping[str, str], kind: str, ref: str) -> Callable[[], CmdOutput]:
    """The undo step that removes container or image ``ref`` (``kind``: containers, images) by
    force. Aimed at a Docker daemon's unix socket (DOCKER_HOST, as :func:`host.cli_env` sets it
    for the rootless daemon) it is one ``DELETE`` on the Engine API, what ``docker rm -f`` /
    ``docker rmi -f`` send, without a Go CLI's start (~100 ms of a core each, on the probe's
    critical path); otherwise the CLI."""
    sock = _docker_socket(cli, env)
    if sock is None:
        sub = ["rm", "-f", *(["-t0"] if cli.endswith("podman") else [])]
        argv = [cli, *(sub if kind == "containers" else ["rmi", "-f"]), ref]
        return lambda: run_bounded(argv, time.monotonic() + 30, env)
    url = f"/{kind}/{ref}?force=1"

    def delete() -> CmdOutput:
        status, text, err = host.api_request(sock, "DELETE", url, timeout=30)
        ok = status // 100 == 2
        # A daemon socket that is not there ("No such file") had nothing to remove, as a 404.
        return CmdOutput(
            argv=("docker API", f"DELETE {url}"),
            code=0 if ok else (status or None),
            stderr="" if ok else (err or text.strip()[:300]),
        )

    return delete


def _docker_socket(cli: str, env: Mapping[str, str]) -> Path | None:
    """The Docker daemon's unix socket the CLI dials (DOCKER_HOST=unix://...), else None."""
    target = env.get("DOCKER_HOST", "")
    if cli.endswith("podman") or not target.startswith("unix://"):
        return None
    return Path(target[len("unix://") :])


def _tar_rootfs(r: Run) -> Path:
    root = _rootfs_dir(r)
    with r.guard.critical():
        fd, tname = tempfile.mkstemp(prefix="rd-probe-rootfs-", suffix=".tar")
        os.close(fd)
        tar = Path(tname)
        r.undo.push(f"remove {tar}", lambda: tar.unlink(missing_ok=True))
    import tarfile  # only here: docker without --image (a few ms of start-up otherwise)

    with tarfile.open(tar, "w") as tf:
        tf.add(root, arcname=".")
    return tar


def _docker_image(cli: str, r: Run, env: Mapping[str, str]) -> str:
    repo, version = "rootless-doctor-probe", f"{os.getpid()}-{os.urandom(3).hex()}"
    tag = f"{repo}:{version}"
    sock = _docker_socket(cli, env)
    if sock is None:
        tar = _tar_rootfs(r)
        r.undo.push(f"remove image {tag}", _remover(cli, env, "images", tag))
        with r.guard.critical():
            out = run_bounded([cli, "import", str(tar), tag], r.deadline, env)
        if not out.ok:
            raise CouldNotRun(failure_line(out, f"{Path(cli).name} import"))
        return tag
    # What `docker import - TAG` sends (POST /images/create?fromSrc=-, the tar as the body),
    # without a Go CLI's start on the critical path; the tar is a few KB, made in memory.
    import io
    import tarfile

    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tf:
        tf.add(_rootfs_dir(r), arcname=".")
    r.undo.push(f"remove image {tag}", _remover(cli, env, "images", tag))
    url = f"/images/create?fromSrc=-&repo={repo}&tag={version}"
    with r.guard.critical():
        status, text, err = host.api_request(
            sock, "POST", url, timeout=max(0.5, r.deadline - time.monotonic()),
            raw=data.getvalue(), content_type="application/x-tar",
        )  # fmt: skip
    if err:
        raise CouldNotRun(f"the Docker daemon does not answer ({err}): is it running?")
    failed = _stream_error(text) if status // 100 == 2 else text.strip()[:200]
    if failed:
        raise CouldNotRun(f"docker import (Engine API POST {url}) → {status}: {failed}")
    return tag


def _stream_error(text: str) -> str:
    """The first error in a Docker progress stream (one JSON object a line), or ""."""
    for line in text.splitlines()[:1000]:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict) and msg.get("error"):
            return str(msg["error"])[:200]
    return ""


# ---- rootlesskit


def _api(sock: str, method: str, path: str, body: object, deadline: float) -> object:
    """One request to RootlessKit's REST API; its JSON answer (raises CouldNotRun)."""
    timeout = max(0.5, deadline - time.monotonic())
    status, text, err = host.api_request(Path(sock), method, path, body, timeout=timeout)
    if err:
        raise CouldNotRun(err)
    if status // 100 != 2:
        raise CouldNotRun(f"{sock}: {method} {path} → {status}: {text.strip()[:200]}")
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        raise CouldNotRun(f"{sock}: {method} {path}: not JSON: {text.strip()[:200]!r}") from None


def _probe_rootlesskit(r: Run, kit: RootlessKitFacts | None, paths: HostPaths) -> str:
    alive = start_in_rootlesskit(r, kit, paths, LISTENER)
    return _ask(r.source, r.port, r.deadline, alive, r.hint)


def start_in_rootlesskit(
    r: Run, kit: RootlessKitFacts | None, paths: HostPaths, code: str, *args: str
) -> Callable[[], str | None]:
    """Run the Python ``code`` (argv: "0" then ``args``; it prints the port it listens on first)
    in ``kit``'s user+net namespace and publish ``r.port`` to that port through its api.sock,
    both undone through ``r.undo``; a function saying why it is gone (None while it runs). Also
    ``probe --throughput``'s."""
    if kit is None:
        kits = host.gather(paths, interfaces=False, engines=("rootlesskit",)).rootlesskits
        if not kits:
            raise CouldNotRun("no standalone RootlessKit of this user is running")
        kit = kits[0]
    if not kit.state_dir:
        raise CouldNotRun(
            f"rootlesskit pid {kit.pid}: state dir not found (start it with --state-dir)"
        )
    sock = str(Path(kit.state_dir, "api.sock"))
    child, why = host.rootlesskit_child_pid(kit.state_dir)
    if child is None:
        raise CouldNotRun(f"rootlesskit pid {kit.pid}: its child's PID: {why}")
    nsenter = host.which(paths, "nsenter")
    if nsenter is None:
        raise CouldNotRun("nsenter (util-linux) is not installed")
    py = sys.executable or host.which(paths, "python3") or "python3"
    argv = [nsenter, "-U", "-n", "--preserve-credentials", "-t", str(child)]
    argv += [py, "-I", "-S", "-c", code, "0", *args]
    with r.guard.critical():
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C to the terminal reaches us, not it: we stop it
        )
        r.undo.push(f"stop listener pid {proc.pid}", lambda: _stop(proc))
    r.used.append(
        f"listener pid {proc.pid} in the namespace of rootlesskit pid {kit.pid} "
        f"(port driver {kit.port_driver}, {sock})"
    )
    cport = _read_port(proc, r.deadline)
    _publish(r, sock, cport)
    r.used.append(f"published port {r.port} → child port {cport} via api.sock")

    def alive() -> str | None:
        return None if proc.poll() is None else f"listener exited {proc.returncode}"

    return alive


def _publish(r: Run, sock: str, cport: int) -> None:
    """Publish ``r.port`` to the child's ``cport`` through RootlessKit's api.sock, its removal
    registered before the request: an answer lost to the deadline may come after RootlessKit
    added the port, which is then found among its ports (parent and child port: the child port
    is our listener's own, no one else's)."""
    any_ip = "::" if ":" in r.source else "0.0.0.0"  # every address, as Docker publishes
    spec = {"proto": "tcp", "parentIP": any_ip, "parentPort": r.port, "childPort": cport}
    added: list[int] = []

    def unpublish() -> None:
        deadline = time.monotonic() + 10
        ids = list(added)
        if not ids:  # the POST failed or its answer was lost
            if not host.is_socket(Path(sock)):
                return  # RootlessKit is gone, and its ports with it
            ports = _api(sock, "GET", "/v1/ports", None, deadline)
            for p in ports if isinstance(ports, list) else []:
                got = p.get("spec") if isinstance(p, dict) else None
                where = (
                    (got.get("parentPort"), got.get("childPort")) if isinstance(got, dict) else ()
                )
                if where == (r.port, cport) and isinstance(p.get("id"), int):
                    ids.append(p["id"])
        for i in ids:
            _api(sock, "DELETE", f"/v1/ports/{i}", None, deadline)

    with r.guard.critical():
        r.undo.push(f"remove port {r.port} from {sock}", unpublish)
        status = _api(sock, "POST", "/v1/ports", spec, r.deadline)
        pid_ = status.get("id") if isinstance(status, dict) else None
        if isinstance(pid_, int):
            added.append(pid_)


def _read_port(proc: subprocess.Popen[bytes], deadline: float) -> int:
    assert proc.stdout is not None
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise CouldNotRun("the listener in the namespace did not start in time")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 64)
            if not chunk:
                err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
                proc.wait()
                raise CouldNotRun(
                    f"could not start the listener in the namespace (exit {proc.returncode}): "
                    f"{err.splitlines()[-1] if err else 'no output'}"
                )
            buf += chunk
    first = buf.split(b"\n", 1)[0]
    try:
        return int(first)
    except ValueError:
        raise CouldNotRun(
            f"the listener in the namespace printed {first[:60]!r}, not its port"
        ) from None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(2)
    for f in (proc.stdout, proc.stderr):
        if f is not None:
            f.close()


# --------------------------------------------------------------------------------------------
# the probe


def probe(
    engine: str,
    *,
    image: str | None,
    port: int | None,
    source: str | None,
    paths: HostPaths,
    expected: bool | None = None,
    timeout: float = 20,
    rootlesskit: RootlessKitFacts | None = None,
    addresses: list[tuple[str, str]] | None = None,
) -> ProbeResult:
    """Run one probe through ``engine``'s published-port path and say what the listener saw.

    ``rootlesskit`` picks the instance (default: the oldest standalone one of this user);
    ``addresses`` replaces the host's interface addresses (tests). Raises
    :class:`ProbeInterrupted` on SIGINT/SIGTERM after undoing everything it started.
    """
    t0 = time.monotonic()
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}")
    eng: EngineName = engine
    base = ProbeResult(engine=eng, ran=False, expected=expected)
    undo = Undo()
    r: Run | None = None
    try:
        if addresses is None:
            addresses = source_addresses(source)
        src = choose_source(source, addresses)
        base = ProbeResult(engine=eng, ran=False, source=src, expected=expected)
        if image is not None and engine == "rootlesskit":
            raise CouldNotRun(
                "--image does not apply to rootlesskit (the listener runs in its namespace)"
            )
        guard = Guard()
        ephemeral = host_system.ephemeral_ports(paths)
        unprivileged = host_files.read_int(paths.at(UNPRIVILEGED_PORT_START))
        chosen = port or pick_port(ephemeral, unprivileged)
        r = Run(src, chosen, t0 + timeout, undo, guard, hint=in_range_hint(chosen, ephemeral))
        with guard.installed():
            try:
                if engine == "rootlesskit":
                    observed = _probe_rootlesskit(r, rootlesskit, paths)
                else:
                    cli = host.which(paths, engine)
                    if cli is None:
                        raise CouldNotRun(f"{engine} is not installed")
                    observed = _probe_container(cli, r, image, host.cli_env(paths, engine))
            finally:
                undo.run()
    except CouldNotRun as err:
        return _finish(base, t0, r, undo, error=str(err))
    return _finish(
        ProbeResult(
            engine=eng,
            ran=True,
            source=base.source,
            observed=observed,
            preserved=kb.probe_kept(observed, base.source),
            expected=expected,
        ),
        t0,
        r,
        undo,
    )


def _finish(res: ProbeResult, t0: float, r: Run | None, undo: Undo, error: str = "") -> ProbeResult:
    used = "; ".join(r.used) if r else ""
    if undo.errors:
        error = "; ".join([*([error] if error else []), "cleanup: " + "; ".join(undo.errors)])
    return replace(
        res,
        elapsed_ms=(time.monotonic() - t0) * 1000,
        used=used,
        error=("could not run: " + error) if error and not res.ran else error,
    )


def engines_in(facts: HostFacts) -> list[str]:
    """The rootless engines worth probing on this host, from gathered facts."""
    found: list[str] = []
    if facts.podman is not None and facts.podman.cli and facts.podman.rootless is not False:
        found.append("podman")
    d = facts.docker
    if d is not None and d.cli and d.reachable and d.rootless:
        found.append("docker")
    if facts.rootlesskits:
        found.append("rootlesskit")
    return found


def probe_all(
    facts: HostFacts,
    report: Report | None = None,
    *,
    paths: HostPaths | None = None,
    image: str | None = None,
    source: str | None = None,
    port: int | None = None,
    timeout: float = 20,
    engines: list[str] | None = None,
) -> list[ProbeResult]:
    """One probe per engine found (one per standalone RootlessKit), for ``check --probe``."""
    if paths is None:
        paths = host.default_paths()
    results: list[ProbeResult] = []
    for engine in engines if engines is not None else engines_in(facts):
        if engine == "rootlesskit":
            kits: list[RootlessKitFacts | None] = list(facts.rootlesskits) or [None]
            for i, kit in enumerate(kits):
                exp = expected_from(report, engine, i)
                results.append(
                    probe(engine, image=None, port=port, source=source, paths=paths,
                          expected=exp, timeout=timeout, rootlesskit=kit)
                )  # fmt: skip
        else:
            exp = expected_from(report, engine)
            results.append(
                probe(engine, image=image, port=port, source=source, paths=paths,
                      expected=exp, timeout=timeout)
            )  # fmt: skip
    return results


# --------------------------------------------------------------------------------------------
# the `probe` command's one core call


def run(
    engine: str | None,
    *,
    image: str | None = None,
    port: int | None = None,
    source: str | None = None,
) -> tuple[list[ProbeResult], str]:
    """Probe ``engine`` (docker, podman, rootlesskit; None: every rootless engine found) and
    compare with ``check``: the results and a note ("" or why check's verdict is missing).

    With docker/podman the probe starts at once and check's expected verdict is read meanwhile in
    a thread (``host.gather`` of that engine alone: ``podman info`` costs about as much as the
    probe itself), then folded in. rootlesskit first finds the running RootlessKits (no engine
    CLI, a few ms): the probe runs once per instance. Raises :class:`ProbeInterrupted`."""
    paths = host.default_paths()
    if engine in ("docker", "podman"):
        meanwhile = _Detect(paths, [engine])
        result = probe(engine, image=image, port=port, source=source, paths=paths)
        _facts, report, note = meanwhile.result()
        return [replace(result, expected=expected_from(report, engine))], note
    facts, report, note = _detect(paths, [engine] if engine else None)
    engines = [engine] if engine else engines_in(facts)
    if not engines:
        return [], note
    results = probe_all(
        facts, report, paths=paths, image=image, source=source, engines=engines, port=port
    )
    return results, note


def _detect(paths: HostPaths, engines: list[str] | None) -> tuple[HostFacts, Report | None, str]:
    """Facts (of ``engines``, default all present) and check's report (the expected verdicts)."""
    try:
        facts = host.gather(paths, interfaces=False, engines=engines)
    except DoctorError as err:
        return HostFacts(), None, f"could not read the host ({err}); probing without check"
    from .checks import diagnose

    return facts, diagnose(facts), ""


class _Detect:
    """:func:`_detect` in a daemon thread, while the probe runs in the main thread (which must
    keep the signals: the probe turns SIGINT/SIGTERM into a clean-up)."""

    def __init__(self, paths: HostPaths, engines: list[str]) -> None:
        self._out: tuple[HostFacts, Report | None, str] | None = None
        self._err: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(paths, engines), name="rd-detect", daemon=True
        )
        self._thread.start()

    def _run(self, paths: HostPaths, engines: list[str]) -> None:
        try:
            self._out = _detect(paths, engines)
        except BaseException as err:  # handed to the main thread by result()
            self._err = err

    def result(self) -> tuple[HostFacts, Report | None, str]:
        self._thread.join()
        if self._err is not None:
            raise self._err
        assert self._out is not None
        return self._out
