"""Issue 11's table, measured: hostile `--from` pastes and engine CLIs that answer badly.

    sudo python3 bench/hostile.py [--tool PATH] [--as-user rdtest] [--runs 3] [--hang 60]

Each case is a fresh process of the tool (``--tool``, else ``python -m rootless_doctor`` from
this checkout) under an address-space cap (RLIMIT_AS 1.5 GB, as ``prlimit --as``), killed after
``--hang`` seconds. Printed per case, as a Markdown row: exit code (``killed`` for a hang), the
median wall time, the peak resident memory the kernel reports for it (wait4 ru_maxrss), and the
verdict against the issue's bound (exit 0/1/2, no traceback, < 200 MB, no hang). The engine
cases need the stack user (``--as-user``, run as root); without it they are left out.
Timings are noisy on a shared machine: medians of ``--runs``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

import hostile  # noqa: E402
import stack  # noqa: E402


def verdict(o: hostile.Outcome, refused: bool = False, names: tuple[str, ...] = ()) -> str:
    try:
        hostile.assert_bounded(o)
        if refused:
            hostile.one_line_error(o, *names)
    except AssertionError as e:
        return "FAIL: " + str(e).splitlines()[0][:90]
    return "ok"


def row(
    name: str, outs: list[hostile.Outcome], refused: bool = False, names: tuple[str, ...] = ()
) -> str:
    last = outs[-1]
    code = "killed" if last.hung else str(last.code)
    secs = statistics.median(o.seconds for o in outs)
    mem = max(o.maxrss_mb for o in outs)
    return f"| {name} | {code} | {secs:.2f} | {mem:.0f} | {verdict(last, refused, names)} |"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", help="console script to run (default: this checkout)")
    ap.add_argument("--as-user", help="stack user for the engine cases (run as root)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--hang", type=float, default=60.0)
    args = ap.parse_args()
    if args.tool:
        os.environ["RD_TOOL"] = args.tool
    print("| case | exit | median s | peak MB | bound |")
    print("|---|---|---|---|---|")
    for name, (build, refused) in hostile.PASTES.items():
        outs = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="rd-bench-") as d:
                f = build(Path(d))
                o = hostile.run(["check", "--json", "--from", str(f)], hang_s=args.hang)
            outs.append(o)
            if o.hung:
                break  # a hang is a hang; do not wait for it again
        print(row(name, outs, refused), flush=True)
    stdin = [
        hostile.run(["check", "--json", "--from", "-"], stdin=hostile.big_paste(), hang_s=args.hang)
        for _ in range(args.runs)
    ]
    print(row("50 MB on stdin (`--from -`)", stdin, True, ("stdin",)), flush=True)
    if not args.as_user:
        return
    os.environ["RDSTACK_USER"] = args.as_user
    stack.STACK_USER = args.as_user
    u = stack.user()
    cases = [
        ("`docker` prints without end (yes)", "docker", "exec yes", "DOCKER-SOURCE-IP"),
        ("`podman` prints without end (yes)", "podman", "exec yes", "PODMAN-SOURCE-IP"),
        ("`docker` hangs", "docker", "exec sleep 100", "DOCKER-SOURCE-IP"),
    ]
    for name, engine, body, check_id in cases:
        outs = []
        for _ in range(args.runs):
            with hostile.engine_sandbox(u) as (bindir, env):
                hostile.fake(bindir, engine, body)
                outs.append(hostile.run(["check", "--json"], u=u, env=env, hang_s=args.hang))
        status = "?"
        try:
            report = json.loads(outs[-1].stdout)
            status = next(c["status"] for c in report["checks"] if c["id"] == check_id)
        except (ValueError, StopIteration):
            pass
        line = row(f"{name}: {check_id} {status}", outs)
        if status != "unknown" and line.endswith("| ok |"):
            line = line[: -len("ok |")] + f"FAIL: {check_id} {status}, not unknown |"
        print(line, flush=True)


if __name__ == "__main__":
    main()
