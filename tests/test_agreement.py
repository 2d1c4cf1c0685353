"""`check` and `fix` answer the same question the same way (issue 9: one owner per decision).

For every Podman host the suite knows (each captured ``podman info`` in tests/data, plus the
versions the unit tests build: 4.3.1, 4.9.3 — whose ``podman info`` does not report pasta — 5.x
and 6.0), with and without pasta on PATH, and for each compose shape that loses source IPs, the
COMPOSE-NETWORK-MODE remedy names the network_mode that ``fix compose`` writes, and a
NETWORK_INTERFACE it names is the one the fix sets.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import DATA
from typer.testing import CliRunner

from rootless_doctor import apply, cli_fix, parse
from rootless_doctor import knowledge as kb
from rootless_doctor.checks import all_checks
from rootless_doctor.checks import compose as check_compose
from rootless_doctor.model import (
    ContainerFacts,
    DoctorError,
    HostFacts,
    HostPaths,
    PodmanFacts,
    PublishedPort,
    Tool,
)

PASTA = Tool(name="pasta", path="/usr/bin/pasta", version="2024_05_23")


def _captured() -> list[tuple[str, PodmanFacts]]:
    out = []
    for f in sorted((DATA / "podman-info").iterdir()):
        if "NOT-VALID" in f.name:
            continue
        p = parse.podman_info(f.read_text())
        if p.rootless:
            out.append((f.name, p))
    return out


HOSTS = [
    *_captured(),
    *(
        (f"built {v}", PodmanFacts(cli="/usr/bin/podman", version=v, rootless=True))
        for v in ("4.3.1", "4.9.3", "5.4.2", "6.0.0")
    ),
]

# (name, compose text): each loses source IPs on some Podman; `networks:` is what the fix asks
# the user to remove first, so the fix runs on the text without it.
SHAPES = {
    "slirp4netns joining networks": (
        "services:\n  mail:\n    image: ghcr.io/docker-mailserver/docker-mailserver:15\n"
        "    network_mode: slirp4netns\n    networks: [front]\n    ports: ['25:25']\n"
        "networks:\n  front: {}\n"
    ),
    "slirp4netns with the rootlesskit handler": (
        "services:\n  mail:\n    image: ghcr.io/docker-mailserver/docker-mailserver:15\n"
        "    network_mode: slirp4netns\n    ports: ['25:25']\n"
    ),
    "project network": (
        "services:\n  mail:\n    image: ghcr.io/docker-mailserver/docker-mailserver:15\n"
        "    ports: ['25:25']\n"
    ),
}

_NETWORKS = re.compile(r"^    networks: .*\n|^networks:\n(  .*\n)*", re.M)
_REMEDY_MODE = re.compile(r"network_mode ([^\s,;)]+)")
_REMEDY_IFACE = re.compile(r"NETWORK_INTERFACE=([^\s,;)]+)")


def _fake_owner(home: Path, monkeypatch: pytest.MonkeyPatch, facts: HostFacts) -> None:
    """`fix` runs for user 4242 with ``home`` and these facts."""
    o = apply.Owner(name="t", uid=4242, gid=4242, home=home, via_sudo=False)
    monkeypatch.setattr(cli_fix, "owner", lambda: o)
    monkeypatch.setattr(cli_fix, "host_paths", lambda _o: HostPaths(home=o.home, uid=o.uid))
    monkeypatch.setattr(cli_fix, "gather_facts", lambda _p: facts)


def _fix(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    facts: HostFacts,
    text: str,
    what: str = "compose",
    name: str = "compose.yaml",
) -> str:
    """``fix compose|quadlet --dry-run`` through the CLI (its own facts → its own decisions)."""
    _fake_owner(tmp_path / "home", monkeypatch, facts)
    f = tmp_path / name
    f.write_text(text)
    extra = ["--engine", "podman"] if what == "compose" else []
    r = CliRunner().invoke(cli_fix.fix_app, [what, str(f), "--dry-run", *extra])
    if isinstance(r.exception, DoctorError):
        raise r.exception
    assert r.exit_code == 0, r.output
    return r.output


def _named_mode(remedy: str) -> str:
    """The network mode a remedy tells the user to get."""
    m = _REMEDY_MODE.search(remedy)
    if m:
        return m.group(1)
    # Podman 6 removed slirp4netns: `podman system migrate` moves the container to pasta
    assert kb.PODMAN_MIGRATE in remedy, f"remedy names no network_mode: {remedy!r}"
    return "pasta"


@pytest.mark.parametrize("pasta", [False, True], ids=["no-pasta", "pasta-on-PATH"])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("host", HOSTS, ids=[h[0] for h in HOSTS])
def test_check_remedy_and_fix_plan_agree(
    host: tuple[str, PodmanFacts],
    shape: str,
    pasta: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, podman = host
    text = SHAPES[shape]
    facts = HostFacts(podman=podman, tools={"pasta": PASTA} if pasta else {})
    checked = replace_compose(facts, text)
    [res] = [r for r in check_compose.checks(checked) if r.id == "COMPOSE-NETWORK-MODE"]
    if res.status == "ok":
        return  # nothing to fix on this host: the fix has nothing to agree with
    named = _named_mode(res.remedy)
    out = _fix(tmp_path, monkeypatch, facts, _NETWORKS.sub("", text))
    written = re.search(r"^\+\s+network_mode: \"?([^\"\n]+)", out, re.M)
    assert written, out
    assert written.group(1) == named, (res.remedy, out)
    iface = _REMEDY_IFACE.search(res.remedy)
    if iface:  # the remedy names the interface: the fix sets that one
        set_iface = re.search(r"^\+\s+.*NETWORK_INTERFACE[=:] ?\"?([^\"\n]+)", out, re.M)
        assert set_iface and set_iface.group(1) == iface.group(1), (res.remedy, out)


def replace_compose(facts: HostFacts, text: str) -> HostFacts:
    return replace(facts, compose=parse.compose(text, "compose.yaml"))


def test_the_reported_disagreement() -> None:
    """Podman 4.9, pasta on PATH but not in `podman info`, slirp4netns joining networks: the
    remedy says pasta (as `fix compose` writes), not slirp4netns:port_handler=slirp4netns."""
    facts = replace_compose(
        HostFacts(podman=PodmanFacts(version="4.9.3", rootless=True), tools={"pasta": PASTA}),
        SHAPES["slirp4netns joining networks"],
    )
    [res] = [r for r in check_compose.checks(facts) if r.id == "COMPOSE-NETWORK-MODE"]
    assert "network_mode pasta" in res.remedy and "port_handler" not in res.remedy


QUADLET = (
    "[Container]\nImage=ghcr.io/docker-mailserver/docker-mailserver:15\n"
    "Network={mode}\nPublishPort=25:25\n\n[Install]\nWantedBy=default.target\n"
)


@pytest.mark.parametrize("pasta", [False, True], ids=["no-pasta", "pasta-on-PATH"])
@pytest.mark.parametrize("mode", ["slirp4netns", "bridge"])
@pytest.mark.parametrize("host", HOSTS, ids=[h[0] for h in HOSTS])
def test_container_remedy_and_quadlet_fix_agree(
    host: tuple[str, PodmanFacts],
    mode: str,
    pasta: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A running container that loses source IPs: CONTAINER-SOURCE-IP names the mode that
    ``fix quadlet`` writes for the same container as a Quadlet unit."""
    _, podman = host
    c = ContainerFacts(
        engine="podman",
        name="mail",
        network_mode=mode,
        ports=(PublishedPort(host_port=25, container_port=25),),
        env={"PERMIT_DOCKER": "none"},
    )
    podman = replace(podman, containers=(c,))
    facts = HostFacts(podman=podman, tools={"pasta": PASTA} if pasta else {})
    [res] = [r for r in all_checks(facts) if r.id == "CONTAINER-SOURCE-IP"]
    if res.status == "ok":
        return
    named = _named_mode(res.remedy)
    unit_mode = "slirp4netns" if mode == "slirp4netns" else "bridge"
    unit = QUADLET.format(mode=unit_mode)
    if kb.quadlet_available(podman.version) is False:
        # Podman < 4.4 has no Quadlet: the remedy does not offer it, and the fix refuses.
        assert kb.FIX_QUADLET not in res.remedy, res.remedy
        with pytest.raises(DoctorError, match="has no Quadlet"):
            _fix(tmp_path, monkeypatch, facts, unit, "quadlet", "mail.container")
        return
    out = _fix(tmp_path, monkeypatch, facts, unit, "quadlet", "mail.container")
    written = re.search(r"^\+Network=(\S+)", out, re.M)
    assert written, out
    assert written.group(1) == named, (res.remedy, out)
    iface = _REMEDY_IFACE.search(res.remedy)
    if iface:
        set_iface = re.search(r"^\+.*NETWORK_INTERFACE=([^\s\"]+)", out, re.M)
        assert set_iface and set_iface.group(1) == iface.group(1), (res.remedy, out)


