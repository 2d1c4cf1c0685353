"""Per-container verdicts for rootless containerd (nerdctl): `nerdctl ps` / `nerdctl inspect`
pasted into `check --from`, read live through a nerdctl runner, and RootlessKit's port list when
nerdctl is absent. All containers of one rootless containerd share its RootlessKit port driver:
a container's verdict is the engine's, applied to its published ports; host network has none.

Inputs: tests/data/nerdctl/built-* are built from the documented forms (nerdctl
docs/command-reference.md, pkg/inspecttypes/dockercompat); no real rootless paste of either with
published ports was found (tests/data/SOURCES.md, "Issue 8 captures").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest
from fromcheck import check
from test_containerd_cli import PR_VERSION, STATUS_2021, N, containerd

from rootless_doctor import knowledge as kb
from rootless_doctor import parse_containerd
from rootless_doctor.host.containerd import nerdctl_containers
from rootless_doctor.model import CmdOutput, ContainerdFacts, PublishedPort, RootlessKitFacts

INSPECT = N / "built-nerdctl-inspect-dockercompat-bridge-host.json"
PS = N / "built-nerdctl-ps-json-lines.txt"


def per_container(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        c["container"]: c
        for c in data["checks"]
        if c["id"] == "CONTAINER-SOURCE-IP" and c.get("engine") == "containerd"
    }


def test_pasted_inspect_with_an_engine_that_loses_ips() -> None:
    # systemctl status: slirp4netns + builtin; nerdctl version: RootlessKit 2.3.1 → loses IPs
    code, data = check(STATUS_2021, PR_VERSION, INSPECT)
    e = containerd(data)
    assert e["source_ip_preserved"] is False and code == 1
    cts = {c["name"]: c for c in e["containers"]}
    assert set(cts) == {"web", "dns"}
    assert cts["web"]["network_mode"] == "bridge" and cts["web"]["port_handler"] == "builtin"
    assert cts["web"]["source_ip_preserved"] is False
    assert cts["web"]["reason"] == e["reason"]
    assert cts["dns"]["network_mode"] == "host" and cts["dns"]["port_handler"] is None
    assert cts["dns"]["source_ip_preserved"] is True
    assert "no port driver" in cts["dns"]["reason"]
    checks = per_container(data)
    assert set(checks) == {"web"}  # dns publishes nothing
    assert checks["web"]["status"] == "fail" and "8080" in checks["web"]["detail"]
    assert "fix containerd" in checks["web"]["remedy"]
    # nerdctl's inspect is not read as Docker's
    assert not [x for x in data["engines"] if x["engine"] == "docker" and x["containers"]]


def test_pasted_ps_lines_and_inspect_merge_by_id() -> None:
    _, data = check(STATUS_2021, PS, INSPECT)
    cts = {c["name"]: c for c in containerd(data)["containers"]}
    assert set(cts) == {"web", "dns", "logs"}
    assert cts["logs"]["network_mode"] == "bridge"  # from the ps Labels string
    assert {c["name"] for c in containerd(data)["containers"]} == set(per_container(data)) | {"dns"}
    # no RootlessKit version in these pastes: builtin's verdict is unknown, per container too
    assert per_container(data)["logs"]["status"] == "unknown"
    assert "5514" in per_container(data)["logs"]["detail"]


def test_ps_ports_column_and_recognition() -> None:
    text = PS.read_text()
    assert parse_containerd.is_nerdctl_ps(text)
    got = {c.name: c for c in parse_containerd.nerdctl_ps(text)}
    assert got["web"].ports == (
        PublishedPort(host_port=8080, container_port=80, host_ip="0.0.0.0"),
    )
    assert [(p.host_ip, p.protocol) for p in got["logs"].ports] == [
        ("127.0.0.1", "udp"),
        ("::1", "udp"),
    ]
    assert got["dns"].network_mode == "host" and got["dns"].ports == ()
    # `docker ps` JSON (RunningFor, no Platform/Runtime) is not nerdctl's
    docker = '{"Command":"x","ID":"1","Names":"a","Ports":"","RunningFor":"1 min","State":"up"}'
    assert not parse_containerd.is_nerdctl_ps(docker)


def test_ps_ports_ranges_are_read_whole() -> None:
    """A range in the Ports column (Docker's CLI writes them so; nerdctl prints one port an
    entry) is every port of it, paired as compose's are; not only its first port."""
    line = next(ln for ln in PS.read_text().splitlines() if '"Names":"web"' in ln)
    ports = "0.0.0.0:8000-8002->80-82/tcp, :::9000-9001->53/udp, 1.2.3.4:7-9->1-2/tcp"
    text = re.sub(r'"Ports":"[^"]*"', f'"Ports":"{ports}"', line)
    (web,) = parse_containerd.nerdctl_ps(text)
    assert [(p.host_ip, p.host_port, p.container_port, p.protocol) for p in web.ports] == [
        ("0.0.0.0", 8000, 80, "tcp"),
        ("0.0.0.0", 8001, 81, "tcp"),
        ("0.0.0.0", 8002, 82, "tcp"),
        ("::", 9000, 53, "udp"),
        ("::", 9001, 53, "udp"),
    ]  # 7-9->1-2: lengths differ, nothing (as in compose)
    # bounded: a column of huge ranges stops at MAX_PORTS
    many = ", ".join(f"0.0.0.0:{a}-{a + 999}->{a}-{a + 999}/tcp" for a in range(1000, 60000, 1000))
    (big,) = parse_containerd.nerdctl_ps(re.sub(r'"Ports":"[^"]*"', f'"Ports":"{many}"', line))
    assert len(big.ports) == parse_containerd.MAX_PORTS


