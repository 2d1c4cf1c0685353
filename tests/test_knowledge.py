"""knowledge.py: the decision table of docs/facts.md, one test per row, plus edges."""

from __future__ import annotations

from typing import Any

import pytest

from rootless_doctor import knowledge as kb
from rootless_doctor.model import (
    ContainerFacts,
    DockerFacts,
    PodmanFacts,
    RootlessKitFacts,
    Tool,
)


def docker(
    rk_version: str | None = "2.3.6",
    net: str | None = "slirp4netns",
    port: str | None = "builtin",
    **kw: Any,
) -> DockerFacts:
    kw.setdefault("rootless", True)
    kw.setdefault("version", "29.4.0")
    return DockerFacts(
        running=RootlessKitFacts(
            version=rk_version, network_driver=net, port_driver=port, source="api.sock"
        ),
        **kw,
    )


def podman(version: str = "5.2.3", **kw: Any) -> PodmanFacts:
    kw.setdefault("rootless", True)
    return PodmanFacts(version=version, **kw)


def ctr(mode: str | None, **kw: Any) -> ContainerFacts:
    kw.setdefault("engine", "podman")
    return ContainerFacts(name="mail", network_mode=mode, **kw)


# --------------------------------------------------------------------------- versions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("29.5.0", (29, 5, 0)),
        ("v3.0.0", (3, 0, 0)),
        ("2.3.5", (2, 3, 5)),
        ("5.0.0-dev", (5, 0, 0)),
        ("1.1.0", (1, 1, 0)),
        ("1.1.0+dev", (1, 1, 0)),
        ("6.0.0-rc1", (6, 0, 0)),
        ("2023_12_04", (2023, 12, 4)),
        ("2023_12_04.b86afe3", (2023, 12, 4)),
        ("2023-03-09", (2023, 3, 9)),
        ("pasta 2024_05_23.765eb0b", (2024, 5, 23)),
        ("slirp4netns version 1.2.0", (1, 2, 0)),
        (None, None),
        ("", None),
        ("unknown", None),
    ],
)
def test_parse_version(text: str | None, expected: tuple[int, ...] | None) -> None:
    assert kb.parse_version(text) == expected


@pytest.mark.parametrize(
    ("a", "b", "cmp"),
    [
        ("29.5.0", "29.5", 0),
        ("v3.0.0", "3.0.0", 0),
        ("2.3.6", "3.0.0", -1),
        ("10.0", "9.9.9", 1),
        ("2023-03-09", "2023_12_04", -1),
        ("2026_05_07", "2023_12_04", 1),
        (None, "1.0", None),
        ("garbage", "1.0", None),
    ],
)
def test_compare_versions(a: str | None, b: str, cmp: int | None) -> None:
    assert kb.compare_versions(a, b) == cmp


def test_version_at_least_unknown_is_none() -> None:
    assert kb.version_at_least(None, "3.0.0") is None
    assert kb.version_at_least("3.0.0", "3.0.0") is True
    assert kb.version_at_least("2.99", "3.0.0") is False


# --------------------------------------------------------------------------- decision table rows

DOCKER_ROWS = [
    pytest.param(
        docker("1.1.0", port="builtin"),
        False,
        "rootless-doctor fix docker",
        id="Docker, RootlessKit < 3, port driver builtin",
    ),
    pytest.param(
        docker("3.0.0", port="builtin", userland_proxy=None),
        False,
        '"userland-proxy": false',
        id="Docker, RootlessKit ≥ 3, builtin, userland-proxy on (default)",
    ),
    pytest.param(
        docker("3.0.0", port="builtin", userland_proxy=False),
        True,
        "",
        id="Docker, RootlessKit ≥ 3, builtin, userland-proxy off",
    ),
    pytest.param(
        docker("2.3.6", port="slirp4netns"),
        True,
        "",
        id="Docker, port driver slirp4netns / implicit / pesto [slirp4netns]",
    ),
    pytest.param(
        docker("2.3.6", net="pasta", port="implicit"),
        True,
        "",
        id="Docker, port driver slirp4netns / implicit / pesto [implicit]",
    ),
    pytest.param(
        docker("3.0.2", net="pasta", port="pesto"),
        True,
        "",
        id="Docker, port driver slirp4netns / implicit / pesto [pesto]",
    ),
    pytest.param(
        docker("3.0.0", net="gvisor-tap-vsock", port="gvisor-tap-vsock"),
        False,
        "rootless-doctor fix docker",
        id="Docker, gvisor-tap-vsock port driver",
    ),
]


