"""offline.py: recognition by content and combination of real captured files
(provenance: tests/data/SOURCES.md)."""

# The tables name the real captured files in full; they are longer than a line.
# ruff: noqa: E501

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import DATA

from rootless_doctor import host, knowledge
from rootless_doctor.model import ContainerFacts, DoctorError, HostFacts, PodmanFacts
from rootless_doctor.offline import KINDS, from_texts, merge, recognise
from rootless_doctor.parse import ParseError


def gather_offline(files: list[Path]) -> HostFacts:
    """What `check --from FILES` builds: host reads the files, offline turns texts into facts."""
    return from_texts([(str(f), host.read_pasted(f)) for f in files])


EXPECTED_KIND = {
    "podman-info": "podman-info",
    "docker-version": "docker-version",
    "docker-info": "docker-info",
    "journal": "journal",
    "containers-conf": "containers-conf",
    "systemd": "unit",
    "daemon-json": "daemon-json",
    "compose": "compose",
}
# files that are on purpose not a kind the tool reads (kept as negative cases)
NOT_A_KIND = {
    "podman-inspect/podman-4.3.1-rootless-network-inspect-rdnet.json",
    "ps/podman-4.3.1-debian12-rootless-podman-ps.json",
    "ps/podman-4.3.1-debian12-rootless-podman-ps.txt",
    "rootlesskit-api/rootlesskit-1.1.0-docker-20.10-builtin-rootlessctl-list-ports.txt",
    "rootlesskit-api/rootlesskit-1.1.0-docker-20.10-statedir-ls-builtin.txt",
    "rootlesskit-api/rootlesskit-1.1.0-docker-20.10-statedir-ls-slirp4netns.txt",
    "rootlesskit-api/rootlesskit-v2.3.6-pkg-api-openapi.yaml",
    "rootlesskit-api/rootlesskit-v3.0.1-pkg-api-openapi.yaml",
}


def _files(category: str) -> list[str]:
    return sorted(str(p.relative_to(DATA)) for p in (DATA / category).iterdir() if p.is_file())


@pytest.mark.parametrize("category", sorted(EXPECTED_KIND))
def test_recognise_category(category: str) -> None:
    for rel in _files(category):
        # a Quadlet .container is a systemd unit of its own kind
        want = "quadlet" if rel.endswith(".container") else EXPECTED_KIND[category]
        assert recognise((DATA / rel).read_text()) == want, rel


def test_recognise_ps_inspect_api() -> None:
    for rel in _files("ps"):
        if rel not in NOT_A_KIND:
            assert recognise((DATA / rel).read_text()) == "processes", rel
    for rel in _files("podman-inspect"):
        if rel not in NOT_A_KIND:
            assert recognise((DATA / rel).read_text()) == "podman-inspect", rel
    for rel in _files("rootlesskit-api"):
        if rel not in NOT_A_KIND:
            assert recognise((DATA / rel).read_text()) == "rootlesskit-info", rel


def test_recognise_docker_inspect() -> None:
    text = (
        '[{"Id":"821ecae7b581","Name":"/web","Platform":"linux","ExecIDs":null,'
        '"State":{"Pid":1},"Config":{},"HostConfig":{"NetworkMode":"default"}}]'
    )
    assert recognise(text) == "docker-inspect"


def test_every_kind_is_recognised_somewhere() -> None:
    seen = set()
    for d in DATA.iterdir():
        if d.is_dir():
            for rel in _files(d.name):
                with contextlib.suppress(ParseError):
                    seen.add(recognise((DATA / rel).read_text()))
    seen.add("docker-inspect")  # no captured docker inspect yet: covered above in code
    # docker-mailserver's env file sits next to its compose file (env_file: is relative to it)
    seen.add(recognise((DATA / "compose/dms-upstream-c9b015d/mailserver.env").read_text()))
    assert seen == set(KINDS)


@pytest.mark.parametrize("rel", sorted(NOT_A_KIND))
def test_recognise_rejects_with_hint(rel: str) -> None:
    with pytest.raises(ParseError):
        recognise((DATA / rel).read_text())


def test_recognise_ps_output_hint() -> None:
    with pytest.raises(ParseError, match="podman inspect"):
        recognise((DATA / "ps/podman-4.3.1-debian12-rootless-podman-ps.txt").read_text())


# --------------------------------------------------------------------------- combining


def gather(*rels: str) -> object:
    return gather_offline([DATA / r for r in rels])


