"""checks/: a passing and a failing case per check ID, on facts built in code."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import pytest

from rootless_doctor.checks import all_checks, diagnose
from rootless_doctor.model import (
    CheckResult,
    ComposeFacts,
    ComposeService,
    ContainerFacts,
    DockerFacts,
    HostFacts,
    Interface,
    PodmanFacts,
    PublishedPort,
    RootlessKitFacts,
    Tool,
)

TOOLS = {
    "newuidmap": Tool(name="newuidmap", path="/usr/bin/newuidmap"),
    "newgidmap": Tool(name="newgidmap", path="/usr/bin/newgidmap"),
    "slirp4netns": Tool(name="slirp4netns", path="/usr/bin/slirp4netns", version="1.2.0"),
    "pasta": Tool(name="pasta", path="/usr/bin/pasta", version="2024_05_23.765eb0b"),
    "rootlesskit": Tool(name="rootlesskit", path="/usr/bin/rootlesskit", version="2.3.6"),
}

MAIL_PORTS = tuple(PublishedPort(host_port=p, container_port=p) for p in (25, 587, 993))


def rk(
    version: str | None = "2.3.6", net: str = "slirp4netns", port: str | None = "slirp4netns"
) -> RootlessKitFacts:
    return RootlessKitFacts(
        version=version, network_driver=net, port_driver=port, source="api.sock"
    )


def dk(**kw: Any) -> DockerFacts:
    kw.setdefault("rootless", True)
    kw.setdefault("reachable", True)
    kw.setdefault("version", "29.4.0")
    kw.setdefault("running", rk())
    return DockerFacts(**kw)


def pm(version: str = "5.2.3", **kw: Any) -> PodmanFacts:
    kw.setdefault("rootless", True)
    return PodmanFacts(version=version, **kw)


def ctr(
    name: str = "web",
    engine: Literal["docker", "podman"] = "docker",
    mode: str | None = "bridge",
    **kw: Any,
) -> ContainerFacts:
    kw.setdefault("ports", (PublishedPort(host_port=8080, container_port=80),))
    return ContainerFacts(engine=engine, name=name, network_mode=mode, **kw)


def host(**kw: Any) -> HostFacts:
    """A healthy rootless Docker host (slirp4netns port driver)."""
    base: dict[str, Any] = dict(
        user="alice",
        uid=1000,
        docker=dk(),
        tools=dict(TOOLS),
        subuid=((100000, 65536),),
        subgid=((100000, 65536),),
        max_user_namespaces=63936,
        dev_net_tun="ok",
        unprivileged_port_start=1024,
        systemd_user=True,
        linger=True,
        xdg_runtime_dir="/run/user/1000",
        firewall="nftables",
    )
    base.update(kw)
    return HostFacts(**base)


def by_id(facts: HostFacts, cid: str) -> list[CheckResult]:
    found = [r for r in all_checks(facts) if r.id == cid]
    assert found, f"{cid} not reported"
    return found


def one(facts: HostFacts, cid: str) -> CheckResult:
    found = by_id(facts, cid)
    assert len(found) == 1, found
    return found[0]


def compose(*services: ComposeService) -> ComposeFacts:
    return ComposeFacts(path="/srv/mail/compose.yaml", services=services)


def dms(**kw: Any) -> ComposeService:
    env = {"ENABLE_FAIL2BAN": "1", "PERMIT_DOCKER": "none"}
    env.update(kw.pop("env", {}))
    kw.setdefault("ports", MAIL_PORTS)
    kw.setdefault("cap_add", ("NET_ADMIN",))
    return ComposeService(
        name="mailserver",
        image="ghcr.io/docker-mailserver/docker-mailserver:latest",
        environment=env,
        **kw,
    )


# --------------------------------------------------------------------------- all checks, shape


def test_healthy_host_has_no_failures() -> None:
    report = diagnose(host())
    assert not report.failed, [r for r in report.checks if r.status == "fail"]
    for r in report.checks:
        assert r.id == r.id.upper() and " " not in r.id
        assert r.status in {"ok", "warn", "fail", "skip", "unknown"}
        if r.status == "fail":
            assert r.remedy


def test_every_failure_has_a_remedy() -> None:
    bad = host(
        docker=dk(running=rk("1.1.0", port="builtin"), containers=(ctr(ports=MAIL_PORTS),)),
        subuid=(),
        subgid=(),
        max_user_namespaces=0,
        dev_net_tun="missing",
        xdg_runtime_dir=None,
        compose=compose(dms(cap_add=(), env={"PERMIT_DOCKER": "network"})),
    )
    report = diagnose(bad)
    fails = [r for r in report.checks if r.status == "fail"]
    assert len(fails) >= 8
    assert all(r.remedy for r in fails), [r.id for r in fails if not r.remedy]


# --------------------------------------------------------------------------- ENGINES


def test_engines_ok() -> None:
    r = one(host(), "ENGINES")
    assert r.status == "ok" and "Docker 29.4.0 (rootless)" in r.detail


def test_no_engines_is_exit_0_worthy() -> None:
    facts = host(docker=None, subuid=(), tools={})
    r = one(facts, "ENGINES")
    assert r.status == "skip" and "no Docker or Podman found" in r.detail
    report = diagnose(facts)
    assert report.engines == ()
    assert report.failed is False  # prereq failures become warnings with no engine
    assert one(facts, "SUBUID").status == "warn"


# --------------------------------------------------------------------------- DOCKER-*


def test_docker_source_ip_ok_and_fail() -> None:
    assert one(host(), "DOCKER-SOURCE-IP").status == "ok"
    r = one(host(docker=dk(running=rk("1.1.0", port="builtin"))), "DOCKER-SOURCE-IP")
    assert r.status == "fail"
    assert "RootlessKit 1.1.0 builtin" in r.detail and "172.17.0.1" in r.detail
    assert "rootless-doctor fix docker" in r.remedy


def test_docker_source_ip_unknown_and_rootful() -> None:
    r = one(host(docker=DockerFacts(cli="/usr/bin/docker", reachable=False)), "DOCKER-SOURCE-IP")
    assert r.status == "unknown" and "docker info" in r.detail
    r = one(host(docker=DockerFacts(rootless=False, version="27.3.1")), "DOCKER-SOURCE-IP")
    assert r.status == "ok" and "rootful Docker" in r.detail


def test_driver_drift_ok_and_warn() -> None:
    same = dk(configured_net="slirp4netns", configured_port_driver="slirp4netns")
    assert one(host(docker=same), "DOCKER-DRIVER-DRIFT").status == "ok"
    drift = dk(
        running=rk("2.3.6", port="builtin"),
        configured_net="slirp4netns",
        configured_port_driver="slirp4netns",
        unit_files=(
            "~/.config/systemd/user/docker.service",
            "~/.config/systemd/user/docker.service.d/override.conf",
        ),
    )
    r = one(host(docker=drift), "DOCKER-DRIVER-DRIFT")
    assert r.status == "warn"
    assert "PORT_DRIVER=slirp4netns configured, builtin running" in r.detail
    assert "override.conf" in r.detail
    assert "After a restart" in r.detail and "source IPs kept" in r.detail
    assert "systemctl --user daemon-reload && systemctl --user restart docker" in r.remedy


def test_driver_drift_skip_without_running_daemon() -> None:
    d = dk(running=None, reachable=False, configured_port_driver="slirp4netns")
    assert one(host(docker=d), "DOCKER-DRIVER-DRIFT").status == "skip"
    assert one(host(docker=dk()), "DOCKER-DRIVER-DRIFT").detail.startswith("no DOCKERD_ROOTLESS")


def test_driver_drift_implicit_reported_as_null() -> None:
    d = dk(running=rk("2.3.5", net="pasta", port=None), configured_net="pasta",
           configured_port_driver="implicit")  # fmt: skip
    assert one(host(docker=d), "DOCKER-DRIVER-DRIFT").status == "ok"


def test_userland_proxy_ok_warn_skip() -> None:
    rk3 = rk("3.0.0", port="builtin")
    ok = one(host(docker=dk(running=rk3, userland_proxy=False)), "DOCKER-USERLAND-PROXY")
    assert ok.status == "ok"
    warn = one(host(docker=dk(running=rk3, userland_proxy=None)), "DOCKER-USERLAND-PROXY")
    assert warn.status == "warn" and "not set (default: on)" in warn.detail
    assert '"userland-proxy": false' in warn.remedy
    # RootlessKit 3 with userland-proxy unset: the source-IP check fails, with false it passes.
    assert one(host(docker=dk(running=rk3)), "DOCKER-SOURCE-IP").status == "fail"
    assert (
        one(host(docker=dk(running=rk3, userland_proxy=False)), "DOCKER-SOURCE-IP").status == "ok"
    )
    rk2 = rk("2.3.6", port="builtin")
    assert one(host(docker=dk(running=rk2)), "DOCKER-USERLAND-PROXY").status == "skip"
    assert one(host(), "DOCKER-USERLAND-PROXY").status == "skip"  # slirp4netns driver
    unknown = dk(running=rk(None, port="builtin"), userland_proxy=False)
    assert one(host(docker=unknown), "DOCKER-USERLAND-PROXY").status == "unknown"


# --------------------------------------------------------------------------- PODMAN-*


def test_podman_source_ip_ok_and_fail() -> None:
    r = one(host(docker=None, podman=pm("5.2.3")), "PODMAN-SOURCE-IP")
    assert r.status == "ok" and "pasta" in r.detail
    r = one(host(docker=None, podman=pm("4.3.1")), "PODMAN-SOURCE-IP")
    assert r.status == "fail" and "10.0.2.100" in r.detail
    assert "rootless-doctor fix podman" in r.remedy


def test_podman6_slirp4netns() -> None:
    ok = one(host(docker=None, podman=pm("6.0.0")), "PODMAN6-SLIRP4NETNS")
    assert ok.status == "ok"
    p = pm("6.0.0", containers=(ctr("mail", "podman", "slirp4netns:port_handler=slirp4netns"),))
    fail = one(host(docker=None, podman=p), "PODMAN6-SLIRP4NETNS")
    assert fail.status == "fail" and "mail" in fail.detail
    assert "podman system migrate" in fail.remedy
    conf = pm("6.0.0", conf={"network.default_rootless_network_cmd": "slirp4netns"})
    assert one(host(docker=None, podman=conf), "PODMAN6-SLIRP4NETNS").status == "fail"
    opts = pm("6.0.0", conf={"engine.network_cmd_options": ["port_handler=slirp4netns"]})
    assert one(host(docker=None, podman=opts), "PODMAN6-SLIRP4NETNS").status == "warn"
    assert one(host(docker=None, podman=pm("5.2.3")), "PODMAN6-SLIRP4NETNS").status == "skip"
    p4 = one(host(docker=None, podman=pm("4.3.1")), "PODMAN6-SLIRP4NETNS")
    assert p4.status == "ok" and "the default network" in p4.detail
    p5 = pm("5.2.3", containers=(ctr("mail", "podman", "slirp4netns"),))
    r5 = one(host(docker=None, podman=p5), "PODMAN6-SLIRP4NETNS")
    assert r5.status == "ok" and "Podman 6 removes it" in r5.detail
    assert one(host(docker=None, podman=PodmanFacts()), "PODMAN6-SLIRP4NETNS").status == "unknown"


def test_podman6_slirp4netns_container_source_ip_fails() -> None:
    p = pm("6.0.0", containers=(ctr("mail", "podman", "slirp4netns"),))
    r = one(host(docker=None, podman=p), "CONTAINER-SOURCE-IP")
    assert r.status == "fail" and "will not start" in r.detail


# --------------------------------------------------------------------------- CONTAINER-SOURCE-IP


def test_container_source_ip() -> None:
    p = pm(
        "5.2.3",
        containers=(
            ctr("good", "podman", "pasta"),
            ctr("bad", "podman", "bridge"),
            ctr("quiet", "podman", "bridge", ports=()),
            ctr("iso", "podman", "none"),
        ),
    )
    results = {r.title: r for r in by_id(host(docker=None, podman=p), "CONTAINER-SOURCE-IP")}
    assert results["Container good (podman): client source IPs"].status == "ok"
    bad = results["Container bad (podman): client source IPs"]
    assert bad.status == "fail" and "rootlessport" in bad.detail and "8080->80/tcp" in bad.detail
    assert results["Container iso (podman): client source IPs"].status == "skip"
    assert not any("quiet" in t for t in results)


def test_container_source_ip_skip_without_ports() -> None:
    r = one(host(), "CONTAINER-SOURCE-IP")
    assert r.status == "skip"


# --------------------------------------------------------------------------- ROOTLESSKIT-SOURCE-IP


def test_rootlesskit_source_ip() -> None:
    good = RootlessKitFacts(pid=42, version="2.3.4", port_driver="slirp4netns", child="python3")
    bad = RootlessKitFacts(pid=43, version="1.1.0", port_driver="builtin", child="nginx")
    results = by_id(host(docker=None, rootlesskits=(good, bad)), "ROOTLESSKIT-SOURCE-IP")
    assert [r.status for r in results] == ["ok", "fail"]
    assert "pid 43" in results[1].title and "127.0.0.1" in results[1].detail


# --------------------------------------------------------------------------- prereqs


def test_newuidmap() -> None:
    assert one(host(), "NEWUIDMAP").status == "ok"
    tools = dict(TOOLS, newuidmap=Tool(name="newuidmap"))
    r = one(host(tools=tools), "NEWUIDMAP")
    assert r.status == "fail" and "uidmap" in r.remedy
    assert one(host(tools={}), "NEWUIDMAP").status == "unknown"
    plain = dict(
        TOOLS, newgidmap=Tool(name="newgidmap", path="/usr/bin/newgidmap", setid="neither")
    )
    r = one(host(tools=plain), "NEWUIDMAP")
    assert r.status == "fail" and "newgidmap" in r.detail


@pytest.mark.parametrize("cid", ["SUBUID", "SUBGID"])
def test_subids(cid: str) -> None:
    field = cid.lower()
    assert one(host(), cid).status == "ok"
    r = one(host(**{field: ()}), cid)
    assert r.status == "fail" and "usermod" in r.remedy and "alice" in r.remedy
    assert one(host(**{field: ((100000, 1000),)}), cid).status == "warn"
    assert one(host(**{field: None}), cid).status == "unknown"


def test_userns() -> None:
    assert one(host(), "USERNS").status == "ok"
    assert one(host(max_user_namespaces=0), "USERNS").status == "fail"
    assert one(host(userns_clone=0), "USERNS").status == "fail"
    assert one(host(max_user_namespaces=None), "USERNS").status == "unknown"


def test_dev_net_tun() -> None:
    assert one(host(), "DEV-NET-TUN").status == "ok"
    assert one(host(dev_net_tun="missing"), "DEV-NET-TUN").status == "fail"
    assert one(host(dev_net_tun="no-access"), "DEV-NET-TUN").status == "fail"
    assert one(host(dev_net_tun=None), "DEV-NET-TUN").status == "unknown"


def test_slirp4netns() -> None:
    r = one(host(), "SLIRP4NETNS")
    assert r.status == "ok" and "rootless Docker" in r.detail
    tools = dict(TOOLS, slirp4netns=Tool(name="slirp4netns"))
    assert one(host(tools=tools), "SLIRP4NETNS").status == "fail"  # configured net needs it
    assert one(host(docker=None, podman=pm("5.2.3"), tools=tools), "SLIRP4NETNS").status == "skip"
    old = dict(
        TOOLS, slirp4netns=Tool(name="slirp4netns", path="/usr/bin/slirp4netns", version="0.3.0")
    )
    assert one(host(tools=old), "SLIRP4NETNS").status == "warn"


def test_pasta() -> None:
    r = one(host(docker=None, podman=pm("5.2.3")), "PASTA")
    assert r.status == "ok" and "Podman default network" in r.detail
    tools = dict(TOOLS, pasta=Tool(name="pasta"))
    assert one(host(docker=None, podman=pm("5.2.3"), tools=tools), "PASTA").status == "fail"
    assert one(host(tools=tools), "PASTA").status == "skip"  # Docker on slirp4netns
    old = dict(TOOLS, pasta=Tool(name="pasta", path="/usr/bin/pasta", version="2023-03-09"))
    r = one(host(tools=old), "PASTA")
    assert r.status == "warn" and "2023_12_04" in r.detail


def test_rootlesskit_check() -> None:
    r = one(host(), "ROOTLESSKIT")
    assert r.status == "ok" and "RootlessKit 2.3.6 (running)" in r.detail
    old = host(docker=dk(running=rk("1.1.0", port="builtin")))
    r = one(old, "ROOTLESSKIT")
    assert r.status == "warn" and "before 2.0" in r.detail
    missing = host(
        docker=dk(running=None, reachable=False), tools=dict(TOOLS, rootlesskit=Tool(name="rk"))
    )
    assert one(missing, "ROOTLESSKIT").status == "fail"
    assert one(host(docker=None, podman=pm()), "ROOTLESSKIT").status == "skip"


def test_privileged_ports() -> None:
    assert one(host(), "PRIVILEGED-PORTS").status == "ok"
    p = pm("5.2.3", containers=(ctr("mail", "podman", "pasta", ports=MAIL_PORTS),))
    r = one(host(docker=None, podman=p), "PRIVILEGED-PORTS")
    assert r.status == "fail" and "mail:25" in r.detail
    assert "rootless-doctor fix privileged-ports" in r.remedy
    assert "ip_unprivileged_port_start=25" in r.remedy
    ok = one(host(docker=None, podman=p, unprivileged_port_start=25), "PRIVILEGED-PORTS")
    assert ok.status == "ok"
    builtin = dk(running=rk("2.3.6", port="builtin"), containers=(ctr(ports=MAIL_PORTS),))
    r = one(host(docker=builtin), "PRIVILEGED-PORTS")
    assert r.status == "warn" and "setcap cap_net_bind_service=ep" in r.remedy
    unknown = host(docker=None, podman=p, unprivileged_port_start=None)
    assert one(unknown, "PRIVILEGED-PORTS").status == "unknown"
    from_compose = host(docker=None, podman=pm(), compose=compose(dms(network_mode="pasta")))
    r = one(from_compose, "PRIVILEGED-PORTS")
    assert r.status == "fail" and "compose mailserver:25" in r.detail


def test_systemd_user_and_linger() -> None:
    assert one(host(), "SYSTEMD-USER").status == "ok"
    assert one(host(systemd_user=False), "SYSTEMD-USER").status == "warn"
    assert one(host(), "LINGER").status == "ok"
    r = one(host(linger=False), "LINGER")
    assert r.status == "warn" and r.remedy == "`sudo loginctl enable-linger alice`"
    assert one(host(systemd_user=False, linger=False), "LINGER").status == "skip"


def test_xdg_runtime_dir() -> None:
    assert one(host(), "XDG-RUNTIME-DIR").status == "ok"
    assert one(host(xdg_runtime_dir=None), "XDG-RUNTIME-DIR").status == "fail"
    assert one(host(xdg_runtime_dir=None, offline=True), "XDG-RUNTIME-DIR").status == "unknown"


def test_firewall() -> None:
    f2b = compose(dms(network_mode="pasta"))
    facts = host(docker=None, podman=pm(), compose=f2b)
    assert one(facts, "FIREWALL").status == "ok"
    r = one(replace(facts, firewall="iptables-legacy"), "FIREWALL")
    assert r.status == "warn" and "nftables" in r.detail
    assert one(replace(facts, firewall=None), "FIREWALL").status == "unknown"
    assert one(host(), "FIREWALL").status == "skip"


def test_root_user_with_unknown_docker_skips_prereqs() -> None:
    facts = host(uid=0, user="root", docker=DockerFacts(cli="/usr/bin/docker", reachable=False))
    assert one(facts, "SUBUID").status == "ok"
    bad = replace(facts, subuid=(), xdg_runtime_dir=None)
    assert one(bad, "SUBUID").status == "skip" and "running as root" in one(bad, "SUBUID").detail
    assert one(bad, "XDG-RUNTIME-DIR").status == "skip"
    assert one(bad, "DOCKER-USERLAND-PROXY").status == "skip"
    assert not diagnose(bad).failed


def test_rootful_only_skips_prereqs() -> None:
    facts = host(docker=DockerFacts(rootless=False, version="27.3.1"), subuid=(), linger=False)
    assert one(facts, "SUBUID").status == "skip"
    assert not diagnose(facts).failed


# --------------------------------------------------------------------------- compose


def test_compose_network_mode_podman() -> None:
    good = host(docker=None, podman=pm(), compose=compose(dms(network_mode="pasta")))
    r = one(good, "COMPOSE-NETWORK-MODE")
    assert r.status == "ok" and "assumed" not in r.detail
    bad = host(docker=None, podman=pm(), compose=compose(dms(networks=("mail",))))
    r = one(bad, "COMPOSE-NETWORK-MODE")
    assert r.status == "fail" and "rootlessport" in r.detail
    assert "rootless-doctor fix compose" in r.remedy
    both = host(
        docker=None,
        podman=pm(),
        compose=compose(dms(network_mode="slirp4netns:port_handler=slirp4netns", networks=("m",))),
    )
    r = one(both, "COMPOSE-NETWORK-MODE")
    assert r.status == "fail" and "cannot join user-defined networks" in r.detail


def test_compose_network_mode_docker() -> None:
    ok = one(host(compose=compose(dms())), "COMPOSE-NETWORK-MODE")
    assert ok.status == "ok"
    lost = host(docker=dk(running=rk("1.1.0", port="builtin")), compose=compose(dms()))
    assert one(lost, "COMPOSE-NETWORK-MODE").status == "fail"
    podman_syntax = one(host(compose=compose(dms(network_mode="pasta"))), "COMPOSE-NETWORK-MODE")
    assert podman_syntax.status == "fail" and "Podman syntax" in podman_syntax.detail


def test_compose_engine_assumption_stated() -> None:
    r = one(host(podman=pm(), compose=compose(dms())), "COMPOSE-NETWORK-MODE")
    assert "both Docker and Podman found: assumed `docker compose`" in r.detail
    # A docker CLI without a daemon (docker.io installed, nothing set up) cannot run the file.
    cli_only = DockerFacts(cli="/usr/bin/docker", reachable=False)
    r = one(host(docker=cli_only, podman=pm(), compose=compose(dms())), "COMPOSE-NETWORK-MODE")
    assert "assumed `podman compose`" in r.detail and r.status == "fail"
    # No engine: judged as rootless Docker with the launcher's defaults (slirp4netns installed →
    # builtin; userland-proxy on → lost whatever the RootlessKit version).
    r = one(host(docker=None, compose=compose(dms())), "COMPOSE-NETWORK-MODE")
    assert "no engine found" in r.detail and "launcher default" in r.detail
    assert r.status == "fail"
    r = one(host(docker=None, tools={}, compose=compose(dms())), "COMPOSE-NETWORK-MODE")
    assert r.status == "unknown"
    r = one(host(podman=pm(), compose=compose(dms(network_mode="pasta"))), "COMPOSE-NETWORK-MODE")
    assert "both engines found: assumed Podman" in r.detail and r.status == "ok"


def test_compose_privileged_ports() -> None:
    p_facts = host(docker=None, podman=pm(), compose=compose(dms(network_mode="pasta")))
    r = one(p_facts, "COMPOSE-PRIVILEGED-PORTS")
    assert r.status == "fail" and "mailserver:25" in r.detail
    assert "ip_unprivileged_port_start=25" in r.remedy
    assert (
        one(replace(p_facts, unprivileged_port_start=0), "COMPOSE-PRIVILEGED-PORTS").status == "ok"
    )
    unknown = replace(p_facts, unprivileged_port_start=None)
    assert one(unknown, "COMPOSE-PRIVILEGED-PORTS").status == "unknown"
    docker_builtin = host(docker=dk(running=rk(port="builtin")), compose=compose(dms()))
    r = one(docker_builtin, "COMPOSE-PRIVILEGED-PORTS")
    assert r.status == "warn" and "setcap" in r.remedy


def test_compose_net_admin() -> None:
    assert one(host(compose=compose(dms())), "COMPOSE-NET-ADMIN").status == "ok"
    assert (
        one(host(compose=compose(dms(cap_add=("CAP_NET_ADMIN",)))), "COMPOSE-NET-ADMIN").status
        == "ok"
    )
    r = one(host(compose=compose(dms(cap_add=()))), "COMPOSE-NET-ADMIN")
    assert r.status == "fail" and "cap_add: [NET_ADMIN]" in r.remedy
    off = dms(env={"ENABLE_FAIL2BAN": "0"}, cap_add=())
    assert one(host(compose=compose(off)), "COMPOSE-NET-ADMIN").status == "skip"


def test_compose_network_interface() -> None:
    podman = {"docker": None, "podman": pm("5.2.3")}
    slirp = "slirp4netns:port_handler=slirp4netns"
    ok = host(**podman, compose=compose(dms(network_mode=slirp, env={"NETWORK_INTERFACE": "tap0"})))
    assert one(ok, "COMPOSE-NETWORK-INTERFACE").status == "ok"
    bad = host(**podman, compose=compose(dms(network_mode=slirp)))
    r = one(bad, "COMPOSE-NETWORK-INTERFACE")
    assert r.status == "fail" and "NETWORK_INTERFACE=tap0" in r.remedy
    tap_on_pasta = dms(network_mode="pasta", env={"NETWORK_INTERFACE": "tap0"})
    assert (
        one(host(**podman, compose=compose(tap_on_pasta)), "COMPOSE-NETWORK-INTERFACE").status
        == "fail"
    )
    unset_pasta = host(**podman, compose=compose(dms(network_mode="pasta")))
    assert one(unset_pasta, "COMPOSE-NETWORK-INTERFACE").status == "warn"
    named = dms(network_mode="pasta", env={"NETWORK_INTERFACE": "enp3s0"})
    assert one(host(**podman, compose=compose(named)), "COMPOSE-NETWORK-INTERFACE").status == "ok"
    bridge_tap = dms(env={"NETWORK_INTERFACE": "tap0"})
    r = one(host(compose=compose(bridge_tap)), "COMPOSE-NETWORK-INTERFACE")
    assert r.status == "fail" and "NETWORK_INTERFACE=eth0" in r.remedy
    assert one(host(compose=compose(dms())), "COMPOSE-NETWORK-INTERFACE").status == "ok"


def test_compose_permit_docker() -> None:
    lost = dk(running=rk("1.1.0", port="builtin"))
    ok = one(host(docker=lost, compose=compose(dms())), "COMPOSE-PERMIT-DOCKER")
    assert ok.status == "ok"
    risky = dms(env={"PERMIT_DOCKER": "network"})
    r = one(host(docker=lost, compose=compose(risky)), "COMPOSE-PERMIT-DOCKER")
    assert r.status == "fail" and "open relay" in r.detail
    assert "PERMIT_DOCKER=none" in r.remedy
    kept = one(host(compose=compose(risky)), "COMPOSE-PERMIT-DOCKER")
    assert kept.status == "ok"


def test_no_compose_no_compose_checks() -> None:
    assert not [r for r in all_checks(host()) if r.id.startswith("COMPOSE-")]


# --------------------------------------------------------------------------- interfaces


def _mail(interfaces: tuple[Interface, ...] | None, **env: str) -> ContainerFacts:
    return ctr(
        "mail",
        "podman",
        "slirp4netns:port_handler=slirp4netns",
        env={"PERMIT_DOCKER": "none", **env},
        interfaces=interfaces,
        interfaces_error="" if interfaces is not None else "permission denied on /proc/4242/ns/net",
    )


def test_container_network_interface() -> None:
    ifs = (
        Interface(name="lo", addresses=("127.0.0.1/8",)),
        Interface(name="tap0", addresses=("10.0.2.100/24",)),
    )
    ok = host(docker=None, podman=pm("4.3.1", containers=(_mail(ifs, NETWORK_INTERFACE="tap0"),)))
    assert one(ok, "CONTAINER-NETWORK-INTERFACE").status == "ok"
    bad = host(docker=None, podman=pm("4.3.1", containers=(_mail(ifs),)))
    r = one(bad, "CONTAINER-NETWORK-INTERFACE")
    assert r.status == "fail" and "NETWORK_INTERFACE=tap0" in r.remedy
    assert "unset (default eth0)" in r.detail
    skip = host(docker=None, podman=pm("4.3.1", containers=(_mail(None),)))
    r = one(skip, "CONTAINER-NETWORK-INTERFACE")
    assert r.status == "skip" and "permission denied" in r.detail


def test_container_network_interface_ignores_other_containers() -> None:
    assert not [r for r in all_checks(host()) if r.id == "CONTAINER-NETWORK-INTERFACE"]


# --------------------------------------------------------------------------- diagnose


def test_diagnose_engine_reports() -> None:
    facts = host(
        docker=dk(running=rk("1.1.0", port="builtin"), containers=(ctr("web"),)),
        podman=pm("5.2.3", containers=(ctr("mail", "podman", "bridge"),)),
        rootlesskits=(RootlessKitFacts(pid=9, version="2.3.4", port_driver="slirp4netns"),),
    )
    report = diagnose(facts)
    docker_r, podman_r, rk_r = report.engines
    assert docker_r.engine == "docker" and docker_r.source_ip_preserved is False
    assert docker_r.rootlesskit_version == "1.1.0" and docker_r.port_driver == "builtin"
    assert docker_r.containers[0].name == "web"
    assert docker_r.containers[0].source_ip_preserved is False
    assert podman_r.engine == "podman" and podman_r.network_driver == "pasta"
    assert podman_r.port_driver == "pasta" and podman_r.source_ip_preserved is True
    assert podman_r.containers[0].port_handler == "rootlessport"
    assert podman_r.containers[0].source_ip_preserved is False
    assert rk_r.engine == "rootlesskit" and rk_r.source_ip_preserved is True
    assert report.failed


def test_diagnose_rootful_docker() -> None:
    report = diagnose(host(docker=DockerFacts(rootless=False, version="27.3.1")))
    (eng,) = report.engines
    assert eng.rootless is False and eng.source_ip_preserved is True
    assert eng.port_driver is None
    assert not report.failed


def test_diagnose_podman4_default_slirp_handler() -> None:
    (eng,) = diagnose(host(docker=None, podman=pm("4.3.1"))).engines
    assert eng.network_driver == "slirp4netns" and eng.port_driver == "rootlesskit"
    assert eng.source_ip_preserved is False


# ---------------------------------------------------------------- unit files, compose file


def test_docker_unit_ignored_pass_and_fail() -> None:
    read = HostFacts(docker=dk(unit_files=("~/.config/systemd/user/docker.service",)))
    assert one(read, "DOCKER-UNIT-IGNORED").status == "ok"
    assert one(HostFacts(docker=dk()), "DOCKER-UNIT-IGNORED").status == "skip"
    headless = HostFacts(
        docker=dk(
            unit_files=("/u/docker.service.d/override.conf",),
            ignored_unit_lines=(
                '/u/docker.service.d/override.conf: Environment="DOCKERD_ROOTLESS_'
                'ROOTLESSKIT_PORT_DRIVER=slirp4netns"',
            ),
        )
    )
    r = one(headless, "DOCKER-UNIT-IGNORED")
    assert r.status == "fail"
    assert "PORT_DRIVER=slirp4netns" in r.detail
    assert "[Service]" in r.remedy and "/u/docker.service.d/override.conf" in r.remedy
    other = HostFacts(docker=dk(unit_files=("/u/x.conf",), ignored_unit_lines=("/u/x.conf: A=b",)))
    assert one(other, "DOCKER-UNIT-IGNORED").status == "warn"


def test_compose_file_unreadable_fails_and_replaces_the_lint() -> None:
    broken = HostFacts(podman=pm(), compose=ComposeFacts(path="/p/compose.yaml", error="bad"))
    r = one(broken, "COMPOSE-FILE")
    assert r.status == "fail" and r.detail == "/p/compose.yaml: bad"
    assert not [c for c in all_checks(broken) if c.id == "COMPOSE-NETWORK-MODE"]
    fine = HostFacts(
        podman=pm(),
        compose=ComposeFacts(path="/p/c.yaml", services=(ComposeService(name="s"),)),
    )
    assert not [c for c in all_checks(fine) if c.id == "COMPOSE-FILE"]
    assert by_id(fine, "COMPOSE-NETWORK-MODE")


def test_run_as_pass_and_warn() -> None:
    assert one(HostFacts(user="alice", uid=1000), "RUN-AS").status == "ok"
    r = one(HostFacts(user="root", uid=0, sudo_user="alice"), "RUN-AS")
    assert r.status == "warn" and "alice" in r.detail and "sudo -iu alice" in r.remedy
    assert one(HostFacts(user="root", uid=0), "RUN-AS").status == "ok"  # plain root: rootful
    assert one(HostFacts(offline=True), "RUN-AS").status == "skip"
