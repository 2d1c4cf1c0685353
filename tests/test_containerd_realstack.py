"""Rootless containerd (nerdctl's launcher flags) on the real stack: check's verdict vs the wire.

Debian's rootlesskit 1.1.0 and containerd run as the unprivileged user (tests/containerd_stack.py
says what is reproduced from nerdctl's launcher and why); a client in the test's own network
namespace connects to the published port and the peer server says which address it saw.
"""

from __future__ import annotations

from typing import Any

import containerd_stack
import pytest
import rdtool
import stack

pytestmark = pytest.mark.realstack


def containerd(report: dict[str, Any]) -> dict[str, Any]:
    found = [e for e in report["engines"] if e["engine"] == "containerd"]
    assert len(found) == 1, report["engines"]
    return found[0]


@pytest.mark.parametrize("port_driver", ["builtin", "slirp4netns"])
def test_rootless_containerd_verdict_matches_the_wire(
    u: stack.User, ns: stack.Netns, port_driver: str
) -> None:
    with containerd_stack.rootless_containerd(u, port_driver=port_driver) as c:
        seen = stack.ask_from_netns(ns, ns.host_addr, c.host_port)
        report = rdtool.check_json(u)
    kept = seen == ns.client_addr
    assert kept is (port_driver == "slirp4netns"), seen
    e = containerd(report)
    assert e["rootless"] is True
    assert e["rootlesskit_version"] == "1.1.0"
    assert (e["network_driver"], e["port_driver"]) == ("slirp4netns", port_driver)
    assert e["source_ip_preserved"] is kept
    # the port nerdctl would publish, as RootlessKit's API lists it (GET /v1/ports)
    (src,) = [x for x in report["checks"] if x["id"] == "CONTAINERD-SOURCE-IP"]
    assert str(c.host_port) in src["detail"]
    assert src["status"] == ("ok" if kept else "fail")
    # no nerdctl here: the container behind the port is unknown; each RootlessKit port stands
    # for its container, judged by the engine's port driver
    (ct,) = e["containers"]
    assert ct["name"] == f"port {c.host_port}/tcp"
    assert ct["source_ip_preserved"] is kept and ct["port_handler"] == port_driver
    per_ctr = [x for x in report["checks"] if x["id"] == "CONTAINER-SOURCE-IP"]
    (per,) = [x for x in per_ctr if x.get("engine") == "containerd"]
    assert per["container"] == ct["name"]
    assert per["status"] == src["status"]
    # the RootlessKit is containerd's: not a standalone one, and not Docker's (the docker CLI is
    # installed here, so a Docker with no daemon may be listed, but not as running rootless)
    assert not [x for x in report["engines"] if x["engine"] == "rootlesskit"]
    assert not [x for x in report["engines"] if x["engine"] == "docker" and x["rootless"]]
    stack.podman_reset(u)
    assert stack.leftovers(u) == []