def test_docker_version_plus_daemon_json() -> None:
    v = "docker-version/docker-29.2.1-rootless-rootlesskit-2.3.6-slirp4netns-builtin.txt"
    j = "daemon-json/rdtest-captured-rootless-userland-proxy-false.json"
    h = gather_offline([DATA / v, DATA / j])
    assert h.offline is True
    assert h.sources == (str(DATA / v), str(DATA / j))
    d = h.docker
    assert d is not None and d.version == "29.2.1" and d.rootless is True
    assert d.running is not None
    assert (d.running.version, d.running.network_driver, d.running.port_driver) == (
        "2.3.6",
        "slirp4netns",
        "builtin",
    )
    assert d.userland_proxy is False
    assert d.daemon_json == str(DATA / j)
    assert h.podman is None


def test_docker_processes_version_and_api() -> None:
    h = gather_offline(
        [
            DATA / "ps/docker-20.10.24-debian12-rootless-builtin-ps-eo.txt",
            DATA / "docker-version/docker-20.10.24-debian12-rootless-client20.10.txt",
            DATA
            / "rootlesskit-api/rootlesskit-1.1.0-docker-20.10-slirp4netns-builtin-v1-info.json",
        ]
    )
    d = h.docker
    assert d is not None and d.version == "20.10.24+dfsg1" and d.rootless is True
    r = d.running
    assert r is not None
    assert (r.pid, r.version, r.port_driver, r.child) == (
        9487,
        "1.1.0",
        "builtin",
        "dockerd-rootless.sh",
    )
    assert r.state_dir == "/tmp/rootlesskit2750343654"  # learnt from the API
    assert "command line" in r.source and "api.sock" in r.source
    assert h.rootlesskits == ()


def test_journal_and_units() -> None:
    h = gather_offline(
        [
            DATA
            / "journal/rootlesskit-issue591-docker-29.5.0-rootlesskit-3.0.0-pasta-implicit-detach-netns.log",
            DATA / "systemd/phaidra-readme-override-assembled.conf",
            DATA
            / "systemd/docker-rootless-user-unit-rendered-from-moby-docker-v29.7.2-setuptool.service",
        ]
    )
    d = h.docker
    assert d is not None and d.running is not None
    assert (d.running.pid, d.running.network_driver, d.running.port_driver) == (
        159782,
        "pasta",
        "implicit",
    )
    assert d.configured_port_driver == "slirp4netns"
    assert d.configured_net is None
    assert d.configured_env["DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS"] == "-p 0.0.0.0:9323:9323/tcp"
    assert "PATH" not in d.configured_env
    # the unit (ExecStart=) comes first, whatever the command-line order
    assert d.unit_files[0].endswith("setuptool.service")


def test_headerless_drop_in_is_noted() -> None:
    h = gather_offline([DATA / "systemd/moby-issue52641-override-commented-lines.conf"])
    assert h.docker is not None and h.docker.configured_port_driver is None
    assert h.docker.ignored_unit_lines == (
        f"{DATA / 'systemd/moby-issue52641-override-commented-lines.conf'}: "
        'Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns"',
        f"{DATA / 'systemd/moby-issue52641-override-commented-lines.conf'}: "
        'Environment="DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns"',
    )


def test_quadlet_unit_is_not_docker() -> None:
    h = gather_offline([DATA / "systemd/docker-mailserver-docs-podman-quadlet-dms.container"])
    assert h.docker is None
    # read as a Quadlet unit (QUADLET-NETWORK), not ignored
    assert [q.name for q in h.quadlets] == ["docker-mailserver-docs-podman-quadlet-dms.container"]
    assert h.quadlets[0].network is None and len(h.quadlets[0].ports) == 4


def test_podman_info_conf_inspect() -> None:
    h = gather_offline(
        [
            DATA / "podman-info/podman-4.3.1-rootless-debian12.json",
            DATA / "containers-conf/captured-debian12-rdtest-user-containers.conf",
            DATA / "podman-inspect/podman-4.3.1-rootless-s4-default.json",
            DATA / "podman-inspect/podman-4.3.1-rootless-s4-handler.json",
            DATA / "podman-inspect/podman-4.3.1-rootless-bridge1.json",
        ]
    )
    p = h.podman
    assert p is not None
    assert (p.version, p.rootless, p.slirp4netns_version) == ("4.3.1", True, "1.2.0")
    assert p.rootless_network_cmd is None  # facts hold what was read: not in info, not in conf
    assert knowledge.podman_default_network(p) == ("slirp4netns", "Podman 4.3.1 default")
    assert p.conf["engine.runtime"] == "runc"
    assert len(p.conf_files) == 1
    handlers = {c.name: c.port_handler for c in p.containers}
    assert handlers == {
        "s4-default": "rootlesskit",
        "s4-handler": "slirp4netns",
        "bridge1": "rootlessport",
    }
    assert h.docker is None


