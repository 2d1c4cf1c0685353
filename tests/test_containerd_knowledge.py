"""knowledge.py's containerd (nerdctl) decisions, on facts built in code."""

from __future__ import annotations

from pathlib import Path

import pytest

from rootless_doctor import knowledge as kb
from rootless_doctor.model import ContainerdFacts, RootlessKitFacts, Tool
from rootless_doctor.parse_containerd import nerdctl_info

SLIRP = {"slirp4netns": Tool(name="slirp4netns", path="/usr/bin/slirp4netns", version="1.2.0")}
NO_SLIRP = Tool(name="slirp4netns")  # looked for, not installed


def running(version: str | None, port: str, net: str = "slirp4netns") -> ContainerdFacts:
    kit = RootlessKitFacts(version=version, network_driver=net, port_driver=port, source="x")
    return ContainerdFacts(rootless=True, running=kit)


@pytest.mark.parametrize(
    ("version", "port", "kept"),
    [
        ("1.1.0", "builtin", False),  # 127.0.0.1 (measured here: tests/test_containerd_realstack)
        ("2.3.1", "builtin", False),
        ("3.0.0", "builtin", True),  # TCP, no userland proxy in containerd
        ("3.1.0", "builtin", True),
        (None, "builtin", None),
        ("1.1.0", "slirp4netns", True),
        ("3.1.0", "gvisor-tap-vsock", False),
    ],
)
def test_verdict_by_rootlesskit_version_and_port_driver(
    version: str | None, port: str, kept: bool | None
) -> None:
    v = kb.containerd_verdict(running(version, port), SLIRP)
    assert v.preserved is kept
    if kept is False:
        assert kb.FIX_CONTAINERD in v.fix
    if kept and port == "builtin":
        assert "TCP" in v.reason and "userland proxy" in v.reason


def test_rootful_containerd_keeps_source_ips() -> None:
    assert kb.containerd_verdict(ContainerdFacts(rootless=False)).preserved is True


def test_flags_come_last_and_their_last_value_wins() -> None:
    c = ContainerdFacts(
        configured_env={
            "CONTAINERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER": "slirp4netns",
            "CONTAINERD_ROOTLESS_ROOTLESSKIT_FLAGS": "--port-driver=slirp4netns "
            "--port-driver builtin",
        }
    )
    assert kb.containerd_configured(c) == (None, "builtin")
    assert kb.flag_drivers("--net=pasta --mtu=65520") == ("pasta", None)


@pytest.mark.parametrize(
    ("tools", "net"),
    [
        (SLIRP, "slirp4netns"),
        ({"slirp4netns": NO_SLIRP, "vpnkit": Tool(name="vpnkit", path="/v")}, "vpnkit"),
        ({"slirp4netns": NO_SLIRP, "vpnkit": Tool(name="vpnkit")}, "gvisor-tap-vsock"),
    ],
)  # fmt: skip
def test_launcher_defaults_never_pick_pasta(tools: dict[str, Tool], net: str) -> None:
    assert kb.containerd_default_drivers(tools) == (net, "builtin")


def test_variables_the_launcher_never_reads() -> None:
    names = [
        "CONTAINERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER",
        "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER",
        "CONTAINERD_ROOTLESS_ROOTLESSKIT_PORTDRIVER",
        "PATH",
    ]
    assert kb.containerd_ignored_vars(names) == [
        "CONTAINERD_ROOTLESS_ROOTLESSKIT_PORTDRIVER",
        "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER",
    ]


def test_fix_options_need_nothing_on_rootlesskit_3_builtin() -> None:
    opts = kb.containerd_fix_options(running("3.1.0", "builtin"), SLIRP)
    current = [o for o in opts if o.current]
    assert [o.key for o in current] == ["builtin-transparent"]
    assert all(o.userland_proxy is None for o in opts)
    old = kb.containerd_fix_options(running("1.1.0", "builtin"), SLIRP)
    assert [o.key for o in old if o.available] == ["slirp4netns"]


def test_rootlesskit_ports_api_answer_is_read() -> None:
    # rootlesskit pkg/api/openapi.yaml PortStatus (the shape rootlessctl list-ports prints from)
    from rootless_doctor.parse_containerd import rootlesskit_ports

    body = (
        '[{"id":1,"spec":{"proto":"tcp","parentIP":"0.0.0.0","parentPort":8080,"childPort":8080}}]'
    )
    (p,) = rootlesskit_ports(body)
    assert (p.host_port, p.container_port, p.protocol, p.host_ip) == (8080, 8080, "tcp", "0.0.0.0")


def test_nerdctl_info_rootless_only_from_the_security_options_block() -> None:
    data = Path(__file__).parent / "data" / "nerdctl"
    text = (data / "nerdctl-system-info-rootful-containerd-1.7.2-sudo.txt").read_text()
    assert nerdctl_info(text).rootless is False
    # "rootless" later, outside Security Options (a host name, a warning list): still rootful
    later = text.replace(" Name: demo\n", " Name: demo\n Labels:\n  rootless\n")
    assert later != text
    assert nerdctl_info(later).rootless is False
    named = text.replace("  cgroupns\n", "  cgroupns\n  rootless\n")
    assert nerdctl_info(named).rootless is True
