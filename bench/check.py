"""Wall time of `rootless-doctor check` as a whole process, against its baselines.

    python3 bench/check.py [--runs 15] [--tool PATH] [--as-user rdtest] [--offline-only]
                           [--baseline OTHER_TOOL]
    python3 bench/check.py --root sid --as-user rdtest --tool /opt/VENV/bin/rootless-doctor

Times, each as a fresh process, median and min of N runs:
  - `python3 -c pass`                      (the floor: interpreter start)
  - the tool's python importing typer, gc off as entry.py runs it (the floor of any Typer CLI:
    issue 12's 50 ms for `check --from` is below it on Python 3.11)
  - `rootless-doctor check --json --from F` (offline diagnosis of captured files; target < 50 ms)
  - the same with YAML inputs (podman info YAML + a compose file: the YAML reader's cost)
  - `podman info --format json`             (what a live check must at least wait for)
  - `rootless-doctor check --json`          (live; target <= 1.0x podman info)
With --as-user, every command runs as that user through setpriv (run this as root), which is how
rootless engines are used. Prints one line per command and the two target ratios. The two live
rows run interleaved (info, check, info, check, ...: a shared machine's load falls on both alike),
and so do the --from rows (with --baseline: another build's check --from among them).
With --root (a Debian root of .ci/roots.sh, as --as-user inside it; --tool is a path inside the
root), only the live rows run, through `.ci/roots.sh user`, whose pivot_root adds the same few ms
to both rows.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def as_user(argv: list[str], user: str | None) -> tuple[list[str], dict[str, str] | None]:
    if not user:
        return argv, None
    pw = pwd.getpwnam(user)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": pw.pw_dir,
        "USER": user,
        "LOGNAME": user,
        "XDG_RUNTIME_DIR": f"/run/user/{pw.pw_uid}",
    }
    cmd = [
        "setpriv",
        f"--reuid={pw.pw_uid}",
        f"--regid={pw.pw_gid}",
        "--init-groups",
        "env",
        "-i",
        *[f"{k}={v}" for k, v in env.items()],
        *argv,
    ]
    return cmd, None


def shebang_python(tool: str) -> str | None:
    """The interpreter of a console script (its #! line), or None when it has none."""
    try:
        with open(tool, "rb") as f:
            first = f.readline(4096)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    py = first[2:].decode(errors="replace").split()
    return py[0] if py and os.path.isfile(py[0]) else None


def in_root(argv: list[str], root: str, user: str) -> list[str]:
    """``argv`` as ``user`` inside the Debian root ``root`` (a clean env, all exec'd)."""
    roots_sh = Path(__file__).resolve().parent.parent / ".ci" / "roots.sh"
    return ["bash", str(roots_sh), "user", root, user, "PODMAN_IGNORE_CGROUPSV1_WARNING=1", *argv]


def interleaved(cmds: dict[str, list[str]], runs: int, cwd: str) -> dict[str, list[float]]:
    """Each command once to warm caches, then ``runs`` rounds of all of them in turn."""
    for cmd in cmds.values():
        subprocess.run(cmd, capture_output=True, cwd=cwd, check=False)
    out: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, cwd=cwd, check=False)
            out[name].append((time.perf_counter() - t0) * 1000)
    return out