@pytest.mark.parametrize(("facts", "preserved", "fix_has"), DOCKER_ROWS)
def test_docker_rows(facts: DockerFacts, preserved: bool, fix_has: str) -> None:
    v = kb.docker_verdict(facts)
    assert v.preserved is preserved, v.reason
    assert facts.running is not None and facts.running.version is not None
    assert facts.running.version in v.reason  # the reason names the version that decides
    assert (facts.running.port_driver or "") in v.reason
    if fix_has:
        assert fix_has in v.fix
        assert kb.RESTART_DOCKER in v.fix
    else:
        assert v.fix == ""
    assert "\n" not in v.reason


def test_row1_reason_text() -> None:
    # Measured on Debian trixie/sid (Docker 26/28, RootlessKit 2): the server sees the bridge
    # gateway, not 127.0.0.1 (docker-proxy re-dials while userland-proxy is on).
    v = kb.docker_verdict(docker("1.1.0"))
    assert v.reason == (
        "RootlessKit 1.1.0 builtin port driver with userland-proxy on (daemon.json default): "
        "docker-proxy connects to the container from the bridge gateway 172.17.0.1 "
        "(source IP lost)"
    )
    assert v.seen == "172.17.0.1"


def test_row1_fix_options_offer_slirp4netns_and_pasta_implicit() -> None:
    # Row 1 fix: slirp4netns (slower; sysctl < 1024), or pasta + implicit where RootlessKit ≥ 2
    # and pasta ≥ 2023_12_04.
    tools = {
        "slirp4netns": Tool(name="slirp4netns", path="/usr/bin/slirp4netns", version="1.2.0"),
        "pasta": Tool(name="pasta", path="/usr/bin/pasta", version="2024_05_23.765eb0b"),
    }
    opts = {o.key: o for o in kb.docker_fix_options(docker("2.3.6"), tools)}
    assert opts["pasta-implicit"].available
    assert opts["slirp4netns"].available
    assert "half of builtin" in opts["slirp4netns"].cost  # measured (throughput.py)
    assert opts["pasta-implicit"].throughput.startswith("measured ")
    assert "ip_unprivileged_port_start" in opts["slirp4netns"].privileged_ports
    assert not opts["builtin-transparent"].available
    assert "3.0" in opts["builtin-transparent"].missing
    best = kb.best_docker_fix(docker("2.3.6"), tools)
    assert best is not None and best.key == "pasta-implicit"


@pytest.mark.parametrize(
    ("rk", "pasta_v", "available"),
    [
        ("1.1.0", "2024_05_23", False),  # Debian 12 rootlesskit: no implicit
        ("2.3.4", "2023-03-09", False),  # pasta too old
        ("2.3.4", "2023_12_04", True),
        ("2.3.4", None, False),  # unknown pasta version: not offered as ready
    ],
)
def test_pasta_implicit_requirements(rk: str, pasta_v: str | None, available: bool) -> None:
    tools = {"pasta": Tool(name="pasta", path="/usr/bin/pasta", version=pasta_v)}
    opts = {o.key: o for o in kb.docker_fix_options(docker(rk), tools)}
    assert opts["pasta-implicit"].available is available


def test_fix_options_fastest_first_and_rk3() -> None:
    tools = {"slirp4netns": Tool(name="slirp4netns", path="/usr/bin/slirp4netns", version="1.2")}
    opts = kb.docker_fix_options(docker("3.0.0"), tools)
    assert [o.key for o in opts] == [
        "pasta-implicit",
        "builtin-transparent",
        "pesto",
        "slirp4netns",
    ]
    bt = opts[1]
    assert bt.available and bt.userland_proxy is False and bt.protocols == "tcp"
    assert "setcap" in bt.privileged_ports
    best = kb.best_docker_fix(docker("3.0.0"), tools)
    assert best is not None and best.key == "builtin-transparent"
    assert kb.best_docker_fix(docker("1.1.0"), {}) is None


