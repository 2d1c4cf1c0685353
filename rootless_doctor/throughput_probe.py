"""``probe --throughput``: Gbit/s and the client address through each published-port path here.

For every path the host offers without changing the user's setup (:func:`throughput.podman_paths`:
Podman's default and the ``--network`` choices per container; :func:`throughput.docker_path`:
rootless Docker's daemon as it runs), one throwaway container runs :data:`SINK`, published on a
free port, started by the probe's own machinery (:func:`probe.start_container`: no registry
without ``--image``, removal registered before the start). Then, from the probe's client address
(a non-loopback address of this host, or ``--source``; never loopback, which pasta splices past
its user-mode stack):

1. connect (retried while the published port accepts before the sink listens) and read the
   sink's greeting: the peer address it saw (kept or lost, as the probe says) and its MTU;
2. send zeros for ``seconds`` (a bounded Python sender, no iperf3 on the user's host), then
   half-close;
3. read the sink's count: the bytes that ARRIVED and its time from first byte to end of stream,
   so the figure is what got through, not what the kernel buffered.

Bounds: a path's container start and first answer within START_BOUND, its count within
DRAIN_BOUND after sending stops, the whole run within TOTAL_BOUND (a path that would start later
is "not started"). Every path ends with a reason when it fails (the container did not start,
refused, timed out). Everything started (container, throwaway network, rootfs, image) is removed
in ``finally`` by name, path by path, also on SIGINT/SIGTERM (:class:`probe.ProbeInterrupted`).

What is pure (paths, results, decision, JSON) is in rootless_doctor/throughput.py.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import select
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from . import host, probe
from . import knowledge as kb
from . import throughput as tp
from .host import files as host_files
from .host import system as host_system
from .model import HostFacts, HostPaths, RootlessKitFacts

# The sink: binds 0.0.0.0:argv[1] (0: any port), prints the port (RootlessKit's readiness, as
# the probe's listener), then per connection greets with "PEER MTU" (MTU: the largest
# of the container's interfaces), counts what arrives until the client half-closes (or argv[2]
# seconds pass) and answers "BYTES SECONDS" (first byte to end of stream). MSG_TRUNC: the kernel
# counts and drops what arrived without copying it out (tcp(7)); a copy would halve what a Python
# sink takes in on a busy host, and the sink's ceiling must stay above the path's.
SINK = """\
import os, socket, sys, time
def mtu():
    best = 0
    try:
        for n in os.listdir("/sys/class/net"):
            if n != "lo":
                with open("/sys/class/net/" + n + "/mtu") as f:
                    best = max(best, int(f.read()))
    except (OSError, ValueError):
        pass
    return best
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
print(s.getsockname()[1], flush=True)
limit = float(sys.argv[2])
buf = bytearray(1 << 20)
flags = socket.MSG_TRUNC
while True:
    c, peer = s.accept()
    try:
        c.settimeout(limit)
        c.sendall(("%s %d\\n" % (peer[0], mtu())).encode())
        n, t0, end = 0, None, time.monotonic() + limit
        while time.monotonic() < end:
            try:
                k = c.recv_into(buf, len(buf), flags)
            except OSError:
                if not flags:
                    raise
                flags = 0
                continue
            if not k:
                break
            if t0 is None:
                t0 = time.monotonic()
            n += k
        dt = time.monotonic() - t0 if t0 is not None else 0.0
        c.sendall(("%d %.6f\\n" % (n, dt)).encode())
    except OSError:
        pass
    c.close()
"""

CHUNK = 4 << 20  # zeros per sendfile() call (a memfd); per send() call without one


def _sink(image: str | None, port: int, limit: float) -> probe.Listener:
    """The sink as the probe's listener is run: the host's /usr python3 in a throwaway rootfs,
    or with ``--image`` the image's own python3."""
    args = ("-c", SINK, str(port), f"{limit:g}")
    if image is None:
        py = host.usr_python()
        if py is None:
            raise probe.CouldNotRun("no python3 under /usr on this host for the sink: --image")
        return probe.Listener(
            probe.rootfs_mounts(), (py, "-I", "-S", *args), "throwaway rootfs + host /usr"
        )
    return probe.Listener((), ("python3", *args), f"image {image} (its own python3)")


