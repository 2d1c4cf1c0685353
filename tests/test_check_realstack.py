"""`rootless-doctor check --json`, run as the unprivileged owner, against real stacks.

For each setup the test asserts both what check reports (drivers, verdict) and that the verdict
matches what a server inside really saw from a client in the test's own network namespace.
Needs the real stack (.ci/setup-stack.sh): skips without it, fails in CI.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import rdtool
import stack

pytestmark = pytest.mark.realstack


def engine(report: dict[str, Any], name: str) -> dict[str, Any]:
    found = [e for e in report["engines"] if e["engine"] == name]
    assert found, f"no {name} engine in {[e['engine'] for e in report['engines']]}"
    return found[0]


@pytest.mark.parametrize(
    ("port_driver", "seen_preserved"), [("builtin", False), ("slirp4netns", True)]
)
def test_standalone_rootlesskit(
    u: stack.User, ns: stack.Netns, port_driver: str, seen_preserved: bool
) -> None:
    with stack.rootlesskit(u, net="slirp4netns", port_driver=port_driver) as rk:
        seen = stack.ask_from_netns(ns, ns.host_addr, rk.host_port)
        report = rdtool.check_json(u)
    assert (seen == ns.client_addr) is seen_preserved, seen
    kits = [e for e in report["engines"] if e["engine"] == "rootlesskit"]
    assert len(kits) == 1, report["engines"]
    kit = kits[0]
    assert kit["rootlesskit_version"] == "1.1.0"
    assert kit["network_driver"] == "slirp4netns"
    assert kit["port_driver"] == port_driver
    assert kit["source_ip_preserved"] is (seen == ns.client_addr)
    assert port_driver in kit["reason"]
    stack.podman_reset(u)  # check's `podman info` starts podman's pause process, as any podman does
    assert stack.leftovers(u) == []


@pytest.mark.parametrize(
    ("port_driver", "expected_seen"), [("builtin", "172.17.0.1"), ("slirp4netns", "client")]
)
def test_rootless_dockerd(
    u: stack.User, ns: stack.Netns, port_driver: str, expected_seen: str
) -> None:
    with stack.rootless_dockerd(u, port_driver=port_driver) as d:
        port = stack.free_port()
        d.run(port)
        seen = stack.ask_from_netns(ns, ns.host_addr, port)
        report = rdtool.check_json(u)
    assert seen == (ns.client_addr if expected_seen == "client" else expected_seen)
    docker = engine(report, "docker")
    assert docker["rootless"] is True
    assert docker["version"].startswith("20.10.24")  # Debian reports 20.10.24+dfsg1
    assert docker["rootlesskit_version"] == "1.1.0"
    assert docker["network_driver"] == "slirp4netns"
    assert docker["port_driver"] == port_driver
    assert docker["source_ip_preserved"] is (seen == ns.client_addr)
    assert [c["source_ip_preserved"] for c in docker["containers"]] == [seen == ns.client_addr]
    # Docker's RootlessKit is the engine's, not a standalone one.
    assert not [e for e in report["engines"] if e["engine"] == "rootlesskit"]
    stack.podman_reset(u)
    assert stack.leftovers(u) == []


@pytest.mark.parametrize(
    ("network", "handler", "expected_seen"),
    [
        ("slirp4netns", "rootlesskit", "10.0.2.100"),
        ("slirp4netns:port_handler=slirp4netns", "slirp4netns", "client"),
    ],
)
def test_podman(
    u: stack.User, ns: stack.Netns, network: str, handler: str, expected_seen: str
) -> None:
    with stack.podman_container(u, network=network, name="rdcheck") as c:
        seen = stack.ask_from_netns(ns, ns.host_addr, c.host_port)
        report = rdtool.check_json(u)
    stack.podman_reset(u)
    assert seen == (ns.client_addr if expected_seen == "client" else expected_seen)
    podman = engine(report, "podman")
    assert podman["rootless"] is True
    assert podman["version"] == "4.3.1"
    # What a default `podman run -p` gets on Podman 4.3: slirp4netns + rootlesskit handler.
    assert podman["network_driver"] == "slirp4netns"
    assert podman["source_ip_preserved"] is False
    mine = [x for x in podman["containers"] if x["name"] == "rdcheck"]
    assert len(mine) == 1, podman["containers"]
    assert mine[0]["network_mode"].startswith("slirp4netns")
    assert mine[0]["port_handler"] == handler
    assert mine[0]["source_ip_preserved"] is (seen == ns.client_addr)
    assert stack.leftovers(u) == []


def test_tap0_read_as_owner_flags_network_interface_eth0(u: stack.User) -> None:
    """A podman container on slirp4netns set up like docker-mailserver's default
    (NETWORK_INTERFACE=eth0): check, run as the owner, reads the container's interfaces by
    entering its user namespace, finds tap0 10.0.2.100/24 and says which value to set."""
    name = "rdiface"
    stack.podman(u, "rm", "-f", "-t0", name)
    run = stack.podman(
        u, "run", "-d", "--name", name, "--network", "slirp4netns",
        "-e", "NETWORK_INTERFACE=eth0", "-v", "/usr:/usr:ro", "--rootfs", stack.rootfs(u),
        "python3", "-c", "import time; time.sleep(120)",
    )  # fmt: skip
    try:
        assert run.returncode == 0, run.stderr
        report = rdtool.check_json(u)
    finally:
        stack.podman(u, "rm", "-f", "-t0", name)
        stack.podman_reset(u)
    found = [
        c for c in report["checks"]
        if c["id"] == "CONTAINER-NETWORK-INTERFACE" and name in c["title"]
    ]  # fmt: skip
    assert len(found) == 1, [c for c in report["checks"] if c["id"].startswith("CONTAINER")]
    (c,) = found
    assert c["status"] == "fail"
    assert "eth0" in c["detail"] and "tap0" in c["detail"] and "10.0.2.100/24" in c["detail"]
    assert "NETWORK_INTERFACE=tap0" in c["remedy"]
    assert stack.leftovers(u) == []


def test_check_probe_folds_the_observed_result(u: stack.User, ns: stack.Netns) -> None:
    """`check --probe --source ADDR` runs the probe for each engine found (podman here, its
    default `podman run -p` path) and folds what the listener saw into the report."""
    cp = rdtool.run(u, "check", "--json", "--probe", "--source", ns.host_addr)
    stack.podman_reset(u)
    assert cp.returncode == 1, cp.stderr  # Podman 4.3 default loses the source IP: a failure
    report = json.loads(cp.stdout)
    (p,) = [x for x in report["probes"] if x["engine"] == "podman"]
    assert p["ran"] is True and p["source"] == ns.host_addr
    assert p["observed"] == "10.0.2.100" and p["source_ip_preserved"] is False
    assert p["expected"] is False  # check's static verdict agreed
    probe_check = [c for c in report["checks"] if c["id"] == "PROBE-PODMAN"]
    assert [c["status"] for c in probe_check] == ["fail"]
    assert "10.0.2.100" in probe_check[0]["detail"]
    assert stack.leftovers(u) == []


def test_podman_user_defined_network(u: stack.User, ns: stack.Netns) -> None:
    """A container on a user-defined (bridge) network, as compose makes: rootlessport forwards
    its ports, the server sees a bridge address, and check says lost with that handler."""
    stack.podman(u, "network", "create", "rdcheck-net")
    try:
        with stack.podman_container(u, network="rdcheck-net", name="rdcheck-br") as c:
            seen = stack.ask_from_netns(ns, ns.host_addr, c.host_port)
            report = rdtool.check_json(u)
    finally:
        stack.podman(u, "network", "rm", "-f", "rdcheck-net")
        stack.podman_reset(u)
    assert seen.startswith("10.89.") and seen != ns.client_addr
    (mine,) = [x for x in engine(report, "podman")["containers"] if x["name"] == "rdcheck-br"]
    assert mine["network_mode"] == "bridge" and mine["port_handler"] == "rootlessport"
    assert mine["source_ip_preserved"] is False
    assert "rootlessport" in mine["reason"]
    assert stack.leftovers(u) == []
