"""parse.py against real captured outputs (provenance of every file: tests/data/SOURCES.md)."""

# The tables name the real captured files in full; they are longer than a line.
# ruff: noqa: E501

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import DATA

from rootless_doctor import knowledge, parse
from rootless_doctor.model import PodmanFacts
from rootless_doctor.parse import ParseError


def read(rel: str) -> str:
    return (DATA / rel).read_text(encoding="utf-8")


# --------------------------------------------------------------------------- podman info


@pytest.mark.parametrize(
    ("rel", "version", "rootless", "cmd", "fwd", "pasta", "slirp"),
    [
        ("podman-info/podman-4.3.1-rootless-debian12.json", "4.3.1", True, None, None, None, "1.2.0"),
        ("podman-info/podman-4.3.1-rootless-debian12.yaml", "4.3.1", True, None, None, None, "1.2.0"),
        ("podman-info/podman-4.3.1-root-debian12.json", "4.3.1", False, None, None, None, "1.2.0"),
        ("podman-info/podman-4.3.1-root-debian12.yaml", "4.3.1", False, None, None, None, "1.2.0"),
        (
            "podman-info/podman-5.2.3-rootless-fedora40-container-pasta.yaml",
            "5.2.3", True, "pasta", None, "2024_09_06.6b38f07", None,
        ),
        (
            "podman-info/podman-5.3.1-rootless-fedora41-via-ramalama-info.json",
            "5.3.1", True, "pasta", None, "2024_12_11.09478d5", "1.3.1",
        ),
        (
            "podman-info/podman-5.4.2-rootless-fedora42-via-ramalama-info.json",
            "5.4.2", True, "pasta", None, None, "1.3.1",
        ),
        (
            "podman-info/podman-6.0.0-rc1-manpage-example.json",
            "4.0.0", True, None, "rootlessport", "2022_11_16.ace074c", None,
        ),
        (
            "podman-info/podman-6.1.1-remote-macos-machine-rootless.yaml",
            "6.1.1", True, "pasta", "rootlessport", "2026_07_28.f8df3f1", None,
        ),
    ],
)  # fmt: skip
def test_podman_info(
    rel: str,
    version: str,
    rootless: bool,
    cmd: str | None,
    fwd: str | None,
    pasta: str | None,
    slirp: str | None,
) -> None:
    p = parse.podman_info(read(rel))
    assert p.version == version  # server version, not the remote Client's
    assert p.rootless is rootless
    assert p.network_backend == "netavark"
    assert p.rootless_network_cmd == cmd
    assert p.rootless_port_forwarder == fwd
    assert p.pasta_version == pasta
    assert p.slirp4netns_version == slirp


def test_podman_info_json_and_yaml_agree() -> None:
    a = parse.podman_info(read("podman-info/podman-4.3.1-rootless-debian12.json"))
    b = parse.podman_info(read("podman-info/podman-4.3.1-rootless-debian12.yaml"))
    assert a == b


def test_podman_info_remote_is_noted() -> None:
    p = parse.podman_info(read("podman-info/podman-6.1.1-remote-macos-machine-rootless.yaml"))
    assert any("remote" in n for n in p.notes)


def test_podman_info_invalid_yaml_from_man_page() -> None:
    with pytest.raises(ParseError, match="not JSON or YAML"):
        parse.podman_info(read("podman-info/podman-6.0.0-rc1-manpage-example-NOT-VALID-YAML.yaml"))


@pytest.mark.parametrize("text", ["", "hello world", "[1, 2]", '{"a": 1}', "{broken"])
def test_podman_info_rejects(text: str) -> None:
    with pytest.raises(ParseError):
        parse.podman_info(text)


def test_podman_default_network_and_forwarder() -> None:
    p = parse.podman_info(read("podman-info/podman-4.3.1-rootless-debian12.json"))
    assert knowledge.podman_default_network(p)[0] == "slirp4netns"  # Podman < 5 default
    assert knowledge.podman_default_network(PodmanFacts(version="5.0.0"))[0] == "pasta"
    assert knowledge.podman_port_forwarder(PodmanFacts(version="6.1.1")) == "rootlessport"
    assert knowledge.podman_default_network(PodmanFacts())[0] is None
    info_and_conf = PodmanFacts(
        version="5.2.3",
        rootless_network_cmd="pasta",
        conf={"network.default_rootless_network_cmd": "slirp4netns"},
    )
    assert knowledge.podman_default_network(info_and_conf)[0] == "pasta"  # info wins
    conf_only = replace(info_and_conf, rootless_network_cmd=None)
    assert knowledge.podman_default_network(conf_only)[0] == "slirp4netns"


