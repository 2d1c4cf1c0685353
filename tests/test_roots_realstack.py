"""check, probe and fix on the engines users run today: Debian trixie and sid roots (issue 7).

Each test runs once per root (.ci/roots.sh; tests/roots.py): trixie (Podman 5.4.2, Docker 26.1.5,
RootlessKit 2.0.2, passt 2025-05-03, Python 3.13) and sid (Podman 5.8.6, Docker 28.5.2,
RootlessKit 2.0.2, passt 2026-10-02, Python 3.14). The engines and the tool -- installed in the
root by the root's own python3 -- run as the root's unprivileged user; the client is in the
test's own network namespace (10.200.0.2) or bound to the host side of its veth (10.200.0.1).
Every verdict is compared with what a server inside really saw.

Without the roots these tests skip with the reason (`sudo bash .ci/roots.sh build`); in CI
(CI=true) they fail instead.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import random
import re
import shlex
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import rdtool
import roots
import stack
import test_fix_realstack as fixflow  # the unit, compose file and image of the host's fix tests

from rootless_doctor import knowledge, parse

pytestmark = pytest.mark.realstack

SRC = stack.HOST_ADDR  # 10.200.0.1: the probe's source, on the test's veth

# What each root packages (modern-stack.md): check must read these.
VERSIONS = {
    "trixie": {"podman": "5.4.2", "docker": "26.1.5", "rootlesskit": "2.0.2"},
    "sid": {"podman": "5.8.6", "docker": "28.5.2", "rootlesskit": "2.0.2"},
}
PODMAN_NET = "rdroot-net"
BRIDGE_NET = ipaddress.ip_network("10.89.0.0/16")  # netavark's user-defined networks


@pytest.fixture(scope="module", params=roots.ROOTS)
def ru(request: pytest.FixtureRequest) -> stack.User:
    """The stack user inside one root; idle at the start (leftovers are checked after each)."""
    roots.require(request.param)
    u = roots.user(request.param)
    if busy := stack.leftovers(u, wait=0):
        pytest.fail(f"{u.name} in {u.root} is busy before the tests (a leak?): {busy}")
    return u


@pytest.fixture
def ns() -> Iterator[stack.Netns]:
    with stack.client_netns() as n:
        yield n


def root_of(u: stack.User) -> str:
    return u.root.rsplit("/", 1)[1]


def engine(report: dict[str, Any], name: str) -> dict[str, Any]:
    found = [e for e in report["engines"] if e["engine"] == name]
    assert len(found) == 1, [e["engine"] for e in report["engines"]]
    return found[0]


def result(report: dict[str, Any], check_id: str) -> dict[str, Any]:
    found = [c for c in report["checks"] if c["id"] == check_id]
    assert len(found) == 1, [c["id"] for c in report["checks"]]
    return found[0]


def container(eng: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in eng["containers"] if c["name"] == name]
    assert len(found) == 1, eng["containers"]
    return found[0]


def assert_seen(entry: dict[str, Any], seen: str, ns: stack.Netns) -> None:
    """The address ``check`` says the server will see (``seen_address``) is the one it saw."""
    said = str(entry.get("seen_address") or "")
    assert said, f"no seen_address in {entry}"
    if seen == ns.client_addr:
        assert said.startswith((seen, "the client")), (said, seen, entry)
    elif ipaddress.ip_address(seen) in BRIDGE_NET:
        assert said.startswith(("10.89.", seen)), (said, seen, entry)
    else:
        assert said.split()[0] == seen, (said, seen, entry)


def probe_json(u: stack.User, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``probe --source 10.200.0.1 --json ARGS`` as ``u``; the one probe result."""
    t0 = time.monotonic()
    cp = rdtool.run(u, "probe", "--source", SRC, "--json", *args, env=env)
    took = time.monotonic() - t0
    try:
        data = json.loads(cp.stdout)
    except ValueError:
        pytest.fail(f"probe {args}: no JSON (exit {cp.returncode}, {took:.1f} s):\n"
                    f"{cp.stdout}\n{cp.stderr}")  # fmt: skip
    probes = data["probes"]
    assert len(probes) == 1, probes
    p: dict[str, Any] = probes[0]
    assert p["ran"] is True, f"probe {args} did not run ({took:.1f} s): {p}"
    assert cp.returncode == (0 if p["verdict"] == "preserved" else 1), cp.stderr
    return p