def test_fix_option_marks_current() -> None:
    opts = {o.key: o for o in kb.docker_fix_options(docker(port="slirp4netns"), {})}
    assert opts["slirp4netns"].current


PODMAN_ROWS = [
    pytest.param(
        podman("4.3.1"),
        ctr("slirp4netns"),
        False,
        "port_handler=slirp4netns",
        id="Podman ≤ 5, slirp4netns with default handler",
    ),
    pytest.param(
        podman("5.2.3"),
        ctr("pasta"),
        True,
        "",
        id="Podman ≥ 5, `--network pasta`",
    ),
    pytest.param(
        podman("5.2.3"),
        ctr("bridge", networks=("mail_default",)),
        False,
        "network_mode pasta",
        id="Podman, rootless bridge / compose network",
    ),
    pytest.param(
        podman("6.0.0"),
        ctr("slirp4netns:port_handler=slirp4netns"),
        False,
        "podman system migrate",
        id="Podman 6, container or config still on slirp4netns",
    ),
]


@pytest.mark.parametrize(("p", "c", "preserved", "fix_has"), PODMAN_ROWS)
def test_podman_rows(p: PodmanFacts, c: ContainerFacts, preserved: bool, fix_has: str) -> None:
    v = kb.podman_container_verdict(p, c)
    assert v.preserved is preserved, v.reason
    assert f"Podman {p.version}" in v.reason
    if fix_has:
        assert fix_has in v.fix
    else:
        assert v.fix == ""


def test_podman_slirp4netns_default_handler_shows_10_0_2_100() -> None:
    v = kb.podman_container_verdict(podman("4.3.1"), ctr("slirp4netns"))
    assert "10.0.2.100" in v.reason
    assert "NETWORK_INTERFACE=tap0" in v.fix


@pytest.mark.parametrize(
    "c",
    [
        ctr("slirp4netns:port_handler=slirp4netns,mtu=65520"),
        ctr("slirp4netns", port_handler="slirp4netns"),
        ctr(
            "slirp4netns",
            create_command=("podman", "run", "--network", "slirp4netns:port_handler=slirp4netns"),
        ),
    ],
)
def test_podman_slirp4netns_handler_keeps(c: ContainerFacts) -> None:
    assert kb.podman_container_verdict(podman("4.3.1"), c).preserved is True


def test_podman_slirp4netns_rootlessport_process_means_lost() -> None:
    c = ctr("slirp4netns", port_handler="rootlessport")
    assert kb.podman_container_verdict(podman("5.0.0"), c).preserved is False


def test_podman6_bridge_with_pasta_forwarder_keeps() -> None:
    p = podman("6.0.0", rootless_port_forwarder="pasta")
    v = kb.podman_container_verdict(p, ctr("bridge"))
    assert v.preserved is True
    assert "experimental" in v.reason and "IPv4" in v.reason
    # the setting in containers.conf counts too
    p2 = podman("6.0.0", conf={"network.rootless_port_forwarder": "pasta"})
    assert kb.podman_container_verdict(p2, ctr("bridge")).preserved is True
    # but on Podman 5 there is no such forwarder
    p5 = podman("5.8.2", rootless_port_forwarder="pasta")
    assert kb.podman_container_verdict(p5, ctr("bridge")).preserved is False


def test_podman6_bridge_fix_mentions_forwarder() -> None:
    v = kb.podman_container_verdict(podman("6.0.0"), ctr("bridge"))
    assert v.preserved is False
    assert 'rootless_port_forwarder = "pasta"' in v.fix


