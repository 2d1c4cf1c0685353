"""``probe --throughput`` on real engines: Debian 12's Podman 4.3.1 and rootless dockerd 20.10 on
the host, Podman 5.4 / 5.8 and Docker 28 with pasta in the trixie/sid roots (tests/roots.py).

The tool runs as the stack user with ``--source 10.200.0.1`` (the host side of the test's own veth,
:func:`stack.client_netns`); sending lasts 0.3 s per path to keep CI short (speed is measured in
bench/dataplane.py, not here). Asserted: each measured path counted bytes that ARRIVED (> 0, at
most what was sent), the address the sink saw is the one the plain probe saw on the same default
path (kept/lost agree), the paths a host lacks say why, a path made to fail ends with its reason,
and nothing the run started is left (containers, networks, rootfs dirs, images, processes).
"""

from __future__ import annotations

import ipaddress
import json
import signal
import socket
import subprocess
import time
from typing import Any

import pytest
import rdtool
import roots
import stack

pytestmark = pytest.mark.realstack

SRC = stack.HOST_ADDR  # 10.200.0.1: made by the test, never the machine's own address
SECONDS = "0.3"
BRIDGE_NET = ipaddress.ip_network("10.89.0.0/16")  # netavark's user-defined networks


def run_json(
    u: stack.User, *args: str, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    argv = ["probe", "--source", SRC, "--json", "--throughput", "--seconds", SECONDS, *args]
    t0 = time.monotonic()
    cp = rdtool.run(u, *argv, env=env, timeout=200)
    took = time.monotonic() - t0
    try:
        data: dict[str, Any] = json.loads(cp.stdout)
    except ValueError:
        pytest.fail(f"no JSON (exit {cp.returncode}, {took:.1f} s):\n{cp.stdout}\n{cp.stderr}")
    assert data["schema_version"] == 1
    assert data["throughput"]["seconds_per_path"] == float(SECONDS)
    return cp.returncode, data


def paths(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["key"]: p for p in data["throughput"]["paths"]}


def assert_measured(p: dict[str, Any], kept: bool) -> None:
    assert p["outcome"] == "measured", p
    assert 0 < p["bytes_received"] <= p["bytes_sent"], p
    assert p["gbit_s"] and p["gbit_s"] > 0 and p["seconds"] > 0, p
    assert p["source"] == SRC and p["source_ip_preserved"] is kept, p
    assert (p["observed"] == SRC) is kept, p
    assert p["error"] == "", p


def marks(u: stack.User) -> set[str]:
    """What a throughput run could leave: the user's processes (less podman's shared pause
    process), the probe's podman containers and networks, its rootfs dirs."""
    found = {x for x in stack.leftovers(u, wait=0) if "catatonit" not in x}
    ps = stack.podman(u, "ps", "-a", "--filter", "label=io.github.rootless-doctor.probe",
                      "--format", "{{.Names}}")  # fmt: skip
    found |= {f"container {n}" for n in ps.stdout.split()}
    nets = stack.podman(u, "network", "ls", "--format", "{{.Name}}").stdout.split()
    found |= {f"network {n}" for n in nets if n.startswith("rd-probe-net")}
    found |= {  # the user's own: other sessions on a shared machine probe too
        f"dir {p}" for p in u.host_path("/tmp").glob("rd-probe-rootfs-*") if p.owner() == u.name
    }
    return found


def left_after(u: stack.User, before: set[str]) -> set[str]:
    deadline = time.monotonic() + 3  # helpers of a removed container exit asynchronously
    while (new := marks(u) - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    return new


@pytest.fixture
def host_user() -> stack.User:
    stack.require()
    u = stack.user()
    stack.podman_reset(u)
    return u


# --------------------------------------------------------------------------------------------
# the host: Podman 4.3.1, rootless dockerd 20.10


def test_host_podman_paths(host_user: stack.User) -> None:
    """Each path on the same ``--port``, one after another (the probe's own run first): the
    connections of the path before, in TIME_WAIT, do not make it count as taken."""
    u = host_user
    with stack.client_netns():
        before = marks(u)
        rc, data = run_json(u, "--engine", "podman", "--port", str(stack.free_port()))
        (probe_,) = data["probes"]
        got = paths(data)
        assert list(got) == [
            "podman:slirp4netns+rootlessport",  # the default of 4.3.1, first
            "podman:slirp4netns+slirp4netns",
            "podman:pasta",
            "podman:bridge+rootlessport",
        ]
        default = got["podman:slirp4netns+rootlessport"]
        assert default["default"] is True
        assert_measured(default, kept=False)
        assert default["observed"] == probe_["observed"] == "10.0.2.100", (default, probe_)
        assert rc == 1  # the probe's exit code: lost
        assert_measured(got["podman:slirp4netns+slirp4netns"], kept=True)
        bridge = got["podman:bridge+rootlessport"]
        assert_measured(bridge, kept=False)
        assert ipaddress.ip_address(bridge["observed"]) in BRIDGE_NET, bridge
        pasta = got["podman:pasta"]
        assert (pasta["outcome"], pasta["bytes_received"]) == ("unavailable", 0)
        assert pasta["error"] == "Podman 4.3.1 has no pasta network (from 4.4.0)"
        assert [m["stack"] for m in default["measured_elsewhere"]] == ["bookworm"]
        t = data["throughput"]
        assert t["best_keeping_client_ip"] == "podman:slirp4netns+slirp4netns", t["decision"]
        assert left_after(u, before) == set()


def test_host_podman_paths_that_cannot_start_say_why(host_user: stack.User) -> None:
    """An image that is not there (never pulled): every path's container fails to start and says
    so; a ``--port`` in use: no container is started, and each path says why."""
    u = host_user
    with stack.client_netns(), socket.socket() as taken:
        before = marks(u)
        rc, data = run_json(u, "--engine", "podman", "--image", "localhost/rd-no-such-image")
        assert rc == 2 and data["probes"][0]["ran"] is False
        got = paths(data)
        assert got.pop("podman:pasta")["outcome"] == "unavailable"  # 4.3.1
        assert len(got) == 3
        for p in got.values():
            assert p["outcome"] == "failed", p
            assert p["error"].startswith("container did not start: `podman run` exited"), p
            assert "rd-no-such-image: image not known" in p["error"], p
            assert p["gbit_s"] is None and p["bytes_received"] == 0, p
        assert data["throughput"]["best_keeping_client_ip"] is None
        assert data["throughput"]["decision"] == "no path could be measured here"

        taken.bind(("0.0.0.0", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        _, data = run_json(u, "--engine", "podman", "--port", str(port))
        for key, p in paths(data).items():
            if key != "podman:pasta":
                assert p["outcome"] == "failed", p
                assert p["error"] == (
                    f"not started: port {port} is in use on this host; pass another --port"
                ), p
        assert left_after(u, before) == set()


def test_host_interrupt_while_measuring_removes_the_path(host_user: stack.User) -> None:
    """SIGTERM while the last path (the throwaway network's) runs: exit 143, and its container,
    network and rootfs are gone, as everything of the paths before it."""
    u = host_user
    with stack.client_netns():
        before = marks(u)
        prefix, extra = rdtool.argv(u)
        env = {**stack.user_env(u), **extra}
        argv = [*prefix, "probe", "--source", SRC, "--engine", "podman", "--throughput",
                "--seconds", "2"]  # fmt: skip
        proc = stack.spawn_as(u, argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                nets = stack.podman(u, "network", "ls", "--format", "{{.Name}}").stdout.split()
                if any(n.startswith("rd-probe-net") for n in nets):
                    break
                time.sleep(0.05)
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.8)  # its container starts, then sending begins
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 128 + signal.SIGTERM, err.decode()
        assert b"everything it started was removed" in err
        assert left_after(u, before) == set()


def test_host_docker_slirp4netns_keeps_at_mtu_1500(host_user: stack.User) -> None:
    """Rootless dockerd with the slirp4netns port driver: one path, the daemon as it runs; it
    keeps client IPs through docker0 at MTU 1500, and the run says `fix docker --mtu`."""
    u = host_user
    with stack.client_netns(), stack.rootless_dockerd(u, port_driver="slirp4netns") as d:
        images = d.docker("images", "-q", "--no-trunc").stdout.split()
        before = marks(u)
        rc, data = run_json(u, "--engine", "docker", env=d.env)
        (probe_,) = data["probes"]
        (p,) = data["throughput"]["paths"]
        assert p["key"] == "docker:slirp4netns+slirp4netns", p
        assert_measured(p, kept=True)
        assert p["observed"] == probe_["observed"] == SRC and rc == 0
        assert p["container_mtu"] == 1500, p
        (advice,) = data["throughput"]["advice"]
        assert "`rootless-doctor fix docker --mtu`" in advice, advice
        assert d.docker("ps", "-aq").stdout.split() == []
        assert d.docker("images", "-q", "--no-trunc").stdout.split() == images
        assert left_after(u, before) == set()


def test_host_rootlesskit_slirp4netns(host_user: stack.User) -> None:
    """A standalone RootlessKit 1.1 with the slirp4netns port driver: the sink runs in its
    namespace, the port goes through its api.sock and is removed afterwards."""
    u = host_user
    with stack.client_netns(), stack.rootlesskit(u, port_driver="slirp4netns") as rk:
        # its child (the harness's server) answers: it runs, so it counts as there before
        assert stack.ask_bound(SRC, SRC, rk.host_port) == SRC
        before = marks(u)
        _, data = run_json(u, "--engine", "rootlesskit")
        (p,) = [
            x
            for x in data["throughput"]["paths"]
            if x["label"].startswith(f"rootlesskit pid {rk.pid} ")
        ]
        assert p["key"] == "rootlesskit:slirp4netns+slirp4netns", p
        assert_measured(p, kept=True)
        (probe_,) = [x for x in data["probes"] if rk.state_dir in x["used"]]
        assert p["observed"] == probe_["observed"] == SRC
        ports = stack.run_as(u, ["rootlessctl", "--socket", rk.api_sock, "list-ports", "--json"])
        assert [json.loads(line)["spec"]["parentPort"] for line in ports.stdout.splitlines()] == [
            rk.host_port
        ], "a port the run added is still published"
        assert left_after(u, before) == set()


# --------------------------------------------------------------------------------------------
# the roots: Podman 5 (pasta), Docker 28 with pasta + implicit


@pytest.fixture(params=roots.ROOTS)
def ru(request: pytest.FixtureRequest) -> stack.User:
    roots.require(request.param)
    u = roots.user(request.param)
    stack.podman_reset(u)
    return u


def test_root_podman_paths(ru: stack.User) -> None:
    with stack.client_netns():
        before = marks(ru)
        rc, data = run_json(ru, "--engine", "podman")
        (probe_,) = data["probes"]
        got = paths(data)
        assert list(got) == [
            "podman:pasta",  # Podman 5's default, measured once
            "podman:slirp4netns+slirp4netns",
            "podman:bridge+rootlessport",
        ]
        default = got["podman:pasta"]
        assert default["default"] is True and rc == 0
        assert_measured(default, kept=True)
        assert default["observed"] == probe_["observed"] == SRC, (default, probe_)
        assert default["container_mtu"] == 65520, default
        assert_measured(got["podman:slirp4netns+slirp4netns"], kept=True)
        bridge = got["podman:bridge+rootlessport"]
        assert_measured(bridge, kept=False)
        assert ipaddress.ip_address(bridge["observed"]) in BRIDGE_NET, bridge
        root = ru.root.rsplit("/", 1)[1]
        assert root in [m["stack"] for m in default["measured_elsewhere"]], default
        assert data["throughput"]["best_keeping_client_ip"] in (
            "podman:pasta",
            "podman:slirp4netns+slirp4netns",
        )
        assert left_after(ru, before) == set()


def test_sid_docker_pasta_implicit_and_a_refused_port() -> None:
    """Docker 28.5.2 with pasta + implicit, as `fix docker` sets it up: kept at MTU 1500 (advice:
    --mtu); a port inside the ephemeral range, which passt 2026-10-02's automatic forwarding
    skips, ends the path with "refused" and the reason."""
    roots.require("sid")
    u = roots.user("sid")
    with stack.client_netns(), stack.rootless_dockerd(u, port_driver="implicit", net="pasta") as d:
        before = marks(u)
        rc, data = run_json(u, "--engine", "docker", env=d.env)
        (p,) = data["throughput"]["paths"]
        assert p["key"] == "docker:pasta+implicit", p
        assert_measured(p, kept=True)
        assert p["observed"] == data["probes"][0]["observed"] == SRC and rc == 0
        assert p["container_mtu"] == 1500
        assert [m["stack"] for m in p["measured_elsewhere"]] == ["trixie", "sid"]
        assert "fix docker --mtu" in data["throughput"]["advice"][0]

        high = stack.free_port()  # the kernel's pick: inside the ephemeral range
        _, data = run_json(u, "--engine", "docker", "--port", str(high), env=d.env)
        (p,) = data["throughput"]["paths"]
        assert p["outcome"] == "failed", p
        assert p["error"].startswith(f"refused: {SRC}:{high} refused every connection"), p
        assert "ip_local_port_range" in p["error"], p
        assert p["elapsed_ms"] < 15000, p
        assert d.docker("ps", "-aq").stdout.split() == []
        assert left_after(u, before) == set()
