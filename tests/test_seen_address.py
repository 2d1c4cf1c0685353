"""What a server behind each path sees (Verdict.seen / JSON `seen_address`), and the 2026 launcher
facts that decide the Docker drivers (issue 7). Sources: tests/data/SOURCES.md, docs/facts.md."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import DATA
from test_cli import rd

from rootless_doctor import knowledge as kb
from rootless_doctor.model import (
    ContainerFacts,
    DockerFacts,
    PodmanFacts,
    RootlessKitFacts,
    Tool,
)


def docker(
    rk: str | None, port: str = "builtin", net: str = "slirp4netns", **kw: Any
) -> DockerFacts:
    kw.setdefault("rootless", True)
    kw.setdefault("version", "29.7.2")
    return DockerFacts(
        running=RootlessKitFacts(
            version=rk,
            network_driver=net,
            port_driver=port,
            source="api.sock",
            transparent_backend=kw.pop("backend", None),
        ),
        **kw,
    )


# --------------------------------------------------------------------------- Docker builtin


@pytest.mark.parametrize(
    ("rk", "proxy", "backend", "preserved", "seen"),
    [
        # docker-proxy re-dials from the bridge gateway whatever RootlessKit does (measured on
        # trixie/sid, Docker 26/28 + RootlessKit 2.0.2; upstream Docker 29.8.2 + RootlessKit 3.1.0).
        ("2.0.2", None, None, False, "172.17.0.1"),
        ("3.1.0", None, None, False, "172.17.0.1"),
        ("3.1.0", True, "nft", False, "172.17.0.1"),
        # userland-proxy off before RootlessKit 3: 127.0.0.1 MASQUERADEd to the bridge.
        ("2.3.6", False, None, False, "172.17.0.1"),
        # userland-proxy off, RootlessKit 3, transparency on: the client (alfredo capture).
        ("3.1.0", False, None, True, "the client"),
        ("3.1.0", False, "iptables", True, "the client"),
        # sourceIPTransparentBackend "none": IP_TRANSPARENT not in use → back to the gateway.
        ("3.1.0", False, "none", False, "172.17.0.1"),
    ],
)
def test_docker_builtin_seen(
    rk: str, proxy: bool | None, backend: str | None, preserved: bool, seen: str
) -> None:
    v = kb.docker_verdict(docker(rk, userland_proxy=proxy, backend=backend))
    assert (v.preserved, v.seen) == (preserved, seen), v.reason
    assert "127.0.0.1" not in v.reason.replace("127.0.0.1 and dockerd", "")


def test_docker_builtin_text_names_the_gateway_not_loopback() -> None:
    v = kb.docker_verdict(docker("2.0.2"))
    assert "bridge gateway 172.17.0.1" in v.reason and "arrive from 127.0.0.1" not in v.reason


def test_standalone_rootlesskit_seen() -> None:
    old = kb.rootlesskit_verdict(RootlessKitFacts(version="2.0.2", port_driver="builtin"))
    assert (old.preserved, old.seen) == (False, "127.0.0.1")
    new = kb.rootlesskit_verdict(RootlessKitFacts(version="3.0.1", port_driver="builtin"))
    assert (new.preserved, new.seen) == (True, "the client")
    off = kb.rootlesskit_verdict(
        RootlessKitFacts(version="3.1.0", port_driver="builtin", transparent_backend="none")
    )
    assert (off.preserved, off.seen) == (False, "127.0.0.1")
    assert "sourceIPTransparentBackend" in off.reason


@pytest.mark.parametrize(
    ("port", "seen"),
    [("slirp4netns", "the client"), ("implicit", "the client"), ("pesto", "the client"),
     ("gvisor-tap-vsock", "10.0.2.1")],
)  # fmt: skip
def test_other_port_drivers_seen(port: str, seen: str) -> None:
    assert kb.docker_verdict(docker("3.1.0", port=port)).seen == seen


def test_udp_note_only_for_rootlesskit_3_0_0() -> None:
    for rk, has in (("3.0.0", True), ("3.0.1", False), ("2.3.6", False)):
        v = kb.docker_verdict(docker(rk, userland_proxy=False))
        assert ("issue 592" in v.reason) is has, (rk, v.reason)


def test_docker_user_network_seen_is_that_networks_gateway() -> None:
    d = docker("2.0.2")
    c = ContainerFacts(engine="docker", name="proxy", network_mode="alfredo-proxy")
    v = kb.docker_container_verdict(d, c)
    assert v.preserved is False and v.seen == "172.x.0.1 (the gateway of network alfredo-proxy)"
    default = ContainerFacts(engine="docker", name="web", network_mode="bridge")
    assert kb.docker_container_verdict(d, default).seen == "172.17.0.1"


# --------------------------------------------------------------------------- Podman


def test_podman_seen() -> None:
    p4 = PodmanFacts(version="4.3.1", rootless=True)
    assert kb.podman_engine_verdict(p4).seen == "10.0.2.100"
    p5 = PodmanFacts(version="5.8.6", rootless=True)
    pasta = kb.podman_engine_verdict(p5)
    assert pasta.preserved and pasta.seen.startswith("the client") and "169.254.1.2" in pasta.seen
    net = ContainerFacts(
        engine="podman", name="b", network_mode="rdnet", port_handler="rootlessport"
    )
    assert kb.podman_container_verdict(p5, net).seen == "10.89.x.y"
    # podman inspect shows NetworkMode "bridge" for a user-defined network (trixie/sid roots).
    joined = ContainerFacts(
        engine="podman", name="b", network_mode="bridge", networks=("rdnet",),
        port_handler="rootlessport",
    )  # fmt: skip
    assert kb.podman_container_verdict(p5, joined).seen == "10.89.x.y"
    default = ContainerFacts(engine="podman", name="d", network_mode="bridge", networks=("podman",))
    assert kb.podman_container_verdict(p5, default).seen == "10.88.x.y"
    handler = ContainerFacts(
        engine="podman", name="s", network_mode="slirp4netns:port_handler=slirp4netns"
    )
    assert kb.podman_container_verdict(p4, handler).seen == "the client"
    rootful = PodmanFacts(version="5.8.6", rootless=False)
    assert kb.podman_engine_verdict(rootful).seen == "the client"


# --------------------------------------------------------------------------- launcher facts


def test_flags_override_net_and_port_driver_last_wins() -> None:
    # dockerd-rootless.sh appends $DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS after --net/--port-driver;
    # rootlesskit (urfave/cli) keeps the last value of a repeated flag.
    env = {
        "DOCKERD_ROOTLESS_ROOTLESSKIT_NET": "slirp4netns",
        "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER": "builtin",
        "DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS": "--net=vpnkit --port-driver slirp4netns "
        "--net=pasta --port-driver=implicit --detach-netns",
    }
    d = DockerFacts(
        rootless=True,
        version="28.5.2",
        configured_net="slirp4netns",
        configured_port_driver="builtin",
        configured_env=env,
    )
    dr = kb.docker_drivers(d, {})
    assert (dr.network_driver, dr.port_driver) == ("pasta", "implicit")
    assert "FLAGS overrides" in dr.origin
    assert kb.docker_verdict(d).preserved is True


def test_flags_source_ip_transparent_false_turns_it_off() -> None:
    env = {"DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS": "--source-ip-transparent=false"}
    d = DockerFacts(
        rootless=True,
        version="29.7.2",
        userland_proxy=False,
        configured_net="slirp4netns",
        configured_port_driver="builtin",
        configured_env=env,
        running=RootlessKitFacts(version="3.0.2", source="docker version"),
    )
    v = kb.docker_verdict(d, {})
    assert v.preserved is False and v.seen == "172.17.0.1"
    assert kb.launcher_flag("--source-ip-transparent --net pasta", "source-ip-transparent",
                            boolean=True) == "true"  # fmt: skip
    assert kb.launcher_flag("--net pasta", "port-driver") is None
    assert kb.launcher_flag(None, "net") is None


def test_launcher_falls_back_to_gvisor_tap_vsock_from_29_5() -> None:
    # moby 5249b1d165 (Docker 29.5.0): neither slirp4netns, pasta nor vpnkit → gvisor-tap-vsock;
    # upstream capture: Docker 29.8.2 ran --net=gvisor-tap-vsock --port-driver=builtin.
    tools = {
        "slirp4netns": Tool(name="slirp4netns", path=None),
        "pasta": Tool(name="pasta", path=None),
    }
    assert kb.docker_default_drivers("29.8.2", tools) == ("gvisor-tap-vsock", "builtin")
    assert kb.docker_default_drivers("29.4.3", tools) == ("vpnkit", "builtin")
    name = "docker-29.8.2-rootless-rootlesskit-3.1.0-gvisor-tap-vsock-builtin-setuptool.txt"
    text = (DATA / "unrecognised" / name).read_text()
    assert "NetworkDriver:    gvisor-tap-vsock" in text and "PortDriver:       builtin" in text


# --------------------------------------------------------------------------- end to end


def test_check_json_from_a_capture_names_the_gateway() -> None:
    cp = rd(
        "check",
        "--json",
        "--from",
        str(
            DATA
            / "docker-version"
            / "docker-28.1.1-rootless-rootlesskit-2.3.4-slirp4netns-builtin.txt"
        ),
    )
    data = json.loads(cp.stdout)
    (eng,) = data["engines"]
    assert eng["source_ip_preserved"] is False and eng["seen_address"] == "172.17.0.1"


# --------------------------------------------------------------------------- Podman 6 captures


def test_podman_6_captures_seen() -> None:
    """Podman 6.1.1 `podman info` (remote, podman machine) + the 6.0.0-rc1 containers.conf: pasta
    by default (seen: the client, 169.254.1.2 from this host); with the experimental
    `rootless_port_forwarder = "pasta"` a bridge container keeps the client too."""
    from rootless_doctor.checks import diagnose
    from rootless_doctor.offline import from_texts

    info = (DATA / "podman-info/podman-6.1.1-remote-macos-machine-rootless.yaml").read_text()
    conf = (
        DATA / "containers-conf" / "containers.conf-common-v0.68.0-podman-6.0.0-rc1.conf"
    ).read_text()
    facts = from_texts([("info.yaml", info), ("containers.conf", conf)])
    (eng,) = [e for e in diagnose(facts).engines if e.engine == "podman"]
    assert eng.source_ip_preserved is True and eng.seen_address == kb.SEEN_PODMAN_PASTA
    p = facts.podman
    assert p is not None
    bridge = ContainerFacts(
        engine="podman", name="web", network_mode="bridge", networks=("front",),
        port_handler="rootlessport",
    )  # fmt: skip
    lost = kb.podman_container_verdict(p, bridge)
    assert (lost.preserved, lost.seen) == (False, "10.89.x.y")
    # `podman info` reports the forwarder Podman resolved (it wins over a pasted file): a host
    # whose conf chain sets the experimental pasta forwarder.
    from dataclasses import replace

    from rootless_doctor import parse

    text = conf.replace("#rootless_port_forwarder = ", "rootless_port_forwarder = ").replace(
        'rootless_port_forwarder = "rootlessport"', 'rootless_port_forwarder = "pasta"'
    )
    pasta_fwd = replace(
        p, rootless_port_forwarder=None, conf=parse.containers_conf([("containers.conf", text)])
    )
    kept = kb.podman_container_verdict(pasta_fwd, bridge)
    assert (kept.preserved, kept.seen) == (True, "the client")