@pytest.mark.parametrize(
    ("p", "preserved", "words"),
    [
        (podman("4.3.1"), False, "10.0.2.100"),
        (
            podman("4.3.1", conf={"engine.network_cmd_options": ["port_handler=slirp4netns"]}),
            True,
            "port_handler=slirp4netns",
        ),
        (podman("5.0.0-dev"), True, "pasta"),
        (podman("4.9.0", rootless_network_cmd="pasta"), True, "pasta"),
        (podman("6.0.0"), True, "pasta"),
        (
            podman("6.0.0", conf={"network.default_rootless_network_cmd": "slirp4netns"}),
            False,
            "will not start",
        ),
        (podman("5.2.3", rootless=False), True, "rootful"),
    ],
)
def test_podman_engine_verdict(p: PodmanFacts, preserved: bool, words: str) -> None:
    v = kb.podman_engine_verdict(p)
    assert v.preserved is preserved, v.reason
    assert words in v.reason


def test_podman_engine_states_bridge_caveat() -> None:
    assert "bridge/compose networks still lose it" in kb.podman_engine_verdict(podman()).reason
    p6 = podman("6.0.0", rootless_port_forwarder="pasta")
    assert "use pasta too" in kb.podman_engine_verdict(p6).reason


def test_podman_host_none_container() -> None:
    p = podman("5.2.3", containers=(ctr("pasta", id="abc123"),))
    assert kb.podman_container_verdict(p, ctr("host")).preserved is True
    assert kb.podman_container_verdict(p, ctr("none")).preserved is None
    shared = kb.podman_container_verdict(p, ctr("container:abc123"))
    assert shared.preserved is True and "shares mail's network" in shared.reason
    assert kb.podman_container_verdict(p, ctr("container:zzz")).preserved is None


# --------------------------------------------------------------------------- Docker edges


def test_rootful_docker() -> None:
    v = kb.docker_verdict(DockerFacts(rootless=False, version="27.0.3"))
    assert v.preserved is True
    assert v.reason == "rootful Docker: port publishing by iptables DNAT keeps source IPs"


def test_rk3_userland_proxy_unset_vs_false_vs_true() -> None:
    unset = kb.docker_verdict(docker("3.0.0", userland_proxy=None))
    on = kb.docker_verdict(docker("3.0.0", userland_proxy=True))
    off = kb.docker_verdict(docker("3.0.0", userland_proxy=False))
    assert unset.preserved is False and on.preserved is False and off.preserved is True
    assert "172.17.0.1" in unset.reason
    assert "UDP" in off.reason and "TCP" in off.reason


def test_rk2_userland_proxy_off_still_lost() -> None:
    assert kb.docker_verdict(docker("2.3.6", userland_proxy=False)).preserved is False


def test_unknown_rk_version_builtin_proxy_off_is_none() -> None:
    v = kb.docker_verdict(docker(None, userland_proxy=False))
    assert v.preserved is None
    assert "docker version" in v.reason


def test_unknown_rk_version_builtin_proxy_on_is_lost_either_way() -> None:
    assert kb.docker_verdict(docker(None)).preserved is False


def test_unknown_port_driver_is_none_with_how() -> None:
    v = kb.docker_verdict(docker("2.3.6", port="weird"))
    assert v.preserved is None
    assert "rootlessctl" in v.reason


def test_implicit_reported_as_null_port_driver() -> None:
    # RootlessKit API: portDriver null for implicit.
    v = kb.docker_verdict(docker("2.3.5", net="pasta", port=None))
    assert v.preserved is True and "implicit" in v.reason


def test_falls_back_to_configured_drivers_and_says_so() -> None:
    d = DockerFacts(
        rootless=True,
        version="29.4.0",
        configured_net="slirp4netns",
        configured_port_driver="slirp4netns",
        configured_env={"DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER": "slirp4netns"},
    )
    v = kb.docker_verdict(d)
    assert v.preserved is True
    assert "configured" in v.reason


