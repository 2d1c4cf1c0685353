"""Fix planners, apply.py and `rootless-doctor fix` on real upstream files (tests/data/SOURCES.md).

Every fix: the whole file after the edit, a second run changes nothing, undo restores the bytes.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA
from typer.testing import CliRunner

from rootless_doctor import apply, cli_fix, host, knowledge, render, throughput
from rootless_doctor.fixes import compose, docker, podman, quadlet, sysctl
from rootless_doctor.model import (
    DockerFacts,
    DoctorError,
    FilePlan,
    HostFacts,
    HostPaths,
    JsonFix,
    PodmanFacts,
    RootlessKitFacts,
    Tool,
)

SLIRP = Tool(name="slirp4netns", path="/usr/bin/slirp4netns", version="1.2.0")
PASTA = Tool(name="pasta", path="/usr/bin/pasta", version="2024_05_23")


REPO = Path(__file__).resolve().parent.parent


def ref(pkg: str, name: str) -> str:
    """A reference file as shipped (installed package), else from the repo top (source tree)."""
    try:
        return importlib.resources.files(f"rootless_doctor.{pkg}").joinpath(name).read_text()
    except ModuleNotFoundError:
        return (REPO / {"ref_systemd": "systemd", "ref_podman": "podman"}[pkg] / name).read_text()


def docker_facts(
    rk: str = "1.1.0", port: str = "builtin", tools: tuple[Tool, ...] = (SLIRP,)
) -> HostFacts:
    return HostFacts(
        docker=DockerFacts(
            cli="/usr/bin/docker",
            rootless=True,
            running=RootlessKitFacts(version=rk, network_driver="slirp4netns", port_driver=port),
            br_netfilter=True,  # "userland-proxy": false can start (tests/test_rk3.py: absent)
        ),
        tools={t.name: t for t in tools},
    )


def opt(facts: HostFacts, driver: str | None = None) -> knowledge.FixOption:
    return docker.choose(facts, driver).option


# ------------------------------------------------------------------------------------ docker


def test_docker_fresh_dropin_equals_reference_files(tmp_path: Path) -> None:
    f = docker_facts()
    (p,) = docker.plan(opt(f), config_dir=tmp_path, dropin_text=None, daemon_json_text=None)
    assert p.path == tmp_path / "systemd/user/docker.service.d/override.conf"
    assert p.after == ref("ref_systemd", "override-slirp4netns.conf")
    assert p.next_steps == ("systemctl --user daemon-reload", "systemctl --user restart docker")
    f2 = docker_facts(rk="2.3.4", tools=(SLIRP, PASTA))
    assert opt(f2).key == "pasta-implicit"  # fastest usable first
    (p2,) = docker.plan(opt(f2), config_dir=tmp_path, dropin_text=None, daemon_json_text=None)
    assert p2.after == ref("ref_systemd", "override-pasta.conf")
    assert opt(f2, "slirp4netns").key == "slirp4netns"


def test_docker_rootlesskit3_writes_daemon_json(tmp_path: Path) -> None:
    f = docker_facts(rk="3.0.0")
    o = opt(f)
    assert o.key == "builtin-transparent"
    (p,) = docker.plan(o, config_dir=tmp_path, dropin_text=None, daemon_json_text=None)
    assert p.path == tmp_path / "docker/daemon.json"
    assert p.after == ref("ref_systemd", "daemon.json")
    for src in sorted((DATA / "daemon-json").iterdir()):
        text = src.read_text()
        after = docker.set_userland_proxy_off(text, src.name)
        assert json.loads(after)["userland-proxy"] is False
        assert docker.set_userland_proxy_off(after, src.name) == after
        # Every other key keeps its value.
        assert {k: v for k, v in json.loads(after).items() if k != "userland-proxy"} == {
            k: v for k, v in json.loads(text).items() if k != "userland-proxy"
        }


def test_docker_daemon_json_splice_exact() -> None:
    text = '{\n    "metrics-addr": "127.0.0.1:9323",\n    "experimental": true\n}\n'
    assert docker.set_userland_proxy_off(text, "d") == (
        '{\n    "userland-proxy": false,\n    "metrics-addr": "127.0.0.1:9323",\n'
        '    "experimental": true\n}\n'
    )
    assert (
        docker.set_userland_proxy_off('{"userland-proxy": true}', "d")
        == '{"userland-proxy": false}'
    )


def test_docker_dropin_with_other_settings_exact(tmp_path: Path) -> None:
    src = DATA / "systemd/phaidra-readme-override-assembled.conf"
    before = src.read_text()
    (p,) = docker.plan(
        opt(docker_facts()), config_dir=tmp_path, dropin_text=before, daemon_json_text=None
    )
    assert p.after == (
        "[Service]\n"
        'Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns"\n'
        'Environment=DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS="-p 0.0.0.0:9323:9323/tcp"\n'
        'Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns"\n'
    )
    (p2,) = docker.plan(
        opt(docker_facts()), config_dir=tmp_path, dropin_text=p.after, daemon_json_text=None
    )
    assert not p2.changed


def test_docker_dropin_rewrites_wrong_values_in_place(tmp_path: Path) -> None:
    before = (DATA / "systemd/bypass4netns-issue85-override.conf").read_text()
    (p,) = docker.plan(
        opt(docker_facts()), config_dir=tmp_path, dropin_text=before, daemon_json_text=None
    )
    assert p.after == (
        "[Service]\n"
        'Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns"\n'
        'Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns"\n'
    )


def test_docker_dropin_multi_assignment_line_and_sections(tmp_path: Path) -> None:
    before = (
        "# mine\n[Unit]\nDescription=x\n\n[Service]\n"
        'Environment="HTTP_PROXY=http://proxy:3128" "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=builtin"\n'  # noqa: E501
        "LimitNOFILE=infinity\n\n# install part\n[Install]\nWantedBy=default.target\n"
    )
    (p,) = docker.plan(
        opt(docker_facts()), config_dir=tmp_path, dropin_text=before, daemon_json_text=None
    )
    assert p.after == (
        "# mine\n[Unit]\nDescription=x\n\n[Service]\n"
        'Environment="HTTP_PROXY=http://proxy:3128"\n'
        "LimitNOFILE=infinity\n"
        'Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns"\n'
        'Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns"\n'
        "\n# install part\n[Install]\nWantedBy=default.target\n"
    )


def test_docker_malformed_dropin_one_line(tmp_path: Path) -> None:
    before = (DATA / "systemd/moby-issue52641-override-commented-lines.conf").read_text()
    with pytest.raises(DoctorError) as e:
        docker.plan(
            opt(docker_facts()), config_dir=tmp_path, dropin_text=before, daemon_json_text=None
        )
    assert "override.conf:1" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(DoctorError, match="unbalanced quotes"):
        docker.plan(
            opt(docker_facts()),
            config_dir=tmp_path,
            dropin_text='[Service]\nEnvironment="A=1\n',
            daemon_json_text=None,
        )
    with pytest.raises(DoctorError, match="not valid JSON"):
        docker.plan(
            opt(docker_facts(rk="3.0.1")),
            config_dir=tmp_path,
            dropin_text=None,
            daemon_json_text='{"a": }',
        )


def test_docker_driver_choice_errors() -> None:
    with pytest.raises(DoctorError, match="not usable here"):
        docker.choose(docker_facts(), "pasta")
    with pytest.raises(DoctorError, match="unknown"):
        docker.choose(docker_facts(), "vpnkit")


# ------------------------------------------------------------------------------------ compose

P4 = PodmanFacts(cli="/usr/bin/podman", version="4.3.1", rootless=True)
P5 = PodmanFacts(cli="/usr/bin/podman", version="5.4.2", rootless=True)
P49 = PodmanFacts(cli="/usr/bin/podman", version="4.9.3", rootless=True)  # Ubuntu 24.04
P6 = PodmanFacts(cli="/usr/bin/podman", version="6.0.0", rootless=True, pasta_version="2026_06_01")


def test_compose_docker_mailserver_podman4_exact() -> None:
    src = DATA / "compose/docker-mailserver-compose.yaml"
    text = src.read_text()
    cp = compose.plan(src, text, service=None, engine="podman", podman=P4)
    assert cp.plan is not None
    expected = text.replace(
        "    image: ghcr.io/docker-mailserver/docker-mailserver:latest\n",
        "    image: ghcr.io/docker-mailserver/docker-mailserver:latest\n"
        '    network_mode: "slirp4netns:port_handler=slirp4netns"\n'
        "    environment:\n      NETWORK_INTERFACE: tap0\n",
    )
    assert cp.plan.after == expected
    again = compose.plan(src, cp.plan.after, service=None, engine="podman", podman=P4)
    assert again.plan is not None and not again.plan.changed


def test_compose_pasta_with_interface() -> None:
    src = DATA / "compose/docker-mailserver-compose.yaml"
    text = src.read_text()
    cp = compose.plan(
        src,
        text,
        service="mailserver",
        engine="podman",
        podman=P5,
        pasta_installed=True,
        host_interface="enp1s0",
    )
    assert cp.plan is not None
    assert cp.plan.after == text.replace(
        "latest\n",
        "latest\n    network_mode: pasta\n    environment:\n      NETWORK_INTERFACE: enp1s0\n",
        1,
    )
    # Not a docker-mailserver image and no NETWORK_INTERFACE: only network_mode.
    src2 = DATA / "compose/docker-mailserver-docs-fail2ban-cap-add-net-admin.yaml"
    cp2 = compose.plan(src2, src2.read_text(), service=None, engine="podman", podman=P5)
    assert cp2.plan is not None
    assert cp2.plan.after == src2.read_text().replace(
        "  mailserver:\n", "  mailserver:\n    network_mode: pasta\n"
    )
    # A list environment that has NETWORK_INTERFACE gets its value rewritten in place.
    text3 = "services:\n  m:\n    image: x\n    environment:\n      - A=1\n      - 'NETWORK_INTERFACE=eth0'  # c\n"  # noqa: E501
    cp3 = compose.plan(Path("/x/c.yaml"), text3, service=None, engine="podman", podman=P4)
    assert cp3.plan is not None
    assert cp3.plan.after == text3.replace(
        "'NETWORK_INTERFACE=eth0'", "'NETWORK_INTERFACE=tap0'"
    ).replace("image: x\n", 'image: x\n    network_mode: "slirp4netns:port_handler=slirp4netns"\n')


def test_compose_reference_snippets() -> None:
    src = ref("ref_podman", "compose-input.yaml")
    for pf, pasta, name in (
        (P4, False, "compose-podman4-slirp4netns.yaml"),
        (P5, True, "compose-podman5-pasta.yaml"),
    ):
        cp = compose.plan(
            Path("/x/compose.yaml"),
            src,
            service=None,
            engine="podman",
            podman=pf,
            pasta_installed=pasta,
        )
        assert cp.plan is not None and cp.plan.after == ref("ref_podman", name)


def test_compose_refuses_networks_and_says_what_to_do() -> None:
    text = "services:\n  web:\n    image: nginx\n    networks:\n      - front\nnetworks:\n  front: {}\n"  # noqa: E501
    with pytest.raises(DoctorError) as e:
        compose.plan(Path("/x/c.yaml"), text, service="web", engine="podman", podman=P6)
    msg = str(e.value)
    assert "front" in msg and "remove `networks:`" in msg and "rootless_port_forwarder" in msg


def test_compose_docker_says_daemon_fix() -> None:
    text = (DATA / "compose/docker-mailserver-compose.yaml").read_text()
    cp = compose.plan(Path("/x/compose.yaml"), text, service=None, engine="docker")
    assert cp.plan is None and "rootless-doctor fix docker" in cp.advice


MTU_LINES = '    driver_opts:\n      com.docker.network.driver.mtu: "65520"\n'


def test_compose_docker_mtu_default_network() -> None:
    """--mtu with Docker: the project's default network gets the bridge MTU option (daemon.json
    "mtu" covers docker0 only); twice changes nothing; the next steps recreate the network."""
    src = DATA / "compose/docker-mailserver-compose.yaml"
    text = src.read_text()
    cp = compose.plan(src, text, service=None, engine="docker", mtu=True)
    assert cp.plan is not None
    assert cp.plan.after == text + "networks:\n  default:\n" + MTU_LINES
    assert cp.plan.next_steps == (f"docker compose -f {src} down", f"docker compose -f {src} up -d")
    assert "rootless-doctor fix docker --mtu" in cp.advice
    again = compose.plan(src, cp.plan.after, service=None, engine="docker", mtu=True)
    assert again.plan is not None and not again.plan.changed
    # without --mtu: advice only, as before
    assert compose.plan(src, text, service=None, engine="docker").plan is None


def test_compose_docker_mtu_named_networks() -> None:
    text = (
        "services:\n"
        "  web:\n"
        "    image: nginx\n"
        "    networks: [front, back, ext, mv, old]\n"
        "networks:\n"
        "  front:  # the public side\n"
        "  back:\n"
        "    driver: bridge\n"
        "    driver_opts:\n"
        "      com.docker.network.bridge.name: br-back\n"
        "  ext:\n"
        "    external: true\n"
        "  mv:\n"
        "    driver: macvlan\n"
        "  old:\n"
        "    driver_opts:\n"
        "      com.docker.network.driver.mtu: 1500 # set by hand\n"
    )
    cp = compose.plan(Path("/x/c.yaml"), text, service="web", engine="docker", mtu=True)
    assert cp.plan is not None
    assert cp.plan.after == (
        text.replace("  front:  # the public side\n", "  front:  # the public side\n" + MTU_LINES)
        .replace(
            "      com.docker.network.bridge.name",
            '      com.docker.network.driver.mtu: "65520"\n      com.docker.network.bridge.name',
        )
        .replace("mtu: 1500 # set by hand", "mtu: 65520 # set by hand")
    )
    assert "networks front, back, old:" in cp.plan.what
    assert "not edited: ext (external), mv (driver macvlan)" in cp.advice
    again = compose.plan(Path("/x/c.yaml"), cp.plan.after, service="web", engine="docker", mtu=True)
    assert again.plan is not None and not again.plan.changed


def test_compose_docker_mtu_refusals_and_no_network() -> None:
    base = "services:\n  web:\n    image: nginx\n"
    # a service on the host's network has no compose network: nothing to write
    cp = compose.plan(
        Path("/x/c.yaml"), base + "    network_mode: host\n", service=None, engine="docker",
        mtu=True,
    )  # fmt: skip
    assert cp.plan is None and "network_mode host" in cp.advice
    # only external networks: nothing written, says where the MTU goes
    ext = base + "    networks: [e]\nnetworks:\n  e:\n    external: true\n"
    cp = compose.plan(Path("/x/c.yaml"), ext, service=None, engine="docker", mtu=True)
    assert cp.plan is None and "docker network create -o com.docker.network.driver.mtu" in cp.advice
    # default network added before the other top-level networks
    other = base + "networks:\n  spare:\n    driver: bridge\n"
    cp = compose.plan(Path("/x/c.yaml"), other, service=None, engine="docker", mtu=True)
    assert cp.plan is not None
    assert cp.plan.after == other.replace("  spare:", "  default:\n" + MTU_LINES + "  spare:")
    for bad in ("networks: {}\n", "networks:\n  default: {driver: bridge}\n"):
        with pytest.raises(DoctorError) as e:
            compose.plan(Path("/x/c.yaml"), base + bad, service=None, engine="docker", mtu=True)
        assert "by hand" in str(e.value) and "\n" not in str(e.value)


def test_compose_podman_mtu_says_why_nothing_more() -> None:
    """Podman: the fix takes the service off the bridge (pasta / slirp4netns, 65520 already)."""
    src = DATA / "compose/docker-mailserver-compose.yaml"
    text = src.read_text()
    plain = compose.plan(src, text, service=None, engine="podman", podman=P5, pasta_installed=True)
    cp = compose.plan(
        src, text, service=None, engine="podman", podman=P5, pasta_installed=True, mtu=True
    )
    assert cp.plan is not None and plain.plan is not None and cp.plan.after == plain.plan.after
    assert (
        "--mtu: nothing to set" in cp.advice and "pasta gives the container MTU 65520" in cp.advice
    )
    assert "--mtu" not in plain.advice


def test_compose_malformed_yaml_one_line() -> None:
    src = DATA / "compose/docker-mailserver-docs-podman-slirp4netns-network-mode.yaml"
    with pytest.raises(DoctorError) as e:
        compose.plan(src, src.read_text(), service=None, engine="podman", podman=P4)
    assert str(e.value).startswith(f"{src}:") and "\n" not in str(e.value)


# ------------------------------------------------------------------------------------ podman

CONF = DATA / "containers-conf"


@pytest.mark.parametrize(
    ("src", "pf", "pasta", "anchor", "added"),
    [
        (
            "containers.conf-podman-4.3.1-debian12-usr-share.conf",
            P4,
            False,
            "#network_cmd_options = []\n",
            'network_cmd_options = ["port_handler=slirp4netns"]\n',
        ),
        (
            "containers.conf-common-v0.58.0-podman-5.0.0.conf",
            P5,
            True,
            '#default_rootless_network_cmd = "pasta"\n',
            'default_rootless_network_cmd = "pasta"\n',
        ),
        (
            "containers.conf-common-v0.62.0-podman-5.4.0.conf",
            P5,
            True,
            '#default_rootless_network_cmd = "pasta"\n',
            'default_rootless_network_cmd = "pasta"\n',
        ),
    ],
)
def test_podman_default_commented_conf_exact(
    src: str, pf: PodmanFacts, pasta: bool, anchor: str, added: str
) -> None:
    text = (CONF / src).read_text()
    assert text.count(anchor) == 1
    pp = podman.plan(Path("/x/containers.conf"), text, pf, pasta)
    assert pp.plan.after == text.replace(anchor, anchor + added)
    assert not podman.plan(Path("/x"), pp.plan.after, pf, pasta).plan.changed


def test_podman6_conf_exact_and_experimental_note() -> None:
    text = (CONF / "containers.conf-common-v0.68.0-podman-6.0.0-rc1.conf").read_text()
    pp = podman.plan(Path("/x"), text, P6, True)
    a1, a2 = (
        '#default_rootless_network_cmd = "pasta"\n',
        '#rootless_port_forwarder = "rootlessport"\n',
    )
    assert pp.plan.after == text.replace(
        a1, a1 + 'default_rootless_network_cmd = "pasta"\n'
    ).replace(a2, a2 + 'rootless_port_forwarder = "pasta"\n')
    assert "network_cmd_options" not in pp.plan.after.replace("#network_cmd_options", "")
    assert any("experimental" in n for n in pp.notes)


def test_podman6_moves_slirp4netns_to_pasta() -> None:
    text = (CONF / "user-snippet-devcontainer-network-slirp4netns.conf").read_text()
    pp = podman.plan(Path("/x"), text, P6, True)
    assert pp.plan.after == (
        '[network]\ndefault_rootless_network_cmd = "pasta"\nrootless_port_forwarder = "pasta"\n'
    )


def test_podman_reference_snippets_and_already_fixed() -> None:
    for pf, pasta, name in (
        (P4, False, "containers.conf-podman4-slirp4netns.conf"),
        (P5, True, "containers.conf-podman5-pasta.conf"),
        (P6, True, "containers.conf-podman6.conf"),
    ):
        assert podman.plan(Path("/x"), None, pf, pasta).plan.after == ref("ref_podman", name)
    rhel = (
        CONF / "user-snippet-rhel-guide-engine-network-cmd-options-port-handler.conf"
    ).read_text()
    assert not podman.plan(Path("/x"), rhel, P4, False).plan.changed


def test_podman_existing_value_is_edited_in_place_by_tomlkit() -> None:
    """A key already set, in forms a line splice cannot handle (capitalised table name, a
    multi-line array): the new value lands where the old one was (the old array's own comments
    go with it), the mtu option stays, nothing else moves, and a second run changes nothing."""
    text = (
        "# mine\n"
        "[Engine]\n"
        'runtime = "runc"  # hybrid cgroups here\n'
        "network_cmd_options = [\n"
        '  "mtu=65520",\n'
        '  "port_handler=rootlesskit",  # the default\n'
        "]\n"
        'events_logger = "file"\n'
    )
    pp = podman.plan(Path("/x/containers.conf"), text, P4, False)
    assert pp.plan.after == (
        "# mine\n"
        "[Engine]\n"
        'runtime = "runc"  # hybrid cgroups here\n'
        'network_cmd_options = ["mtu=65520", "port_handler=slirp4netns"]\n'
        'events_logger = "file"\n'
    )
    from rootless_doctor import parse

    conf = parse.containers_conf([("c", pp.plan.after)])
    assert conf["engine.network_cmd_options"] == ["mtu=65520", "port_handler=slirp4netns"]
    assert not podman.plan(Path("/x"), pp.plan.after, P4, False).plan.changed


def test_podman_malformed_toml() -> None:
    with pytest.raises(DoctorError, match=r"^/x/c.conf:2: not valid TOML"):
        podman.plan(Path("/x/c.conf"), "[engine]\nruntime = \n", P4, False)


# ------------------------------------------------------------------------------------ quadlet


def test_quadlet_dms_unit_exact() -> None:
    src = DATA / "systemd/docker-mailserver-docs-podman-quadlet-dms.container"
    text = src.read_text()
    qp = quadlet.plan(src.with_name("dms.container"), text, podman=P49, pasta_installed=False)
    assert qp.plan is not None
    assert qp.plan.after == text.replace(
        "Environment=SSL_TYPE=letsencrypt\n",
        "Environment=SSL_TYPE=letsencrypt\nNetwork=slirp4netns:port_handler=slirp4netns\n"
        'Environment="NETWORK_INTERFACE=tap0"\n',
    )
    assert qp.plan.next_steps == (
        "systemctl --user daemon-reload",
        "systemctl --user restart dms.service",
    )
    again = quadlet.plan(
        src.with_name("dms.container"), qp.plan.after, podman=P49, pasta_installed=False
    )
    assert again.plan is not None and not again.plan.changed


def test_quadlet_reference_and_refusal() -> None:
    q = ref("ref_podman", "quadlet-input.container")
    for pf, pasta, name in (
        (P49, False, "quadlet-podman4-slirp4netns.container"),
        (P5, True, "quadlet-podman5-pasta.container"),
    ):
        qp = quadlet.plan(Path("/x/web.container"), q, podman=pf, pasta_installed=pasta)
        assert qp.plan is not None and qp.plan.after == ref("ref_podman", name)
    with pytest.raises(DoctorError, match="user-defined network"):
        quadlet.plan(
            Path("/x/web.container"),
            q.replace("PublishPort", "Network=mynet.network\nPublishPort"),
            podman=P5,
            pasta_installed=True,
        )


def test_quadlet_needs_podman_4_4() -> None:
    q = ref("ref_podman", "quadlet-input.container")
    with pytest.raises(
        DoctorError, match=r"Podman 4\.3\.1 has no Quadlet \(it came with Podman 4\.4\)"
    ):
        quadlet.plan(Path("/x/web.container"), q, podman=P4, pasta_installed=False)
    qp = quadlet.plan(Path("/x/web.container"), q, podman=None, pasta_installed=False)
    assert "Quadlet needs Podman 4.4 or later" in qp.advice


def test_quadlet_search_path(tmp_path: Path) -> None:
    q = ref("ref_podman", "quadlet-input.container")
    home = tmp_path / "home"
    dirs = knowledge.quadlet_user_dirs(
        "5.4.2", config_dir=home / ".config", runtime_dir=tmp_path / "run", uid=1000
    )
    assert dirs == (
        tmp_path / "run/containers/systemd",
        home / ".config/containers/systemd",
        Path("/etc/containers/systemd/users/1000"),
        Path("/etc/containers/systemd/users"),
    )
    # 4.9: no runtime dir in the search path (listed from the 5.3 man page on).
    assert (
        knowledge.quadlet_user_dirs(
            "4.9.3", config_dir=home / ".config", runtime_dir=tmp_path / "run", uid=1000
        )[0]
        == home / ".config/containers/systemd"
    )
    inside = home / ".config/containers/systemd/apps/web.container"  # subdirectories count
    qp = quadlet.plan(inside, q, podman=P5, pasta_installed=True, search_dirs=dirs)
    assert qp.advice == ""
    outside = home / "src/web.container"
    qp = quadlet.plan(outside, q, podman=P5, pasta_installed=True, search_dirs=dirs)
    assert qp.plan is not None and qp.plan.changed  # still fixed
    assert qp.advice.startswith(f"Quadlet does not read {outside} there: it reads {dirs[0]}/")


# ------------------------------------------------------------------------------------ sysctl


def test_sysctl_plan() -> None:
    p = sysctl.plan(25, None)
    assert p.after == (
        "# rootless-doctor: let rootless Docker/Podman publish ports from 25 up (sysctl.d(5)).\n"
        "net.ipv4.ip_unprivileged_port_start = 25\n"
    )
    assert not sysctl.plan(25, p.after).changed
    assert sysctl.plan(80, "net/ipv4/ip_unprivileged_port_start=443 # x\n").after == (
        "net/ipv4/ip_unprivileged_port_start=80 # x\n"
    )
    # Never raised: ports from 25 publish today, --port 143 must not take that away.
    assert not sysctl.plan(143, p.after).changed


# ------------------------------------------------------------------------------------ apply.py


def me(tmp_path: Path) -> apply.Owner:
    return apply.Owner(name="t", uid=os.geteuid(), gid=os.getegid(), home=tmp_path / "home")


def test_write_backup_undo_restores_exact_bytes(tmp_path: Path) -> None:
    o = me(tmp_path)
    f = o.home / ".config/x.conf"
    f.parent.mkdir(parents=True)
    original = b"a=1\r\n# comment \xc3\xa9\n"
    f.write_bytes(original)
    f.chmod(0o640)
    w = apply.write(FilePlan(path=f, before=original.decode(), after="b=2\n", what="w"), o)
    assert f.read_bytes() == b"b=2\n" and stat.S_IMODE(f.stat().st_mode) == 0o640
    assert w.backup is not None and w.backup.read_bytes() == original
    assert str(o.state_dir) in str(w.backup)
    # A second fix keeps the first original.
    apply.write(FilePlan(path=f, before="b=2\n", after="c=3\n", what="w"), o)
    new = o.home / ".config/sub/new.conf"
    apply.write(FilePlan(path=new, before=None, after="n\n", what="w"), o)
    done = apply.undo(o)
    assert {u.action for u in done} == {"restored", "removed (the fix created it)"}
    assert f.read_bytes() == original and stat.S_IMODE(f.stat().st_mode) == 0o640
    assert not new.exists()
    assert apply.undo(o) == []


def test_undo_skips_files_edited_since(tmp_path: Path) -> None:
    o = me(tmp_path)
    f = o.home / "x.conf"
    f.parent.mkdir(parents=True)
    f.write_text("a\n")
    apply.write(FilePlan(path=f, before="a\n", after="b\n", what="w"), o)
    f.write_text("edited by hand\n")
    (u,) = apply.undo(o)
    assert u.action.startswith("skipped") and f.read_text() == "edited by hand\n"
    (u,) = apply.undo(o, force=True)
    assert u.action == "restored" and f.read_text() == "a\n"


def test_undo_of_own_manifest_skips_a_target_now_a_symlink(tmp_path: Path) -> None:
    """One's own manifest: a file replaced by a symlink since is skipped (never written
    through), the others are restored."""
    o = me(tmp_path)
    a, b = o.home / "a.conf", o.home / "b.conf"
    a.parent.mkdir(parents=True)
    for f in (a, b):
        f.write_text("orig\n")
        apply.write(FilePlan(path=f, before="orig\n", after="new\n", what="w"), o)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("new\n")
    a.unlink()
    a.symlink_to(elsewhere)
    done = {u.path: u.action for u in apply.undo(o)}
    assert done[a].startswith("skipped: ") and "symlink" in done[a]
    assert done[b] == "restored" and b.read_text() == "orig\n"
    assert elsewhere.read_text() == "new\n"


def test_refuses_symlink_and_other_home(tmp_path: Path) -> None:
    o = me(tmp_path)
    real = tmp_path / "real.conf"
    real.write_text("x\n")
    link = tmp_path / "link.conf"
    link.symlink_to(real)
    with pytest.raises(DoctorError, match="symlink"):
        apply.write(FilePlan(path=link, before="x\n", after="y\n", what="w"), o)
    assert real.read_text() == "x\n"
    others = apply._other_homes(o)
    if others:
        name, home = others[0]
        with pytest.raises(DoctorError, match=f"inside {name}'s home"):
            apply.check_target(home / ".config/x.conf", o)


def test_read_text_refuses_binary_and_non_utf8(tmp_path: Path) -> None:
    b = tmp_path / "bin.yaml"
    b.write_bytes(b"a\0b")
    with pytest.raises(DoctorError, match="binary"):
        apply.read_text(b)
    n = tmp_path / "latin1.yaml"
    n.write_bytes(b"caf\xe9\n")
    with pytest.raises(DoctorError, match="not valid UTF-8"):
        apply.read_text(n)
    assert apply.read_text(tmp_path / "missing") is None


def test_sudo_owner(tmp_path: Path) -> None:
    with pytest.raises(DoctorError, match="SUDO_USER=nosuchuser"):
        host.target_owner({"SUDO_USER": "nosuchuser"}, euid=0)
    o = host.target_owner({"SUDO_USER": "root"}, euid=0)
    assert not o.via_sudo
    import pwd

    user = next((p for p in pwd.getpwall() if p.pw_uid >= 1000 and p.pw_uid < 65534), None)
    if user is None:
        pytest.skip("no unprivileged user on this machine")
    o = host.target_owner({"SUDO_USER": user.pw_name, "HOME": "/root"}, euid=0)
    assert o.via_sudo and o.uid == user.pw_uid and o.home == Path(user.pw_dir)


def test_state_dir_follows_the_owners_xdg_state_home(tmp_path: Path) -> None:
    import pwd

    me_ = host.target_owner({"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "st")}, 4242)
    assert me_.state_dir == tmp_path / "st/rootless-doctor"
    # relative: invalid (XDG Base Directory spec), the default is used
    rel = host.target_owner({"HOME": str(tmp_path), "XDG_STATE_HOME": "st"}, 4242)
    assert rel.state_dir == tmp_path / ".local/state/rootless-doctor"
    user = next((p for p in pwd.getpwall() if 1000 <= p.pw_uid < 65534), None)
    if user is None:
        pytest.skip("no unprivileged user on this machine")
    # under sudo: root's own XDG_STATE_HOME is not the owner's; one inside their home is
    env = {"SUDO_USER": user.pw_name, "HOME": "/root", "XDG_STATE_HOME": "/root/.local/state"}
    o = host.target_owner(env, euid=0)
    assert o.state_dir == Path(user.pw_dir) / ".local/state/rootless-doctor"
    env["XDG_STATE_HOME"] = f"{user.pw_dir}/st"
    assert host.target_owner(env, euid=0).state_dir == Path(user.pw_dir) / "st/rootless-doctor"


def test_a_new_last_line_without_newline_stays_so_in_diff_and_write(tmp_path: Path) -> None:
    o = me(tmp_path)
    f = o.home / "x.conf"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"a=1\nlast")
    plan = FilePlan(path=f, before="a=1\nlast", after="a=2\nlast", what="w")
    assert apply.diff(plan).endswith("\n last\n\\ No newline at end of file\n")  # as diff(1)
    apply.write(plan, o)
    assert f.read_bytes() == b"a=2\nlast"
    apply.undo(o)
    assert f.read_bytes() == b"a=1\nlast"


@pytest.fixture
def sudo_owner() -> Iterator[apply.Owner]:
    """SUDO_USER uid 4242 with a home the way a real one is: its own, reachable (under sudo the
    writes in it are made with the owner's rights)."""
    import shutil
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("acts as another uid: needs root")
    base = Path(tempfile.mkdtemp(prefix="rd-s11-sudo-", dir="/tmp"))
    try:
        base.chmod(0o755)
        o = apply.Owner(name="u", uid=4242, gid=4243, home=base / "home", via_sudo=True)
        o.home.mkdir()
        os.chown(o.home, 4242, 4243)
        yield o
    finally:
        shutil.rmtree(base)


def test_sudo_write_gives_files_to_the_user(sudo_owner: apply.Owner) -> None:
    o = sudo_owner
    f = o.home / ".config/docker/daemon.json"
    apply.write(FilePlan(path=f, before=None, after="{}\n", what="w"), o)
    for p in (f, f.parent, f.parent.parent, o.state_dir / "manifest.json", o.state_dir):
        assert (p.stat().st_uid, p.stat().st_gid) == (4242, 4243), p
    assert stat.S_IMODE(o.state_dir.stat().st_mode) == 0o700
    assert apply.undo(o)[0].action.startswith("removed") and not f.exists()


def test_sudo_undo_hint_says_sudo_only_for_roots_state(sudo_owner: apply.Owner) -> None:
    """A fix under sudo prints how to undo it: the owner's own files come back with their own
    `fix --undo`; a root file's backup is in root's state directory, which only
    `sudo rootless-doctor fix --undo` reads (the same in a half-done write's error)."""
    o = sudo_owner
    mine = FilePlan(path=o.home / ".config/x.conf", before=None, after="x\n", what="w")
    res = apply.carry_out([mine], o, preview=False, notes=[])
    assert res["undo"] == "rootless-doctor fix --undo"
    assert "undo: rootless-doctor fix --undo" in render.fix_text(res)
    root_file = o.home.parent / "etc-x.conf"
    root_file.write_text("root's\n")
    theirs = FilePlan(path=root_file, before="root's\n", after="y\n", what="w")
    res = apply.carry_out([theirs], o, preview=False, notes=[])
    assert res["undo"] == "sudo rootless-doctor fix --undo"
    assert "\nundo: sudo rootless-doctor fix --undo" in render.fix_text(res)
    assert apply.carry_out([theirs], o, preview=True, notes=[])["undo"] is None
    done = apply.undo(o)
    assert root_file.read_text() == "root's\n" and len(done) == 2


def test_sudo_write_in_the_home_is_made_with_the_owners_rights(
    sudo_owner: apply.Owner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second layer under the symlink checks: a ~/.config swapped for a link to a root-owned
    directory after the check (here: the check switched off) still leads nowhere, because the
    write in the owner's home is made with the owner's uid."""
    o = sudo_owner
    rootdir = o.home.parent / "root-owned"
    rootdir.mkdir()
    (o.home / ".config").symlink_to(rootdir)
    monkeypatch.setattr(apply, "check_owner_dirs", lambda d, owner: None)
    f = o.home / ".config/x.conf"
    with pytest.raises(DoctorError, match="permission denied"):
        apply.write(FilePlan(path=f, before=None, after="x\n", what="w"), o)
    assert list(rootdir.iterdir()) == []
    assert apply.undo(o) == []  # the refused write left no manifest entry


def test_sudo_refuses_a_root_owned_dir_in_the_home(sudo_owner: apply.Owner) -> None:
    """~/.config left root's (an old `sudo` run of some tool): the write, made with the owner's
    rights, would fail half-way; it is refused up front with the command that mends it."""
    o = sudo_owner
    (o.home / ".config").mkdir()
    f = o.home / ".config/x.conf"
    with pytest.raises(DoctorError, match=r"\.config belongs to uid 0.*sudo chown u:"):
        apply.write(FilePlan(path=f, before=None, after="x\n", what="w"), o)
    assert not f.exists() and not o.state_dir.exists()


def test_sudo_write_in_a_dir_of_the_owners_swapped_after_the_checks(
    sudo_owner: apply.Owner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner's compose file outside their home, in a directory of theirs: they swap the
    directory for a link to a root-owned one between the checks and the write (here: right
    after the manifest is saved). The write is made with their rights: it fails there, and
    root's directory is untouched."""
    o = sudo_owner
    work = o.home.parent / "work"
    work.mkdir()
    f = work / "compose.yaml"
    f.write_text("a: 1\n")
    for p in (work, f):
        os.chown(p, 4242, 4243)
    rootdir = o.home.parent / "root-owned"
    rootdir.mkdir()
    (rootdir / "compose.yaml").write_text("root's\n")
    save = apply._Manifest.save

    def save_then_swap(self: Any) -> None:
        save(self)
        if work.is_dir() and not work.is_symlink():
            work.rename(o.home.parent / "work.moved")
            work.symlink_to(rootdir)
            os.lchown(work, 4242, 4243)  # the owner's link

    monkeypatch.setattr(apply._Manifest, "save", save_then_swap)
    with pytest.raises(DoctorError, match="permission denied"):
        apply.write(FilePlan(path=f, before="a: 1\n", after="a: 2\n", what="w"), o)
    assert (rootdir / "compose.yaml").read_text() == "root's\n"
    assert [p.name for p in rootdir.iterdir()] == ["compose.yaml"]


def test_a_failed_second_write_names_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every target is checked first; a write that still fails (here: b.conf's file system is
    full) names what was already written, b.conf keeps no entry, and undo restores a.conf."""
    import errno

    o = me(tmp_path)
    a, b = o.home / "a.conf", o.home / "b.conf"
    a.parent.mkdir(parents=True)
    a.write_text("a\n")
    real = apply._atomic_write

    def full_for_b(path: Path, *args: Any) -> None:
        if path == b:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, *args)

    monkeypatch.setattr(apply, "_atomic_write", full_for_b)
    plans = [
        FilePlan(path=a, before="a\n", after="A\n", what="w"),
        FilePlan(path=b, before=None, after="b\n", what="w"),
    ]
    with pytest.raises(DoctorError, match=f"No space .*already written: {a} .*fix --undo"):
        apply.write_all(plans, o)
    assert a.read_text() == "A\n" and not b.exists()
    assert [u.action for u in apply.undo(o)] == ["restored"] and a.read_text() == "a\n"


# ------------------------------------------------------------------------------------ CLI


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    o = me(tmp_path)
    o.home.mkdir()
    state: dict[str, object] = {"facts": docker_facts(), "owner": o}
    monkeypatch.setattr(cli_fix, "owner", lambda: state["owner"])
    monkeypatch.setattr(
        cli_fix, "host_paths", lambda _o: HostPaths(home=o.home, uid=o.uid, user="t")
    )
    monkeypatch.setattr(cli_fix, "gather_facts", lambda _p: state["facts"])
    return state


def _run(*args: str) -> tuple[int, str]:
    from typer.main import get_command

    r = CliRunner().invoke(cli_fix.fix_app, list(args))
    if r.exception and not isinstance(r.exception, SystemExit):
        if isinstance(r.exception, DoctorError):
            return 2, str(r.exception)
        raise r.exception
    _ = get_command
    return r.exit_code, r.output


def test_cli_docker_dry_run_write_second_run_undo(cli_env: dict[str, object]) -> None:
    o = cli_env["owner"]
    assert isinstance(o, apply.Owner)
    dropin = o.home / ".config/systemd/user/docker.service.d/override.conf"
    code, out = _run("docker", "--dry-run")
    assert code == 0 and "+[Service]" in out and not dropin.exists()
    code, out = _run("docker")
    assert code == 0 and f"wrote {dropin}" in out
    assert dropin.read_text() == ref("ref_systemd", "override-slirp4netns.conf")
    assert "systemctl --user daemon-reload && systemctl --user restart docker" in out
    mtime = dropin.stat().st_mtime_ns
    code, out = _run("docker")
    assert code == 0 and "nothing to do" in out and dropin.stat().st_mtime_ns == mtime
    code, out = _run("--undo")
    assert code == 0 and "removed" in out and not dropin.exists()


def test_cli_docker_json_and_already_preserved(cli_env: dict[str, object]) -> None:
    code, out = _run("docker", "--dry-run", "--json")
    data = json.loads(out)
    assert code == 0 and data["changed"] and data["dry_run"] and data["files"][0]["diff"]
    # The declared shape (model.JsonFix): every key, and nothing else.
    assert set(data) == set(JsonFix.__required_keys__) and data["schema_version"] == 1
    code, out = _run("docker", "--json")
    data = json.loads(out)
    assert code == 0 and not data["dry_run"] and data["files"][0]["created"] is True
    assert data["next_steps"] == [
        "systemctl --user daemon-reload",
        "systemctl --user restart docker",
    ]
    cli_env["facts"] = docker_facts(port="slirp4netns")
    code, out = _run("docker")
    assert code == 0 and out.startswith("nothing to do")


def test_cli_malformed_input_no_write(cli_env: dict[str, object], tmp_path: Path) -> None:
    cli_env["facts"] = HostFacts(podman=P4)
    bad = tmp_path / "compose.yaml"
    src = (
        DATA / "compose/docker-mailserver-docs-fail2ban-podman-slirp4netns-port-handler.yaml"
    ).read_bytes()
    bad.write_bytes(src)
    code, out = _run("compose", str(bad))
    assert code == 2 and out.startswith(f"{bad}:") and "\n" not in out.strip()
    assert bad.read_bytes() == src
    o = cli_env["owner"]
    assert isinstance(o, apply.Owner)
    assert not (o.state_dir / "manifest.json").exists()


def test_cli_compose_write_and_undo_bytes(cli_env: dict[str, object], tmp_path: Path) -> None:
    cli_env["facts"] = HostFacts(podman=P4)
    f = tmp_path / "compose.yaml"
    original = (DATA / "compose/docker-mailserver-compose.yaml").read_bytes()
    f.write_bytes(original)
    code, out = _run("compose", str(f))
    assert code == 0 and "podman-compose -f" in out and "network_mode" in f.read_text()
    code, out = _run("compose", str(f))
    assert code == 0 and "nothing to do" in out
    code, out = _run("undo")
    assert code == 0 and f.read_bytes() == original


def test_cli_compose_docker_mtu_write_and_undo(cli_env: dict[str, object], tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    original = (DATA / "compose/docker-mailserver-compose.yaml").read_bytes()
    f.write_bytes(original)
    code, out = _run("compose", "--engine", "docker", str(f))
    assert code == 0 and f.read_bytes() == original  # advice only
    code, out = _run("compose", "--engine", "docker", "--mtu", str(f))
    assert code == 0 and f"docker compose -f {f} down" in out
    assert f.read_text().endswith("networks:\n  default:\n" + MTU_LINES)
    code, out = _run("undo")
    assert code == 0 and f.read_bytes() == original


def test_cli_restart_runs_systemctl_in_order(
    cli_env: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "systemctl.log"
    script = bindir / "systemctl"
    script.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    rechecked: list[bool] = []
    monkeypatch.setattr(cli_fix, "_recheck", lambda o, quiet: rechecked.append(True))
    code, out = _run("docker", "--restart")
    assert code == 0, out
    assert log.read_text().splitlines() == ["--user daemon-reload", "--user restart docker"]
    assert rechecked == [True]
    assert out.index("running: systemctl --user daemon-reload") < out.index(
        "running: systemctl --user restart docker"
    )


# ------------------------------------------------------------------------------ fix docker --mtu


def test_docker_mtu_plans_equal_reference_files(tmp_path: Path) -> None:
    """--mtu: the drop-in also sets RootlessKit's MTU, daemon.json the bridge's; both files as
    shipped in systemd/, and a second plan over them changes nothing."""
    cases = [
        (docker_facts(), "override-slirp4netns-mtu.conf"),
        (docker_facts(rk="2.3.4", tools=(SLIRP, PASTA)), "override-pasta-mtu.conf"),
    ]
    for facts, dropin_ref in cases:
        plans = docker.plan(
            opt(facts), config_dir=tmp_path, dropin_text=None, daemon_json_text=None, mtu=True
        )
        assert [p.path for p in plans] == [
            tmp_path / "systemd/user/docker.service.d/override.conf",
            tmp_path / "docker/daemon.json",
        ]
        assert plans[0].after == ref("ref_systemd", dropin_ref)
        assert 'Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=65520"\n' in plans[0].after
        assert plans[1].after == ref("ref_systemd", "daemon-mtu.json")
        assert json.loads(plans[1].after) == {"mtu": 65520}
        again = docker.plan(
            opt(facts),
            config_dir=tmp_path,
            dropin_text=plans[0].after,
            daemon_json_text=plans[1].after,
            mtu=True,
        )
        assert not any(p.changed for p in again)
        # Without --mtu the default files stay what they were.
        (plain,) = docker.plan(
            opt(facts), config_dir=tmp_path, dropin_text=None, daemon_json_text=None
        )
        assert "MTU" not in plain.after
    (dj, dp) = docker.plan(
        opt(docker_facts(rk="3.0.0")),
        config_dir=tmp_path,
        dropin_text=None,
        daemon_json_text=None,
        mtu=True,
    )
    assert dj.after == ref("ref_systemd", "daemon-userland-proxy-mtu.json")
    assert json.loads(dj.after) == {"mtu": 65520, "userland-proxy": False}
    assert dp.after == '[Service]\nEnvironment="DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=65520"\n'


def test_docker_mtu_splice_keeps_every_other_key() -> None:
    for src in sorted((DATA / "daemon-json").iterdir()):
        text = src.read_text()
        after = docker.set_key(text, src.name, "mtu", 65520)
        assert json.loads(after)["mtu"] == 65520
        assert docker.set_key(after, src.name, "mtu", 65520) == after
        assert {k: v for k, v in json.loads(after).items() if k != "mtu"} == {
            k: v for k, v in json.loads(text).items() if k != "mtu"
        }
    assert docker.set_key('{\n  "mtu": 1500,\n  "debug": true\n}\n', "d", "mtu", 65520) == (
        '{\n  "mtu": 65520,\n  "debug": true\n}\n'
    )
    # A nested "mtu" first in the text is not the top-level key: refuse, never write it there.
    nested = '{"default-network-opts": {"bridge": {"mtu": "1400"}}, "mtu": 1500}'
    with pytest.raises(DoctorError, match='could not set "mtu" safely; edit it by hand'):
        docker.set_key(nested, "d", "mtu", 65520)
    with pytest.raises(DoctorError, match=r"^d:1: not valid JSON"):
        docker.set_key("{", "d", "mtu", 65520)


def test_docker_default_output_recommends_mtu_with_measured_numbers(
    cli_env: dict[str, object],
) -> None:
    cli_env["facts"] = docker_facts(rk="2.3.4", tools=(SLIRP, PASTA))
    code, out = _run("docker", "--dry-run")
    assert code == 0
    [line] = [ln for ln in out.splitlines() if "fix docker --mtu" in ln]
    assert "DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=65520" in line and '"mtu": 65520' in line
    quoted = throughput.quote_docker("pasta", "implicit")
    assert quoted and quoted in line  # measured Gbit/s, on which stacks, which day
    assert "Gbit/s" in quoted and "2026-12-03" in quoted
    code, out = _run("docker", "--dry-run", "--mtu")
    assert code == 0 and "fix docker --mtu`" not in out
    assert (
        '+  "mtu": 65520' in out and '+Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_MTU=65520"' in out
    )


def _docker_files(cli_env: dict[str, object], daemon_json_text: str) -> tuple[Path, Path]:
    """(the drop-in path, the daemon.json path) of the cli_env owner; daemon.json written."""
    o = cli_env["owner"]
    assert isinstance(o, apply.Owner)
    daemon_json = o.home / ".config/docker/daemon.json"
    daemon_json.parent.mkdir(parents=True)
    daemon_json.write_text(daemon_json_text)
    return o.home / ".config/systemd/user/docker.service.d/override.conf", daemon_json


def test_cli_docker_mtu_writes_both_and_undo_restores_both(cli_env: dict[str, object]) -> None:
    before = '{\n  "debug": true\n}\n'
    dropin, daemon_json = _docker_files(cli_env, before)
    code, out = _run("docker", "--mtu")
    assert code == 0, out
    assert f"wrote {dropin}" in out and f"wrote {daemon_json}" in out
    assert dropin.read_text() == ref("ref_systemd", "override-slirp4netns-mtu.conf")
    assert daemon_json.read_text() == '{\n  "mtu": 65520,\n  "debug": true\n}\n'
    code, out = _run("docker", "--mtu")  # the daemon now runs these drivers: only the MTU is left
    assert code == 0 and "wrote" not in out
    code, out = _run("--undo")
    assert code == 0 and not dropin.exists() and daemon_json.read_text() == before


def test_cli_docker_mtu_keeps_the_drivers_that_keep_ips(cli_env: dict[str, object]) -> None:
    """--mtu where the daemon already keeps client IPs: raise the MTU, keep its drivers."""
    o = cli_env["owner"]
    assert isinstance(o, apply.Owner)
    cli_env["facts"] = docker_facts(rk="2.3.4", port="slirp4netns", tools=(SLIRP, PASTA))
    code, out = _run("docker")
    assert code == 0 and out.startswith("nothing to do")
    code, out = _run("docker", "--mtu")
    assert code == 0, out
    dropin = o.home / ".config/systemd/user/docker.service.d/override.conf"
    assert dropin.read_text() == ref("ref_systemd", "override-slirp4netns-mtu.conf")


def test_cli_docker_mtu_checks_every_target_before_writing(cli_env: dict[str, object]) -> None:
    o = cli_env["owner"]
    assert isinstance(o, apply.Owner)
    dropin, daemon_json = _docker_files(cli_env, '{"debug": tru')
    code, out = _run("docker", "--mtu")
    assert code == 2 and out.startswith(f"{daemon_json}:1: not valid JSON")
    assert not dropin.exists() and daemon_json.read_text() == '{"debug": tru'
    daemon_json.unlink()
    daemon_json.mkdir()  # a directory where the file goes: refused before the drop-in is written
    code, out = _run("docker", "--mtu")
    assert code != 0 and str(daemon_json) in out
    assert not dropin.exists()
    assert not (o.state_dir / "manifest.json").exists()


def test_cli_docker_mtu_does_not_bypass_the_br_netfilter_gate(cli_env: dict[str, object]) -> None:
    o = cli_env["owner"]
    assert isinstance(o, apply.Owner)
    f = docker_facts(rk="3.0.0")
    assert f.docker is not None
    cli_env["facts"] = replace(f, docker=replace(f.docker, br_netfilter=False))
    code, out = _run("docker", "--mtu")
    assert code != 0 and "nothing written: br_netfilter is not loaded" in out
    assert not (o.home / ".config/docker").exists()
    assert not (o.home / ".config/systemd").exists()