def _readline(s: socket.socket, deadline: float) -> bytes:
    """One line (at most 256 bytes) from ``s`` before ``deadline``; b"" on end of stream."""
    data = b""
    while b"\n" not in data and len(data) < 256:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete line in time")
        s.settimeout(left)
        chunk = s.recv(256 - len(data))
        if not chunk:
            return b""
        data += chunk
    return data.split(b"\n", 1)[0]


def _connect(r: probe.Run, alive: Callable[[], str | None]) -> tuple[socket.socket, str, int]:
    """A connection from ``r.source`` to the published port that the sink greeted: (socket,
    the address the sink saw, its MTU). Retries as probe.py's _ask does: a published port accepts
    and closes before the sink listens; refusals for REFUSED_GRACE s end it."""
    fam = socket.AF_INET6 if ":" in r.source else socket.AF_INET
    where = probe.hostport(r.source, r.port)
    last = "no attempt"
    refused_since: float | None = None
    next_alive = time.monotonic() + 0.5
    while True:
        now = time.monotonic()
        if now >= r.deadline:
            raise probe.CouldNotRun(f"timed out: no greeting from {where} ({last}){r.hint}")
        if refused_since is not None and now - refused_since >= probe.REFUSED_GRACE:
            gone = alive()
            if gone:
                raise probe.CouldNotRun(f"the sink stopped before answering: {gone}")
            raise probe.CouldNotRun(
                f"refused: {where} refused every connection for {probe.REFUSED_GRACE:g} s while "
                f"the container ran{r.hint}"
            )
        s = socket.socket(fam, socket.SOCK_STREAM)
        greeted = False
        try:
            s.settimeout(max(0.05, min(2.0, r.deadline - now)))
            s.bind((r.source, 0))
            s.connect((r.source, r.port))
            line = _readline(s, min(r.deadline, time.monotonic() + 2.0)).decode(errors="replace")
            words = line.split()
            try:
                observed, mtu = str(ipaddress.ip_address(words[0])), int(words[1])
                greeted = True
                return s, observed, mtu
            except (IndexError, ValueError):
                last = f"unexpected greeting {line[:60]!r}" if line else "empty reply: not up yet"
            refused_since = None
        except ConnectionRefusedError as err:
            last = f"{type(err).__name__}: {err}"
            refused_since = now if refused_since is None else refused_since
        except OSError as err:  # reset, timeout: the port is up, the sink not yet
            last = f"{type(err).__name__}: {err}"
            refused_since = None
        finally:
            if not greeted:
                s.close()
        if time.monotonic() >= next_alive:
            gone = alive()
            if gone:
                raise probe.CouldNotRun(f"the sink stopped before answering: {gone}")
            next_alive = time.monotonic() + 0.5
        time.sleep(0.003)


