"""`fix containerd` plans (nerdctl's rootless containerd drop-in): whole files after the edit, on
real drop-ins (tests/data/nerdctl), and a second run that changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import DATA

from rootless_doctor import knowledge as kb
from rootless_doctor.fixes import containerd
from rootless_doctor.model import ContainerdFacts, DoctorError, HostFacts, RootlessKitFacts, Tool

REPO = Path(__file__).resolve().parent.parent
SLIRP = {"slirp4netns": Tool(name="slirp4netns", path="/usr/bin/slirp4netns", version="1.2.0")}
CFG = Path("/home/u/.config")


def facts(version: str, port: str = "builtin", **kw: object) -> HostFacts:
    kit = RootlessKitFacts(version=version, network_driver="slirp4netns", port_driver=port)
    return HostFacts(containerd=ContainerdFacts(rootless=True, running=kit, **kw), tools=SLIRP)  # type: ignore[arg-type]


def test_rootlesskit_1_gets_the_reference_dropin_and_a_second_run_is_a_no_op() -> None:
    choice = containerd.choose(facts("1.1.0"), None)
    assert choice.option.key == "slirp4netns"
    fp = containerd.plan(choice.option, config_dir=CFG, dropin_text=None)
    assert fp is not None and fp.before is None
    assert fp.path == CFG / "systemd/user/containerd.service.d/override.conf"
    assert fp.after == (REPO / "systemd/containerd-override-slirp4netns.conf").read_text()
    again = containerd.plan(choice.option, config_dir=CFG, dropin_text=fp.after)
    assert again is not None and not again.changed
    assert "systemctl --user restart containerd" in fp.next_steps


def test_an_existing_dropin_keeps_its_other_settings() -> None:
    text = (DATA / "nerdctl/nerdctl-docs-rootless-md-override-detach-netns-false.conf").read_text()
    choice = containerd.choose(facts("2.0.2"), "slirp4netns")
    fp = containerd.plan(choice.option, config_dir=CFG, dropin_text=text)
    assert fp is not None
    assert fp.after == text + (
        'Environment="CONTAINERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns"\n'
        'Environment="CONTAINERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns"\n'
    )


def test_a_port_driver_in_flags_would_win_so_it_goes() -> None:
    text = (DATA / "nerdctl/rootlesscontaine-rs-override-port-driver-slirp4netns.conf").read_text()
    flags = "--port-driver=builtin --mtu=1500"
    choice = containerd.choose(facts("1.1.0"), None)
    fp = containerd.plan(choice.option, config_dir=CFG, dropin_text=text, flags=flags)
    assert fp is not None
    assert "CONTAINERD_ROOTLESS_ROOTLESSKIT_FLAGS=--mtu=1500" in fp.after.replace('"', "")
    assert "--port-driver=builtin" not in fp.after


def test_rootlesskit_3_builtin_needs_nothing() -> None:
    f = facts("3.1.0")
    assert f.containerd is not None
    assert kb.containerd_verdict(f.containerd, SLIRP).preserved is True
    choice = containerd.choose(f, "builtin")
    assert containerd.plan(choice.option, config_dir=CFG, dropin_text=None) is None


def test_no_containerd_or_rootful_is_one_line() -> None:
    with pytest.raises(DoctorError, match="no rootless containerd"):
        containerd.choose(HostFacts(), None)
    with pytest.raises(DoctorError, match="rootful"):
        containerd.choose(HostFacts(containerd=ContainerdFacts(rootless=False)), None)
    with pytest.raises(DoctorError, match="unknown"):
        containerd.choose(facts("1.1.0"), "vpnkit")
