"""`rootless-doctor fix` on the real stack (issue 4, acceptance): lost → fix → restart → kept.

Everything runs as the unprivileged stack user with the Debian 12 packages (rootless dockerd 20.10
+ rootlesskit 1.1.0, podman 4.3.1); the tool under test is the one ``rdtool`` runs (``RD_TOOL`` in
CI). PID 1 is not systemd, so "restart docker" means: stop the harness's dockerd and start it
again with the environment systemd would give it, parsed from the user's unit and its drop-ins by
the package's own ``parse.unit_environment`` (unit first, drop-ins sorted by name, later
assignments win) -- the same reader ``check`` uses to say what is configured. Compose services are
recreated with podman-compose (PyPI; Podman 4.3.1 has no ``podman compose``). Addresses: only the
test veth (host 10.200.0.1, client 10.200.0.2 in the test's netns); the addresses a server inside
saw are in /work/shared/real-stack.md.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import shlex
import shutil
import site
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import rdtool
import stack

from rootless_doctor import parse

pytestmark = pytest.mark.realstack

REPO = Path(__file__).resolve().parent.parent
UNIT_DIR = ".config/systemd/user"
UNIT = f"{UNIT_DIR}/docker.service"
DROPIN = f"{UNIT_DIR}/docker.service.d/override.conf"
CONTAINERS_CONF = ".config/containers/containers.conf"
RESTART = "systemctl --user daemon-reload && systemctl --user restart docker"
LAUNCHER = f"{stack.DOCKER_CONTRIB}/dockerd-rootless.sh"

# What `dockerd-rootless-setuptool.sh install` (docker.io 20.10.24) writes, its heredoc expanded as
# on Debian: BIN is the directory of dockerd-rootless.sh found on PATH (the contrib dir), PATH the
# user's (cf. tests/data/systemd/...-v20.10.24-setuptool.service, rendered there with /usr/bin).
USER_UNIT = f"""\
[Unit]
Description=Docker Application Container Engine (Rootless)
Documentation=https://docs.docker.com/go/rootless/

[Service]
Environment=PATH={stack.DOCKER_CONTRIB}:/sbin:/usr/sbin:{stack.USER_PATH}
ExecStart={LAUNCHER} \n\
ExecReload=/bin/kill -s HUP $MAINPID
TimeoutSec=0
RestartSec=2
Restart=always
StartLimitBurst=3
StartLimitInterval=60s
LimitNOFILE=infinity
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
Delegate=yes
Type=simple
KillMode=mixed

