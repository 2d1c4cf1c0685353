"""containers.conf ``[containers] netns`` picks the network of a plain ``podman run -p``
(containers/podman pkg/specgen namespaces.go ParseNetworkFlag; only "private"/"default" mean the
rootless network command): the engine verdict and report follow it. Reported by the probespeed
helper: with ``netns = "bridge"`` check said "kept" (pasta) while the probe saw 10.89.0.x.
Real traffic: tests/test_podman_netns_realstack.py."""

from __future__ import annotations

import pytest

from rootless_doctor import knowledge as kb
from rootless_doctor.checks import podman_report
from rootless_doctor.model import PodmanFacts


def podman(version: str, **conf: str) -> PodmanFacts:
    cmd = "pasta" if version.startswith(("5", "6")) else None
    return PodmanFacts(
        version=version,
        rootless=True,
        rootless_network_cmd=cmd,
        conf={k.replace("__", "."): v for k, v in conf.items()},
    )


@pytest.mark.parametrize("version", ["4.3.1", "5.4.2", "5.8.6"])
def test_netns_bridge_loses_the_client_through_rootlessport(version: str) -> None:
    p = podman(version, containers__netns="bridge")
    v = kb.podman_engine_verdict(p)
    assert v.preserved is False and v.seen == "10.88.x.y"
    assert 'netns = "bridge"' in v.reason and "rootlessport" in v.reason
    assert 'drop netns = "bridge"' in v.fix
    r = podman_report(p)
    assert (r.network_driver, r.port_driver, r.source_ip_preserved) == (
        "bridge",
        "rootlessport",
        False,
    )


def test_netns_bridge_on_a_default_network_of_ones_own() -> None:
    p = podman("5.8.6", containers__netns="bridge", network__default_network="rd-net")
    assert kb.podman_engine_verdict(p).seen == "10.89.x.y"


@pytest.mark.parametrize(
    ("netns", "preserved", "driver"),
    [
        ("private", True, "pasta"),  # the default: the rootless network command
        ("default", True, "pasta"),
        ("host", True, "host"),
        ("none", None, "none"),
        ("pasta", True, "pasta"),
        ("slirp4netns", False, "slirp4netns"),
        ("slirp4netns:port_handler=slirp4netns", True, "slirp4netns"),
        ("rd-net", False, "rd-net"),  # a network name: bridge mode
        ("ns:/run/netns/x", None, "ns"),
    ],
)
def test_each_netns_value(netns: str, preserved: bool | None, driver: str) -> None:
    p = podman("5.4.2", containers__netns=netns)
    assert kb.podman_engine_verdict(p).preserved is preserved
    assert podman_report(p).network_driver == driver


def test_without_netns_nothing_changes() -> None:
    for version in ("4.3.1", "5.4.2"):
        p = podman(version)
        assert kb.podman_netns_container(p) is None
        assert "[containers] netns" not in kb.podman_engine_verdict(p).reason


def test_podman6_bridge_with_the_pasta_forwarder_keeps_the_client() -> None:
    p = podman("6.0.0", containers__netns="bridge", network__rootless_port_forwarder="pasta")
    assert kb.podman_engine_verdict(p).preserved is True
