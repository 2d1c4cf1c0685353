"""Real tests of the real-stack harness (tests/stack.py).

They reproduce /work/shared/real-stack.md "What a server inside saw": a client in a network
namespace (10.200.0.2) and a client bound to the host side of the veth (10.200.0.1) connect to a
published port, and the server inside reports the peer it saw. Each test also checks that the
harness left no process or listening port of the stack user behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import stack

pytestmark = pytest.mark.realstack


@pytest.fixture(scope="module")
def u() -> stack.User:
    stack.require()
    usr = stack.user()
    # Every earlier real-stack test that ran `podman` as the user (a `check` runs `podman info`)
    # left podman's pause process, by podman's design: end it podman's way first.
    stack.podman_reset(usr)
    # The leftovers() checks below are only meaningful if the user starts idle.
    if busy := stack.leftovers(usr, wait=0):
        pytest.fail(f"{usr.name} is busy before the tests (another run, or a leak): {busy}")
    return usr


@pytest.fixture
def ns(u: stack.User) -> Iterator[stack.Netns]:
    with stack.client_netns() as n:
        yield n


def seen(ns: stack.Netns, port: int) -> tuple[str, str]:
    """What the server saw for (a client in the netns, a host client bound to the veth address)."""
    return (
        stack.ask_from_netns(ns, ns.host_addr, port),
        stack.ask_bound(ns.host_addr, ns.host_addr, port),
    )


@pytest.mark.parametrize(
    ("port_driver", "expected"),
    [
        pytest.param("builtin", ("127.0.0.1", "127.0.0.1"), id="builtin-lost"),
        pytest.param("slirp4netns", ("10.200.0.2", "10.200.0.1"), id="slirp4netns-kept"),
    ],
)
def test_rootlesskit(
    u: stack.User, ns: stack.Netns, port_driver: str, expected: tuple[str, str]
) -> None:
    with stack.rootlesskit(u, net="slirp4netns", port_driver=port_driver) as rk:
        assert seen(ns, rk.host_port) == expected
    assert stack.leftovers(u) == []


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        pytest.param("slirp4netns", ("10.0.2.100", "10.0.2.100"), id="rootlessport-lost"),
        pytest.param(
            "slirp4netns:port_handler=slirp4netns",
            ("10.200.0.2", "10.200.0.1"),
            id="port_handler=slirp4netns-kept",
        ),
    ],
)
def test_podman(u: stack.User, ns: stack.Netns, network: str, expected: tuple[str, str]) -> None:
    with stack.podman_container(u, network=network) as c:
        assert seen(ns, c.host_port) == expected
    assert stack.leftovers(u) == []


def test_rootless_dockerd_builtin(u: stack.User, ns: stack.Netns) -> None:
    with stack.rootless_dockerd(u, port_driver="builtin", net="slirp4netns") as d:
        assert d.env["DOCKER_HOST"] == f"unix://{u.runtime_dir}/docker.sock"
        port = stack.free_port()
        d.run(port)
        # docker-proxy connects from the bridge gateway: lost.
        assert seen(ns, port) == ("172.17.0.1", "172.17.0.1")
        assert running_port_driver(u, d) == "builtin"
    assert stack.leftovers(u) == []


def test_rootless_dockerd_slirp4netns_from_dropin_env(u: stack.User, ns: stack.Netns) -> None:
    """As a user's drop-in does: only PORT_DRIVER in the environment, NET left to the launcher."""
    dropin = {"DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER": "slirp4netns"}
    with stack.rootless_dockerd(u, net=None, extra_env=dropin) as d:
        port = stack.free_port()
        d.run(port)
        assert seen(ns, port) == ("10.200.0.2", "10.200.0.1")  # kept
        assert running_port_driver(u, d) == "slirp4netns"
        cmdline = Path(f"/proc/{d.pid}/cmdline").read_text().split("\0")
        assert "--net=slirp4netns" in cmdline
        assert "--mtu=65520" in cmdline  # the launcher's own default when NET is unset
    assert stack.leftovers(u) == []


def running_port_driver(u: stack.User, d: stack.RootlessDockerd) -> str:
    """The port driver rootlesskit reports on its API socket (what the tool reads on a host)."""
    api = f"{d.state_dir}/api.sock"
    info = stack.run_as(u, ["rootlessctl", "--socket", api, "info", "--json"])
    return str(json.loads(info.stdout)["portDriver"]["driver"])


def test_podman_reset_leaves_nothing(u: stack.User) -> None:
    """podman_reset removes containers and podman's pause process (the teardown other tests use)."""
    argv = [
        "run",
        "-d",
        "--name",
        "rdreset",
        "--rootfs",
        stack.rootfs(u),
        "/bin/busybox",
        "sleep",
        "60",
    ]
    assert stack.podman(u, *argv).returncode == 0
    assert stack.leftovers(u, wait=0)  # the container and the pause process run
    stack.podman_reset(u)
    assert stack.leftovers(u) == []


def test_client_netns_replaces_stale_and_cleans_up_on_error(u: stack.User) -> None:
    name = "rdclient-t"
    # Under the machine-wide lock client_netns takes, so a concurrent run's veth is not ours.
    with stack._machine_lock(stack.NETNS_LOCK, 300):
        # A stale namespace and veth end from an interrupted run (already there: stale too).
        stack._ip("netns", "add", name, check=False)
        stale = ("link", "add", stack.VETH_HOST, "type", "veth", "peer", "name", "rdvstale")
        stack._ip(*stale, check=False)
        with pytest.raises(RuntimeError, match="boom"), stack._fresh_netns(name) as n:
            link = stack._ip("-n", n.name, "-4", "addr", "show", "dev", stack.VETH_NS).stdout
            assert f"{n.client_addr}/24" in link
            raise RuntimeError("boom")
        assert name not in stack._ip("netns", "list").stdout.split()
        for link in (stack.VETH_HOST, "rdvstale"):
            assert stack._ip("link", "show", link, check=False).returncode != 0


def test_client_netns_takes_turns() -> None:
    """The lock client_netns holds: a second holder waits, then times out with a clear error."""
    with (
        stack._machine_lock(stack.NETNS_LOCK, 300),
        pytest.raises(stack.StackError, match="held by another run"),
        stack.client_netns(lock_timeout=0.2),
    ):
        pass


def test_require_fails_instead_of_skipping_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        stack, "missing", lambda: "missing: podman; run: sudo bash .ci/setup-stack.sh"
    )
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="missing: podman"):
        stack.require()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="missing: podman"):
        stack.require()