# containers.conf [containers] netns picks a plain `podman run -p`'s network before anything
# `fix podman` writes: PODMAN-SOURCE-IP's remedy and the fix's plan make the same choice about it.
NETNS = ["bridge", "rd-net", "slirp4netns", "slirp4netns:port_handler=slirp4netns", "pasta", "host"]
_SET_NETNS = re.compile(r'^\+netns = "private"$', re.M)


@pytest.mark.parametrize("where", ["etc", "user", "override"])
@pytest.mark.parametrize("netns", NETNS)
@pytest.mark.parametrize("host", HOSTS, ids=[h[0] for h in HOSTS])
def test_podman_remedy_and_fix_podman_agree_on_netns(
    host: tuple[str, PodmanFacts],
    netns: str,
    where: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, podman = host
    home = tmp_path / "home"
    user_conf = HostPaths(home=home, uid=4242).config_dir / "containers/containers.conf"
    user_conf.parent.mkdir(parents=True)
    text = f'[containers]\nnetns = "{netns}"\n'
    origin = {
        "etc": "/etc/containers/containers.conf",
        "user": str(user_conf),
        "override": str(tmp_path / "override/containers.conf"),  # CONTAINERS_CONF_OVERRIDE
    }[where]
    user_conf.write_text(text if where == "user" else "[engine]\n")
    files = [(str(user_conf), user_conf.read_text())]  # load order: /etc, user, override
    if where == "etc":
        files.insert(0, (origin, text))
    elif where == "override":
        files.append((origin, text))
    got: dict[str, str] = {}
    conf = parse.containers_conf(files, got)
    podman = replace(podman, conf=conf, conf_files=tuple(n for n, _ in files), conf_origin=got)
    facts = HostFacts(podman=podman, tools={"pasta": PASTA})
    [res] = [r for r in all_checks(facts) if r.id == "PODMAN-SOURCE-IP"]

    _fake_owner(home, monkeypatch, facts)
    r = CliRunner().invoke(cli_fix.fix_app, ["podman", "--dry-run"])
    if isinstance(r.exception, DoctorError):
        raise r.exception
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())  # notes are wrapped to the terminal

    said = f'netns = "{netns}"' in res.detail
    assert said, res.detail  # the verdict names the key ...
    assert f"{origin}: [containers]" in " ".join(res.detail.split()), res.detail  # ... and file
    if 'netns = "private"' not in res.remedy:  # check leaves netns alone: so does the fix
        assert not _SET_NETNS.search(r.output) and f"{origin} sets" not in out, (res, out)
    elif res.remedy.startswith(f'set [containers] netns = "private" in {origin}'):
        # read after the user's file: the fix cannot override it there and says where instead
        assert not _SET_NETNS.search(r.output), r.output
        assert f'{origin} sets [containers] netns = "{netns}"' in out, out
    else:
        assert kb.FIX_PODMAN in res.remedy, res.remedy
        assert _SET_NETNS.search(r.output), (res.remedy, r.output)