# --------------------------------------------------------------------------- docker version / info


@pytest.mark.parametrize(
    ("rel", "engine", "kit", "net", "port"),
    [
        ("docker-version/docker-20.10.24-debian12-rootless-client20.10.txt", "20.10.24+dfsg1", None, None, None),
        ("docker-version/docker-20.10.24-debian12-rootless-client20.10.json", "20.10.24+dfsg1", None, None, None),
        ("docker-version/docker-20.10.24-debian12-rootless-client28.2.2.txt", "20.10.24+dfsg1", None, None, None),
        ("docker-version/docker-20.10.24-debian12-rootless-client28.2.2.json", "20.10.24+dfsg1", None, None, None),
        ("docker-version/docker-25.0.1-rootless-rootlesskit-2.0.0-slirp4netns-portdriver-slirp4netns.txt", "25.0.1", "2.0.0", "slirp4netns", "slirp4netns"),
        ("docker-version/docker-27.1.1-rootless-rootlesskit-2.0.2-slirp4netns-portdriver-slirp4netns.txt", "27.1.1", "2.0.2", "slirp4netns", "slirp4netns"),
        ("docker-version/docker-28.1.1-rootless-rootlesskit-2.3.4-slirp4netns-builtin.txt", "28.1.1", "2.3.4", "slirp4netns", "builtin"),
        ("docker-version/docker-29.2.1-rootless-rootlesskit-2.3.6-slirp4netns-builtin.txt", "29.2.1", "2.3.6", "slirp4netns", "builtin"),
    ],
)  # fmt: skip
def test_docker_version(
    rel: str, engine: str, kit: str | None, net: str | None, port: str | None
) -> None:
    d = parse.docker_version(read(rel))
    assert d.reachable is True
    assert d.version == engine
    if kit is None:
        # 20.10 lists no rootlesskit component: rootless-ness is not known from this alone
        assert d.running is None
        assert d.rootless is None
    else:
        assert d.rootless is True
        assert d.running is not None
        assert d.running.version == kit
        assert d.running.network_driver == net
        assert d.running.port_driver == port
        assert d.running.state_dir == "/run/user/1000/dockerd-rootless"


def test_docker_version_json_pasta_implicit() -> None:
    # moby omits PortDriver for the implicit driver (pasta); the component is otherwise real
    text = (
        '{"Client":{"Version":"29.5.0"},"Server":{"Components":[{"Name":"Engine","Version":"29.5.0"},'
        '{"Name":"rootlesskit","Version":"3.0.0","Details":{"ApiVersion":"1.1.1",'
        '"NetworkDriver":"pasta","StateDir":"/run/user/1000/dockerd-rootless"}}]}}'
    )
    d = parse.docker_version(text)
    assert d.running is not None and d.running.port_driver == "implicit"
    assert d.running.version == "3.0.0"


def test_docker_version_no_server() -> None:
    text = (
        "Client:\n Version:           28.2.2\n API version:       1.50\n\n"
        "Cannot connect to the Docker daemon at unix:///run/user/1000/docker.sock. "
        "Is the docker daemon running?\n"
    )
    d = parse.docker_version(text)
    assert d.reachable is False and d.version is None


@pytest.mark.parametrize(
    "rel",
    [
        "docker-info/docker-27.1.1-rootless-debian12.txt",
        "podman-info/podman-4.3.1-root-debian12.yaml",
    ],
)
def test_docker_version_rejects(rel: str) -> None:
    with pytest.raises(ParseError):
        parse.docker_version(read(rel))


@pytest.mark.parametrize(
    ("rel", "version"),
    [
        ("docker-info/docker-20.10.24-debian12-rootless.json", "20.10.24+dfsg1"),
        ("docker-info/docker-20.10.24-debian12-rootless.txt", "20.10.24+dfsg1"),
        ("docker-info/docker-27.1.1-rootless-debian12.txt", "27.1.1"),
    ],
)
def test_docker_info(rel: str, version: str) -> None:
    d = parse.docker_info(read(rel))
    assert d.version == version
    assert d.rootless is True
    assert d.reachable is True


