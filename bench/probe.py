"""Benchmark: ``rootless-doctor probe`` against the raw engine cycle, on every real stack
(target: probe / raw <= 1.5), and the failing probes' end times (target: <= 3 s with a reason).

Run as root on a machine prepared by ``.ci/setup-stack.sh`` (and ``.ci/roots.sh build`` for the
Debian roots; the roots' tool is ``RD_ROOT_TOOL_VENV``, default ``/opt/rootless-doctor``):

    RDSTACK_USER=rd-me python3 bench/probe.py [-n 7] [--stacks host:podman,sid:docker-pasta]
    RDSTACK_USER=rd-me python3 bench/probe.py --fail-cases [--stacks ...]

Stacks (``ROOT:SETUP``): ``host`` (Debian 12: Podman 4.3.1 default slirp4netns + rootlessport,
rootless dockerd 20.10 default slirp4netns + builtin, a standalone RootlessKit 1.1 builtin) and
``trixie``/``sid`` (Podman 5 default pasta; ``podman-net``: a user-defined network made the
default through ``CONTAINERS_CONF_OVERRIDE``; rootless dockerd with the launcher's defaults;
``docker-pasta``: ``NET=pasta PORT_DRIVER=implicit``).

The raw cycle is what a user does by hand for the same proof, with the same rootfs/image choice
the probe makes: ``podman run -d --rm -p P:P -v /usr:/usr:ro --rootfs DIR python3 LISTENER``
(``docker run ... IMAGE`` of an image imported once, not timed), connect from 10.200.0.1 until
the listener answers, ``podman rm -f -t0`` / ``docker rm -f``; for RootlessKit: a listener
``nsenter``-ed into its namespace, ``rootlessctl add-ports``, one request, ``remove-ports``.
The probe is the CLI as a fresh process, as the user, what the user waits for:
``rootless-doctor probe --engine E --source 10.200.0.1 --json`` (it also reads check's verdict);
"probe in-process" is ``probe.probe()`` alone, for where the time goes. Raw, CLI and in-process
alternate (order reversed every round), one warm-up round is dropped, medians printed, and the
load average before and after. The probe must see what the raw cycle saw.

``--fail-cases`` times the CLI on probes that cannot succeed, each of which must end with exit 2
and a one-line reason: the engine not running, an image that cannot start, a listener that never
answers (an image whose entrypoint sleeps), a port refused and a port whose traffic is dropped (an
nftables rule of this bench on 10.200.0.1:PORT only, removed afterwards), and on ``docker-pasta``
a port inside ip_local_port_range. Traffic goes only to 10.200.0.1, the test veth's address.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SRC = "10.200.0.1"
SETUPS = {
    "host": ("podman", "docker", "rootlesskit"),
    "trixie": ("podman", "podman-net", "docker", "docker-pasta"),
    "sid": ("podman", "podman-net", "docker", "docker-pasta"),
}
NFT_TABLE = "rd_bench_probe"


# ------------------------------------------------------------------------------ worker (as user)


def _listener() -> str:
    from rootless_doctor.probe import LISTENER

    return LISTENER


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


def _low_port() -> int:
    """A free port below ip_local_port_range, chosen as the probe chooses (pasta implicit
    skips that range)."""
    from rootless_doctor.probe import pick_port

    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        first, last = (int(x) for x in f.read().split())
    return pick_port((first, last), None)


def _sh(argv: list[str]) -> str:
    cp = subprocess.run(argv, capture_output=True, text=True)
    if cp.returncode:
        raise RuntimeError(f"{' '.join(argv[:3])}: {cp.stderr.strip()[-300:]}")
    return cp.stdout


def raw_container(cli: str, target: list[str]) -> tuple[float, str]:
    """``CLI run -d --rm -p P:P`` of the listener → first answer → ``CLI rm -f``."""
    port = _low_port()
    name = f"rd-bench-{os.getpid()}"
    rm = [cli, "rm", "-f", *(["-t0"] if cli == "podman" else []), name]
    t0 = time.monotonic()
    _sh([cli, "run", "-d", "--rm", "--name", name, "-p", f"{port}:{port}", "-v", "/usr:/usr:ro",
         *target, "/usr/bin/python3", "-I", "-S", "-c", _listener(), str(port)])  # fmt: skip
    try:
        seen = _request(port, t0 + 20)
    finally:
        _sh(rm)
    return (time.monotonic() - t0) * 1000, seen


def raw_rootlesskit(state_dir: str) -> tuple[float, str]:
    port = _low_port()
    api = f"{state_dir}/api.sock"
    t0 = time.monotonic()
    child = Path(state_dir, "child_pid").read_text().strip()
    lst = subprocess.Popen(
        ["nsenter", "-U", "-n", "--preserve-credentials", "-t", child,
         "/usr/bin/python3", "-I", "-S", "-c", _listener(), "0"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert lst.stdout is not None
        cport = int(lst.stdout.readline())
        pid = _sh(["rootlessctl", "--socket", api, "add-ports", f"0.0.0.0:{port}:{cport}/tcp"])
        seen = _request(port, t0 + 20)
        _sh(["rootlessctl", "--socket", api, "remove-ports", pid.strip()])
    finally:
        lst.send_signal(signal.SIGTERM)
        lst.wait()
    return (time.monotonic() - t0) * 1000, seen


def one_inproc(engine: str) -> tuple[float, str]:
    from rootless_doctor import host, probe

    t0 = time.monotonic()
    r = probe.probe(engine, image=None, port=None, source=SRC, paths=host.default_paths())
    if not r.ran:
        raise RuntimeError(r.error)
    return (time.monotonic() - t0) * 1000, r.observed


def one_cli(cli: list[str], engine: str, *args: str) -> tuple[float, dict[str, Any], int]:
    """The whole CLI process: start-up, probe, check's expected verdict, JSON out."""
    t0 = time.monotonic()
    cp = subprocess.run(
        [*cli, "--engine", engine, "--source", SRC, "--json", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    ms = (time.monotonic() - t0) * 1000
    try:
        (p,) = json.loads(cp.stdout)["probes"]
    except ValueError:
        raise RuntimeError(f"CLI exited {cp.returncode}: {cp.stderr.strip()}") from None
    return ms, p, cp.returncode


def cli_ok(cli: list[str], engine: str) -> tuple[float, str]:
    ms, p, _ = one_cli(cli, engine)
    if not p["ran"]:
        raise RuntimeError(f"CLI could not probe: {p['error']}")
    return ms, f"{p['observed']} (check expected {p['expected']})"


def worker(spec: dict[str, Any]) -> None:
    if spec.get("fail"):
        fail_worker(spec)
        return
    engine, kind, n, cli = spec["engine"], spec["kind"], spec["n"], spec["cli"]
    times: dict[str, list[float]] = {}
    seen: dict[str, set[str]] = {}

    def raw() -> tuple[float, str]:
        if engine == "rootlesskit":
            return raw_rootlesskit(spec["state_dir"])
        target = ["--rootfs", spec["rootfs"]] if engine == "podman" else [spec["image"]]
        return raw_container(engine, target)

    runs = [("raw", raw), ("probe CLI", lambda: cli_ok(cli, engine))]
    if spec["inproc"]:
        runs.append(("probe in-process", lambda: one_inproc(engine)))
    for i in range(n + 1):  # the first round warms caches and is dropped
        for what, fn in runs if i % 2 else runs[::-1]:
            ms, saw = fn()
            if i:
                times.setdefault(what, []).append(ms)
                seen.setdefault(what, set()).add(saw)
    print(json.dumps({"kind": kind, "ms": times, "seen": {k: sorted(v) for k, v in seen.items()}}))


def fail_worker(spec: dict[str, Any]) -> None:
    out = []
    for case, engine, args in spec["cases"]:
        ms, p, code = one_cli(spec["cli"], engine, *args)
        out.append({"case": case, "ms": ms, "code": code, "ran": p["ran"], "error": p["error"]})
    print(json.dumps(out))


# ------------------------------------------------------------------------------ driver (root)


def _stack() -> Any:
    sys.path.insert(0, str(REPO / "tests"))
    import stack

    return stack


@contextmanager
def _code_for(u: Any) -> Iterator[tuple[str, list[str], dict[str, str]]]:
    """(python, CLI argv prefix, extra env) that run this checkout's tool (host) or the root's
    installed tool, as ``u``; the bench file is copied where ``u`` can read it."""
    stack = _stack()
    tmp = Path(tempfile.mkdtemp(prefix="rd-bench-code-", dir=u.host_path("/tmp")))
    try:
        shutil.copy(__file__, tmp / "bench_probe.py")
        env: dict[str, str] = {}
        if u.root:
            import roots

            py = f"{roots.TOOL_VENV}/bin/python3"
            cli = [roots.TOOL, "probe"]
        else:
            shutil.copytree(REPO / "rootless_doctor", tmp / "rootless_doctor")
            site = next(Path(sys.prefix, "lib").glob("python3*/site-packages"))
            py = sys.executable
            if stack.run_as(u, [py, "-c", "pass"]).returncode != 0:
                py = "/usr/bin/python3"  # the venv's interpreter may live under /root
            # Byte-compiled with the user's interpreter, as pip does on install.
            subprocess.run([py, "-m", "compileall", "-q", str(tmp / "rootless_doctor")], check=True)
            env = {"PYTHONPATH": f"{u.inside(tmp)}:{site}", "PYTHONDONTWRITEBYTECODE": "1"}
            cli = [py, "-m", "rootless_doctor", "probe"]
        subprocess.run(["chmod", "-R", "a+rX", str(tmp)], check=True)
        yield py, cli, {**env, "RD_BENCH_FILE": u.inside(tmp / "bench_probe.py")}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


PASTA_IMPLICIT = {
    "DOCKERD_ROOTLESS_ROOTLESSKIT_NET": "pasta",
    "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER": "implicit",
}
NET_CONF = '[containers]\nnetns = "bridge"\n\n[network]\ndefault_network = "rdbench-net"\n'
HANG = "rdbench-hang"  # an image whose entrypoint sleeps: the listener never answers


@contextmanager
def _setup(u: Any, kind: str) -> Iterator[dict[str, Any]]:
    """The engine of ``kind`` running as ``u``: env, state dir, rootfs/image for the raw cycle."""
    stack = _stack()
    spec: dict[str, Any] = {"kind": kind, "engine": kind.split("-")[0]}
    with ExitStack() as done:
        if kind.startswith("podman"):
            spec["env"] = stack.user_env(u, PODMAN_IGNORE_CGROUPSV1_WARNING="1")
            spec["rootfs"] = stack.rootfs(u)
            if kind == "podman-net":
                stack.podman(u, "network", "create", "rdbench-net")
                done.callback(stack.podman, u, "network", "rm", "-f", "rdbench-net")
                conf = stack._user_tmpdir(u, "rd-bench-conf-")
                done.callback(shutil.rmtree, conf, ignore_errors=True)
                (conf / "containers.conf").write_text(NET_CONF)
                os.chmod(conf, 0o755)
                spec["env"]["CONTAINERS_CONF_OVERRIDE"] = u.inside(conf / "containers.conf")
            done.callback(stack.podman_reset, u)
            _hang_image(u, ["podman"], spec["env"], spec["rootfs"])
        elif kind.startswith("docker"):
            extra = PASTA_IMPLICIT if kind == "docker-pasta" else None
            d = done.enter_context(
                stack.rootless_dockerd(u, port_driver=None, net=None, extra_env=extra)
            )
            spec["env"], spec["image"] = dict(d.env), stack.DOCKER_IMAGE
            _hang_image(u, ["docker"], spec["env"], stack.rootfs(u))
        else:
            rk = done.enter_context(stack.rootlesskit(u, port_driver="builtin"))
            spec["env"], spec["state_dir"] = stack.user_env(u), rk.state_dir
        yield spec


def _hang_image(u: Any, cli: list[str], env: dict[str, str], rootfs: str) -> None:
    """``rdbench-hang``: the tests' rootfs plus /hang (sleeps) as its entrypoint."""
    stack = _stack()
    script = (
        'set -e; t=$(mktemp -d); cp -a "$1"/. "$t"; printf "#!/bin/sh\\nexec sleep 600\\n" '
        '>"$t/hang"; chmod 755 "$t/hang"; tar -C "$t" -cf - . | "$2" import '
        '--change \'ENTRYPOINT ["/hang"]\' - "$3" >/dev/null; rm -rf "$t"'
    )
    cp = stack.run_as(u, ["sh", "-c", script, "sh", rootfs, cli[0], HANG], env=env, timeout=120)
    if cp.returncode:
        raise RuntimeError(f"{cli[0]} import {HANG}: {cp.stderr.strip()}")


@contextmanager
def _nft(rule: str) -> Iterator[None]:
    """A rule on this bench's own table (output hook, 10.200.0.1:PORT only), removed after."""
    table = (
        f"table inet {NFT_TABLE} {{\n chain out {{\n"
        f"  type filter hook output priority 0; policy accept;\n  {rule}\n }}\n}}\n"
    )
    subprocess.run(["nft", "-f", "-"], input=table, text=True, check=True)
    try:
        yield
    finally:
        subprocess.run(["nft", "delete", "table", "inet", NFT_TABLE], check=False)


def _free_low_port() -> int:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        start = int(f.read().split()[0])
    return random.randrange(max(1024, start - 8192), start)


def _run_worker(u: Any, py: str, code_env: dict[str, str], spec: dict[str, Any]) -> Any:
    stack = _stack()
    env = {**spec.pop("env"), **code_env}
    argv = [py, code_env["RD_BENCH_FILE"], "--worker", json.dumps(spec)]
    cp = stack.run_as(u, argv, env=env, timeout=3600)
    if cp.returncode != 0:
        sys.exit(f"bench worker {spec['kind']} failed:\n{cp.stderr[-3000:]}")
    return json.loads(cp.stdout.strip().splitlines()[-1])


def _fail_cases(u: Any, py: str, cli: list[str], code_env: dict[str, str], spec: dict[str, Any],
                root: str) -> list[dict[str, Any]]:  # fmt: skip
    """Each failing case of this stack, as the CLI runs it; the nft rules set around each."""
    engine, kind = spec["engine"], spec["kind"]
    results: list[dict[str, Any]] = []

    def case(name: str, args: list[str], rule: str | None = None) -> None:
        one = {**spec, "fail": True, "cli": cli, "cases": [(name, engine, args)]}
        with _nft(rule) if rule else ExitStack():
            results.extend(_run_worker(u, py, code_env, one))

    if engine != "rootlesskit":
        case("image that cannot start", ["--image", "localhost/rd-bench-no-such-image"])
        case("listener never answers", ["--image", HANG])
    port = _free_low_port()
    case("port refused", ["--port", str(port)],
         f"ip daddr {SRC} tcp dport {port} reject with tcp reset")  # fmt: skip
    port = _free_low_port()
    case("path drops traffic", ["--port", str(port)], f"ip daddr {SRC} tcp dport {port} drop")
    if kind == "docker-pasta" and root == "sid":  # passt 2025-05 (trixie) forwards it
        case("port in ip_local_port_range", ["--port", str(_stack().free_port())])
    return results


def _not_running_cases(u: Any, py: str, cli: list[str], code_env: dict[str, str],
                       root: str) -> list[tuple[str, dict[str, Any]]]:  # fmt: skip
    """The engine not running: rootless dockerd (its socket absent), a standalone RootlessKit."""
    stack = _stack()
    out = []
    env = stack.user_env(u, DOCKER_HOST=f"unix://{u.runtime_dir}/docker.sock")
    kinds = [("docker", "docker")] + ([("rootlesskit", "rootlesskit")] if root == "host" else [])
    for kind, engine in kinds:
        spec = {"kind": kind, "engine": engine, "env": env, "fail": True, "cli": cli,
                "cases": [("engine not running", engine, [])]}  # fmt: skip
        out += [(kind, r) for r in _run_worker(u, py, code_env, spec)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=7, help="runs of each kind (default 7)")
    ap.add_argument(
        "--stacks",
        default=",".join(f"{r}:{k}" for r, ks in SETUPS.items() for k in ks),
        help="ROOT:SETUP,... (default: all)",
    )
    ap.add_argument("--no-inproc", action="store_true", help="skip probe.probe() in-process")
    ap.add_argument("--fail-cases", action="store_true", help="time the failing probes instead")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(json.loads(a.worker))
        return
    stack = _stack()
    import roots

    wanted: dict[str, list[str]] = {}
    for item in a.stacks.split(","):
        root, _, kind = item.partition(":")
        if root not in SETUPS or kind not in SETUPS[root]:
            sys.exit(f"bench: unknown stack {item!r} (known: {SETUPS})")
        wanted.setdefault(root, []).append(kind)
    for root in wanted:
        reason = stack.missing() if root == "host" else roots.missing(root)
        if reason:
            sys.exit(f"bench: {reason}")
    load0 = os.getloadavg()
    rows: list[str] = []
    with stack.client_netns():
        for root, kinds in wanted.items():
            u = stack.user() if root == "host" else roots.user(root)
            with _code_for(u) as (py, cli, code_env):
                if a.fail_cases:
                    for kind, r in _not_running_cases(u, py, cli, code_env, root):
                        rows.append(_fail_row(root, kind, r))
                        print(rows[-1], flush=True)
                for kind in kinds:
                    with _setup(u, kind) as spec:
                        if a.fail_cases:
                            for r in _fail_cases(u, py, cli, code_env, spec, root):
                                rows.append(_fail_row(root, kind, r))
                                print(rows[-1], flush=True)
                            continue
                        spec.update(n=a.n, cli=cli, inproc=not a.no_inproc)
                        res = _run_worker(u, py, code_env, spec)
                        rows.append(_row(root, kind, res))
                        print(rows[-1], flush=True)
    load1 = os.getloadavg()
    print(
        f"\nload average before {load0[0]:.2f}/{load0[1]:.2f}, after {load1[0]:.2f}/{load1[1]:.2f}"
        f" (2 cores shared); CLI: rootless-doctor probe --engine E --source {SRC} --json"
    )
    print("\n".join(rows))


def _row(root: str, kind: str, res: dict[str, Any]) -> str:
    med = {k: statistics.median(v) for k, v in res["ms"].items()}
    raw = med["raw"]
    parts = [f"{root:6} {kind:12} raw {raw:6.0f} ms"]
    for k in ("probe CLI", "probe in-process"):
        if k in med:
            parts.append(f"{k} {med[k]:6.0f} ms ({med[k] / raw:4.2f}x)")
    parts.append(f"n={len(res['ms']['raw'])}; saw {res['seen']}")
    return " | ".join(parts)


def _fail_row(root: str, kind: str, r: dict[str, Any]) -> str:
    ok = r["code"] == 2 and not r["ran"] and r["ms"] <= 3000
    return (f"{root:6} {kind:12} {r['case']:28} {r['ms']:6.0f} ms exit {r['code']} "
            f"{'OK ' if ok else 'BAD'} {r['error'][:160]}")  # fmt: skip


if __name__ == "__main__":
    main()
