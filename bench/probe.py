"""Benchmark: the source-IP probe against the raw cycle of the same stack (target ratio ≤ 1.5).

Run as root on a machine prepared by ``.ci/setup-stack.sh``:

    /opt/rdvenv/bin/python bench/probe.py [-n 15]

It makes the test client namespace (host side 10.200.0.1: an address it made, never the machine's
own), then runs a worker AS THE STACK USER that alternates, N times each:

- podman, raw: ``podman run -d --rm -p 10.200.0.1:P:P -v /usr:/usr:ro --rootfs DIR python3 ...``
  → poll until the listener answers → ``podman rm -f -t0`` (the rootfs is made once, not timed);
  probe: ``probe.probe("podman", source="10.200.0.1")`` in-process (makes its rootfs each time).
- rootlesskit (a running standalone ``--port-driver=builtin`` instance), raw: ``nsenter`` a
  listener into its namespace → ``rootlessctl add-ports`` → one request → ``remove-ports`` → stop
  it; probe: ``probe.probe("rootlesskit", ...)`` in-process. For scale it also times the full cycle
  of real-stack.md (start rootlesskit with the server → one request → stop).

Also timed, N times each, end to end: the CLI as a fresh process, as the user,
``rootless-doctor probe --engine E --source 10.200.0.1 --json`` (``$RD_TOOL`` when set, else
``python3 -m rootless_doctor`` of a byte-compiled copy, as an installed package is): it adds
Python start-up, Typer and check's expected verdict (``host.gather`` of that engine, run beside
the probe). Prints medians and the ratios to the raw cycle.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SRC = "10.200.0.1"


# ------------------------------------------------------------------------------ worker (as user)


def _request(port: int, deadline: float) -> str:
    """Connect from SRC to SRC:port until the reply is non-empty (readiness), return it."""
    while time.monotonic() < deadline:
        try:
            with socket.socket() as s:
                s.settimeout(2)
                s.bind((SRC, 0))
                s.connect((SRC, port))
                data = s.recv(256)
            if data.strip():
                return data.decode().strip()
        except OSError:
            pass
        time.sleep(0.003)
    raise RuntimeError(f"no reply on {port}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((SRC, 0))
        return int(s.getsockname()[1])


def raw_podman(rootfs: str) -> tuple[float, str]:
    from rootless_doctor.probe import LISTENER

    port = _free_port()
    t0 = time.monotonic()
    name = f"rd-bench-{os.getpid()}"
    subprocess.run(
        ["podman", "run", "-d", "--rm", "--name", name, "-p", f"{SRC}:{port}:{port}",
         "-v", "/usr:/usr:ro", "--rootfs", rootfs, "/usr/bin/python3", "-I", "-S", "-c",
         LISTENER, str(port)],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        seen = _request(port, t0 + 20)
    finally:
        subprocess.run(["podman", "rm", "-f", "-t0", name], check=True, capture_output=True)
    return (time.monotonic() - t0) * 1000, seen


def raw_rootlesskit(state_dir: str) -> tuple[float, str]:
    from rootless_doctor.probe import LISTENER

    port = _free_port()
    api = f"{state_dir}/api.sock"
    t0 = time.monotonic()
    child = Path(state_dir, "child_pid").read_text().strip()
    lst = subprocess.Popen(
        ["nsenter", "-U", "-n", "--preserve-credentials", "-t", child,
         "/usr/bin/python3", "-I", "-S", "-c", LISTENER, "0"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert lst.stdout is not None
        cport = int(lst.stdout.readline())
        add = subprocess.run(
            ["rootlessctl", "--socket", api, "add-ports", f"{SRC}:{port}:{cport}/tcp"],
            capture_output=True, text=True,
        )  # fmt: skip
        if add.returncode:
            raise RuntimeError(f"rootlessctl add-ports: {add.stderr.strip()}")
        pid = add.stdout.strip()
        seen = _request(port, t0 + 20)
        subprocess.run(["rootlessctl", "--socket", api, "remove-ports", pid], check=True)
    finally:
        lst.send_signal(signal.SIGTERM)
        lst.wait()
    return (time.monotonic() - t0) * 1000, seen


def full_rootlesskit(tmp: str) -> tuple[float, str]:
    """real-stack.md's cycle: start rootlesskit + server → one request → stop."""
    from rootless_doctor.probe import LISTENER

    port = _free_port()
    state = tempfile.mkdtemp(dir=tmp)
    t0 = time.monotonic()
    rk = subprocess.Popen(
        ["rootlesskit", "--net=slirp4netns", "--port-driver=builtin", "--disable-host-loopback",
         f"--state-dir={state}/s", f"--publish={SRC}:{port}:{port}/tcp",
         "/usr/bin/python3", "-I", "-S", "-c", LISTENER, str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        seen = _request(port, t0 + 20)
    finally:
        rk.send_signal(signal.SIGTERM)
        rk.wait()
    return (time.monotonic() - t0) * 1000, seen


def one_probe(engine: str) -> tuple[float, str]:
    from rootless_doctor import host, probe

    t0 = time.monotonic()
    r = probe.probe(engine, image=None, port=None, source=SRC, paths=host.default_paths())
    if not r.ran:
        raise RuntimeError(r.error)
    return (time.monotonic() - t0) * 1000, r.observed


def one_cli(cli: list[str], engine: str) -> tuple[float, str]:
    """The whole CLI process: start-up, Typer, probe, expected verdict, JSON out."""
    t0 = time.monotonic()
    cp = subprocess.run(
        [*cli, "--engine", engine, "--source", SRC, "--json"], capture_output=True, text=True
    )
    ms = (time.monotonic() - t0) * 1000
    try:
        probes = json.loads(cp.stdout)["probes"]
    except ValueError:
        raise RuntimeError(f"CLI exited {cp.returncode}: {cp.stderr.strip()}") from None
    if not all(p["ran"] for p in probes):
        raise RuntimeError(f"CLI could not probe: {[p['error'] for p in probes]}")
    # The expected verdict must have been folded in (else the CLI skipped check's half).
    if any(p["expected"] is None for p in probes):
        raise RuntimeError(f"CLI gave no expected verdict: {probes}")
    return ms, ",".join(p["observed"] for p in probes)


def worker(engine: str, n: int, state_dir: str, cli: list[str]) -> None:
    tmp = tempfile.mkdtemp(prefix="rd-bench-")
    times: dict[str, list[float]] = {}
    seen: dict[str, set[str]] = {}

    def rec(kind: str, res: tuple[float, str]) -> None:
        times.setdefault(kind, []).append(res[0])
        seen.setdefault(kind, set()).add(res[1])

    try:
        rootfs = ""
        if engine == "podman":
            rootfs = f"{tmp}/rootfs"
            for d in ("usr", "proc", "sys", "dev", "tmp", "etc"):
                os.makedirs(f"{rootfs}/{d}")
            for link in ("bin", "lib", "lib64", "sbin"):
                if os.path.islink(f"/{link}"):
                    os.symlink(os.readlink(f"/{link}"), f"{rootfs}/{link}")
        for i in range(n + 1):  # the first round warms caches and is dropped

            def raw() -> tuple[float, str]:
                return raw_podman(rootfs) if engine == "podman" else raw_rootlesskit(state_dir)

            runs = [("raw", raw), ("probe", lambda: one_probe(engine))]
            if engine == "rootlesskit":
                runs.append(("raw full (start rootlesskit)", lambda: full_rootlesskit(tmp)))
            if cli:
                runs.append(("cli end-to-end", lambda: one_cli(cli, engine)))
            if i % 2:
                runs.reverse()
            for kind, fn in runs:
                res = fn()
                if i:
                    rec(kind, res)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({k: {"ms": v, "seen": sorted(seen[k])} for k, v in times.items()}))


# ------------------------------------------------------------------------------ driver (root)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=15, help="runs of each kind (default 15)")
    ap.add_argument("--stacks", default="rootlesskit,podman")
    ap.add_argument(
        "--path",
        default="",
        help="directories put first on the user's PYTHONPATH, e.g. a `pip install --target` of "
        "the versions pyproject.toml pins when the venv has others",
    )
    ap.add_argument(
        "--worker", nargs=4, metavar=("ENGINE", "N", "STATE", "CLI"), help=argparse.SUPPRESS
    )
    a = ap.parse_args()
    if a.worker:
        engine, n, state, cli = a.worker
        worker(engine, int(n), state, json.loads(cli))
        return

    sys.path.insert(0, str(REPO / "tests"))
    import stack

    reason = stack.missing()
    if reason:
        sys.exit(f"bench: {reason}")
    u = stack.user()
    tmp = Path(tempfile.mkdtemp(prefix="rd-bench-code-"))
    try:
        shutil.copytree(REPO / "rootless_doctor", tmp / "rootless_doctor")
        shutil.copy(__file__, tmp / "bench_probe.py")
        site = next(Path("/opt/rdvenv/lib").glob("python3*/site-packages"))
        py = "/opt/rdvenv/bin/python"
        if stack.run_as(u, [py, "-c", "pass"]).returncode != 0:
            py = "/usr/bin/python3"  # the venv's interpreter may live under /root
        # Byte-compiled with the interpreter the user runs, as pip does on install: the user
        # cannot write __pycache__ here, and compiling on every start would be timed too.
        subprocess.run([py, "-m", "compileall", "-q", str(tmp / "rootless_doctor")], check=True)
        subprocess.run(["chmod", "-R", "a+rX", str(tmp)], check=True)
        pythonpath = ":".join(p for p in (str(tmp), a.path, str(site)) if p)
        env = stack.user_env(u, PYTHONPATH=pythonpath, PYTHONDONTWRITEBYTECODE="1")
        cli = (
            [os.environ["RD_TOOL"], "probe"]
            if os.environ.get("RD_TOOL")
            else [py, "-m", "rootless_doctor", "probe"]
        )
        results: dict[str, dict[str, dict[str, object]]] = {}
        with stack.client_netns():
            for engine in a.stacks.split(","):
                if engine == "rootlesskit":
                    with stack.rootlesskit(u, port_driver="builtin") as rk:
                        state = rk.state_dir
                        results[engine] = _work(stack, u, py, env, tmp, engine, a.n, state, cli)
                else:
                    results[engine] = _work(stack, u, py, env, tmp, engine, a.n, "", cli)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"runs per kind: {a.n} (after 1 warm-up round); medians in ms; client bound to {SRC}")
    print(f"CLI: {' '.join(cli)} --engine E --source {SRC} --json  (PYTHONPATH {pythonpath})")
    for engine, kinds in results.items():
        raw = statistics.median(kinds["raw"]["ms"])  # type: ignore[arg-type]
        for kind, d in kinds.items():
            ms = sorted(d["ms"])  # type: ignore[call-overload]
            med = statistics.median(ms)
            print(
                f"{engine:12} {kind:30} median {med:7.1f} (min {ms[0]:6.1f}, max {ms[-1]:6.1f})"
                f"  ratio to raw {med / raw:4.2f}  saw {d['seen']}"
            )
        full = kinds.get("raw full (start rootlesskit)")
        if full and "cli end-to-end" in kinds:
            cli_med = statistics.median(kinds["cli end-to-end"]["ms"])  # type: ignore[arg-type]
            ratio = cli_med / statistics.median(full["ms"])  # type: ignore[arg-type]
            print(f"{engine:12} {'cli / raw full':30} ratio {ratio:4.2f}")


def _work(stack, u, py, env, tmp, engine, n, state, cli):  # type: ignore[no-untyped-def]
    cp = stack.run_as(
        u, [py, str(tmp / "bench_probe.py"), "--worker", engine, str(n), state, json.dumps(cli)],
        env=env, timeout=3600,
    )  # fmt: skip
    if cp.returncode != 0:
        sys.exit(f"bench worker {engine} failed:\n{cp.stderr}")
    return json.loads(cp.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