def test_docker_info_rejects_version_output() -> None:
    with pytest.raises(ParseError):
        parse.docker_info(
            read("docker-version/docker-29.2.1-rootless-rootlesskit-2.3.6-slirp4netns-builtin.txt")
        )


# --------------------------------------------------------------------------- rootlesskit


def test_rootlesskit_argv_docker_20_10() -> None:
    procs = parse.process_listing(read("ps/docker-20.10.24-debian12-rootless-builtin-ps-eo.txt"))
    rk = next(p for p in procs if p.exe_name == "rootlesskit")
    kit = parse.rootlesskit_argv(rk.cmdline)
    assert kit.network_driver == "slirp4netns"
    assert kit.port_driver == "builtin"
    assert kit.state_dir is None  # 20.10 passes no --state-dir
    assert kit.child == "dockerd-rootless.sh"


def test_rootlesskit_argv_pasta_implicit_and_defaults() -> None:
    assert parse.rootlesskit_argv(["rootlesskit", "--net=pasta", "sh"]).port_driver == "implicit"
    kit = parse.rootlesskit_argv(
        ["rootlesskit", "--net", "pasta", "--port-driver", "implicit", "x"]
    )
    assert (kit.network_driver, kit.port_driver, kit.child) == ("pasta", "implicit", "x")
    kit = parse.rootlesskit_argv(["/usr/bin/rootlesskit", "--pidns", "bash"])
    assert (kit.network_driver, kit.port_driver, kit.child) == ("host", "none", "bash")


@pytest.mark.parametrize(
    ("rel", "version", "port", "state"),
    [
        ("rootlesskit-api/rootlesskit-1.1.0-docker-20.10-slirp4netns-builtin-v1-info.json", "1.1.0", "builtin", "/tmp/rootlesskit2750343654"),
        ("rootlesskit-api/rootlesskit-1.1.0-docker-20.10-slirp4netns-portdriver-slirp4netns-v1-info.json", "1.1.0", "slirp4netns", "/tmp/rootlesskit2837876554"),
        ("rootlesskit-api/rootlesskit-docs-api-md-example-v1-info-0.14.0-beta.0.json", "0.14.0-beta.0", "builtin", "/tmp/rootlesskit957151185"),
        ("rootlesskit-api/rootlesskit-1.1.0-docker-20.10-slirp4netns-builtin-rootlessctl-info.txt", "1.1.0", "builtin", "/tmp/rootlesskit2750343654"),
    ],
)  # fmt: skip
def test_rootlesskit_api_info(rel: str, version: str, port: str, state: str) -> None:
    kit = parse.rootlesskit_api_info(read(rel))
    assert kit.version == version
    assert kit.network_driver == "slirp4netns"
    assert kit.port_driver == port
    assert kit.state_dir == state


def test_rootlesskit_api_info_pasta_null_port_driver() -> None:
    kit = parse.rootlesskit_api_info(
        '{"apiVersion":"1.1.1","version":"2.3.5","stateDir":"/run/user/1000/dockerd-rootless",'
        '"childPID":42,"networkDriver":{"driver":"pasta"},"portDriver":null}'
    )
    assert kit.port_driver == "implicit"


@pytest.mark.parametrize(
    "rel",
    [
        "rootlesskit-api/rootlesskit-1.1.0-docker-20.10-builtin-rootlessctl-list-ports.txt",
        "rootlesskit-api/rootlesskit-v2.3.6-pkg-api-openapi.yaml",
        "daemon-json/rdtest-captured-rootless-userland-proxy-false.json",
    ],
)
def test_rootlesskit_api_info_rejects(rel: str) -> None:
    with pytest.raises(ParseError):
        parse.rootlesskit_api_info(read(rel))


# --------------------------------------------------------------------------- processes


def test_process_listing_ps_eo() -> None:
    procs = parse.process_listing(
        read("ps/docker-20.10.24-debian12-rootless-builtin-with-published-port-ps-eo.txt")
    )
    by_pid = {p.pid: p for p in procs}
    assert by_pid[9487].exe_name == "rootlesskit" and by_pid[9487].ppid == 1
    assert by_pid[9525].exe_name == "dockerd" and by_pid[9525].ppid == 9499
    assert by_pid[10071].exe_name == "rootlesskit-docker-proxy"
    assert len(procs) == 9