def timed(argv: list[str], runs: int, user: str | None, cwd: str) -> list[float]:
    cmd, env = as_user(argv, user)
    subprocess.run(cmd, capture_output=True, env=env, cwd=cwd, check=False)  # warm caches
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, env=env, cwd=cwd, check=False)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--tool", default=shutil.which("rootless-doctor") or "")
    ap.add_argument("--as-user")
    ap.add_argument("--offline-only", action="store_true", help="only the --from rows")
    ap.add_argument(
        "--baseline", help="another build's rootless-doctor: its check --from, interleaved"
    )
    ap.add_argument("--root", help="live rows only, as --as-user inside this .ci/roots.sh root")
    args = ap.parse_args()
    if not args.tool:
        print("bench: no rootless-doctor on PATH; pass --tool", file=sys.stderr)
        return 2
    if args.root:
        return live_in_root(args.root, args.as_user or "rdtest", args.tool, args.runs)
    # A bug report's worth: docker version + daemon.json + the process listing.
    captures = [
        DATA
        / "docker-version"
        / "docker-28.1.1-rootless-rootlesskit-2.3.4-slirp4netns-builtin.txt",
        DATA / "daemon-json" / "rdtest-captured-rootless-userland-proxy-false.json",
        DATA / "ps" / "docker-20.10.24-debian12-rootless-builtin-ps-eo.txt",
    ]
    yaml_inputs = [
        DATA / "podman-info" / "podman-4.3.1-rootless-debian12.yaml",
        DATA / "compose" / "docker-mailserver-compose.yaml",
    ]
    missing = [str(c) for c in (*captures, *yaml_inputs) if not c.exists()]
    if missing:
        print(f"bench: captures missing: {', '.join(missing)}", file=sys.stderr)
        return 2
    cwd = "/tmp"
    rows: dict[str, list[float]] = {}
    py = "/usr/bin/python3" if args.as_user else sys.executable
    # interleaved: on a shared machine a burst of load then hits every row alike
    offline = {"python3 -c pass": as_user([py, "-c", "pass"], args.as_user)[0]}
    tool_py = shebang_python(args.tool)
    if tool_py:
        typer_only = [tool_py, "-c", "import gc; gc.disable(); import typer"]
        offline["python + typer"] = as_user(typer_only, args.as_user)[0]
    from_args = [a for c in captures for a in ("--from", str(c))]
    offline["check --from"] = as_user([args.tool, "check", "--json", *from_args], args.as_user)[0]
    if args.baseline:
        offline["baseline --from"] = as_user(
            [args.baseline, "check", "--json", *from_args], args.as_user
        )[0]
    yaml_args = [a for c in yaml_inputs for a in ("--from", str(c))]
    offline["check --from YAML"] = as_user(
        [args.tool, "check", "--json", *yaml_args], args.as_user
    )[0]
    rows.update(interleaved(offline, args.runs, cwd))
    if shutil.which("podman") and not args.offline_only:
        live = {
            "podman info": as_user(["podman", "info", "--format", "json"], args.as_user)[0],
            "check (live)": as_user([args.tool, "check", "--json"], args.as_user)[0],
        }
        rows.update(interleaved(live, args.runs, cwd))
    elif not args.offline_only:
        rows["check (live)"] = timed([args.tool, "check", "--json"], args.runs, args.as_user, cwd)
    print(
        f"host: {os.uname().nodename}, runs: {args.runs}, user: {args.as_user or 'current'}, "
        f"--from: {', '.join(c.name for c in captures)}"
    )
    for name, vals in rows.items():
        print(f"{name:<18} median {statistics.median(vals):7.1f} ms   min {min(vals):7.1f} ms")
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"check --from: {med['check --from']:.1f} ms (target < 50 ms)")
    if "python + typer" in med:
        print(
            f"  of which python + typer {med['python + typer']:.1f} ms, the tool's own "
            f"{med['check --from'] - med['python + typer']:.1f} ms"
        )
    if "baseline --from" in med:
        print(f"  the baseline's: {med['baseline --from']:.1f} ms")

    live_ratio(med)
    return 0


def live_ratio(med: dict[str, float]) -> None:
    if "podman info" in med and "check (live)" in med:
        print(
            f"live check / podman info: {med['check (live)'] / med['podman info']:.2f}x "
            "(target <= 1.0x)"
        )


def live_in_root(root: str, user: str, tool: str, runs: int) -> int:
    live = {
        "podman info": in_root(["podman", "info", "--format", "json"], root, user),
        "check (live)": in_root([tool, "check", "--json"], root, user),
        "roots.sh user true": in_root(["true"], root, user),  # the entering cost, for reference
    }
    rows = interleaved(live, runs, "/tmp")
    print(f"root: {root}, runs: {runs}, user: {user}, tool: {tool} (interleaved)")
    for name, vals in rows.items():
        print(f"{name:<18} median {statistics.median(vals):7.1f} ms   min {min(vals):7.1f} ms")
    live_ratio({k: statistics.median(v) for k, v in rows.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
