"""Cost of `rootless-doctor check` per running container, against Podman's own queries.

    sudo python3 bench/scale.py [--counts 10,50,200] [--runs 7] [--tool PATH [--tool PATH2]]
                                [--procs 0,1000,3000] [--mailserver-env] [--execs] [--out FILE]

Run as root; everything runs as the stack user of tests/stack.py (RDSTACK_USER, made by
`STACK_USER=name .ci/setup-stack.sh`). For each N it brings the user's running rootless Podman
containers to N (busybox-static rootfs, `busybox httpd` on 8080, each with a published port, the
user's default network; no registry), then times whole processes, interleaved round by round in a
rotating order: `check --json`, `podman info --format json`, `podman ps --format json`,
`podman inspect IDS`.
Reported per N: median wall time (ms) and median CPU time (user+sys of the process and the
children it waited for, ms; steadier than wall time on a shared machine), check / (info + ps), and
at the end the least-squares slope in ms per container of each. `check` must report the N
containers (else the bench stops: it would measure something else).

Check's own cost: `check` also waits for the engine queries it makes (`podman inspect` of every
running container, `podman info` while it still runs it: the Podman subcommands of one traced
`check`). Each of them is timed alone in the same rounds (`podman inspect IDS` with the ids of
`podman ps -q --no-trunc`), and "own" = check minus those (wall: an upper bound of what check
adds, as its own work overlaps the queries; CPU: its Python, the namespace reader and the tool
`--version` execs). The issue's target, own cost <= 0.5 ms per container, reads the own slope.
A Python tool is run through a small wrapper that also prints the CPU time of check's own
process (all threads, no children: no subtraction, so steadier), shown as "own process cpu".

The kernel's key quota limits N: runc gives each container a session keyring, and a user may
own kernel.keys.maxkeys keys (200 by default, /proc/key-users shows what the user holds already),
so 200 containers fail with "unable to create session key: disk quota exceeded" once the user
has a login keyring of its own; use --counts 10,50,190 then (the slope needs no round numbers).

--procs 0,1000,3000 sweeps the number of processes on the host, at the smallest count of
containers (check reads /proc of every process): before the containers grow, it starts that
many idle `sleep` processes owned by the stack user, times the same commands, and ends them by
PID; the slope is printed in ms per 1000 processes.

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
import re
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


LINES: list[str] = []  # what the bench printed, for --out


def say(text: str) -> None:
    print(text, flush=True)
    LINES.append(text)


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(u: stack.User, argv: Sequence[str]) -> tuple[float, float, str, float | None]:
    """(wall ms, CPU ms, stdout, the process's own CPU ms) of one whole process run as ``u``;
    the last from a :data:`SELF_WRAP` run, else None."""
    c0 = _cpu_children()
    t0 = time.perf_counter()
    cp = stack.run_as(u, argv, timeout=300)
    wall = (time.perf_counter() - t0) * 1000
    cpu = (_cpu_children() - c0) * 1000
    if cp.returncode not in (0, 1):  # check exits 1 when a check fails: still a full run
        raise stack.StackError(f"{argv[0]} exited {cp.returncode}: {cp.stderr.strip()[:500]}")
    own = re.search(r"^RDSCALE-SELF ([0-9.]+)$", cp.stderr, re.M)
    return wall, cpu, cp.stdout, float(own.group(1)) if own else None


# Runs the tool's entry point in its own interpreter (-I: not a checkout in the working
# directory) and, as it leaves through os._exit, prints the CPU time of its own process (every
# thread, user + sys; RUSAGE_SELF has none of the children: podman, the namespace reader, the
# tools' --version). No subtraction: the steadier figure of check's own cost.
SELF_WRAP = """import os, resource, sys
_exit = os._exit
def _report(code):
    r = resource.getrusage(resource.RUSAGE_SELF)
    os.write(2, b"\\nRDSCALE-SELF %.1f\\n" % ((r.ru_utime + r.ru_stime) * 1000))
    _exit(code)
os._exit = _report
sys.argv = ["rootless-doctor", *sys.argv[1:]]
from rootless_doctor.entry import main
main()
"""


def check_argv(tool: str) -> list[str]:
    """``tool check --json``, through :data:`SELF_WRAP` when the tool is a Python console
    script (its first line names the interpreter)."""
    try:
        with open(tool, "rb") as f:
            first = f.readline(512)
    except OSError:
        first = b""
    if first.startswith(b"#!") and b"python" in first and len(first.split()) == 1:
        return [first[2:].decode().strip(), "-I", "-c", SELF_WRAP, "check", "--json"]
    return [tool, "check", "--json"]


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
        self.pause_was_running = stack.podman_pause_running(u)

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
            say(f"  started {len(todo)} containers in {time.monotonic() - t0:.0f} s")

    def close(self) -> None:
        for i in range(0, len(self.names), 50):
            stack.podman(self.u, "rm", "-f", "-t0", *self.names[i : i + 50], timeout=300)
        self.names.clear()
        if not self.pause_was_running and not stack.podman(self.u, "ps", "-aq").stdout.strip():
            stack.podman(self.u, "system", "migrate")


ENGINE_ALONE = {"info": "podman info", "ps": "podman ps", "inspect": "podman inspect"}
_EXECVE_ARGS = re.compile(r'execve\("[^"]*", \["([^"]*)", "([^"]*)"')


def trace(u: stack.User, check: Sequence[str]) -> tuple[int, set[str]]:
    """execve calls of one ``check`` process tree (strace -f), the process itself included, and
    the Podman subcommands it ran (``podman info``, ``podman inspect`` ...)."""
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
    subcommands = {
        m.group(2)
        for m in map(_EXECVE_ARGS.search, lines)
        if m and m.group(1).rsplit("/", 1)[-1] == "podman"
    }
    return len(done) - 2, subcommands


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def measure(
    u: stack.User, tools: list[str], n: int, runs: int
) -> dict[str, dict[str, list[float]]]:
    """Wall and CPU ms of each command, ``runs`` rounds, each round in a rotated order."""
    cmds = {name: check_argv(tool) for name, tool in _checks(tools).items()}
    cmds["podman info"] = ["podman", "info", "--format", "json"]
    cmds["podman ps"] = ["podman", "ps", "--format", "json"]
    ids = stack.podman(u, "ps", "-q", "--no-trunc").stdout.split()
    if ids:  # what check asks (it takes the ids from the conmon processes, not from ps)
        cmds["podman inspect"] = ["podman", "inspect", *ids]
    res: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in cmds}
    names = list(cmds)
    for name in names:  # warm caches, and check that check sees the N containers
        _, _, out, _ = timed(u, cmds[name])
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
            wall, cpu, _, own = timed(u, cmds[name])
            res[name]["wall"].append(wall)
            res[name]["cpu"].append(cpu)
            if own is not None:
                res[name].setdefault("self", []).append(own)
    return res


def _checks(tools: list[str]) -> dict[str, str]:
    """A name per tool: "check", or "check[1]", "check[2]" ... when comparing several."""
    if len(tools) == 1:
        return {"check": tools[0]}
    return {f"check[{i}]": t for i, t in enumerate(tools, 1)}


class IdleProcesses:
    """``sleep infinity`` processes of the stack user, started and ended by PID."""

    def __init__(self, u: stack.User) -> None:
        self.u = u
        self.procs: list[subprocess.Popen[bytes]] = []

    def set_to(self, k: int) -> None:
        t0 = time.monotonic()
        while len(self.procs) > k:
            self._end([self.procs.pop()])
        while len(self.procs) < k:
            self.procs.append(
                subprocess.Popen(
                    ["/bin/sleep", "infinity"], user=self.u.uid, group=self.u.gid,
                    extra_groups=[], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, cwd="/",
                )
            )  # fmt: skip
        say(f"  {k} idle processes ({time.monotonic() - t0:.0f} s)")

    @staticmethod
    def _end(procs: list[subprocess.Popen[bytes]]) -> None:
        for pr in procs:
            pr.kill()  # signals its PID (Popen holds it until the wait below reaps it)
        for pr in procs:
            pr.wait(timeout=30)

    def close(self) -> None:
        self._end(self.procs)
        self.procs.clear()


def one_point(
    u: stack.User, tools: list[str], n: int, runs: int, count_execs: bool
) -> dict[str, Any]:
    """Medians of each command at this point, check's engine queries and its own cost."""
    checks = _checks(tools)
    res = measure(u, tools, n, runs)
    med = {k: {m: statistics.median(v[m]) for m in v} for k, v in res.items()}
    base = {m: med["podman info"][m] + med["podman ps"][m] for m in ("wall", "cpu")}
    row: dict[str, Any] = {"n": n, "median": med, "base": base, "execs": {}, "own": {}}
    for name, tool in checks.items():
        if not shutil.which("strace"):
            break
        execs, subcommands = trace(u, [tool, "check", "--json"])
        if count_execs:
            row["execs"][name] = execs
        alone = sorted(ENGINE_ALONE[c] for c in subcommands if c in ENGINE_ALONE)
        alone = [a for a in alone if a in med]  # no inspect when nothing runs
        row["own"][name] = {
            "queries": alone,
            **{m: med[name][m] - sum(med[a][m] for a in alone) for m in ("wall", "cpu")},
        }
    return row


def print_point(row: dict[str, Any], checks: dict[str, str], label: str) -> None:
    med, base = row["median"], row["base"]
    line = [label]
    for name in (*checks, "podman info", "podman ps", "podman inspect"):
        if name in med:
            line.append(f"{name} {med[name]['wall']:6.0f} ms (cpu {med[name]['cpu']:5.0f})")
    for name in checks:
        line.append(
            f"{name}/(info+ps) {med[name]['wall'] / base['wall']:.2f}x wall, "
            f"{med[name]['cpu'] / base['cpu']:.2f}x cpu"
        )
    for name, own in row["own"].items():
        line.append(
            f"{name} own (minus {' + '.join(own['queries']) or 'nothing'}) "
            f"{own['wall']:6.0f} ms (cpu {own['cpu']:5.0f})"
        )
    line += [
        f"{name} own process cpu {med[name]['self']:5.0f}" for name in checks if "self" in med[name]
    ]
    line += [f"{name} execs {c}" for name, c in row["execs"].items()]
    say("  ".join(line))


def print_slopes(rows: list[dict[str, Any]], checks: dict[str, str], x: str, per: float) -> None:
    """Least-squares slopes over ``rows`` (x = row["n"]), in ms per ``per`` of ``x``."""
    if len(rows) < 2:
        return
    xs = [r["n"] / per for r in rows]
    unit = x if per == 1 else f"{per:g} {x}es" if x.endswith("s") else f"{per:g} {x}s"
    for what in ("wall", "cpu"):
        parts = [
            f"{name} {slope(xs, [r['median'][name][what] for r in rows]):.2f}" for name in checks
        ]
        parts += [
            f"{name} own {slope(xs, [r['own'][name][what] for r in rows]):.2f}"
            for name in checks
            if all(name in r["own"] for r in rows)
        ]
        s_base = slope(xs, [r["base"][what] for r in rows])
        s_inspect = ""
        if all("podman inspect" in r["median"] for r in rows):
            s_ins = slope(xs, [r["median"]["podman inspect"][what] for r in rows])
            s_inspect = f", podman inspect alone {s_ins:.2f}"
        target = " (target: own <= 0.5)" if x == "container" else ""
        say(
            f"slope ({what}, ms per {unit}): {', '.join(parts)}{target}; "
            f"podman info + ps {s_base:.2f}{s_inspect}"
        )
    own_process = [
        f"{name} {slope(xs, [r['median'][name]['self'] for r in rows]):.2f}"
        for name in checks
        if all("self" in r["median"][name] for r in rows)
    ]
    if own_process:
        say(
            f"slope (cpu of check's own process: every thread, no child; ms per {unit}): "
            f"{', '.join(own_process)}"
        )


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
    ap.add_argument(
        "--procs",
        default="",
        help="idle processes of the stack user to sweep at the smallest count, e.g. 0,1000,3000",
    )
    ap.add_argument("--mailserver-env", action="store_true")
    ap.add_argument("--out", type=Path, help="also write the command and what it printed here")
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
    sweep = sorted(int(c) for c in args.procs.split(",") if c.strip())
    u = stack.user()
    if stack.podman(u, "ps", "-aq").stdout.strip():
        print(f"bench: {u.name} already has containers; remove them first", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    pods = Containers(u, args.mailserver_env)
    idle = IdleProcesses(u)
    rows, proc_rows = [], []
    say(
        f"scale: user {u.name}, {', '.join(f'{k} = {v}' for k, v in checks.items())}, "
        f"{args.runs} interleaved rounds per N, "
        f"{'every container with NETWORK_INTERFACE' if args.mailserver_env else 'plain containers'}"
        f", {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()[0]:.2f}"
        f", {stack.podman(u, '--version').stdout.strip()}, {os.cpu_count()} cores"
        f", kernel {os.uname().release}"
    )
    try:
        if sweep:
            pods.grow_to(counts[0])
            for k in sweep:
                idle.set_to(k)
                row = one_point(u, tools, counts[0], args.runs, False)
                row["n"] = k
                proc_rows.append(row)
                print_point(
                    row, checks, f"procs+{k:<5} (N={counts[0]}, load {os.getloadavg()[0]:.1f})"
                )
            idle.close()
        for n in counts:
            pods.grow_to(n)
            row = one_point(u, tools, n, args.runs, args.execs)
            rows.append(row)
            print_point(row, checks, f"N={n:<4} (load {os.getloadavg()[0]:.1f})")
    finally:
        idle.close()
        pods.close()
        left = [x for x in stack.podman(u, "ps", "-a", "--format", "{{.Names}}").stdout.split()
                if x.startswith(PREFIX)]  # fmt: skip
        if left:
            print(f"bench: could not remove {left}", file=sys.stderr)
    print_slopes(rows, checks, "container", 1)
    print_slopes(proc_rows, checks, "process", 1000)
    if args.out:
        command = " ".join(["python3", "bench/scale.py", *sys.argv[1:]])
        args.out.write_text(f"    {command}\n\n" + "\n".join(LINES) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