def test_process_listing_ps_auxf_without_header() -> None:
    procs = parse.process_listing(read("ps/docker-20.10.24-debian12-rootless-builtin-ps-auxf.txt"))
    assert [p.exe_name for p in procs] == [
        "rootlesskit",
        "exe",
        "dockerd",
        "containerd",
        "slirp4netns",
    ]
    assert procs[1].cmdline[0] == "/proc/self/exe"  # tree art "\_" stripped


def test_process_listing_forest_and_systemctl_status() -> None:
    procs = parse.process_listing(
        read("ps/podman-4.3.1-debian12-rootless-4-containers-ps-forest.txt")
    )
    assert sum(p.exe_name == "rootlessport" for p in procs) == 3
    assert all(not p.cmdline[0].startswith("\\_") for p in procs)
    procs = parse.process_listing(
        read("ps/rootlesskit-issue434-systemctl-user-status-docker-builtin-TRUNCATED.txt")
    )
    assert [(p.pid, p.exe_name) for p in procs] == [(2114, "rootlesskit"), (2123, "exe")]
    kit = parse.rootlesskit_argv(procs[0].cmdline)
    assert (kit.port_driver, kit.state_dir) == ("builtin", "/run/user/1002/dockerd-rootless")


@pytest.mark.parametrize(
    ("rel", "pid", "net", "port"),
    [
        ("journal/docker-20.10.24-debian12-dockerd-rootless-sh-xtrace-builtin.txt", 0, "slirp4netns", "builtin"),
        ("journal/docker-20.10.24-debian12-dockerd-rootless-sh-xtrace-portdriver-slirp4netns.txt", 0, "slirp4netns", "slirp4netns"),
        ("journal/rootlesskit-issue591-docker-29.5.0-rootlesskit-3.0.0-pasta-implicit-detach-netns.log", 159782, "pasta", "implicit"),
    ],
)  # fmt: skip
def test_process_listing_journal(rel: str, pid: int, net: str, port: str) -> None:
    procs = parse.process_listing(read(rel))
    assert len(procs) == 1
    assert procs[0].pid == pid
    kit = parse.rootlesskit_argv(procs[0].cmdline)
    assert (kit.network_driver, kit.port_driver, kit.child) == (net, port, "dockerd-rootless.sh")


@pytest.mark.parametrize("text", ["", "no processes here", "ID PROTO\n"])
def test_process_listing_rejects(text: str) -> None:
    with pytest.raises(ParseError):
        parse.process_listing(text)


# --------------------------------------------------------------------------- inspect


@pytest.mark.parametrize(
    ("rel", "name", "mode", "handler", "networks", "host_port", "pid"),
    [
        ("podman-inspect/podman-4.3.1-rootless-s4-default.json", "s4-default", "slirp4netns", "rootlesskit", (), 18090, 15771),
        ("podman-inspect/podman-4.3.1-rootless-s4-handler.json", "s4-handler", "slirp4netns:port_handler=slirp4netns", "slirp4netns", (), 18091, 15807),
        ("podman-inspect/podman-4.3.1-rootless-s4-explicit-rootlesskit.json", "s4-explicit-rootlesskit", "slirp4netns:port_handler=rootlesskit,mtu=65520", "rootlesskit", (), 18092, 15859),
        ("podman-inspect/podman-4.3.1-rootless-bridge1.json", "bridge1", "bridge", "rootlessport", ("rdnet",), 18093, 15964),
        ("podman-inspect/podman-4.3.1-root-bridge-created-not-started.json", "rd-root-bridge", "bridge", None, ("podman",), 18094, None),
    ],
)  # fmt: skip
def test_podman_inspect(
    rel: str,
    name: str,
    mode: str,
    handler: str | None,
    networks: tuple[str, ...],
    host_port: int,
    pid: int | None,
) -> None:
    [c] = parse.podman_inspect(read(rel))
    assert c.engine == "podman"
    assert c.name == name
    assert len(c.id) == 64
    assert c.network_mode == mode
    assert c.port_handler == handler
    assert c.networks == networks
    assert [(p.host_port, p.container_port, p.protocol, p.host_ip) for p in c.ports] == [
        (host_port, 8080, "tcp", "127.0.0.1")
    ]
    assert c.pid == pid
    assert c.create_command[:2] == ("podman", "run")
    assert "PATH" in c.env


