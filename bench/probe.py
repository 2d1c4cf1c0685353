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

Also timed, end to end: the CLI (``probe --engine E --json``) as a fresh process, which adds Python
start-up and the engine detection (``host.gather``). Prints medians and probe/raw ratios.
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
            if i % 2:
                runs.reverse()
            for kind, fn in runs:
                res = fn()
                if i:
                    rec(kind, res)
            if cli and i and i <= 5:
                t0 = time.monotonic()
                cp = subprocess.run(
                    [*cli, "--engine", engine, "--source", SRC, "--json"],
                    capture_output=True, text=True,
                )  # fmt: skip
                data = json.loads(cp.stdout)
                rec(
                    "cli end-to-end",
                    ((time.monotonic() - t0) * 1000, data["probes"][0]["observed"]),
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({k: {"ms": v, "seen": sorted(seen[k])} for k, v in times.items()}))


# ------------------------------------------------------------------------------ driver (root)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=15, help="runs of each kind (default 15)")
    ap.add_argument("--stacks", default="rootlesskit,podman")
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
        subprocess.run(["chmod", "-R", "a+rX", str(tmp)], check=True)
        site = next(Path("/opt/rdvenv/lib").glob("python3*/site-packages"))
        py = "/opt/rdvenv/bin/python"
        if stack.run_as(u, [py, "-c", "pass"]).returncode != 0:
            py = "/usr/bin/python3"  # the venv's interpreter may live under /root
        env = stack.user_env(u, PYTHONPATH=f"{tmp}:{site}", PYTHONDONTWRITEBYTECODE="1")
        snippet = (
            "import typer; from rootless_doctor.cli_probe import probe_command as c; "
            "a = typer.Typer(add_completion=False); a.command()(c); a()"
        )
        cli = [os.environ["RD_TOOL"], "probe"] if os.environ.get("RD_TOOL") else [py, "-c", snippet]
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
    print(f"runs per kind: {a.n} (CLI: 5); medians in ms; client bound to {SRC}")
    for engine, kinds in results.items():
        raw = statistics.median(kinds["raw"]["ms"])  # type: ignore[arg-type]
        for kind, d in kinds.items():
            med = statistics.median(d["ms"])  # type: ignore[arg-type]
            print(
                f"{engine:12} {kind:30} median {med:7.1f}  ratio to raw {med / raw:4.2f}"
                f"  saw {d['seen']}"
            )


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
