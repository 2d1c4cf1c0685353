"""PASTA-EPHEMERAL-PORT on fake hosts made of real captures (tests/data/SOURCES.md): pasta's
automatic forwarding (RootlessKit's implicit port driver) skips ports inside
net.ipv4.ip_local_port_range from passt 2026_05_07 on (passt commit 4e09ddf0344)."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import DATA

from rootless_doctor import knowledge as kb
from rootless_doctor import parse
from rootless_doctor.checks import docker_report, engine
from rootless_doctor.host import system
from rootless_doctor.model import (
    CmdOutput,
    ContainerFacts,
    DockerFacts,
    HostFacts,
    HostPaths,
    PublishedPort,
)

ISSUE591 = (
    DATA
    / "journal/rootlesskit-issue591-docker-29.5.0-rootlesskit-3.0.0-pasta-implicit-detach-netns.log"
)


def fake_root(tmp: Path, release: str, port_range: str | None = None) -> HostPaths:
    """A root with the CI machine's ip_local_port_range (or ``port_range``), the release's dpkg
    status stanzas and a pasta binary."""
    root = tmp / release
    (root / "proc/sys/net/ipv4").mkdir(parents=True)
    rng = root / "proc/sys/net/ipv4/ip_local_port_range"
    if port_range is None:
        shutil.copy(DATA / "proc/ip_local_port_range-debian12-ci-machine", rng)
    else:
        rng.write_text(port_range)
    (root / "var/lib/dpkg").mkdir(parents=True)
    status = DATA / f"dpkg/status-debian-{release}-root-excerpt.txt"
    shutil.copy(status, root / "var/lib/dpkg/status")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/pasta").write_text("")
    return HostPaths(root=root)


def host_facts(paths: HostPaths, release: str, docker: DockerFacts) -> HostFacts:
    """The facts host/ reads from that root: the range, and pasta's version from the release's
    real `pasta --version` output (trixie's is empty through a pipe: dpkg tells then)."""
    out = (DATA / f"tool-version/pasta-version-debian-{release}-root.txt").read_text()

    def result(cmd: str) -> CmdOutput:
        return CmdOutput(argv=tuple(cmd.split()), code=0, stdout=out)

    pasta = ("/usr/bin/pasta", paths.at("/usr/bin/pasta"))
    tools = system.tool_facts(paths, {"pasta": pasta}, result, [])
    return HostFacts(tools=tools, ephemeral_ports=system.ephemeral_ports(paths), docker=docker)


def docker_on_pasta(*host_ports: int) -> DockerFacts:
    """Rootless Docker whose RootlessKit runs as the issue-591 journal shows (pasta + implicit)."""
    procs = parse.process_listing(ISSUE591.read_text())
    (exec_line,) = [p for p in procs if "--net=pasta" in p.cmdline]
    running = parse.rootlesskit_argv(exec_line.cmdline)
    containers = tuple(
        ContainerFacts(
            engine="docker",
            name=f"web{port}",
            network_mode="bridge",
            ports=(PublishedPort(host_port=port, container_port=8080),),
        )
        for port in host_ports
    )
    return DockerFacts(rootless=True, version="28.5.2", running=running, containers=containers)


def test_captures_say_what_the_check_relies_on() -> None:
    # passt 2026_05_07 turned `auto` into "1 up to the ephemeral range": upstream's log line.
    assert "Unable to add rule TCP [*]:1-32767" in ISSUE591.read_text()
    assert system.ephemeral_ports(HostPaths(root=Path("/nonexistent"))) is None
    text = (DATA / "proc/ip_local_port_range-debian12-ci-machine").read_text()
    assert re.fullmatch(r"32768\t60999\n", text)


def test_sid_passt_2026_10_fails_on_an_ephemeral_port(tmp_path: Path) -> None:
    paths = fake_root(tmp_path, "sid")
    facts = host_facts(paths, "sid", docker_on_pasta(29149, 55377))
    assert facts.ephemeral_ports == (32768, 60999)
    assert facts.tools["pasta"].version == "2026_10_02.cba3570"
    r = engine.pasta_ephemeral_port(facts, facts.docker)  # type: ignore[arg-type]
    assert r.status == "fail", r
    assert "web55377 55377->8080" in r.detail and "29149" not in r.detail
    assert "32768-60999" in r.detail
    assert "below 32768" in r.remedy
    assert "net.ipv4.ip_local_port_range = 55378 60999" in r.remedy
    assert kb.RESTART_DOCKER in r.remedy


def test_trixie_passt_2025_05_warns_only(tmp_path: Path) -> None:
    paths = fake_root(tmp_path, "trixie")
    facts = host_facts(paths, "trixie", docker_on_pasta(48089))
    assert facts.tools["pasta"].version == "2025_05_03.587980c"  # from dpkg: --version was empty
    r = engine.pasta_ephemeral_port(facts, facts.docker)  # type: ignore[arg-type]
    assert r.status == "warn" and "48089" in r.detail and "2026_05_07" in r.detail


def test_ports_below_the_range_are_fine(tmp_path: Path) -> None:
    paths = fake_root(tmp_path, "sid")
    facts = host_facts(paths, "sid", docker_on_pasta(29149, 8080))
    r = engine.pasta_ephemeral_port(facts, facts.docker)  # type: ignore[arg-type]
    assert r.status == "ok" and "-p 0:PORT" in r.detail


def test_the_range_read_decides(tmp_path: Path) -> None:
    # A host that moved its range up: 55377 is below it now, and forwarded.
    paths = fake_root(tmp_path, "sid", port_range="60000\t61000\n")
    facts = host_facts(paths, "sid", docker_on_pasta(55377))
    assert facts.ephemeral_ports == (60000, 61000)
    r = engine.pasta_ephemeral_port(facts, facts.docker)  # type: ignore[arg-type]
    assert r.status == "ok"
    for bad in ("", "32768", "61000 60000", "1 2 3", "x\t60999", "99999 99999"):
        (paths.at("/proc/sys/net/ipv4/ip_local_port_range")).write_text(bad)
        assert system.ephemeral_ports(paths) is None, bad


@pytest.mark.parametrize(
    ("net", "port"),
    [("slirp4netns", "builtin"), ("slirp4netns", "slirp4netns"), ("pasta", "pesto")],
)
def test_other_drivers_skip(tmp_path: Path, net: str, port: str) -> None:
    paths = fake_root(tmp_path, "sid")
    d = docker_on_pasta(55377)
    assert d.running is not None
    d = DockerFacts(
        rootless=True,
        version="28.5.2",
        running=type(d.running)(version="2.0.2", network_driver=net, port_driver=port),
        containers=d.containers,
    )
    r = engine.pasta_ephemeral_port(host_facts(paths, "sid", d), d)
    assert r.status == "skip"


def test_the_check_is_in_the_report(tmp_path: Path) -> None:
    paths = fake_root(tmp_path, "sid")
    facts = host_facts(paths, "sid", docker_on_pasta(55377))
    ids = {c.id: c.status for c in engine.checks(facts)}
    assert ids["PASTA-EPHEMERAL-PORT"] == "fail"


def _report_rows(facts: HostFacts) -> dict[str, tuple[bool | None, str, str]]:
    assert facts.docker is not None
    rows = docker_report(facts, facts.docker).containers
    return {r.name: (r.source_ip_preserved, r.seen_address, r.reason) for r in rows}


def test_container_on_an_unforwarded_port_is_not_kept(tmp_path: Path) -> None:
    # sid's passt 2026_10_02: 55377 is refused, 29149 keeps the client; the per-container verdict,
    # the CONTAINER-SOURCE-IP result and PASTA-EPHEMERAL-PORT agree.
    paths = fake_root(tmp_path, "sid")
    facts = host_facts(paths, "sid", docker_on_pasta(29149, 55377))
    rows = _report_rows(facts)
    preserved, seen, reason = rows["web55377"]
    assert (preserved, seen) == (False, kb.SEEN_REFUSED), reason
    assert "55377->8080 not forwarded" in reason and "32768-60999" in reason
    assert rows["web29149"][:2] == (True, kb.SEEN_CLIENT)
    by_name = {r.container: r for r in engine.checks(facts) if r.id == "CONTAINER-SOURCE-IP"}
    assert by_name["web55377"].status == "fail"
    assert "below 32768" in by_name["web55377"].remedy
    assert by_name["web29149"].status == "ok"


def test_container_verdict_follows_the_range_and_the_passt_version(tmp_path: Path) -> None:
    # The same port, forwarded: above a moved range, and with trixie's passt 2025_05 (still
    # scanning every port). The engine check agrees each time.
    moved = fake_root(tmp_path, "sid", port_range="60000\t61000\n")
    facts = host_facts(moved, "sid", docker_on_pasta(55377))
    assert _report_rows(facts)["web55377"][:2] == (True, kb.SEEN_CLIENT)
    assert engine.pasta_ephemeral_port(facts, facts.docker).status == "ok"  # type: ignore[arg-type]
    trixie = fake_root(tmp_path, "trixie")
    facts = host_facts(trixie, "trixie", docker_on_pasta(48089))
    assert _report_rows(facts)["web48089"][:2] == (True, kb.SEEN_CLIENT)
    assert engine.pasta_ephemeral_port(facts, facts.docker).status == "warn"  # type: ignore[arg-type]


# One port below the ephemeral range (forwarded), one inside it (refused on sid's passt).
MIXED = ContainerFacts(
    engine="docker",
    name="both",
    network_mode="bridge",
    ports=(
        PublishedPort(host_port=8080, container_port=80),
        PublishedPort(host_port=40000, container_port=443),
    ),
)


def test_mixed_ports_name_both(tmp_path: Path) -> None:
    paths = fake_root(tmp_path, "sid")
    d = docker_on_pasta()
    c = MIXED
    facts = host_facts(paths, "sid", replace(d, containers=(c,)))
    v = kb.docker_container_verdict(facts.docker, c, facts.tools, facts.ephemeral_ports)  # type: ignore[arg-type]
    assert v.preserved is False
    assert v.seen == f"{kb.SEEN_REFUSED} on 40000->443; {kb.SEEN_CLIENT} on 8080->80"
    assert "move the ephemeral range above it" in v.fix and "40001 60999" in v.fix


def test_the_text_report_says_not_forwarded_where_a_port_is_refused(tmp_path: Path) -> None:
    from rootless_doctor import render
    from rootless_doctor.checks import diagnose

    paths = fake_root(tmp_path, "sid")
    d = docker_on_pasta(55377)
    facts = host_facts(paths, "sid", replace(d, containers=(*d.containers, MIXED)))
    report = diagnose(facts)
    text = [t for _, t in render.report_lines(report, width=200)]
    (refused,) = [t for t in text if "container web55377" in t]
    assert "client IPs NOT FORWARDED (" in refused and "LOST" not in refused, refused
    (both,) = [t for t in text if "container both" in t]  # one port refused, one reached: LOST
    assert "client IPs LOST (" in both, both
    # JSON keeps the verdict fields as they are
    rows = {c["name"]: c for e in render.to_json(report)["engines"] for c in e["containers"]}
    assert (rows["web55377"]["source_ip_preserved"], rows["web55377"]["seen_address"]) == (
        False,
        kb.SEEN_REFUSED,
    )