def test_podman_inspect_rejects_network_inspect() -> None:
    with pytest.raises(ParseError, match="Config"):
        parse.podman_inspect(
            read("podman-inspect/podman-4.3.1-rootless-network-inspect-rdnet.json")
        )


def test_docker_inspect_minimal_real_shape() -> None:
    text = (
        '[{"Id":"821ecae7b581767b189238205e653de7ad1bb994f5c6a40949b3971aa16d5c6f","Name":"/web",'
        '"State":{"Pid":10113},"Config":{"Env":["A=1"]},"HostConfig":{"NetworkMode":"default",'
        '"PortBindings":{"8080/tcp":[{"HostIp":"127.0.0.1","HostPort":"18081"}]}},'
        '"NetworkSettings":{"Networks":{"bridge":{}},"Ports":{"8080/tcp":'
        '[{"HostIp":"127.0.0.1","HostPort":"18081"}]}}}]'
    )
    [c] = parse.docker_inspect(text)
    assert (c.name, c.network_mode, c.port_handler, c.pid) == ("web", "bridge", None, 10113)
    assert c.networks == ("bridge",) and c.env == {"A": "1"}
    assert len(c.ports) == 1 and c.ports[0].host_port == 18081


# --------------------------------------------------------------------------- containers.conf


def test_containers_conf_upstream_defaults_are_all_comments() -> None:
    for rel in (
        "containers-conf/containers.conf-podman-4.3.1-debian12-usr-share.conf",
        "containers-conf/containers.conf-common-v0.68.0-podman-6.0.0-rc1.conf",
    ):
        conf = parse.containers_conf([(rel, read(rel))])
        assert "network.default_rootless_network_cmd" not in conf


def test_containers_conf_merge_and_case() -> None:
    files = [
        (r, read(r))
        for r in (
            "containers-conf/user-snippet-slackware-package-etc-containers.conf",
            "containers-conf/captured-debian12-rdtest-user-containers.conf",
            "containers-conf/user-snippet-rhel-guide-engine-network-cmd-options-port-handler.conf",
            "containers-conf/user-snippet-tmt-docs-capitalized-Network-section-slirp4netns.conf",
        )
    ]
    conf = parse.containers_conf(files)
    assert conf["engine.runtime"] == "runc"  # later file wins over "crun"
    assert conf["engine.cgroup_manager"] == "cgroupfs"
    assert conf["network.firewall_driver"] == "nftables"
    assert conf["network.default_rootless_network_cmd"] == "slirp4netns"  # from "[Network]"
    assert conf["engine.network_cmd_options"] == ["port_handler=slirp4netns"]


def test_containers_conf_append() -> None:
    conf = parse.containers_conf(
        [
            ("a", '[containers]\nenv = ["A=1"]\n'),
            ("b", '[containers]\nenv = ["B=2", {append=true}]\n'),
        ]
    )
    assert conf["containers.env"] == ["A=1", "B=2"]


def test_containers_conf_rejects() -> None:
    with pytest.raises(ParseError, match="not TOML"):
        parse.containers_conf([("x", read("compose/docker-mailserver-compose.yaml"))])


# --------------------------------------------------------------------------- systemd


def test_unit_environment_real_files() -> None:
    unit = "systemd/docker-rootless-user-unit-rendered-from-moby-docker-v29.7.2-setuptool.service"
    drop = "systemd/docker-mailserver-docs-fail2ban-docker-rootless-override.conf"
    env = parse.unit_environment([(unit, read(unit)), (drop, read(drop))])
    assert env["PATH"] == "/usr/bin:/sbin:/usr/sbin:/usr/bin:/bin"
    assert env["DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER"] == "slirp4netns"


def test_unit_environment_quoted_words() -> None:
    rel = "systemd/phaidra-readme-override-assembled.conf"
    env = parse.unit_environment([(rel, read(rel))])
    assert env == {
        "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER": "slirp4netns",
        "DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS": "-p 0.0.0.0:9323:9323/tcp",
    }