[Install]
WantedBy=default.target
"""


@pytest.fixture
def home(u: stack.User) -> Iterator[Path]:
    """The user's home; afterwards the unit dirs and the tool's state dir the test (or the tool
    it ran) added are gone and containers.conf -- the harness needs runtime=runc there -- is
    byte-for-byte back. (Engine state -- images, the harness's rootfs -- is not touched here.)

    A safety net for a failing test only: each test asserts that ``fix --undo`` restored the
    files itself before this runs.
    """
    h = Path(u.home)
    state = h / ".local/state/rootless-doctor"
    assert not state.exists(), f"{state}: left by an interrupted run (fix --undo, then remove it)"
    units = [f"{UNIT_DIR}/docker.service", f"{UNIT_DIR}/docker.service.d"]
    left = [str(h / p) for p in units if (h / p).exists()]
    assert not left, f"{', '.join(left)}: left by an interrupted run; remove them"
    added = [".config/systemd", UNIT_DIR, *units, ".local/state", ".local/state/rootless-doctor"]
    absent = [h / p for p in added if not (h / p).exists()]
    conf = h / CONTAINERS_CONF
    conf_bytes, conf_stat = conf.read_bytes(), conf.stat()
    try:
        yield h
    finally:
        for p in absent:
            shutil.rmtree(p, ignore_errors=True)
        if conf.read_bytes() != conf_bytes:
            conf.write_bytes(conf_bytes)
            os.chown(conf, conf_stat.st_uid, conf_stat.st_gid)
            os.chmod(conf, conf_stat.st_mode)


def as_user_file(u: stack.User, path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as ``u`` would (file and new parent directories owned by u)."""
    cp = stack.run_as(u, ["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat >"$1"', "sh", str(path)],
                      input=text)  # fmt: skip
    assert cp.returncode == 0, cp.stderr


def engine(report: dict[str, Any], name: str) -> dict[str, Any]:
    found = [e for e in report["engines"] if e["engine"] == name]
    assert len(found) == 1, report["engines"]
    return found[0]


def result(report: dict[str, Any], check_id: str) -> dict[str, Any]:
    found = [c for c in report["checks"] if c["id"] == check_id]
    assert len(found) == 1, [c["id"] for c in report["checks"]]
    return found[0]


def tool_ok(u: stack.User, *args: str) -> str:
    cp = rdtool.run(u, *args)
    assert cp.returncode == 0, f"rootless-doctor {' '.join(args)}: {cp.stdout}{cp.stderr}"
    return cp.stdout


# --------------------------------------------------------------------------------------------
# Docker


def unit_files(u: stack.User) -> list[tuple[str, str]]:
    """The user's docker.service and its drop-ins in systemd's order, as (path, text)."""
    d = Path(u.home, UNIT_DIR)
    files = [d / "docker.service", *sorted((d / "docker.service.d").glob("*.conf"))]
    return [(str(f), f.read_text()) for f in files if f.is_file()]


@contextmanager
def dockerd_as_systemd_would(u: stack.User) -> Iterator[stack.RootlessDockerd]:
    """``systemctl --user start docker`` without systemd: the unit's ExecStart (the harness's
    launcher) with the unit's + drop-ins' Environment= and nothing else about the drivers."""
    files = unit_files(u)
    assert parse.unit_exec_start(files[0][1]) == LAUNCHER
    env = parse.unit_environment(files)
    with stack.rootless_dockerd(u, port_driver=None, net=None, extra_env=env) as d:
        yield d


def test_fix_docker(u: stack.User, ns: stack.Netns, home: Path) -> None:
    unit, dropin = home / UNIT, home / DROPIN
    as_user_file(u, unit, USER_UNIT)
    port = stack.free_port()
    try:
        with dockerd_as_systemd_would(u) as d:
            d.run(port)
            # Launcher default (builtin): the server sees the docker bridge gateway.
            assert stack.ask_from_netns(ns, ns.host_addr, port) == "172.17.0.1"
            before = rdtool.check_json(u)
            docker = engine(before, "docker")
            assert (docker["port_driver"], docker["source_ip_preserved"]) == ("builtin", False)
            assert result(before, "DOCKER-SOURCE-IP")["status"] == "fail"

            out = tool_ok(u, "fix", "docker")
            assert f"wrote {dropin} (new file)" in out, out
            assert dropin.read_text() == (REPO / "systemd/override-slirp4netns.conf").read_text()
            assert (dropin.stat().st_uid, dropin.stat().st_gid) == (u.uid, u.gid)
            # This machine has no systemd user manager: the next step is the dockerd-rootless.sh
            # restart with the drop-in's settings (what dockerd_as_systemd_would does below).
            assert "no systemd user manager here" in out, out
            assert f"next: {RESTART}" not in out, out
            assert (
                "DOCKERD_ROOTLESS_ROOTLESSKIT_NET=slirp4netns "
                "DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns nohup "
            ) in out, out

            # Drift: the drop-in is written, the daemon not restarted.
            drift = rdtool.check_json(u)
            c = result(drift, "DOCKER-DRIVER-DRIFT")
            assert c["status"] == "warn", c
            assert "PORT_DRIVER=slirp4netns configured, builtin running" in c["detail"], c
            assert c["remedy"] == "`rootless-doctor fix docker --restart`", c
            assert result(drift, "DOCKER-SOURCE-IP")["status"] == "fail"
            written = dropin.read_bytes()
            out = tool_ok(u, "fix", "docker")
            assert "nothing to do" in out and dropin.read_bytes() == written, out

        # "systemctl --user restart docker"
        with dockerd_as_systemd_would(u) as d:
            assert d.env["DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER"] == "slirp4netns"
            cp = rdtool.run(u, "probe", "--engine", "docker", "--source", ns.host_addr, "--json")
            assert cp.returncode == 0, cp.stdout + cp.stderr
            probe = json.loads(cp.stdout)["probes"]
            assert len(probe) == 1, probe
            assert probe[0]["verdict"] == "preserved", probe
            assert probe[0]["observed"] == ns.host_addr == "10.200.0.1", probe
            assert probe[0]["agrees_with_check"] is True, probe

            d.run(port)
            assert stack.ask_from_netns(ns, ns.host_addr, port) == ns.client_addr == "10.200.0.2"
            after = rdtool.check_json(u)
            docker = engine(after, "docker")
            assert (docker["port_driver"], docker["source_ip_preserved"]) == ("slirp4netns", True)
            assert result(after, "DOCKER-SOURCE-IP")["status"] == "ok"
            assert result(after, "DOCKER-DRIVER-DRIFT")["status"] == "ok"

        out = tool_ok(u, "fix", "--undo")
        assert out.strip() == f"removed (the fix created it): {dropin}", out
        assert not dropin.exists()
    finally:
        unit.unlink(missing_ok=True)
        stack.podman_reset(u)  # check's `podman info` starts podman's pause process
    assert stack.leftovers(u) == []


# --------------------------------------------------------------------------------------------
# Podman: compose file, containers.conf

IMAGE = "localhost/rdrootfs"

# Shaped like docker-mailserver's compose.yaml (container_name, hostname, published ports,
# environment, volumes, restart), serving the harness's peer server from the busybox rootfs.
COMPOSE = """\
services:
  peer:
    image: {image}
    container_name: rdfix-peer
    # the peer server answers with the client address it saw
    hostname: peer.example.test
    command: ["python3", "-c", {server}, "8080"]
    ports:
      - "{port}:8080"  # like "25:25"
    environment:
      - PEER_NOTE=kept
    volumes:
      - /usr:/usr:ro
    restart: "no"
"""
MODE = "slirp4netns:port_handler=slirp4netns"


def podman_compose(u: stack.User) -> list[str]:
    """argv of podman-compose runnable by the user (installed next to the tests' python).

    Run as a module with the tests' site-packages: a venv under /root (local) cannot be
    exec'd by the user, so use Debian's python3 there, as rdtool does.
    """
    if importlib.util.find_spec("podman_compose") is None:
        hint = "podman-compose is not installed: pip install podman-compose"
        if os.environ.get("CI") == "true":
            pytest.fail(f"real stack required in CI: {hint}")
        pytest.skip(hint)
    py = sys.executable
    if stack.run_as(u, [py, "-c", "pass"]).returncode != 0:
        py = "/usr/bin/python3"
    return ["env", f"PYTHONPATH={':'.join(site.getsitepackages())}", py, "-m", "podman_compose"]


@contextmanager
def local_image(u: stack.User) -> Iterator[str]:
    """The busybox rootfs as a podman image (no registry); removed afterwards if imported here."""
    had = stack.podman(u, "image", "exists", IMAGE).returncode == 0
    if not had:
        cp = stack.run_as(u, ["sh", "-c", f'tar -C "$1" -cf - . | podman import - {IMAGE}', "sh",
                              stack.rootfs(u)])  # fmt: skip
        assert cp.returncode == 0, cp.stderr
    try:
        yield IMAGE
    finally:
        if not had:
            stack.podman(u, "rmi", "-f", IMAGE)


def test_fix_compose(u: stack.User, ns: stack.Netns, home: Path) -> None:
    compose = podman_compose(u)
    tmp = stack._user_tmpdir(u, "rd-compose-")
    f = tmp / "compose.yaml"
    port = stack.free_port()
    original = COMPOSE.format(image=IMAGE, server=json.dumps(stack.PEER_SERVER), port=port)
    as_user_file(u, f, original)

    try:
        with local_image(u):
            before = rdtool.check_json(u, "--compose", str(f))
            c = result(before, "COMPOSE-NETWORK-MODE")
            assert c["status"] == "fail" and c["remedy"], c

            cp = stack.run_as(u, [*compose, "-f", str(f), "up", "-d"])
            assert cp.returncode == 0, cp.stdout + cp.stderr
            seen = ipaddress.ip_address(stack.ask_from_netns(ns, ns.host_addr, port))
            # The project network is a podman bridge (10.89.x) behind rootlessport: lost.
            assert seen in ipaddress.ip_network("10.89.0.0/16"), seen
            # The container's remedy is the fix of its compose file and service (podman-compose
            # labels its containers with both), not a `podman run` to retype.
            live = rdtool.check_json(u)
            [peer] = [c for c in live["checks"]
                      if c["id"] == "CONTAINER-SOURCE-IP" and c["status"] == "fail"]  # fmt: skip
            assert peer["commands"] == [
                f"rootless-doctor fix compose {f} --service peer --restart"
            ], peer

            out = tool_ok(u, "fix", "compose", str(f))
            fixed = original.replace(
                "    image: localhost/rdrootfs\n",
                f'    image: localhost/rdrootfs\n    network_mode: "{MODE}"\n',
            )
            assert f.read_text() == fixed, f.read_text()
            # Podman 4.3 has no `podman compose`: the next step names podman-compose. Run it.
            step = f"podman-compose -f {f} up -d --force-recreate peer"
            assert f"next: {step}\n" in out, out
            out = tool_ok(u, "fix", "compose", str(f))
            assert "nothing to do" in out and f.read_text() == fixed, out

            cp = stack.run_as(u, [*compose, *shlex.split(step)[1:]])
            assert cp.returncode == 0, cp.stdout + cp.stderr
            assert stack.ask_from_netns(ns, ns.host_addr, port) == ns.client_addr == "10.200.0.2"
            after = rdtool.check_json(u, "--compose", str(f))
            assert result(after, "COMPOSE-NETWORK-MODE")["status"] == "ok"
            # check also reads the recreated container (podman inspect shows only "slirp4netns").
            peer = [c for c in engine(after, "podman")["containers"] if c["name"] == "rdfix-peer"]
            assert [(c["port_handler"], c["source_ip_preserved"]) for c in peer] == [
                ("slirp4netns", True)
            ], peer

            out = tool_ok(u, "fix", "undo", str(f))
            assert f.read_text() == original, out
            cp = stack.run_as(u, [*compose, "-f", str(f), "down", "-t", "0"])
            assert cp.returncode == 0, cp.stdout + cp.stderr
    finally:
        stack.podman_reset(u)
        shutil.rmtree(tmp, ignore_errors=True)
    assert stack.leftovers(u) == []


def test_fix_podman(u: stack.User, ns: stack.Netns, home: Path) -> None:
    conf = home / CONTAINERS_CONF
    original, st = conf.read_bytes(), conf.stat()
    try:
        with stack.podman_container(u, network=None, name="rdfix-plain") as c:
            # Podman 4.3.1's default for `run -p`: slirp4netns + rootlessport.
            assert stack.ask_from_netns(ns, ns.host_addr, c.host_port) == "10.0.2.100"

        tool_ok(u, "fix", "podman")
        after = conf.read_text()
        assert after == original.decode() + 'network_cmd_options = ["port_handler=slirp4netns"]\n'
        assert (conf.stat().st_uid, conf.stat().st_mode) == (st.st_uid, st.st_mode)
        out = tool_ok(u, "fix", "podman")
        assert "nothing to do" in out and conf.read_text() == after, out

        with stack.podman_container(u, network=None, name="rdfix-plain") as c:
            assert stack.ask_from_netns(ns, ns.host_addr, c.host_port) == ns.client_addr

        out = tool_ok(u, "fix", "--undo")
        assert out.strip() == f"restored: {conf}", out
        assert conf.read_bytes() == original
        assert (conf.stat().st_uid, conf.stat().st_mode) == (st.st_uid, st.st_mode)
        with stack.podman_container(u, network=None, name="rdfix-plain") as c:
            assert stack.ask_from_netns(ns, ns.host_addr, c.host_port) == "10.0.2.100"
    finally:
        stack.podman_reset(u)
    assert stack.leftovers(u) == []
