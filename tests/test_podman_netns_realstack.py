"""``[containers] netns = "bridge"`` in the user's containers.conf, real Podman 5.4 / 5.8 in the
trixie and sid roots: a plain ``podman run -p`` goes through the default bridge network and
rootlessport (the server sees 10.88.x.y); check's Podman engine verdict says lost, and the
address it names is the one the server saw."""

from __future__ import annotations

import ipaddress

import pytest
import rdtool
import stack
from test_podman_info_realstack import user_file
from test_roots_realstack import engine, ns, ru  # noqa: F401  (fixtures)

pytestmark = pytest.mark.realstack

PODMAN_DEFAULT_NET = ipaddress.ip_network("10.88.0.0/16")  # netavark's "podman" network


def test_netns_bridge_is_lost_and_check_says_so(ru: stack.User, ns: stack.Netns) -> None:  # noqa: F811
    text = '[containers]\nnetns = "bridge"\n'
    conf = ".config/containers/containers.conf.d/zz-rd-test-netns.conf"
    with (
        user_file(ru, conf, text),
        stack.podman_container(ru, network=None, name="rdroot-netns") as c,
    ):
        seen = stack.ask_from_netns(ns, ns.host_addr, c.host_port)
        report = rdtool.check_json(ru)
    assert ipaddress.ip_address(seen) in PODMAN_DEFAULT_NET, seen
    podman = engine(report, "podman")
    assert podman["source_ip_preserved"] is False, podman
    assert (podman["network_driver"], podman["port_driver"]) == ("bridge", "rootlessport")
    assert podman["seen_address"].startswith("10.88."), podman
    assert stack.leftovers(ru) == []