def test_unit_environment_outside_section_is_ignored() -> None:
    rel = "systemd/moby-issue52641-override-commented-lines.conf"
    assert parse.unit_environment([(rel, read(rel))]) == {}
    assert len(parse.unit_outside_section(read(rel))) == 2


def test_unit_environment_systemd_semantics() -> None:
    env = parse.unit_environment(
        [
            ("u", '[Service]\nEnvironment="A=1 2" B=3 \'C=x y\'\nEnvironment=A=later\n[Install]\nEnvironment=Z=9\n'),
            ("d1", "[Service]\nEnvironment=\nEnvironment=D=4 \\\n  E=5\n"),
        ]
    )  # fmt: skip
    assert env == {"D": "4", "E": "5"}  # the empty assignment reset A, B, C; [Install] ignored
    env = parse.unit_environment(
        [("u", "[Service]\nEnvironment=\"A=1 2\" B=3 'C=x y'\nEnvironment=A=later\n")]
    )
    assert env == {"A": "later", "B": "3", "C": "x y"}


def test_unit_environment_rejects() -> None:
    with pytest.raises(ParseError, match="not a systemd unit"):
        parse.unit_environment(
            [("x", read("ps/docker-20.10.24-debian12-rootless-builtin-ps-eo.txt"))]
        )


# --------------------------------------------------------------------------- daemon.json, compose


@pytest.mark.parametrize(
    ("rel", "userland_proxy"),
    [
        ("daemon-json/incus-coexistence-iptables-false-userland-proxy-false.json", False),
        ("daemon-json/production-config-doc-userland-proxy-false.json", False),
        ("daemon-json/rdtest-captured-rootless-userland-proxy-false.json", False),
        ("daemon-json/swarm-setup-script-userland-proxy-false.json", False),
        ("daemon-json/phaidra-rootless-metrics-addr.json", None),
    ],
)
def test_daemon_json(rel: str, userland_proxy: bool | None) -> None:
    assert parse.daemon_json(read(rel)).get("userland-proxy") is userland_proxy


@pytest.mark.parametrize("text", ["", "[1]", "{'a': 1}", '{"a": 1,}'])
def test_daemon_json_rejects(text: str) -> None:
    with pytest.raises(ParseError):
        parse.daemon_json(text)


def test_compose_mailserver() -> None:
    rel = "compose/docker-mailserver-compose.yaml"
    c = parse.compose(read(rel), rel)
    [s] = c.services
    assert s.name == "mailserver"
    assert s.image == "ghcr.io/docker-mailserver/docker-mailserver:latest"
    assert [p.host_port for p in s.ports] == [25, 143, 465, 587, 993]
    assert s.network_mode is None and s.cap_add == ()


def test_compose_snippets() -> None:
    rel = "compose/docker-mailserver-docs-fail2ban-cap-add-net-admin.yaml"
    [s] = parse.compose(read(rel), rel).services
    assert s.cap_add == ("NET_ADMIN",) and s.environment == {"ENABLE_FAIL2BAN": "1"}
    rel = "compose/docker-mailserver-docs-podman-rootless-high-ports.yaml"
    [s] = parse.compose(read(rel), rel).services
    assert next((p.host_port, p.container_port) for p in s.ports) == (10025, 25)


@pytest.mark.parametrize(
    "rel",
    [
        "compose/docker-mailserver-docs-podman-slirp4netns-network-mode.yaml",
        "compose/docker-mailserver-docs-fail2ban-podman-slirp4netns-port-handler.yaml",
    ],
)
def test_compose_doc_snippets_with_ellipsis_are_not_yaml(rel: str) -> None:
    # the docs elide the rest with a "      ..." line: not valid YAML, said so instead of guessed
    with pytest.raises(ParseError, match="not JSON or YAML"):
        parse.compose(read(rel), rel)
    fixed = read(rel).replace("      ...\n", "")
    [s] = parse.compose(fixed, rel).services
    assert s.network_mode == "slirp4netns:port_handler=slirp4netns"
    assert s.environment["NETWORK_INTERFACE"] == "tap0"


