"""docker-mailserver's `env_file` on the real stack: a live `check --compose`, as the owner.

The compose file and its mailserver.env are docker-mailserver's own (tests/data/compose/
dms-upstream-c9b015d) with the lines the issue names changed. Rootless dockerd (builtin port
driver) really loses the client address (the peer server sees 172.17.0.1), so PERMIT_DOCKER=network
in the env file is an open relay: check must say fail, not "ok" from `environment:` alone.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import rdtool
import stack
from conftest import DATA

pytestmark = pytest.mark.realstack

DMS = DATA / "compose/dms-upstream-c9b015d"


def _dms_for(u: stack.User, tmp: Path, compose_edit: tuple[str, str] | None, **env: str) -> Path:
    d = tmp / "dms"
    shutil.copytree(DMS, d)
    text = (d / "mailserver.env").read_text()
    for key, value in env.items():
        old = next(ln for ln in text.splitlines() if ln.startswith(f"{key}="))
        text = text.replace(old + "\n", f"{key}={value}\n", 1)
    (d / "mailserver.env").write_text(text)
    if compose_edit:
        c = d / "compose.yaml"
        c.write_text(c.read_text().replace(*compose_edit))
    for p in (tmp, d, *d.iterdir()):
        shutil.chown(p, u.uid, u.gid)
    return d / "compose.yaml"


def ids(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in report["checks"]}


def test_env_file_permit_docker_on_rootless_dockerd(u: stack.User, ns: stack.Netns) -> None:
    tmp = stack._user_tmpdir(u, "rd-envfile-")
    try:
        compose = _dms_for(u, tmp, None, PERMIT_DOCKER="network", ENABLE_FAIL2BAN="1")
        with stack.rootless_dockerd(u, port_driver="builtin") as d:
            port = stack.free_port()
            d.run(port)
            seen = stack.ask_from_netns(ns, ns.host_addr, port)
            report = rdtool.check_json(u, "--compose", str(compose))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert seen == "172.17.0.1"  # lost on the wire
    c = ids(report)
    assert c["COMPOSE-PERMIT-DOCKER"]["status"] == "fail"
    assert "mailserver.env" in c["COMPOSE-PERMIT-DOCKER"]["detail"]
    assert c["COMPOSE-NET-ADMIN"]["status"] == "fail"
    stack.podman_reset(u)
    assert stack.leftovers(u) == []


def test_env_file_network_interface_with_podman_slirp4netns(u: stack.User) -> None:
    tmp = stack._user_tmpdir(u, "rd-envfile-")
    try:
        compose = _dms_for(
            u,
            tmp,
            (
                "    env_file: mailserver.env\n",
                "    env_file: mailserver.env\n"
                '    network_mode: "slirp4netns:port_handler=slirp4netns"\n',
            ),
            NETWORK_INTERFACE="eth0",
        )
        report = rdtool.check_json(u, "--compose", str(compose))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ni = ids(report)["COMPOSE-NETWORK-INTERFACE"]
    assert ni["status"] == "fail"
    assert "tap0" in ni["remedy"] and "mailserver.env" in ni["detail"]
    stack.podman_reset(u)
    assert stack.leftovers(u) == []