def test_podman_conf_decides_network_cmd_and_handler() -> None:
    h = gather_offline(
        [
            DATA / "podman-info/podman-5.2.3-rootless-fedora40-container-pasta.yaml",
            DATA / "containers-conf/user-snippet-devcontainer-network-slirp4netns.conf",
        ]
    )
    assert h.podman is not None
    # podman info reports what Podman resolved from the whole conf chain: it wins over one file
    assert knowledge.podman_default_network(h.podman) == (
        "pasta",
        "podman info rootlessNetworkCmd",
    )
    h = gather_offline(
        [
            DATA / "containers-conf/user-snippet-devcontainer-network-slirp4netns.conf",
            DATA
            / "containers-conf/user-snippet-rhel-guide-engine-network-cmd-options-port-handler.conf",
            DATA / "podman-inspect/podman-4.3.1-rootless-s4-default.json",
        ]
    )
    p = h.podman
    assert p is not None and p.rootless_network_cmd is None
    assert knowledge.podman_default_network(p) == (
        "slirp4netns",
        "containers.conf default_rootless_network_cmd",
    )
    [c] = p.containers
    assert c.port_handler == "rootlesskit"  # what inspect says; the conf applies at start:
    assert knowledge.podman_port_handler(p, c) == "slirp4netns"
    assert knowledge.podman_container_handler(p, c) == "slirp4netns"


def test_podman_processes_confirm_slirp4netns_handler() -> None:
    h = gather_offline(
        [
            DATA / "ps/podman-4.3.1-debian12-rootless-4-containers-ps-eo.txt",
            DATA / "podman-inspect/podman-4.3.1-rootless-s4-handler.json",
            DATA / "podman-inspect/podman-4.3.1-rootless-s4-default.json",
        ]
    )
    p = h.podman
    assert p is not None
    handlers = {c.name: c.port_handler for c in p.containers}
    assert handlers == {"s4-handler": "slirp4netns", "s4-default": "rootlesskit"}
    assert any("3 rootlessport" in n for n in p.notes)


def test_root_podman_bridge_has_no_rootlessport() -> None:
    h = gather_offline(
        [
            DATA / "podman-info/podman-4.3.1-root-debian12.yaml",
            DATA / "podman-inspect/podman-4.3.1-root-bridge-created-not-started.json",
        ]
    )
    assert h.podman is not None
    [c] = h.podman.containers
    assert c.port_handler is None and h.podman.rootless is False
    # rootful bridge ports are DNAT'd by netavark: no rootless port handler
    assert knowledge.podman_port_handler(h.podman, c) is None
    rootless = replace(h.podman, rootless=True)
    assert knowledge.podman_port_handler(rootless, c) == "rootlessport"
    assert knowledge.podman_port_handler(h.podman, replace(c, port_handler="rootlessport")) is None


def test_standalone_rootlesskits() -> None:
    h = gather_offline(
        [
            DATA / "ps/rootlesskit-1.1.0-debian12-standalone-two-instances-ps-o.txt",
            DATA
            / "rootlesskit-api/rootlesskit-1.1.0-debian12-standalone-portdriver-slirp4netns-v1-info.json",
        ]
    )
    assert h.docker is None
    kits = {k.pid: k for k in h.rootlesskits}
    assert set(kits) == {16900, 31682}
    assert (kits[16900].port_driver, kits[16900].child) == ("builtin", "sleep")
    assert (kits[31682].port_driver, kits[31682].version) == ("slirp4netns", "1.1.0")


def test_compose_file() -> None:
    h = gather_offline([DATA / "compose/docker-mailserver-compose.yaml"])
    assert h.compose is not None
    assert h.compose.path == str(DATA / "compose/docker-mailserver-compose.yaml")
    assert h.compose.services[0].name == "mailserver"