def test_compose_port_forms() -> None:
    text = (
        "services:\n  a:\n    ports:\n      - 8080\n      - '127.0.0.1:53:53/udp'\n"
        "      - target: 80\n        published: 8000\n        host_ip: 0.0.0.0\n"
    )
    [s] = parse.compose(text, "c.yaml").services
    assert [(p.host_port, p.container_port, p.protocol, p.host_ip) for p in s.ports] == [
        (0, 8080, "tcp", ""),
        (53, 53, "udp", "127.0.0.1"),
        (8000, 80, "tcp", "0.0.0.0"),
    ]


def test_compose_rejects() -> None:
    with pytest.raises(ParseError, match="no services"):
        parse.compose(read("rootlesskit-api/rootlesskit-v3.0.1-pkg-api-openapi.yaml"), "x")


# --------------------------------------------------------------------------- tool versions


@pytest.mark.parametrize(
    ("name", "output", "version"),
    [
        ("slirp4netns", "slirp4netns version 1.2.0\ncommit: 656041d45cfca7a4176f6b7eed9e4fe6c11e8383\n", "1.2.0"),
        ("rootlesskit", "rootlesskit version 1.1.0\n", "1.1.0"),
        ("podman", "podman version 4.3.1\n", "4.3.1"),
        ("docker", "Docker version 20.10.24+dfsg1, build 5d6db84\n", "20.10.24+dfsg1"),
        ("pasta", "pasta unknown version\nCopyright Red Hat\n", None),
        ("pasta", "pasta 0^20240906.g6b38f07-1.fc40.aarch64-pasta\n", "2024_09_06.6b38f07"),
        ("pasta", "pasta 2023_12_04.b86afe3\n", "2023_12_04.b86afe3"),
        ("newuidmap", "usage: newuidmap <pid> <uid> <loweruid> <count>\n", None),
        ("slirp4netns", "", None),
    ],
)  # fmt: skip
def test_tool_version(name: str, output: str, version: str | None) -> None:
    assert parse.tool_version(name, output) == version


def test_docker_inspect_real_running_container_ports_once() -> None:
    """A running container's ports as it has them (0.0.0.0 and ::), not again as created."""
    text = DATA / "docker-inspect/docker-20.10.24-debian12-rootless-bridge-published-18099.json"
    (c,) = parse.docker_inspect(text.read_text())
    assert c.engine == "docker" and c.network_mode == "bridge" and c.port_handler is None
    assert [(p.host_ip, p.host_port, p.container_port, p.protocol) for p in c.ports] == [
        ("0.0.0.0", 18099, 8080, "tcp"),
        ("::", 18099, 8080, "tcp"),
    ]
    assert c.pid and len(c.id) == 64


def test_docker_inspect_tells_a_rootless_daemon_by_its_paths() -> None:
    text = (
        DATA / "docker-inspect/docker-20.10.24-debian12-rootless-bridge-published-18099.json"
    ).read_text()
    assert parse.docker_inspect_rootless(text) is True
    rootful = text.replace("/run/user/1003/docker/", "/var/run/docker/").replace(
        "/home/rdlead/.local/share/docker/", "/var/lib/docker/"
    )
    assert parse.docker_inspect_rootless(rootful) is False
    assert parse.docker_inspect_rootless('[{"Id": "x", "HostConfig": {}}]') is None


def test_yaml_alias_bomb_is_refused_quickly() -> None:
    """Pasted YAML is untrusted: aliases expanding past the node budget are one clear error."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    lines.append("services: {s: {image: x, x: *a8}}")
    with pytest.raises(ParseError, match="nodes with aliases expanded"):
        parse.compose("\n".join(lines) + "\n", "bomb.yaml")


def test_yaml_merge_keys_and_yaml_1_2_ports_read_like_the_fix() -> None:
    """One reader (ruamel, as fix compose uses): `<<: *x` merges, `25:25` stays a string."""
    c = parse.compose(
        "x-mail: &mail\n  image: ghcr.io/docker-mailserver/docker-mailserver:15\n"
        "  environment: {PERMIT_DOCKER: none}\n"
        "services:\n  mail:\n    <<: *mail\n    ports:\n      - 25:25\n",
        "compose.yaml",
    )
    [s] = c.services
    assert s.image.startswith("ghcr.io/docker-mailserver/")
    assert s.environment == {"PERMIT_DOCKER": "none"}
    assert [p.host_port for p in s.ports] == [25]