def test_launcher_defaults_from_tools() -> None:
    d = DockerFacts(rootless=True, version="29.0.0")
    pasta_only = {
        "slirp4netns": Tool(name="slirp4netns"),
        "pasta": Tool(name="pasta", path="/usr/bin/pasta", version="2024_05_23"),
    }
    dr = kb.docker_drivers(d, pasta_only)
    assert (dr.network_driver, dr.port_driver, dr.running) == ("pasta", "implicit", False)
    with_slirp = {"slirp4netns": Tool(name="slirp4netns", path="/usr/bin/slirp4netns")}
    assert kb.docker_drivers(d, with_slirp).port_driver == "builtin"
    # Up to 28.5.1 pasta did not get implicit by default.
    old = DockerFacts(rootless=True, version="28.5.1", configured_net="pasta")
    assert kb.docker_drivers(old).port_driver == "builtin"


def test_docker_rootless_unknown_without_anything() -> None:
    v = kb.docker_verdict(DockerFacts(cli="/usr/bin/docker", reachable=False))
    assert v.preserved is None
    assert "docker info" in v.reason


def test_docker_container_verdicts() -> None:
    d = docker("1.1.0", containers=(ctr("host", engine="docker", id="deadbeef"),))
    assert kb.docker_container_verdict(d, ctr("host", engine="docker")).preserved is True
    assert kb.docker_container_verdict(d, ctr("none", engine="docker")).preserved is None
    assert kb.docker_container_verdict(d, ctr("bridge", engine="docker")).preserved is False
    assert kb.docker_container_verdict(d, ctr("container:deadbeef", engine="docker")).preserved
    rootful = DockerFacts(rootless=False)
    assert kb.docker_container_verdict(rootful, ctr("bridge", engine="docker")).preserved is True


# --------------------------------------------------------------------------- standalone RootlessKit


@pytest.mark.parametrize(
    ("rk", "preserved", "words"),
    [
        (RootlessKitFacts(version="1.1.0", port_driver="builtin"), False, "127.0.0.1"),
        (RootlessKitFacts(version="3.0.0", port_driver="builtin"), True, "--source-ip-transparent"),
        (RootlessKitFacts(version=None, port_driver="builtin"), None, "rootlesskit --version"),
        (RootlessKitFacts(version="2.3.4", port_driver="slirp4netns"), True, "slirp4netns"),
        (
            RootlessKitFacts(version="2.3.4", network_driver="pasta", port_driver="implicit"),
            True,
            "implicit",
        ),
        (RootlessKitFacts(version="2.3.4", network_driver="pasta"), True, "implicit"),
        (RootlessKitFacts(version="3.0.0", port_driver="pesto"), True, "pesto"),
        (RootlessKitFacts(version="2.3.4", port_driver="gvisor-tap-vsock"), False, "gvisor"),
        (RootlessKitFacts(version="2.3.4", port_driver="none"), None, "not forwarded"),
    ],
)
def test_rootlesskit_verdict(rk: RootlessKitFacts, preserved: bool | None, words: str) -> None:
    v = kb.rootlesskit_verdict(rk)
    assert v.preserved is preserved, v.reason
    assert words in v.reason


def test_rk3_builtin_standalone_says_udp_lost() -> None:
    v = kb.rootlesskit_verdict(RootlessKitFacts(version="v3.0.0", port_driver="builtin"))
    assert "UDP still loses" in v.reason and "iptables" in v.reason


def test_split_network_mode() -> None:
    assert kb.split_network_mode("slirp4netns:port_handler=slirp4netns,mtu=65520") == (
        "slirp4netns",
        {"port_handler": "slirp4netns", "mtu": "65520"},
    )
    assert kb.split_network_mode("container:abc") == ("container", {})
    assert kb.split_network_mode(None) == (None, {})
    assert kb.split_network_mode("pasta") == ("pasta", {})