def _runner(outputs: dict[str, CmdOutput | None], calls: list[list[str]]) -> Any:
    def run(args: Sequence[str]) -> CmdOutput | None:
        calls.append(list(args))
        return outputs.get(args[0])

    return run


def test_live_nerdctl_ps_then_inspect() -> None:
    calls: list[list[str]] = []
    ps = CmdOutput(argv=("nerdctl", "ps"), code=0, stdout=PS.read_text())
    ins = CmdOutput(argv=("nerdctl", "inspect"), code=0, stdout=INSPECT.read_text())
    notes: list[str] = []
    got = nerdctl_containers(_runner({"ps": ps, "inspect": ins}, calls), notes, [])
    assert got is not None and {c.name for c in got} == {"web", "dns"}
    assert calls[0] == ["ps", "--format", "{{json .}}"]
    assert calls[1][:2] == ["inspect", "--mode=dockercompat"] and "c4a6e8b0d2f4" in calls[1]


def test_live_inspect_failing_keeps_ps_and_notes_why() -> None:
    ps = CmdOutput(argv=("nerdctl", "ps"), code=0, stdout=PS.read_text())
    ins = CmdOutput(argv=("nerdctl", "inspect"), code=None, error="timed out after 5 s")
    notes: list[str] = []
    got = nerdctl_containers(_runner({"ps": ps, "inspect": ins}, []), notes, [])
    assert got is not None and {c.name for c in got} == {"web", "dns", "logs"}
    assert any("timed out" in n for n in notes)


def test_live_without_nerdctl_is_none_and_ports_stand_in() -> None:
    assert nerdctl_containers(_runner({}, []), [], []) is None
    ports = (PublishedPort(host_port=8080, container_port=80),)
    (entry,) = parse_containerd.port_entries(ports)
    assert entry.name == "port 8080/tcp" and entry.ports == ports


@pytest.mark.parametrize(("version", "kept"), [("2.3.1", False), ("3.0.0", True)])
def test_container_verdict_is_the_engines_for_its_ports(version: str, kept: bool) -> None:
    kit = RootlessKitFacts(version=version, network_driver="slirp4netns", port_driver="builtin")
    (entry,) = parse_containerd.port_entries((PublishedPort(host_port=80, container_port=80),))
    c = ContainerdFacts(rootless=True, running=kit, containers=(entry,))
    v = kb.containerd_container_verdict(c, entry)
    assert v.preserved is kept
    assert v.reason.startswith(kb.containerd_verdict(c).reason)
    assert "nerdctl not installed" in v.reason


def test_ps_forms_recognised_one_line_list_and_lines() -> None:
    from rootless_doctor.offline import recognise

    lines = PS.read_text().splitlines()
    assert recognise(lines[0]) == "nerdctl-ps"  # one container: a lone JSON object
    assert recognise("[" + ",".join(lines) + "]") == "nerdctl-ps"
    assert recognise("\n".join(lines)) == "nerdctl-ps"
    assert recognise(INSPECT.read_text()) == "nerdctl-inspect"
    bad = parse_containerd.nerdctl_ps(lines[0].replace("8080", "99999"))
    assert bad[0].ports == ()  # not a port number: not read as one
