"""Cost of `rootless-doctor check` per running container, against Podman's own queries.

    sudo python3 bench/scale.py [--counts 10,50,200] [--runs 7] [--tool PATH [--tool PATH2]]
                                [--mailserver-env] [--execs]

Run as root; everything runs as the stack user of tests/stack.py (RDSTACK_USER, made by
`STACK_USER=name .ci/setup-stack.sh`). For each N it brings the user's running rootless Podman
containers to N (busybox-static rootfs, `busybox httpd` on 8080, each with a published port, the
user's default network; no registry), then times whole processes, interleaved round by round in a
rotating order: `check --json`, `podman info --format json`, `podman ps --format json`.
Reported per N: median wall time (ms) and median CPU time (user+sys of the process and the
children it waited for, ms; steadier than wall time on a shared machine), check / (info + ps), and
at the end the least-squares slope in ms per container of each. `check` must report the N
containers (else the bench stops: it would measure something else).

--mailserver-env gives every container `NETWORK_INTERFACE=eth0` (a docker-mailserver marker), so
every container is one whose interfaces the CONTAINER-NETWORK-INTERFACE check needs: the worst
case. --execs counts the execve calls of one `check --json` per N (strace -f).

Every container this bench started is removed at the end (also on error or Ctrl-C), and Podman's
pause process is stopped when it was not running before and no container of the user is left.
Timings are noisy on a shared 2-core machine: read the medians, the CPU column, and the slope.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import stack  # noqa: E402  (tests/stack.py: the real-stack harness)

PREFIX = "rdscale-"
PORT_BASE = 21000  # below the ephemeral range: pasta's automatic forwarding skips ephemeral ports


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(u: stack.User, argv: Sequence[str]) -> tuple[float, float, str]:
    """(wall ms, CPU ms, stdout) of one whole process run as ``u``."""
    c0 = _cpu_children()
    t0 = time.perf_counter()
    cp = stack.run_as(u, argv, timeout=300)
    wall = (time.perf_counter() - t0) * 1000
    cpu = (_cpu_children() - c0) * 1000
    if cp.returncode not in (0, 1):  # check exits 1 when a check fails: still a full run
        raise stack.StackError(f"{argv[0]} exited {cp.returncode}: {cp.stderr.strip()[:500]}")
    return wall, cpu, cp.stdout


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


class Containers:
    """The containers this bench started (names ``rdscale-<i>``); removes them all on close."""

    def __init__(self, u: stack.User, mailserver_env: bool) -> None:
        self.u = u
        self.env = ["-e", "NETWORK_INTERFACE=eth0"] if mailserver_env else []
        self.names: list[str] = []
        self.next_port = PORT_BASE
        self.rootfs = stack.rootfs(u)
        self.pause_was_running = stack._podman_pause_running(u)

    def _port(self) -> int:
        while not _port_free(self.next_port):
            self.next_port += 1
        self.next_port += 1
        return self.next_port - 1

    def _start(self, name: str, port: int) -> None:
        argv = [
            "run", "-d", "--name", name, *self.env, "-p", f"{port}:8080",
            "--rootfs", self.rootfs, "/bin/busybox", "httpd", "-f", "-p", "8080",
        ]  # fmt: skip
        cp = stack.podman(self.u, *argv, timeout=120)
        if cp.returncode != 0:
            raise stack.StackError(f"podman run {name}: {cp.stderr.strip()[:500]}")

    def grow_to(self, n: int) -> None:
        todo = []
        while len(self.names) < n:
            name = f"{PREFIX}{len(self.names)}"
            self.names.append(name)  # before the start: a half-started one is removed too
            todo.append((name, self._port()))
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=2) as pool:  # two at a time: Podman locks anyway
            list(pool.map(lambda a: self._start(*a), todo))
        if todo:
            print(f"  started {len(todo)} containers in {time.monotonic() - t0:.0f} s", flush=True)

    def close(self) -> None:
        for i in range(0, len(self.names), 50):
            stack.podman(self.u, "rm", "-f", "-t0", *self.names[i : i + 50], timeout=300)
        self.names.clear()
        if not self.pause_was_running and not stack.podman(self.u, "ps", "-aq").stdout.strip():
            stack.podman(self.u, "system", "migrate")


def count_execs(u: stack.User, check: Sequence[str]) -> int:
    """execve calls of one ``check`` process tree (strace -f), the process itself included."""
    with tempfile.NamedTemporaryFile(prefix="rdscale-strace-", suffix=".txt") as out:
        subprocess.run(
            ["strace", "-f", "-qq", "-e", "trace=execve", "-e", "signal=none", "-o", out.name,
             *stack._as_user_argv(u, check, None)],
            capture_output=True, timeout=300, check=False,
        )  # fmt: skip
        lines = Path(out.name).read_text(errors="replace").splitlines()
    # setpriv and env exec before the tool: not the tool's own.
    # With -f an execve may be split into "<unfinished ...>" and "<... execve resumed> ... = 0".
    done = [ln for ln in lines if "execve" in ln and ln.rstrip().endswith("= 0")]
    return len(done) - 2


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def measure(
    u: stack.User, tools: list[str], n: int, runs: int
) -> dict[str, dict[str, list[float]]]:
    """Wall and CPU ms of each command, ``runs`` rounds, each round in a rotated order."""
    cmds = {name: [tool, "check", "--json"] for name, tool in _checks(tools).items()}
    cmds["podman info"] = ["podman", "info", "--format", "json"]
    cmds["podman ps"] = ["podman", "ps", "--format", "json"]
    res: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in cmds}
    names = list(cmds)
    for name in names:  # warm caches, and check that check sees the N containers
        _, _, out = timed(u, cmds[name])
        if name.startswith("check"):
            seen = sum(
                len(e.get("containers", []))
                for e in json.loads(out)["engines"]
                if e["engine"] == "podman"
            )
            if seen != n:
                raise stack.StackError(f"{name} saw {seen} podman containers, expected {n}")
    for r in range(runs):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            wall, cpu, _ = timed(u, cmds[name])
            res[name]["wall"].append(wall)
            res[name]["cpu"].append(cpu)
    return res


def _checks(tools: list[str]) -> dict[str, str]:
    """A name per tool: "check", or "check[1]", "check[2]" ... when comparing several."""
    if len(tools) == 1:
        return {"check": tools[0]}
    return {f"check[{i}]": t for i, t in enumerate(tools, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--counts", default="10,50,200")
    ap.add_argument("--runs", type=int, default=7, help="interleaved rounds per N (default 7)")
    ap.add_argument(
        "--tool",
        action="append",
        help="the rootless-doctor to time (default RD_TOOL or PATH's); give it twice or more to "
        "compare versions in the same interleaved rounds",
    )
    ap.add_argument("--mailserver-env", action="store_true")
    ap.add_argument("--execs", action="store_true", help="count execve per check (strace)")
    args = ap.parse_args()
    reason = stack.missing()
    if reason:
        print(f"bench: {reason}", file=sys.stderr)
        return 2
    tools = args.tool or [
        t for t in [os.environ.get("RD_TOOL") or shutil.which("rootless-doctor")] if t
    ]
    if not tools:
        print("bench: no rootless-doctor; pass --tool or set RD_TOOL", file=sys.stderr)
        return 2
    checks = _checks(tools)
    counts = sorted(int(c) for c in args.counts.split(","))
    u = stack.user()
    if stack.podman(u, "ps", "-aq").stdout.strip():
        print(f"bench: {u.name} already has containers; remove them first", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    pods = Containers(u, args.mailserver_env)
    rows = []
    print(
        f"scale: user {u.name}, {', '.join(f'{k} = {v}' for k, v in checks.items())}, "
        f"{args.runs} interleaved rounds per N, "
        f"{'every container with NETWORK_INTERFACE' if args.mailserver_env else 'plain containers'}"
        f", {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    try:
        for n in counts:
            pods.grow_to(n)
            res = measure(u, tools, n, args.runs)
            med = {k: {m: statistics.median(v[m]) for m in v} for k, v in res.items()}
            base = {m: med["podman info"][m] + med["podman ps"][m] for m in ("wall", "cpu")}
            row: dict[str, Any] = {"n": n, "median": med, "base": base, "execs": {}}
            if args.execs and shutil.which("strace"):
                for name, tool in checks.items():
                    row["execs"][name] = count_execs(u, [tool, "check", "--json"])
            rows.append(row)
            line = [f"N={n:<4}"]
            for name in (*checks, "podman info", "podman ps"):
                line.append(f"{name} {med[name]['wall']:6.0f} ms (cpu {med[name]['cpu']:5.0f})")
            for name in checks:
                line.append(
                    f"{name}/(info+ps) {med[name]['wall'] / base['wall']:.2f}x wall, "
                    f"{med[name]['cpu'] / base['cpu']:.2f}x cpu"
                )
            line += [f"{name} execs {c}" for name, c in row["execs"].items()]
            print("  ".join(line), flush=True)
    finally:
        pods.close()
        left = [x for x in stack.podman(u, "ps", "-a", "--format", "{{.Names}}").stdout.split()
                if x.startswith(PREFIX)]  # fmt: skip
        if left:
            print(f"bench: could not remove {left}", file=sys.stderr)
    if len(rows) >= 2:
        xs = [r["n"] for r in rows]
        for what in ("wall", "cpu"):
            parts = [
                f"{name} {slope(xs, [r['median'][name][what] for r in rows]):.2f}"
                for name in checks
            ]
            s_base = slope(xs, [r["base"][what] for r in rows])
            print(
                f"slope ({what}, ms per container): {', '.join(parts)} (target <= 0.5); "
                f"podman info + ps {s_base:.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
