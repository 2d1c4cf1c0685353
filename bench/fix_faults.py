"""Issue 11's writer table, measured: two fixes at once, signals at random moments, a full disk.

    sudo python3 bench/fix_faults.py --as-user rd-s11 [--tool PATH] [--pairs 30] [--signals 100]

Every run is a fresh process of the tool (``--tool``, else ``python -m rootless_doctor`` from
this checkout) as the stack user, on that user's files in a sandbox of its own under /tmp
(tests/hostile.py), with ``fix compose --engine podman`` as the writer (the real podman answers).

- pairs, one file: two fixes of two services of one compose file, started together; counted: a
  run said "wrote" but its change is not in the file, and ``fix --undo`` not byte-exact.
- pairs, two files: two fixes of two compose files, started together; counted: ``fix --undo``
  left a file modified (a lost manifest entry).
- signals: SIGTERM or SIGINT (alternating) at a random moment of the run (uniform over the
  median duration of an unsignalled run); counted: temp files left, a traceback, ``fix --undo``
  not restoring the original.
- full disk: the state directory on a 64 KiB tmpfs filled to the last block; counted: the target
  written anyway, the exit code, ``fix --undo`` crashing.

The numbers are counts out of the runs made (the machine is shared: timings only decide where a
signal lands). Compare two builds with ``--tool``.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

import hostile  # noqa: E402
import stack  # noqa: E402

COMPOSE = TESTS / "data/compose/docker-mailserver-compose.yaml"
UNIT_V20 = (
    TESTS / "data/systemd/docker-rootless-user-unit-rendered-from-moby-v20.10.24-setuptool.service"
)
TWO_SERVICES = (
    "services:\n"
    "  a:\n    image: docker.io/library/busybox\n    ports:\n      - '8081:80'\n"
    "  b:\n    image: docker.io/library/busybox\n    ports:\n      - '8082:80'\n"
)


def start(sb: hostile.Sandbox, *args: str) -> subprocess.Popen[str]:
    prefix, extra = hostile.tool(sb.u)
    env = stack.user_env(sb.u)
    env.update(extra)
    env.update(sb.env())
    return subprocess.Popen(
        stack._as_user_argv(sb.u, [*prefix, "fix", *args], env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=sb.base,
    )  # fmt: skip


def pair_one_file(u: stack.User) -> tuple[bool, bool]:
    """(a change said written was lost, undo not byte-exact)"""
    with hostile.sandbox(u) as sb:
        f = sb.put("work/compose.yaml", TWO_SERVICES)
        fix = ["compose", str(f), "--engine", "podman", "--service"]
        procs = {"a": start(sb, *fix, "a"), "b": start(sb, *fix, "b")}
        outs = {k: p.communicate(timeout=120)[0] for k, p in procs.items()}
        text = f.read_text()
        blocks = dict(zip("ab", text.split("  b:\n"), strict=False))
        lost = any("wrote" in outs[k] and "network_mode" not in blocks.get(k, "") for k in "ab")
        sb.fix("--undo")
        return lost, f.read_text() != TWO_SERVICES


def pair_two_files(u: stack.User) -> bool:
    """undo left a file modified"""
    with hostile.sandbox(u) as sb:
        fs = [sb.put(f"work/{n}.yaml", COMPOSE.read_bytes()) for n in ("one", "two")]
        procs = [start(sb, "compose", str(f), "--engine", "podman") for f in fs]
        for p in procs:
            p.communicate(timeout=120)
        sb.fix("--undo")
        return any(f.read_bytes() != COMPOSE.read_bytes() for f in fs)


def signalled(u: stack.User, signum: int, delay: float) -> tuple[bool, str, bool, int | None]:
    """(temp files left, where a traceback came from ("" without), undo did not restore, exit
    code)"""
    with hostile.sandbox(u) as sb:
        f = sb.put("work/compose.yaml", COMPOSE.read_bytes())
        o = hostile.run(
            ["fix", "compose", str(f), "--engine", "podman"], u=u, env=sb.env(),
            sig_after=(delay, signum),
        )  # fmt: skip
        temps = [p for p in sb.base.rglob("*") if "rdtmp" in p.name]
        undone = sb.fix("--undo")
        err = o.stderr + undone.stderr
        frames = [ln.strip() for ln in err.splitlines() if ln.strip().startswith("File ")]
        where = (frames[-1] if frames else "?") if "Traceback" in err else ""
        return (
            bool(temps),
            where,
            f.read_bytes() != COMPOSE.read_bytes(),
            o.code,
        )


def full_disk(u: stack.User) -> str:
    with hostile.sandbox(u) as sb:
        sb.put("cfg/systemd/user/docker.service", UNIT_V20.read_bytes())
        sb.state.parent.mkdir(parents=True)
        sb.own()
        target = sb.cfg / "systemd/user/docker.service.d/override.conf"
        opts = f"size=64k,mode=0700,uid={u.uid},gid={u.gid}"
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "rd-s11-full", str(sb.state.parent)],
                       check=True)  # fmt: skip
        try:
            sb.state.mkdir(mode=0o700)
            os.chown(sb.state, u.uid, u.gid)
            hostile.fill(sb.state)
            o = sb.fix("docker", "--driver", "slirp4netns")
            written = target.exists()
            undone = sb.fix("--undo")
        finally:
            subprocess.run(["umount", str(sb.state.parent)], check=True)
        return (
            f"fix exit {o.code}, target written: {written}; "
            f"undo exit {undone.code}{' (traceback)' if 'Traceback' in undone.stderr else ''}"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", help="console script to run (default: this checkout)")
    ap.add_argument("--as-user", required=True, help="stack user (run as root)")
    ap.add_argument("--pairs", type=int, default=30)
    ap.add_argument("--signals", type=int, default=100)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    if args.tool:
        os.environ["RD_TOOL"] = args.tool
    os.environ["RDSTACK_USER"] = args.as_user
    stack.require()
    u = stack.user()
    rng = random.Random(args.seed)
    print(f"tool: {hostile.tool(u)[0]}")
    print("| case | runs | failures |")
    print("|---|---|---|")
    durations = []
    for _ in range(3):
        with hostile.sandbox(u) as sb:
            f = sb.put("work/compose.yaml", COMPOSE.read_bytes())
            t = time.monotonic()
            o = sb.fix("compose", str(f), "--engine", "podman")
            durations.append(time.monotonic() - t)
            if o.code != 0 or "wrote" not in o.stdout:
                sys.exit(f"the tool does not write here: {o.describe()}")
    lost = undo_bad = 0
    for _ in range(args.pairs):
        a, b = pair_one_file(u)
        lost += a
        undo_bad += b
    print(f"| two fixes of one file: a change said written is lost | {args.pairs} | {lost} |")
    print(f"| two fixes of one file: undo not byte-exact | {args.pairs} | {undo_bad} |")
    entries = sum(pair_two_files(u) for _ in range(args.pairs))
    print(f"| two fixes of two files: undo left a file modified | {args.pairs} | {entries} |")
    span = statistics.median(durations)
    temps = not_restored = 0
    tracebacks: list[str] = []
    codes: dict[str, int] = {}
    for i in range(args.signals):
        signum = (signal.SIGTERM, signal.SIGINT)[i % 2]
        delay = rng.uniform(0, span)
        t, tb, nr, code = signalled(u, signum, delay)
        temps += t
        if tb:
            tracebacks.append(f"{signal.Signals(signum).name} at {delay:.2f} s: {tb}")
        not_restored += nr
        codes[str(code)] = codes.get(str(code), 0) + 1
    n = args.signals
    print(f"| signal at a random moment (0-{span:.2f} s): temp files left | {n} | {temps} |")
    print(f"| signal at a random moment: traceback | {n} | {len(tracebacks)} |")
    print(f"| signal at a random moment: undo did not restore | {n} | {not_restored} |")
    print(f"| (signal runs by exit code: {dict(sorted(codes.items()))}) | | |")
    print(f"| full state dir (64 KiB tmpfs) | 1 | {full_disk(u)} |")
    for t in tracebacks:
        print(f"traceback: {t}")
    stack.podman_reset(u)


if __name__ == "__main__":
    main()