def idle(u: stack.User) -> None:
    """Stop podman's pause process (any podman command, check's too, starts it); assert nothing
    of the user is left."""
    stack.podman_reset(u)
    assert stack.leftovers(u) == []


# --------------------------------------------------------------------------------------------
# Podman


def test_podman_default_network(ru: stack.User, ns: stack.Netns) -> None:
    """``podman run -p`` on Podman 5: pasta, client kept; check and probe say so."""
    want = VERSIONS[root_of(ru)]
    try:
        with stack.podman_container(ru, network=None, name="rdroot-pasta") as c:
            seen = stack.ask_from_netns(ns, ns.host_addr, c.host_port)
            report = rdtool.check_json(ru)
        assert seen == ns.client_addr  # modern-stack.md: pasta keeps the client
        podman = engine(report, "podman")
        assert podman["version"] == want["podman"]
        assert podman["network_driver"] == "pasta"
        assert podman["source_ip_preserved"] is True
        mine = container(podman, "rdroot-pasta")
        assert mine["source_ip_preserved"] is (seen == ns.client_addr), mine
        assert_seen(mine, seen, ns)

        p = probe_json(ru, "--engine", "podman")
        assert (p["verdict"], p["observed"]) == ("preserved", SRC), p
        assert p["agrees_with_check"] is True, p
    finally:
        idle(ru)


def test_podman_user_defined_network(ru: stack.User, ns: stack.Netns) -> None:
    """A user-defined network (netavark bridge): rootlessport, the server sees 10.89.x: lost."""
    made = stack.podman(ru, "network", "create", PODMAN_NET)
    assert made.returncode == 0, made.stderr
    try:
        with stack.podman_container(ru, network=PODMAN_NET, name="rdroot-bridge") as c:
            seen = stack.ask_from_netns(ns, ns.host_addr, c.host_port)
            report = rdtool.check_json(ru)
        assert ipaddress.ip_address(seen) in BRIDGE_NET, seen
        mine = container(engine(report, "podman"), "rdroot-bridge")
        assert mine["port_handler"] == "rootlessport", mine
        assert mine["source_ip_preserved"] is (seen == ns.client_addr) is False, mine
        assert_seen(mine, seen, ns)
    finally:
        stack.podman(ru, "network", "rm", "-f", PODMAN_NET)
        idle(ru)


# --------------------------------------------------------------------------------------------
# Rootless Docker: default → check, probe say lost → fix docker → restart → kept