def test_merge_rules() -> None:
    a = PodmanFacts(
        version="4.3.1",
        notes=("a",),
        containers=(ContainerFacts(engine="podman", name="x", id="0123456789abcdef", pid=5),),
    )
    b = PodmanFacts(
        version=None,
        rootless=True,
        notes=("b",),
        containers=(
            ContainerFacts(engine="podman", name="", id="0123456789ab", port_handler="pasta"),
            ContainerFacts(engine="podman", name="y"),
        ),
    )
    m = merge(a, b)
    assert (m.version, m.rootless, m.notes) == ("4.3.1", True, ("a", "b"))
    assert [(c.name, c.pid, c.port_handler) for c in m.containers] == [
        ("x", 5, "pasta"),
        ("y", None, None),
    ]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"  \n\n", "empty file"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary"),
        (b"Server Version: caf\xe9\n", "not UTF-8"),
        (b"just some words\nthat mean nothing\n", "not recognised"),
        (b'{"Client": ', "not recognised"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    f = tmp_path / "pasted.txt"
    f.write_bytes(content)
    with pytest.raises(DoctorError) as e:
        gather_offline([f])
    text = str(e.value)
    assert text.startswith(f"{f}: ")
    assert message in text
    assert "\n" not in text and "Traceback" not in text
    assert e.value.exit_code == 2


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DoctorError, match="cannot read"):
        gather_offline([tmp_path / "nope.json"])
    with pytest.raises(DoctorError, match="is a directory"):
        gather_offline([tmp_path])


def test_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    f = tmp_path / "huge.json"
    with f.open("wb") as out:  # sparse: nothing written
        out.truncate(host.files.MAX_PASTED + 1)
    cap = host.files.MAX_PASTED >> 20
    with pytest.raises(DoctorError, match=f"larger than {cap} MiB") as e:
        gather_offline([f])
    assert str(e.value).startswith(f"{f}: ") and e.value.exit_code == 2


def test_recognised_but_broken_names_the_kind() -> None:
    f = DATA / "podman-info/podman-6.0.0-rc1-manpage-example-NOT-VALID-YAML.yaml"
    with pytest.raises(DoctorError) as e:
        gather_offline([f])
    assert str(e.value).startswith(f"{f}: podman-info: not JSON or YAML")


@pytest.mark.parametrize("form", ["ps-aux", "ps-ef", "ps-eo-args"])
def test_whole_machine_process_listings_in_every_ps_form(form: str) -> None:
    """The same rootless dockerd (slirp4netns port driver) as `ps aux`, `ps -ef`, `ps -eo args`:
    Docker's RootlessKit and its drivers, not a standalone one."""
    f = DATA / f"ps/docker-20.10.24-debian12-rootless-portdriver-slirp4netns-{form}.txt"
    facts = gather_offline([f])
    assert facts.docker is not None and facts.docker.running is not None
    rk = facts.docker.running
    assert (rk.network_driver, rk.port_driver) == ("slirp4netns", "slirp4netns")
    assert facts.rootlesskits == ()


def test_pstree_cut_lines_are_unknown_not_defaults() -> None:
    """pstree -ap cuts long argument lists with "...": the port driver is then unknown (not
    rootlesskit's default "none"), and the nesting still shows dockerd below rootlesskit."""
    f = DATA / "ps/docker-20.10.24-debian12-rootless-portdriver-slirp4netns-pstree.txt"
    facts = gather_offline([f])
    assert facts.docker is not None and facts.docker.running is not None
    assert facts.docker.running.network_driver == "slirp4netns"
    assert facts.docker.running.port_driver is None
    assert facts.rootlesskits == ()


def test_pastes_with_prompt_and_engine_warnings(tmp_path: Path) -> None:
    """What users paste: the prompt and command, logrus warnings, docker's WARNING lines around
    the real output (here the captured Podman 4.3.1 YAML and Docker 27.1.1 info)."""
    podman = tmp_path / "podman.txt"
    podman.write_text(
        "user@host:~$ podman info\n"
        'WARN[0000] "/" is not a shared mount, this could cause issues or missing mounts with '
        "rootless containers\n"
        + (DATA / "podman-info/podman-4.3.1-rootless-debian12.yaml").read_text()
    )
    docker = tmp_path / "docker.txt"
    docker.write_text(
        "$ docker info\n"
        + (DATA / "docker-info/docker-27.1.1-rootless-debian12.txt").read_text()
        + "WARNING: No cpu cfs quota support\nWARNING: bridge-nf-call-iptables is disabled\n"
    )
    facts = gather_offline([podman, docker])
    assert facts.podman is not None and facts.podman.version == "4.3.1"
    assert facts.docker is not None and facts.docker.rootless is True