def test_pesto_needs_rootlesskit_3_1_and_builtin_refuses_pasta() -> None:
    # rootlesskit v3.1.0 added --port-driver=pesto (#616); docs/port.md: needs the pasta network.
    # cmd/rootlesskit/main.go: network "pasta" refuses the builtin port driver.
    tools = {"pasta": Tool(name="pasta", path="/usr/bin/pasta", version="2026_05_07.1afd4ed")}
    opts = {o.key: o for o in kb.docker_fix_options(docker("3.0.2"), tools)}
    assert not opts["pesto"].available and "3.1" in opts["pesto"].missing
    opts = {o.key: o for o in kb.docker_fix_options(docker("3.1.0"), tools)}
    assert opts["pesto"].available and opts["pesto"].network_driver == "pasta"
    opts = {o.key: o for o in kb.docker_fix_options(docker("3.1.0", net="pasta"), tools)}
    assert not opts["builtin-transparent"].available
    assert "pasta" in opts["builtin-transparent"].missing


@pytest.mark.parametrize(
    ("version", "pasta", "mode"),
    [
        ("4.3.1", False, "slirp4netns:port_handler=slirp4netns"),  # Debian 12: no pasta network
        ("4.3.1", True, "slirp4netns:port_handler=slirp4netns"),  # pasta came in 4.4
        ("4.9.3", True, "pasta"),
        ("4.9.3", False, "slirp4netns:port_handler=slirp4netns"),
        ("5.0.0", False, "pasta"),  # the default from 5.0
        ("6.0.0", True, "pasta"),  # the only one from 6.0
    ],
)
def test_podman_keep_ip_mode(version: str, pasta: bool, mode: str) -> None:
    assert kb.podman_keep_ip_mode(version, pasta) == mode
    # The bridge-network verdict's remedy names the same mode.
    p = PodmanFacts(version=version, rootless=True, pasta_version="2024_05_23" if pasta else None)
    c = ContainerFacts(engine="podman", name="x", network_mode="bridge")
    v = kb.podman_container_verdict(p, c)
    assert f"network_mode {mode}" in v.fix


def test_driver_drift_names_what_differs() -> None:
    assert kb.driver_drift(("pasta", "implicit"), ("slirp4netns", "builtin")) == [
        "NET=pasta configured, slirp4netns running",
        "PORT_DRIVER=implicit configured, builtin running",
    ]
    assert kb.driver_drift((None, "implicit"), ("pasta", "implicit")) == []
    assert kb.driver_drift(("pasta", None), (None, "builtin")) == []  # running net not read


def test_docker_rootless_evidence_most_direct_decides() -> None:
    def ev(**kw: object) -> tuple[bool | None, list[str]]:
        base: dict[str, object] = dict(
            info_rootless=None, version_lists_rootlesskit=False, rootlesskit=None, user="u",
            docker_host="", runtime_dir="/run/user/1000", context=None, context_host=None,
            socket=None, target_note="",
        )  # fmt: skip
        base.update(kw)
        return kb.docker_rootless_from_evidence(**base)  # type: ignore[arg-type]

    assert ev() == (None, [])
    # docker info says rootful: a socket in the runtime dir does not overrule it
    assert ev(info_rootless=False, socket="/run/user/1000/docker.sock") == (
        False,
        ["docker info: no rootless security option", "socket /run/user/1000/docker.sock exists"],
    )
    # a rootlesskit component in docker version does
    assert ev(info_rootless=False, version_lists_rootlesskit=True)[0] is True
    assert ev(docker_host="unix:///run/user/1000/docker.sock")[0] is True
    assert ev(docker_host="unix:///var/run/docker.sock")[0] is None
    assert ev(rootlesskit="4242") == (True, ["rootlesskit (pid 4242) runs dockerd for u"])


@pytest.mark.parametrize(
    ("version", "wrapper", "reads_cmd"),
    [
        (None, False, False),  # unknown: the planners take the older way
        ("4.5.1", False, False),
        ("4.6.0", False, True),  # containers/podman#19032
        ("4.6.2", False, True),
        ("4.7.0", True, True),  # `podman compose`
        ("5.4.2", True, True),
    ],
)
def test_podman_version_thresholds_the_planners_ask(
    version: str | None, wrapper: bool, reads_cmd: bool
) -> None:
    assert kb.podman_has_compose_wrapper(version) is wrapper
    assert kb.podman_reads_default_network_cmd(version) is reads_cmd