def ephemeral_start() -> int:
    """The first port of the kernel's ephemeral range (net.ipv4.ip_local_port_range)."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        return int(f.read().split()[0])


def low_port() -> int:
    """A TCP port free on the host and below the ephemeral range: pasta's automatic forwarding
    (RootlessKit ``implicit``) skips ephemeral ports from passt 2026_05_07 on (modern-stack.md)."""
    start = ephemeral_start()
    for port in random.sample(range(max(1024, start - 8192), start), 64):
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise stack.StackError(f"no free port below {start}")


def user_file(u: stack.User, path: str, text: str) -> None:
    """Write ``text`` to ``path`` (as ``u`` sees it) as ``u`` would, parents included."""
    cp = stack.run_as(u, ["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat >"$1"', "sh", path],
                      input=text)  # fmt: skip
    assert cp.returncode == 0, cp.stderr


def tool_ok(u: stack.User, *args: str) -> str:
    cp = rdtool.run(u, *args)
    assert cp.returncode == 0, f"rootless-doctor {' '.join(args)}: {cp.stdout}{cp.stderr}"
    return cp.stdout


@contextmanager
def dockerd_as_systemd_would(u: stack.User) -> Iterator[stack.RootlessDockerd]:
    """``systemctl --user (re)start docker`` without systemd: the unit's launcher with the unit's
    and drop-ins' ``Environment=`` (parse.unit_environment, systemd's order) and nothing else."""
    d = u.host_path(f"{u.home}/{fixflow.UNIT_DIR}")
    files = [d / "docker.service", *sorted((d / "docker.service.d").glob("*.conf"))]
    texts = [(u.inside(f), f.read_text()) for f in files if f.is_file()]
    assert parse.unit_exec_start(texts[0][1]) == fixflow.LAUNCHER
    env = parse.unit_environment(texts)
    with stack.rootless_dockerd(u, port_driver=None, net=None, extra_env=env) as dockerd:
        yield dockerd


def test_docker_fix(ru: stack.User, ns: stack.Netns) -> None:
    want = VERSIONS[root_of(ru)]
    unit, dropin = f"{ru.home}/{fixflow.UNIT}", f"{ru.home}/{fixflow.DROPIN}"
    assert not ru.host_path(dropin).exists(), f"{dropin}: left by an interrupted run"
    user_file(ru, unit, fixflow.USER_UNIT)
    port = low_port()
    try:
        with dockerd_as_systemd_would(ru) as d:
            d.run(port)
            seen = stack.ask_from_netns(ns, ns.host_addr, port)
            assert seen == "172.17.0.1"  # docker-proxy re-dials from the bridge gateway
            report = rdtool.check_json(ru)
            docker = engine(report, "docker")
            assert docker["version"].startswith(want["docker"]), docker
            assert docker["rootlesskit_version"] == want["rootlesskit"], docker
            drivers = (docker["network_driver"], docker["port_driver"])
            assert drivers == ("slirp4netns", "builtin"), docker  # the launcher's default
            assert docker["source_ip_preserved"] is False, docker
            (mine,) = docker["containers"]
            assert mine["source_ip_preserved"] is False, mine
            assert_seen(docker, seen, ns)
            assert_seen(mine, seen, ns)

            d.remove_containers()
            p = probe_json(ru, "--engine", "docker", env=d.env)
            assert (p["verdict"], p["observed"]) == ("lost", "172.17.0.1"), p
            assert p["agrees_with_check"] is True, p

            out = tool_ok(ru, "fix", "docker")
            assert f"wrote {dropin} (new file)" in out, out
            # No systemd user manager in a root: the next step is the dockerd-rootless.sh
            # restart with the drop-in's settings (what dockerd_as_systemd_would does below).
            assert "no systemd user manager here" in out, out
            launch = re.search(r"^  mkdir -p \S+ && (DOCKERD_ROOTLESS_\S+ )+nohup \S+", out, re.M)
            assert launch and "dockerd-rootless.sh" in launch.group(0), out

        # "systemctl --user daemon-reload && systemctl --user restart docker"
        with dockerd_as_systemd_would(ru) as d:
            configured = {k: v for k, v in d.env.items() if k.startswith("DOCKERD_ROOTLESS_")}
            # The probe picks its own port: one every driver forwards (sid: passt 2026-10-02's
            # automatic forwarding skips the ephemeral range).
            p = probe_json(ru, "--engine", "docker", env=d.env)
            assert (p["verdict"], p["observed"]) == ("preserved", SRC), (configured, p)
            assert p["agrees_with_check"] is True, p

            # What fix docker chose with RootlessKit 2 and a current pasta: pasta's automatic
            # forwarding, which passt 2026-10-02 (sid) never applies to an ephemeral port
            # (passt 2025-05-03, trixie, does). One container below the range, one inside it.
            assert configured["DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER"] == "implicit", configured
            high = stack.free_port()
            assert high >= ephemeral_start() > port
            low_name = d.docker("inspect", "--format", "{{.Name}}", d.run(port)).stdout
            high_name = d.docker("inspect", "--format", "{{.Name}}", d.run(high)).stdout
            seen = stack.ask_from_netns(ns, ns.host_addr, port)
            assert seen == ns.client_addr, configured
            try:
                seen_high = stack.ask_from_netns(ns, ns.host_addr, high, timeout=5)
            except stack.StackError as e:
                assert "Connection refused" in str(e), e
                seen_high = ""
            report = rdtool.check_json(ru)
            docker = engine(report, "docker")
            assert docker["source_ip_preserved"] is True, (configured, docker)
            mine = container(docker, low_name.strip().lstrip("/"))
            assert mine["source_ip_preserved"] is True, mine
            assert_seen(docker, seen, ns)
            assert_seen(mine, seen, ns)
            # The container on the ephemeral port: its verdict is what its client got.
            theirs = container(docker, high_name.strip().lstrip("/"))
            if seen_high:
                assert theirs["source_ip_preserved"] is True, theirs
                assert_seen(theirs, seen_high, ns)
            else:
                refused = (False, knowledge.SEEN_REFUSED)
                assert (theirs["source_ip_preserved"], theirs["seen_address"]) == refused, theirs

            c = result(report, "PASTA-EPHEMERAL-PORT")
            if seen_high:
                assert seen_high == ns.client_addr
                assert c["status"] != "fail", c
            else:
                assert c["status"] == "fail", c
                assert str(high) in c["detail"] and str(port) not in c["detail"], c
                assert c["remedy"], c
            assert (root_of(ru) == "sid") is (seen_high == ""), "passt's behaviour per root changed"

        out = tool_ok(ru, "fix", "--undo")
        assert out.strip() == f"removed (the fix created it): {dropin}", out
        assert not ru.host_path(dropin).exists()
    finally:
        ru.host_path(unit).unlink(missing_ok=True)
        ru.host_path(dropin).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # only if the fix left it empty
            ru.host_path(dropin).parent.rmdir()
        forget_fixes(ru)
        idle(ru)


# --------------------------------------------------------------------------------------------
# Podman: a compose service on its project's bridge network → fix compose → podman-compose → kept


def test_fix_compose(ru: stack.User, ns: stack.Netns) -> None:
    tmp = stack._user_tmpdir(ru, "rd-compose-")
    f = f"{ru.inside(tmp)}/compose.yaml"
    port = low_port()
    original = fixflow.COMPOSE.format(
        image=fixflow.IMAGE, server=json.dumps(stack.PEER_SERVER), port=port
    )
    user_file(ru, f, original)
    compose = [roots.PODMAN_COMPOSE, "-f", f]
    try:
        with fixflow.local_image(ru):
            cp = stack.run_as(ru, [*compose, "up", "-d"])
            assert cp.returncode == 0, cp.stdout + cp.stderr
            seen = stack.ask_from_netns(ns, ns.host_addr, port)
            assert ipaddress.ip_address(seen) in BRIDGE_NET, seen  # rootlessport: lost
            before = rdtool.check_json(ru, "--compose", f)
            assert result(before, "COMPOSE-NETWORK-MODE")["status"] == "fail"
            peer = container(engine(before, "podman"), "rdfix-peer")
            assert peer["source_ip_preserved"] is False, peer
            assert_seen(peer, seen, ns)

            out = tool_ok(ru, "fix", "compose", f)
            fixed = (tmp / "compose.yaml").read_text()
            assert fixed != original and "network_mode:" in fixed, out
            m = re.search(r"^next: (.*)$", out, re.M)
            assert m, out
            step = shlex.split(m.group(1))
            # The step names podman-compose or `podman compose`: run it with the root's one.
            assert "--force-recreate" in step, step
            args = step[step.index("-f") :]
            cp = stack.run_as(ru, [roots.PODMAN_COMPOSE, *args])
            assert cp.returncode == 0, cp.stdout + cp.stderr

            seen = stack.ask_from_netns(ns, ns.host_addr, port)
            assert seen == ns.client_addr, fixed
            after = rdtool.check_json(ru, "--compose", f)
            assert result(after, "COMPOSE-NETWORK-MODE")["status"] == "ok"
            peer = container(engine(after, "podman"), "rdfix-peer")
            assert peer["source_ip_preserved"] is True, peer
            assert_seen(peer, seen, ns)

            tool_ok(ru, "fix", "undo", f)
            assert (tmp / "compose.yaml").read_text() == original
            cp = stack.run_as(ru, [*compose, "down", "-t", "0"])
            assert cp.returncode == 0, cp.stdout + cp.stderr
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        forget_fixes(ru)
        idle(ru)


def forget_fixes(ru: stack.User) -> None:
    """The tool's state dir (lock, empty manifest, backups) that `fix` and `fix --undo` leave in
    the user's home: the test made it, the test removes it."""
    shutil.rmtree(ru.host_path(f"{ru.home}/.local/state/rootless-doctor"), ignore_errors=True)