def _zeros() -> int | None:
    """A memfd of CHUNK zero bytes for os.sendfile (no copy from user space per send), or None."""
    try:
        fd = os.memfd_create("rd-probe-zeros", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        return None
    try:
        os.ftruncate(fd, CHUNK)
    except OSError:  # no room for it (a memory limit): send() from a buffer instead
        os.close(fd)
        return None
    return fd


def _send_for(s: socket.socket, seconds: float) -> int:
    """Zeros to ``s`` for ``seconds``; the bytes the kernel took. Waits for room at most 0.5 s at a
    time, so a stalled path shows as few bytes, never as a hang."""
    end = time.monotonic() + seconds
    sent = 0
    zeros = _zeros()
    chunk = memoryview(bytes(CHUNK if zeros is None else 0))
    s.setblocking(False)
    room = select.poll()
    room.register(s, select.POLLOUT)
    try:
        while (left := end - time.monotonic()) > 0:
            if not room.poll(min(500, left * 1000)):
                continue
            try:
                if zeros is not None:
                    sent += os.sendfile(s.fileno(), zeros, 0, CHUNK)
                else:
                    sent += s.send(chunk)
            except BlockingIOError:
                continue
            except OSError as err:
                why = f"the connection broke after {sent} bytes sent: {err}"
                raise probe.CouldNotRun(why) from None
    finally:
        if zeros is not None:
            os.close(zeros)
    return sent


def _transfer(s: socket.socket, seconds: float) -> tuple[int, int, float]:
    """Send zeros for ``seconds``, half-close, read the sink's count: (sent, received, the sink's
    seconds)."""
    sent = _send_for(s, seconds)
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError as err:
        raise probe.CouldNotRun(f"the connection broke after {sent} bytes sent: {err}") from None
    try:
        line = _readline(s, time.monotonic() + tp.DRAIN_BOUND).decode(errors="replace")
    except TimeoutError:
        raise probe.CouldNotRun(
            f"timed out: the sink's count did not come within {tp.DRAIN_BOUND:g} s after "
            f"sending stopped ({sent} bytes sent)"
        ) from None
    except OSError as err:
        raise probe.CouldNotRun(f"the connection broke before the sink's count: {err}") from None
    words = line.split()
    try:
        received, secs = int(words[0]), float(words[1])
    except (IndexError, ValueError):
        raise probe.CouldNotRun(f"the sink answered {line[:60]!r}, not its count") from None
    if received <= 0:
        raise probe.CouldNotRun(f"nothing arrived at the sink ({sent} bytes sent)")
    return sent, received, secs


class _Host:
    """What every path of one run shares: where the client is and how ports are picked."""

    def __init__(
        self, paths: HostPaths, source: str, port: int | None, kits: Iterable[RootlessKitFacts]
    ) -> None:
        self.paths = paths
        self.kits = tuple(kits)
        self.source = source
        self.port = port
        self.ephemeral = host_system.ephemeral_ports(paths)
        self.unprivileged = host_files.read_int(paths.at(probe.UNPRIVILEGED_PORT_START))


def _measure(
    spec: tp.PathSpec,
    h: _Host,
    image: str | None,
    seconds: float,
    deadline: float,
    guard: probe.Guard,
) -> tp.PathResult:
    t0 = time.monotonic()
    undo = probe.Undo()
    stage = "check"
    try:
        try:
            if h.port is not None and not probe.port_is_free(h.port, time_wait_ok=True):
                # Checked first: Podman 4.3's rootless-netns slirp4netns outlives a bridge
                # container that failed to publish (seen here), and no run is needed to say it.
                raise probe.CouldNotRun(
                    f"not started: port {h.port} is in use on this host; pass another --port"
                )
            stage = "start"
            port = h.port or probe.pick_port(h.ephemeral, h.unprivileged)
            r = probe.Run(
                h.source,
                port,
                min(deadline, t0 + tp.START_BOUND),
                undo,
                guard,
                hint=probe.in_range_hint(port, h.ephemeral),
            )
            limit = seconds + tp.DRAIN_BOUND + 5
            if spec.engine == "rootlesskit":
                kit = next((k for k in h.kits if k.pid == spec.instance), None)
                if kit is None:  # never let start_in_rootlesskit pick another instance
                    raise probe.CouldNotRun(f"rootlesskit pid {spec.instance} is not running")
                alive = probe.start_in_rootlesskit(r, kit, h.paths, SINK, f"{limit:g}")
            else:
                alive = _start_container(spec, r, h.paths, image, limit)
            stage = "connect"
            s, observed, mtu = _connect(r, alive)
            with s:
                stage = "transfer"
                sent, received, secs = _transfer(s, seconds)
        finally:
            undo.run()
    except probe.CouldNotRun as err:
        why = str(err)
        if stage == "start":
            what = "the sink" if spec.engine == "rootlesskit" else "container"
            why = f"{what} did not start: {why}"
        return _with_cleanup(
            tp.PathResult(spec=spec, outcome="failed", source=h.source, error=why), t0, undo
        )
    res = tp.PathResult(
        spec=spec,
        outcome="measured",
        source=h.source,
        observed=observed,
        kept=kb.probe_kept(observed, h.source),
        received=received,
        sent=sent,
        seconds=secs,
        mtu=mtu or None,
    )
    return _with_cleanup(res, t0, undo)


def _start_container(
    spec: tp.PathSpec, r: probe.Run, paths: HostPaths, image: str | None, limit: float
) -> Callable[[], str | None]:
    cli = host.which(paths, spec.engine)
    if cli is None:
        raise probe.CouldNotRun(f"{spec.engine} is not installed")
    env = host.cli_env(paths, spec.engine)
    extra: tuple[str, ...] = ()
    if spec.network == tp.BRIDGE_NETWORK:
        extra = ("--network", _network(cli, r, env))
    elif spec.network:
        extra = ("--network", spec.network)
    return probe.start_container(cli, r, _sink(image, r.port, limit), image, env, extra=extra)


def _with_cleanup(res: tp.PathResult, t0: float, undo: probe.Undo) -> tp.PathResult:
    from dataclasses import replace

    error = res.error
    if undo.errors:
        error = "; ".join([*([error] if error else []), "cleanup: " + "; ".join(undo.errors)])
    return replace(res, error=error, elapsed_ms=(time.monotonic() - t0) * 1000)


def _network(cli: str, r: probe.Run, env: Mapping[str, str]) -> str:
    """A throwaway user-defined network (removal registered first), as compose makes one but
    without its DNS (which plays no part in forwarding a published port)."""
    name = f"{tp.BRIDGE_NETWORK}-{os.getpid()}-{secrets.token_hex(3)}"
    rm = [cli, "network", "rm", "-f", name]
    r.undo.push(f"remove network {name}", lambda: probe.run_bounded(rm, time.monotonic() + 30, env))
    with r.guard.critical():  # no DNS: aardvark-dns would be one more process to outlive it
        out = probe.run_bounded([cli, "network", "create", "--disable-dns", name], r.deadline, env)
    if not out.ok:
        raise probe.CouldNotRun(probe.failure_line(out, f"{Path(cli).name} network create"))
    return name


def specs(facts: HostFacts, engines: Iterable[str]) -> list[tp.PathSpec]:
    """The paths of ``engines`` (podman, docker) this host offers, in the order they run."""
    out: list[tp.PathSpec] = []
    for engine in engines:
        if engine == "podman" and facts.podman is not None:
            out += tp.podman_paths(facts.podman, facts.tools)
        elif engine == "docker" and facts.docker is not None:
            out.append(tp.docker_path(facts.docker.running))
        elif engine == "rootlesskit":
            out += [tp.rootlesskit_path(k) for k in facts.rootlesskits]
    return out


def run(
    engines: Iterable[str],
    *,
    image: str | None = None,
    port: int | None = None,
    source: str | None = None,
    seconds: float = tp.SECONDS,
    paths: HostPaths | None = None,
    facts: HostFacts | None = None,
    total: float = tp.TOTAL_BOUND,
) -> list[tp.PathResult]:
    """Measure every path of ``engines`` (podman, docker, rootlesskit: each standalone one) one
    after another.

    ``facts`` of those engines are read when not given. Raises :class:`probe.ProbeInterrupted` on
    SIGINT/SIGTERM after removing what the current path started."""
    t0 = time.monotonic()
    seconds = min(max(seconds, 0.1), tp.MAX_SECONDS)
    wanted = [e for e in dict.fromkeys(engines) if e in ("podman", "docker", "rootlesskit")]
    if not wanted:
        return []
    if paths is None:
        paths = host.default_paths()
    if facts is None:
        facts = host.gather(paths, interfaces=False, engines=wanted)
    todo = specs(facts, wanted)
    try:
        src = probe.choose_source(source, probe.source_addresses(source))
    except probe.CouldNotRun as err:
        return [tp.PathResult(spec=s, outcome="failed", error=str(err)) for s in todo]
    h = _Host(paths, src, port, facts.rootlesskits)
    deadline = t0 + total
    guard = probe.Guard()
    out: list[tp.PathResult] = []
    with guard.installed():
        for spec in todo:
            if spec.unavailable:
                out.append(tp.PathResult(spec=spec, outcome="unavailable", error=spec.unavailable))
                continue
            if deadline - time.monotonic() < seconds + tp.DRAIN_BOUND + 2:
                out.append(
                    tp.PathResult(
                        spec=spec,
                        outcome="not started",
                        source=src,
                        error=f"not started: the run's time bound ({total:g} s) was reached",
                    )
                )
                continue
            out.append(_measure(spec, h, image, seconds, deadline, guard))
    return out
