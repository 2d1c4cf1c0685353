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

import ipaddress
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import rdtool
import roots
import stack

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


def container(eng: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in eng["containers"] if c["name"] == name]
    assert len(found) == 1, eng["containers"]
    return found[0]


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
    finally:
        stack.podman(ru, "network", "rm", "-f", PODMAN_NET)
        idle(ru)
