"""Throughput of each published-port path of the rootless engines, measured with iperf3.

    sudo python3 bench/dataplane.py [--places host,trixie,sid] [--only SUBSTR,...] [--extra]
                                    [--clients bound] [--seconds 4] [--repeat 2]
                                    [--out bench/results] [--list] [--own-veth]

Run as root. On the host (Debian 12) everything runs as the stack user of tests/stack.py
(RDSTACK_USER); in the Debian trixie/sid roots of `.ci/roots.sh` (used when /srv/stacks/READY
exists) as the user of the same name inside the root (added with `roots.sh adduser` if missing).
For each path an `iperf3 -s` runs behind the engine's own published-port path (a container from a
busybox-static rootfs with the place's /usr mounted, or RootlessKit's child; no registry), and the
host's iperf3 client connects to the published port. Clients (--clients):

  bound     from the host, socket bound to the test veth address 10.200.0.1 (the default: a
            non-loopback source, as a real client, and an address the test created; with
            --own-veth the bench's own veth, 10.201.0.1, so a long run does not queue behind
            the tests' machine-wide lock on 10.200.0.x)
  netns     from inside the test netns (10.200.0.2), through the veth
  loopback  from 127.0.0.1 (what upstream benchmarks do; pasta splices loopback connections)

The paths: the options a user picks between, as their tools set them up, plus Docker with both
MTUs raised (DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=65520 and daemon.json "mtu": 65520, the bridge);
--extra adds the diagnostic variants (one MTU at a time, userland-proxy off, RootlessKit alone).
--list prints them. Rounds are interleaved: each round starts every path anew, one after another.
Each cell is the median of --repeat runs of --seconds (receiver side), and the address the server
saw (from its own "Accepted connection from" line): whether the path keeps the client IP.
The MTU of RootlessKit's / the container's interfaces is read after start (nsenter as root).
Writes dataplane-<date>.json and .md (versions, date, host) to --out, and prints the table.
Timings are noisy on a shared 2-core machine: run --repeat 3+ for figures you quote.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import stack  # noqa: E402  (tests/stack.py: the real-stack harness)

ROOTS_SH = REPO / ".ci" / "roots.sh"
STACKS = Path(os.environ.get("RD_STACKS", "/srv/stacks"))
IMAGE = "local/rdbench"
NETWORK = "rdbench"  # the user-defined Podman network of the rootlessport path
SERVER_PORT = 5201
PORT_BASE = 22000  # below the ephemeral range: pasta's automatic forwarding skips ephemeral ports
# --own-veth: a namespace and veth of this bench's own (names and addresses nobody else uses),
# so a long run neither waits for nor blocks the tests' machine-wide rdclient lock.
OWN = stack.Netns("rdbench", host_addr="10.201.0.1", client_addr="10.201.0.2")
OWN_VETH = ("rdbench0", "rdbench1")


@contextmanager
def own_netns() -> Iterator[stack.Netns]:
    def ip(*a: str, check: bool = True) -> None:
        subprocess.run(["ip", *a], capture_output=True, timeout=10, check=check)

    def delete() -> None:
        ip("netns", "del", OWN.name, check=False)
        ip("link", "del", OWN_VETH[0], check=False)

    delete()
    try:
        ip("netns", "add", OWN.name)
        ip(
            "link",
            "add",
            OWN_VETH[0],
            "type",
            "veth",
            "peer",
            "name",
            OWN_VETH[1],
            "netns",
            OWN.name,
        )
        ip("addr", "add", f"{OWN.host_addr}/24", "dev", OWN_VETH[0])
        ip("link", "set", OWN_VETH[0], "up")
        ip("-n", OWN.name, "addr", "add", f"{OWN.client_addr}/24", "dev", OWN_VETH[1])
        ip("-n", OWN.name, "link", "set", OWN_VETH[1], "up")
        yield OWN
    finally:
        delete()


# ------------------------------------------------------------------------------- where things run


@dataclass
class Place:
    """The host, or a Debian root of .ci/roots.sh; ``fs`` is its / seen from the host."""

    name: str
    root: str | None
    fs: Path
    user: str
    uid: int
    gid: int
    home: str

    def argv(self, cmd: Sequence[str], env: dict[str, str] | None = None) -> list[str]:
        env = env or {}
        if self.root is None:
            u = stack.user()
            return stack._as_user_argv(
                u, cmd, stack.user_env(u, DOCKER_HOST=self.docker_host, **env)
            )
        env = {"DOCKER_HOST": self.docker_host, **env}  # roots.sh user sets none
        return [
            "bash", str(ROOTS_SH), "user", self.root, self.user,
            *(f"{k}={v}" for k, v in env.items()), *cmd,
        ]  # fmt: skip

    @property
    def docker_host(self) -> str:
        return f"unix:///run/user/{self.uid}/docker.sock"

    def run(
        self, cmd: Sequence[str], env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(cmd, env), capture_output=True, text=True, timeout=timeout, check=False
        )

    def out(self, cmd: Sequence[str], what: str = "", timeout: float = 120) -> str:
        cp = self.run(cmd, timeout=timeout)
        if cp.returncode != 0:
            raise stack.StackError(
                f"{self.name}: {what or ' '.join(cmd[:3])} failed: {cp.stderr.strip()[-800:]}"
            )
        return cp.stdout

    def spawn(self, cmd: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "wb") as f:
            return subprocess.Popen(
                self.argv(cmd, env), stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def path(self, inside: str) -> Path:
        return self.fs / inside.lstrip("/")


def host_place() -> Place:
    u = stack.user()
    return Place("bookworm", None, Path("/"), u.name, u.uid, u.gid, u.home)


def root_place(root: str, user: str) -> Place:
    fs = STACKS / root
    if not any(line.startswith(f"{user}:") for line in (fs / "etc/passwd").read_text().split("\n")):
        subprocess.run(["bash", str(ROOTS_SH), "adduser", root, user], check=True)
    for line in (fs / "etc/passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == user:
            return Place(root, root, fs, user, int(f[2]), int(f[3]), f[5])
    raise stack.StackError(f"no user {user} in {fs}")


def versions(p: Place) -> dict[str, str]:
    cmds = {
        "podman": ["podman", "version", "--format", "{{.Client.Version}}"],
        "docker": ["dockerd", "--version"],
        "rootlesskit": ["rootlesskit", "--version"],
        "slirp4netns": ["slirp4netns", "--version"],
        "pasta": ["pasta", "--version"],
        "iperf3": ["iperf3", "--version"],
    }
    out = {}
    for k, argv in cmds.items():
        cp = p.run(argv, timeout=30)
        text = (cp.stdout or cp.stderr).strip().splitlines()
        out[k] = text[0].strip() if cp.returncode == 0 and text else "(not available)"
    # Debian's 2023 build says "unknown version"; trixie's prints nothing here (exit 0).
    if out["pasta"].startswith(("pasta unknown version", "(not available)")):
        q = subprocess.run(
            ["chroot", str(p.fs), "dpkg-query", "-W", "-f", "${Version}", "passt"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if q.returncode == 0 and q.stdout.strip():
            out["pasta"] = f"passt {q.stdout.strip()} (Debian package)"
    os_release = p.path("/etc/os-release").read_text()
    m = re.search(r'^PRETTY_NAME="?([^"\n]*)', os_release, re.M)
    out["os"] = m.group(1) if m else p.name
    return out


# ------------------------------------------------------------------------------------- the paths


@dataclass
class Server:
    """An iperf3 server behind a published host port; ``seen()`` reads who connected."""

    host_port: int
    seen: Callable[[], list[str]]
    mtu: dict[str, int] = field(default_factory=dict)
    note: str = ""


ACCEPTED = re.compile(r"Accepted connection from ([0-9a-fA-F.:]+), port")


def _accepted(text: str) -> list[str]:
    return ACCEPTED.findall(text)


def _mtus(pid: int) -> dict[str, int]:
    """Interface name -> MTU in the network namespace of ``pid`` (we are root)."""
    cp = subprocess.run(
        ["nsenter", "-t", str(pid), "-n", "ip", "-o", "link", "show"],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    out = {}
    for m in re.finditer(r"^\d+: ([^:@]+)[^:]*:.* mtu (\d+)", cp.stdout, re.M):
        if m.group(1) != "lo" and not m.group(1).startswith("veth"):
            out[m.group(1)] = int(m.group(2))
    return out


class Ports:
    def __init__(self) -> None:
        self.next = PORT_BASE

    def take(self) -> int:
        import socket

        while True:
            self.next += 1
            with socket.socket() as s:
                try:
                    s.bind(("0.0.0.0", self.next))
                except OSError:
                    continue
            return self.next


def rootfs(p: Place) -> str:
    """A busybox-static rootfs dir in the user's home (inside the place); the /usr is mounted."""
    inside = f"{p.home}/.cache/rdbench/rootfs"
    d = p.path(inside)
    if (d / "bin/busybox").exists():
        return inside
    tmp = d.with_name("rootfs.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("bin", "usr", "etc", "proc", "sys", "dev", "tmp", "run", "root"):
        (tmp / sub).mkdir(parents=True)
    shutil.copy2(p.path("/bin/busybox"), tmp / "bin/busybox")
    (tmp / "bin/sh").symlink_to("busybox")
    for link in ("lib", "lib64"):
        (tmp / link).symlink_to(f"usr/{link}")
    (tmp / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (tmp / "etc/group").write_text("root:x:0:\n")
    for parent in (d.parent.parent, d.parent):
        parent.mkdir(exist_ok=True)
        os.chown(parent, p.uid, p.gid)
    subprocess.run(["chown", "-R", f"{p.uid}:{p.gid}", str(tmp)], check=True)
    shutil.rmtree(d, ignore_errors=True)
    tmp.rename(d)
    return inside


IPERF_SERVER = ["/usr/bin/iperf3", "-s", "-p", str(SERVER_PORT), "--forceflush"]


@contextmanager
def host_direct(p: Place, ports: Ports, tmp: Path) -> Iterator[Server]:
    """iperf3 -s in the host namespace: the ceiling of this machine."""
    port = ports.take()
    log = tmp / "iperf3.log"
    proc = p.spawn(["iperf3", "-s", "-p", str(port), "--forceflush"], {}, log)
    try:
        time.sleep(0.3)
        yield Server(port, lambda: _accepted(log.read_text(errors="replace")))
    finally:
        stack._stop(proc)


@contextmanager
def podman_path(p: Place, ports: Ports, tmp: Path, network: str | None) -> Iterator[Server]:
    """``podman run -p`` with ``--network NETWORK`` (None: the user's default)."""
    port = ports.take()
    name = f"rdbench-{port}"
    net_args = ["--network", network] if network else []
    with ExitStack() as cleanup:
        if network == NETWORK:
            p.run(["podman", "network", "rm", "-f", NETWORK])
            p.out(["podman", "network", "create", NETWORK], "podman network create")
            cleanup.callback(p.run, ["podman", "network", "rm", "-f", NETWORK])
        argv = [
            "podman", "run", "-d", "--name", name, *net_args, "-p", f"{port}:{SERVER_PORT}",
            "-v", "/usr:/usr:ro", "--rootfs", rootfs(p), *IPERF_SERVER,
        ]  # fmt: skip
        cleanup.callback(p.run, ["podman", "rm", "-f", "-t0", name])
        p.out(argv, "podman run")
        pid = int(p.out(["podman", "inspect", "--format", "{{.State.Pid}}", name]).strip())
        yield Server(port, lambda: _accepted(p.out(["podman", "logs", name])), _mtus(pid))


@contextmanager
def rootlesskit_path(
    p: Place, ports: Ports, tmp: Path, net: str, driver: str, mtu: int
) -> Iterator[Server]:
    """RootlessKit alone, iperf3 -s as its child, the port added through its API (not implicit)."""
    port = ports.take()
    state = f"/tmp/rdbench-rk-{port}"
    log = tmp / "rootlesskit.log"
    argv = [
        "rootlesskit", f"--net={net}", f"--port-driver={driver}", f"--mtu={mtu}",
        "--disable-host-loopback", f"--state-dir={state}",
        # implicit: pasta forwards the ports bound in the child to the same host port.
        "iperf3", "-s", "-p", str(port if driver == "implicit" else SERVER_PORT), "--forceflush",
    ]  # fmt: skip
    proc = p.spawn(argv, {}, log)
    try:
        api = p.path(f"{state}/api.sock")
        deadline = time.monotonic() + 15
        while not api.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise stack.StackError(f"rootlesskit did not start: {stack._tail(log)}")
            time.sleep(0.05)
        if driver != "implicit":
            spec = f"0.0.0.0:{port}:{SERVER_PORT}/tcp"
            p.out(["rootlessctl", "--socket", state + "/api.sock", "add-ports", spec], "add-ports")
        child = int(p.path(f"{state}/child_pid").read_text().strip())
        yield Server(port, lambda: _accepted(log.read_text(errors="replace")), _mtus(child))
    finally:
        stack._stop(proc)
        shutil.rmtree(p.path(state), ignore_errors=True)


@contextmanager
def docker_path(
    p: Place,
    ports: Ports,
    tmp: Path,
    net: str,
    driver: str,
    mtu: int | None,
    daemon: dict[str, object],
) -> Iterator[Server]:
    """Rootless dockerd (dockerd-rootless.sh) with these RootlessKit settings and ``daemon``
    as its daemon.json (the user's own is put back after), ``docker run -p``."""
    port = ports.take()
    state = f"/tmp/rdbench-dockerd-{port}"
    env = {
        "DOCKERD_ROOTLESS_ROOTLESSKIT_NET": net,
        "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER": driver,
        "DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS": f"--state-dir={state}",
    }
    if mtu is not None:
        env["DOCKERD_ROOTLESS_ROOTLESSKIT_MTU"] = str(mtu)
    run_dir = p.path(f"/run/user/{p.uid}")
    pidfile = run_dir / "docker.pid"
    pid_text = pidfile.read_text().strip() if pidfile.exists() else ""
    if pid_text.isdigit() and stack._alive(int(pid_text)):
        raise stack.StackError(f"{p.name}: a rootless dockerd of {p.user} already runs")
    for stale in ("docker.pid", "docker.sock"):  # left by a killed run
        (run_dir / stale).unlink(missing_ok=True)
    conf = p.path(f"{p.home}/.config/docker/daemon.json")
    with ExitStack() as cleanup:
        before = conf.read_bytes() if conf.exists() else None
        if daemon or before is not None:
            conf.parent.mkdir(parents=True, exist_ok=True)
            os.chown(conf.parent, p.uid, p.gid)
            conf.write_text(json.dumps(daemon) + "\n")
            cleanup.callback(
                lambda: conf.write_bytes(before) if before is not None else conf.unlink()
            )
        log = tmp / "dockerd.log"
        proc = p.spawn(["dockerd-rootless.sh"], env, log)
        cleanup.callback(shutil.rmtree, p.path(state), True)
        cleanup.callback(stack._stop, proc, 30)
        deadline = time.monotonic() + 90
        while p.run(["docker", "version"], timeout=20).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise stack.StackError(f"{p.name}: dockerd did not start: {stack._tail(log)}")
            time.sleep(0.3)
        if p.run(["docker", "image", "inspect", IMAGE]).returncode != 0:
            p.out(
                ["sh", "-c", f'tar -C "$1" -cf - . | docker import - {IMAGE}', "sh", rootfs(p)],
                "docker import",
            )
        name = f"rdbench-{port}"
        cleanup.callback(p.run, ["docker", "rm", "-f", name])
        p.out(
            ["docker", "run", "-d", "--name", name, "-p", f"{port}:{SERVER_PORT}",
             "-v", "/usr:/usr:ro", IMAGE, *IPERF_SERVER],
            "docker run",
        )  # fmt: skip
        child = int(p.path(f"{state}/child_pid").read_text().strip())
        cpid = int(p.out(["docker", "inspect", "--format", "{{.State.Pid}}", name]).strip())
        mtus = {f"rootlesskit {k}": v for k, v in _mtus(child).items()}
        mtus.update({f"container {k}": v for k, v in _mtus(cpid).items()})
        yield Server(port, lambda: _accepted(p.out(["docker", "logs", name])), mtus)


@dataclass(frozen=True)
class Path_:
    key: str
    engine: str
    label: str
    start: Callable[[Place, Ports, Path], object]


def paths_for(p: Place, extra: bool = False) -> list[Path_]:
    modern = p.root is not None

    def dk(
        net: str, driver: str, mtu: int | None = None, up: bool = True, bridge: int = 0
    ) -> Path_:
        label = f"dockerd {net} + {driver}" + (f", MTU {mtu}" if mtu else ", MTU default")
        label += "" if up else ", userland-proxy off"
        label += f", bridge MTU {bridge}" if bridge else ""
        key = f"docker:{net}+{driver}" + (f",mtu={mtu}" if mtu else "") + ("" if up else ",noproxy")
        key += f",bridge={bridge}" if bridge else ""
        daemon: dict[str, object] = {} if up else {"userland-proxy": False}
        if bridge:
            daemon["mtu"] = bridge  # the default bridge (docker0) and its containers' eth0

        def start(pl: Place, po: Ports, t: Path) -> object:
            return docker_path(pl, po, t, net, driver, mtu, daemon)

        return Path_(key, "docker", label, start)

    def pm(network: str | None, label: str) -> Path_:
        def start(pl: Place, po: Ports, t: Path) -> object:
            return podman_path(pl, po, t, network)

        return Path_(f"podman:{network or 'default'}", "podman", label, start)

    def rk(net: str, driver: str, mtu: int) -> Path_:
        def start(pl: Place, po: Ports, t: Path) -> object:
            return rootlesskit_path(pl, po, t, net, driver, mtu)

        return Path_(
            f"rootlesskit:{net}+{driver},mtu={mtu}",
            "rootlesskit",
            f"rootlesskit {net} + {driver}, MTU {mtu}",
            start,
        )

    slirp_handler = "slirp4netns:port_handler=slirp4netns"
    # The paths a user picks between (the fix's options), each as its tools set it up by default,
    # plus the MTU settings that change the ranking (see --extra for the diagnostic variants).
    out = [] if modern else [Path_("host", "-", "host, no namespace (ceiling)", host_direct)]
    out += [dk("slirp4netns", "builtin"), dk("slirp4netns", "slirp4netns")]
    out += [dk("slirp4netns", "slirp4netns", 65520, bridge=65520)]
    if modern:
        out += [dk("pasta", "implicit"), dk("pasta", "implicit", 65520, bridge=65520)]
        out += [pm(None, "podman default (pasta)")]
        out += [pm(NETWORK, "podman user-defined network (rootlessport)")]
    else:
        out += [pm(None, "podman default (slirp4netns + rootlessport)")]
    out += [pm(slirp_handler, "podman slirp4netns, port_handler=slirp4netns")]
    if extra:
        out += [dk("slirp4netns", "slirp4netns", 65520), dk("slirp4netns", "builtin", up=False)]
        out += [rk("slirp4netns", "builtin", 65520), rk("slirp4netns", "slirp4netns", 65520)]
        if modern:
            out += [dk("pasta", "implicit", 1500), dk("pasta", "implicit", 65520)]
            out += [dk("pasta", "implicit", up=False), rk("pasta", "implicit", 65520)]
            out += [dk("pasta", "implicit", 65520, up=False, bridge=65520)]
    return out


# ------------------------------------------------------------------------------------ the client


def iperf(client: str, netns: stack.Netns, port: int, seconds: int) -> float:
    """Gbit/s received by the server, retried while the published port is not serving yet."""
    dest = "127.0.0.1" if client == "loopback" else netns.host_addr
    argv = ["iperf3", "-c", dest, "-p", str(port), "-t", str(seconds), "-J"]
    argv += ["--connect-timeout", "3000"]
    if client == "bound":
        argv += ["-B", netns.host_addr]
    if client == "netns":
        argv = ["ip", "netns", "exec", netns.name, *argv]
    deadline = time.monotonic() + 20
    last = ""
    while time.monotonic() < deadline:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=False)
        try:
            res = json.loads(cp.stdout)
        except ValueError:
            res = {"error": cp.stderr.strip() or cp.stdout.strip()[:300]}
        if "error" not in res:
            return float(res["end"]["sum_received"]["bits_per_second"]) / 1e9
        last = str(res["error"])
        time.sleep(0.3)
    raise stack.StackError(f"iperf3 to port {port}: {last}")


def measure_once(
    p: Place,
    path: Path_,
    ports: Ports,
    clients: Sequence[str],
    seconds: int,
    row: dict[str, Any],
    ns: stack.Netns | None,
) -> None:
    """Start the path, one iperf3 run per client, stop it; add the results to ``row``."""
    tmp = Path(tempfile.mkdtemp(prefix="rdbench-"))
    os.chown(tmp, p.uid, p.gid)
    try:
        with path.start(p, ports, tmp) as server:  # type: ignore[attr-defined]
            row["mtu"] = server.mtu
            with ExitStack() as net:
                if ns is None:  # the tests' namespace, taken in turn with them
                    ns = net.enter_context(stack.client_netns())
                for client in clients:
                    before = len(server.seen())
                    gbit = iperf(client, ns, server.host_port, seconds)
                    row.setdefault("client_addr", {})[client] = _client_addr(client, ns)
                    cell = row.setdefault(client, {"runs": [], "seen": []})
                    cell["runs"].append(round(gbit, 2))
                    cell["seen"] = sorted({*cell["seen"], *server.seen()[before:]})
    except (stack.StackError, subprocess.SubprocessError, OSError, ValueError) as e:
        row.setdefault("errors", []).append(
            str(e).strip().splitlines()[-1][:300] if str(e).strip() else repr(e)
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _client_addr(client: str, ns: stack.Netns) -> str:
    return {"bound": ns.host_addr, "netns": ns.client_addr, "loopback": "127.0.0.1"}[client]


def summarize(row: dict[str, Any], clients: Sequence[str]) -> None:
    for client in clients:
        cell = row.get(client)
        if cell:
            cell["gbit_s"] = round(statistics.median(cell["runs"]), 2)
            addr = row.get("client_addr", {}).get(client)
            cell["kept"] = None if client == "loopback" else cell["seen"] == [addr]


def markdown(result: dict[str, object], clients: Sequence[str]) -> str:
    lines = [
        f"# Published-port throughput, measured {result['date']} on {result['host']}",
        "",
        f"`{result['command']}`; iperf3 {result['seconds']} s x {result['repeat']}, median of "
        'interleaved rounds, Gbit/s received; "kept": the server saw the client\'s own address; '
        f"load average {result['load']}.",
        "",
    ]
    for place, v in result["versions"].items():  # type: ignore[attr-defined]
        lines.append(f"- {place}: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    lines += ["", "| place | path | " + " | ".join(clients) + " | MTUs |", "|---|---|"]
    lines[-1] += "---|" * (len(clients) + 1)
    for row in result["rows"]:  # type: ignore[attr-defined]
        cells = []
        for c in clients:
            if c not in row:
                cells.append("failed")
                continue
            cell = row[c]
            if "gbit_s" not in cell:
                cells.append("failed")
                continue
            kept = {True: "kept", False: "lost", None: "n/a"}[cell["kept"]]
            cells.append(f"{cell['gbit_s']:.2f} ({kept}: {', '.join(cell['seen']) or '-'})")
        mtu = ", ".join(f"{k} {v}" for k, v in row.get("mtu", {}).items())
        if row.get("errors") and any("gbit_s" not in row.get(c, {}) for c in clients):
            mtu += f"; errors: {'; '.join(sorted(set(row['errors'])))}"
        lines.append(f"| {row['place']} | {row['path']} | " + " | ".join(cells) + f" | {mtu} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--places", default="host,trixie,sid")
    ap.add_argument("--only", default="", help="comma-separated substrings of path keys")
    ap.add_argument("--clients", default="bound")
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "bench" / "results"))
    ap.add_argument("--list", action="store_true", help="print the path keys and exit")
    ap.add_argument(
        "--own-veth",
        action="store_true",
        help=f"a netns and veth of the bench's own ({OWN.host_addr}/{OWN.client_addr}) instead of "
        "the tests' (10.200.0.x, shared under a machine-wide lock)",
    )
    ap.add_argument(
        "--extra", action="store_true", help="also the diagnostic variants (MTU, userland-proxy)"
    )
    args = ap.parse_args()
    reason = stack.missing()
    if reason:
        print(f"bench: {reason}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run every cleanup
    clients = args.clients.split(",")
    places: list[Place] = []
    for name in args.places.split(","):
        if name == "host":
            places.append(host_place())
        elif (STACKS / "READY").exists():
            places.append(root_place(name, stack.STACK_USER))
        else:
            print(f"bench: {STACKS}/READY missing: {name} skipped", file=sys.stderr)
    only = [s for s in args.only.split(",") if s]
    if args.list:
        for p in places:
            for path in paths_for(p, args.extra):
                print(f"{p.name:<9} {path.key:<45} {path.label}")
        return 0
    result: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "host": f"{platform.node()}, {os.cpu_count()} cores, kernel {platform.release()}",
        "command": "python3 bench/dataplane.py " + " ".join(sys.argv[1:]),
        "seconds": args.seconds,
        "repeat": args.repeat,
        "clients": clients,
        "versions": {},
        "rows": [],
    }
    ports = Ports()
    load0 = f"{os.getloadavg()[0]:.1f}"
    todo = []
    for p in places:
        result["versions"][p.name] = versions(p)  # type: ignore[index]
        for path in paths_for(p, args.extra):
            if not only or any(s in path.key for s in only):
                todo.append((p, path, {"place": p.name, "key": path.key, "path": path.label}))
    # Round by round over all paths (interleaved): a busy spell of the machine hits every path
    # in one round rather than all runs of one path.
    with ExitStack() as net:
        ns = net.enter_context(own_netns()) if args.own_veth else None
        for r in range(args.repeat):
            for p, path, row in todo:
                measure_once(p, path, ports, clients, args.seconds, row, ns)
                print(f"round {r + 1}: {json.dumps(row)}", flush=True)
    for _, _, row in todo:
        summarize(row, clients)
    result["load"] = f"{load0} at the start, {os.getloadavg()[0]:.1f} at the end"
    result["rows"] = [row for _, _, row in todo]
    for p in places:  # the `podman` calls above started the user's pause process: stop it
        if not p.run(["podman", "ps", "-aq"]).stdout.strip():
            p.run(["podman", "system", "migrate"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"dataplane-{time.strftime('%Y%m%d-%H%M', time.gmtime())}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    md = markdown(result, clients)
    stem.with_suffix(".md").write_text(md)
    print(md)
    print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
