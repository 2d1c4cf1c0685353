"""containers.conf ``[containers] netns`` picks the network of a plain ``podman run -p``
(containers/podman pkg/specgen namespaces.go ParseNetworkFlag; only "private"/"default" mean the
rootless network command): the engine verdict and report follow it. Reported by the probespeed
helper: with ``netns = "bridge"`` check said "kept" (pasta) while the probe saw 10.89.0.x.
Real traffic: tests/test_podman_netns_realstack.py."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import fromcheck
import pytest
from conftest import DATA

from rootless_doctor import knowledge as kb
from rootless_doctor import parse
from rootless_doctor.checks import all_checks, podman_report
from rootless_doctor.checks.quadlet import quadlet_check
from rootless_doctor.fixes import podman as fix_podman
from rootless_doctor.model import HostFacts, PodmanFacts, PublishedPort, QuadletFacts


def podman(version: str, **conf: str) -> PodmanFacts:
    cmd = "pasta" if version.startswith(("5", "6")) else None
    return PodmanFacts(
        version=version,
        rootless=True,
        rootless_network_cmd=cmd,
        conf={k.replace("__", "."): v for k, v in conf.items()},
    )


@pytest.mark.parametrize("version", ["4.3.1", "5.4.2", "5.8.6"])
def test_netns_bridge_loses_the_client_through_rootlessport(version: str) -> None:
    p = podman(version, containers__netns="bridge")
    v = kb.podman_engine_verdict(p)
    assert v.preserved is False and v.seen == "10.88.x.y"
    assert 'netns = "bridge"' in v.reason and "rootlessport" in v.reason
    assert 'sets [containers] netns = "private"' in v.fix and kb.FIX_PODMAN in v.fix
    r = podman_report(p)
    assert (r.network_driver, r.port_driver, r.source_ip_preserved) == (
        "bridge",
        "rootlessport",
        False,
    )


def test_netns_bridge_on_a_default_network_of_ones_own() -> None:
    p = podman("5.8.6", containers__netns="bridge", network__default_network="rd-net")
    assert kb.podman_engine_verdict(p).seen == "10.89.x.y"


@pytest.mark.parametrize(
    ("netns", "preserved", "driver"),
    [
        ("private", True, "pasta"),  # the default: the rootless network command
        ("default", True, "pasta"),
        ("host", True, "host"),
        ("none", None, "none"),
        ("pasta", True, "pasta"),
        ("slirp4netns", False, "slirp4netns"),
        # Podman drops the options of netns (measured: 10.0.2.100 on Podman 4.3.1)
        ("slirp4netns:port_handler=slirp4netns", False, "slirp4netns"),
        ("rd-net", False, "bridge"),  # a network name: bridge mode on default_network
        ("ns:/run/netns/x", None, "ns"),
    ],
)
def test_each_netns_value(netns: str, preserved: bool | None, driver: str) -> None:
    p = podman("5.4.2", containers__netns=netns)
    assert kb.podman_engine_verdict(p).preserved is preserved
    assert podman_report(p).network_driver == driver


def test_without_netns_nothing_changes() -> None:
    for version in ("4.3.1", "5.4.2"):
        p = podman(version)
        assert kb.podman_netns_container(p) is None
        assert "[containers] netns" not in kb.podman_engine_verdict(p).reason


def test_podman6_bridge_with_the_pasta_forwarder_keeps_the_client() -> None:
    p = podman("6.0.0", containers__netns="bridge", network__rootless_port_forwarder="pasta")
    assert kb.podman_engine_verdict(p).preserved is True


# --- which file set netns, what Podman drops of it, and `fix podman` (netnsconf) ---------------

USER_CONF = "/home/u/.config/containers/containers.conf"


def chain(version: str, *files: tuple[str, str], cmd: str | None = None) -> PodmanFacts:
    """Podman facts from containers.conf texts in load order, as host/podman.py reads them."""
    origin: dict[str, str] = {}
    conf = parse.containers_conf(files, origin)
    return PodmanFacts(
        version=version,
        rootless=True,
        rootless_network_cmd=cmd,
        conf=conf,
        conf_files=tuple(n for n, _ in files),
        conf_origin=origin,
    )


def test_the_verdict_names_the_file_that_set_netns() -> None:
    p = chain(
        "5.4.2",
        ("/etc/containers/containers.conf", '[containers]\nnetns = "host"\n'),
        (USER_CONF, '[containers]\nnetns = "bridge"\n[network]\ndefault_network = "rd-net"\n'),
        cmd="pasta",
    )
    v = kb.podman_engine_verdict(p)
    assert v.reason.startswith(f'{USER_CONF}: [containers] netns = "bridge"'), v.reason
    assert '"rd-net" network' in v.reason and v.seen == "10.89.x.y"


@pytest.mark.parametrize("version", ["4.3.1", "5.4.2"])
def test_options_of_netns_are_dropped(version: str) -> None:
    """Podman keeps only the mode of netns (GetDefaultNamespaceMode): port_handler=slirp4netns
    there does nothing (measured on 4.3.1: 10.0.2.100); in network_cmd_options it does."""
    text = '[containers]\nnetns = "slirp4netns:port_handler=slirp4netns"\n'
    v = kb.podman_engine_verdict(chain(version, (USER_CONF, text)))
    assert v.preserved is False and v.seen == kb.SEEN_ROOTLESSPORT_SLIRP, v.reason
    assert 'drops its options "port_handler=slirp4netns"' in v.reason
    kept = text + '[engine]\nnetwork_cmd_options = ["port_handler=slirp4netns"]\n'
    v = kb.podman_engine_verdict(chain(version, (USER_CONF, kept)))
    assert v.preserved is True and not v.fix, v.reason


def test_pasta_options_are_dropped_but_pasta_keeps_the_client() -> None:
    p = chain("5.8.6", (USER_CONF, '[containers]\nnetns = "pasta:--ipv4-only,-T,none"\n'))
    v = kb.podman_engine_verdict(p)
    assert v.preserved is True and "drops its options" in v.reason and not v.fix


def test_pasta_before_podman_4_4_is_a_network_name() -> None:
    """Podman 4.3 has no pasta mode: "pasta" is a network name, so bridge mode on "podman"
    (measured on this host's 4.3.1: 10.88.0.3)."""
    v = kb.podman_engine_verdict(chain("4.3.1", (USER_CONF, '[containers]\nnetns = "pasta"\n')))
    assert v.preserved is False and v.seen == "10.88.x.y", v.reason


def test_netns_read_after_the_users_file_is_named_not_overwritten(tmp_path: Path) -> None:
    override = "/tmp/rd-x/containers.conf"  # CONTAINERS_CONF_OVERRIDE, read last
    user_text = "# mine\n[engine]\nruntime = 'runc'\n"
    p = chain(
        "5.4.2",
        (USER_CONF, user_text),
        (override, '[containers]\nnetns = "bridge"\n'),
        cmd="pasta",
    )
    v = kb.podman_engine_verdict(p)
    assert v.fix.startswith(f'set [containers] netns = "private" in {override}'), v.fix
    pp = fix_podman.plan(Path(USER_CONF), user_text, p, pasta_installed=True)
    assert "netns" not in pp.plan.after  # it would not win: the note says where to change it
    assert any(n.startswith(f'{override} sets [containers] netns = "bridge"') for n in pp.notes)


SHIPPED = DATA / "containers-conf/containers.conf-common-v0.62.0-podman-5.4.0.conf"


def test_fix_podman_sets_netns_back_in_the_users_file_keeping_comments() -> None:
    text = (
        '# my settings\n[containers]\n# bridge for the lab\nnetns = "bridge"  # lab\n\n'
        '[network]\ndefault_network = "rd-net"\n'
    )
    p = chain("5.4.2", (str(SHIPPED), SHIPPED.read_text()), (USER_CONF, text), cmd="pasta")
    pp = fix_podman.plan(Path(USER_CONF), text, p, pasta_installed=True)
    assert pp.plan.after == (
        '# my settings\n[containers]\n# bridge for the lab\nnetns = "private"  # lab\n\n'
        '[network]\ndefault_network = "rd-net"\ndefault_rootless_network_cmd = "pasta"\n'
    )
    # after the fix, check says kept, and a second run changes nothing
    after = chain("5.4.2", (str(SHIPPED), SHIPPED.read_text()), (USER_CONF, pp.plan.after))
    assert kb.podman_engine_verdict(after).preserved is True
    again = fix_podman.plan(Path(USER_CONF), pp.plan.after, after, pasta_installed=True)
    assert again.plan.after == pp.plan.after


def test_fix_podman_overrides_a_system_netns_next_to_the_commented_default() -> None:
    """netns = "bridge" in /etc: the user's file (read later) gets netns = "private"; a copy of
    the shipped file gets it right under its ``#netns = "private"`` line."""
    shipped = SHIPPED.read_text()
    p = chain(
        "5.4.2",
        ("/etc/containers/containers.conf", '[containers]\nnetns = "bridge"\n'),
        (USER_CONF, shipped),
        cmd="pasta",
    )
    assert kb.podman_netns_reset(p) is not None
    pp = fix_podman.plan(Path(USER_CONF), shipped, p, pasta_installed=True)
    lines = pp.plan.after.splitlines()
    at = lines.index('#netns = "private"')
    assert lines[at + 1] == 'netns = "private"', lines[at - 2 : at + 3]
    assert pp.plan.after.replace('netns = "private"\n', "", 1).count("\n") == (
        shipped.count("\n") + 1  # + default_rootless_network_cmd
    )


@pytest.mark.parametrize("netns", ["host", "none", "pasta", "ns:/run/netns/x"])
def test_fix_podman_leaves_a_netns_that_does_not_lose_the_client(netns: str) -> None:
    p = chain("5.4.2", (USER_CONF, f'[containers]\nnetns = "{netns}"\n'), cmd="pasta")
    assert kb.podman_netns_reset(p) is None
    pp = fix_podman.plan(Path(USER_CONF), f'[containers]\nnetns = "{netns}"\n', p, True)
    assert f'netns = "{netns}"' in pp.plan.after


def test_check_from_a_containers_conf_capture(tmp_path: Path) -> None:
    """``check --from``: a captured podman info (Fedora 42, pasta) + a containers.conf with
    netns = "bridge": the engine verdict says lost and names that file."""
    conf = tmp_path / "containers" / "containers.conf"
    conf.parent.mkdir()
    conf.write_text('[containers]\nnetns = "bridge"\n')
    info = DATA / "podman-info/podman-5.4.2-rootless-fedora42-via-ramalama-info.json"
    _, data = fromcheck.check(info, conf)
    podman = fromcheck.engine(data, "podman")
    assert podman["source_ip_preserved"] is False, podman
    assert (podman["network_driver"], podman["port_driver"]) == ("bridge", "rootlessport")
    assert f'{conf}: [containers] netns = "bridge"' in podman["reason"], podman["reason"]
    [r] = [r for r in data["checks"] if r["id"] == "PODMAN-SOURCE-IP"]
    assert r["remedy"].startswith(f"`{kb.FIX_PODMAN}` (sets [containers] netns"), r


def test_podman6_netns_slirp4netns_fails_the_podman6_check() -> None:
    """Podman 6's ParseNetworkFlag refuses slirp4netns ("support has been removed"): a netns
    naming it stops every plain `podman run`."""
    text = '[containers]\nnetns = "slirp4netns:port_handler=slirp4netns"\n'
    p = chain("6.0.0", (USER_CONF, text), cmd="pasta")
    [r] = [r for r in all_checks(HostFacts(podman=p)) if r.id == "PODMAN6-SLIRP4NETNS"]
    assert r.status == "fail" and f"{USER_CONF}: [containers] netns" in r.detail, r
    v = kb.podman_engine_verdict(p)
    assert v.preserved is False and "will not start" in v.reason and "netns" in v.fix
    p5 = chain("5.4.2", (USER_CONF, '[containers]\nnetns = "slirp4netns"\n'), cmd="pasta")
    [r5] = [r for r in all_checks(HostFacts(podman=p5)) if r.id == "PODMAN6-SLIRP4NETNS"]
    assert r5.status == "ok" and "Podman 6 removes it" in r5.detail, r5


def test_quadlet_without_network_follows_netns() -> None:
    """Quadlet passes no --network without Network= (pkg/systemd/quadlet addNetworks), so
    netns decides; a unit with Network= does not care."""
    p = chain("5.4.2", (USER_CONF, '[containers]\nnetns = "bridge"\n'), cmd="pasta")
    plain = QuadletFacts(
        name="mail.container", ports=(PublishedPort(host_port=25, container_port=25),)
    )
    r = quadlet_check(plain, p)
    assert r.status == "fail" and f'{USER_CONF}: [containers] netns = "bridge"' in r.detail, r
    assert kb.FIX_PODMAN in r.remedy and "Network=pasta" in r.remedy, r.remedy
    assert quadlet_check(replace(plain, network="pasta"), p).status == "ok"
    assert quadlet_check(plain, chain("5.4.2", cmd="pasta")).status == "ok"


def test_an_override_without_a_users_file_is_named_by_check_and_fix_alike() -> None:
    override = "/tmp/rd-x/containers.conf"  # CONTAINERS_CONF_OVERRIDE; no ~/.config file yet
    p = chain("5.4.2", (override, '[containers]\nnetns = "bridge"\n'), cmd="pasta")
    assert kb.podman_engine_verdict(p).fix.startswith(
        f'set [containers] netns = "private" in {override}'
    )
    pp = fix_podman.plan(Path(USER_CONF), None, p, pasta_installed=True)
    assert "netns" not in pp.plan.after and pp.notes[0].startswith(f"{override} sets"), pp
