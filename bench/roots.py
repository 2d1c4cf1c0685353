"""What a server saw, what check said, and the probe's wall time, per Debian root and setup.

Run as root after ``bash .ci/roots.sh build`` (the roots' own tool, as the roots' stack user):

    python3 bench/roots.py [--runs 3] [trixie sid]

For each root it starts, one after another: a ``podman run -p`` container (default network:
pasta), one on a user-defined network (rootlessport), rootless dockerd with the launcher's
defaults (slirp4netns + builtin), and rootless dockerd with ``NET=pasta PORT_DRIVER=implicit``
(what ``fix docker`` writes there) with one container below ``ip_local_port_range`` and one
inside it. Each container runs the tests' peer server (it answers with the peer address it saw);
the client is in the tests' network namespace (10.200.0.2 → 10.200.0.1:PORT), nothing else is
contacted. For each setup it prints what the server saw, ``check --json``'s ``seen_address``, and
for the engine setups the median wall time of ``rootless-doctor probe --engine E --source
10.200.0.1 --json`` as a fresh process (``--runs`` times; timings on a shared machine are noisy).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import rdtool
import roots
import stack
from test_roots_realstack import low_port

PASTA_IMPLICIT = {
    "DOCKERD_ROOTLESS_ROOTLESSKIT_NET": "pasta",
    "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER": "implicit",
}


def seen(ns: stack.Netns, port: int) -> str:
    try:
        return stack.ask_from_netns(ns, ns.host_addr, port, timeout=5)
    except stack.StackError as e:
        return "nothing (refused)" if "refused" in str(e) else f"nothing ({str(e)[-60:]})"


def said(
    u: stack.User, engine: str, name: str | None = None, env: dict[str, str] | None = None
) -> str:
    """check's seen_address for the engine (or its container ``name``); failed checks after it."""
    report: dict[str, Any] = rdtool.check_json(u, env=env)
    failed = [c["id"] for c in report["checks"] if c["status"] == "fail"]
    return f"{_seen(report, engine, name)}; failed: {', '.join(failed) or 'none'}"


def _seen(report: dict[str, Any], engine: str, name: str | None) -> str:
    for e in report["engines"]:
        if e["engine"] != engine:
            continue
        if name is None:
            return str(e.get("seen_address"))
        for c in e["containers"]:
            if c["name"] == name:
                return str(c.get("seen_address"))
    return "(not reported)"


def probe(u: stack.User, engine: str, runs: int, env: dict[str, str] | None = None) -> str:
    times, last = [], ""
    for _ in range(runs):
        t0 = time.monotonic()
        cp = rdtool.run(
            u, "probe", "--engine", engine, "--source", stack.HOST_ADDR, "--json", env=env
        )
        times.append(time.monotonic() - t0)
        p = json.loads(cp.stdout)["probes"][0]
        last = f"{p['verdict']}, observed {p['observed'] or '-'}"
    runs_s = ", ".join(f"{t:.2f}" for t in times)
    return f"{statistics.median(times):.2f} s (runs {runs_s}): {last}"


def row(root: str, setup: str, server: str, check: str, probe_s: str = "") -> None:
    print(f"| {root} | {setup} | {server} | {check} | {probe_s} |", flush=True)


def bench_root(root: str, runs: int) -> None:
    u = roots.user(root)
    with stack.client_netns() as ns:
        with stack.podman_container(u, network=None, name="rdbench-pasta") as c:
            row(root, "podman run -p (default: pasta)", seen(ns, c.host_port),
                said(u, "podman", c.name), probe(u, "podman", runs))  # fmt: skip
        stack.podman(u, "network", "create", "rdbench-net")
        try:
            with stack.podman_container(u, network="rdbench-net", name="rdbench-net") as c:
                row(root, "podman run --network <user-defined> -p", seen(ns, c.host_port),
                    said(u, "podman", c.name))  # fmt: skip
        finally:
            stack.podman(u, "network", "rm", "-f", "rdbench-net")
        stack.podman_reset(u)
        with stack.rootless_dockerd(u, port_driver=None, net=None) as d:
            port = stack.free_port()
            d.run(port)
            s, c_said = seen(ns, port), said(u, "docker", env=d.env)
            d.remove_containers()
            row(root, "rootless dockerd default (slirp4netns + builtin)", s, c_said,
                probe(u, "docker", runs, d.env))  # fmt: skip
        with stack.rootless_dockerd(u, port_driver=None, net=None, extra_env=PASTA_IMPLICIT) as d:
            low, high = low_port(), stack.free_port()
            d.run(low)
            d.run(high)
            s_low, s_high, c_said = seen(ns, low), seen(ns, high), said(u, "docker", env=d.env)
            d.remove_containers()
            row(root, f"dockerd pasta + implicit, host port {low} (below the range)", s_low,
                c_said, probe(u, "docker", runs, d.env))  # fmt: skip
            row(root, f"dockerd pasta + implicit, host port {high} (ephemeral)", s_high, c_said)
        stack.podman_reset(u)
    if left := stack.leftovers(u):
        print(f"{root}: left behind: {left}", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("roots", nargs="*", default=list(roots.ROOTS))
    ap.add_argument("--runs", type=int, default=3, help="probe runs per setup (median)")
    a = ap.parse_args()
    for root in a.roots:
        if reason := roots.missing(root):
            print(f"bench/roots.py: {reason}", file=sys.stderr)
            return 2
    print("| root | setup | server saw | check: seen_address; failed checks | probe (median) |")
    print("|---|---|---|---|---|")
    for root in a.roots:
        bench_root(root, a.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
