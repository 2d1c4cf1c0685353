"""Who runs a compose file: the evidence of the containers it made, before DOCKER_HOST.

m7-defects D4: with DOCKER_HOST set (as Docker's rootless docs tell users) and no Docker daemon
behind it, `fix compose` treated a service podman-compose runs as Docker's and wrote nothing.
The capture is `podman inspect` of a container podman-compose 1.0.6 made from
/tmp/rdtidy-pc/srv-mail/compose.yaml (tests/data/SOURCES.md, podman-inspect/).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import DATA
from typer.testing import CliRunner

from rootless_doctor import apply, cli_fix, knowledge, parse
from rootless_doctor.checks.compose import compose_engine
from rootless_doctor.model import DockerFacts, HostFacts, HostPaths, PodmanFacts

CAPTURE = DATA / "podman-inspect/podman-4.3.1-rootless-podman-compose-1.0.6-srv-mail.json"
WHERE = "/tmp/rdtidy-pc/srv-mail"  # the project directory when it was captured
# The compose file podman-compose ran (as in SOURCES.md).
COMPOSE = """\
services:
  mailserver:
    image: localhost/rdbusy
    command: ["/bin/busybox", "sleep", "600"]
    ports:
      - "127.0.0.1:18095:8080"
"""
# Docker as the host read it then: a CLI, DOCKER_HOST naming the rootless socket, no daemon
# answering ("Docker (version unknown) (rootless, daemon not reachable)").
DOCKER_HOST_ONLY = DockerFacts(cli="/usr/local/bin/docker", rootless=True, reachable=False)


def facts(capture_text: str, path: str) -> HostFacts:
    made = tuple(parse.podman_inspect(capture_text))
    return HostFacts(
        docker=DOCKER_HOST_ONLY,
        podman=PodmanFacts(cli="/usr/bin/podman", version="4.3.1", rootless=True, containers=made),
        compose=parse.compose(COMPOSE, path),
    )


def test_the_container_podman_compose_made_names_its_file() -> None:
    (c,) = parse.podman_inspect(CAPTURE.read_text())
    assert knowledge.compose_file_container(f"{WHERE}/compose.yaml", [c]) is c
    assert knowledge.compose_file_container(f"{WHERE}/./compose.yaml", [c]) is c
    assert knowledge.compose_file_container(f"{WHERE}/other.yaml", [c]) is None
    assert knowledge.compose_file_container("/srv/mail/compose.yaml", [c]) is None
    assert knowledge.compose_file_container("compose.yaml", [c]) is None  # relative: unknown
    # the same labels give `check`'s fix command for the container
    managed = knowledge.podman_managed_fix(c)
    assert managed is not None and f"{WHERE}/compose.yaml --service mailserver" in managed


def test_compose_engine_follows_the_containers_not_docker_host() -> None:
    f = facts(CAPTURE.read_text(), f"{WHERE}/compose.yaml")
    e = compose_engine(f)
    assert e.name == "podman"
    assert "srv-mail_mailserver_1 carries its podman-compose labels" in e.assumption
    # Without that evidence the D4 host is still judged Docker's (both found, DOCKER_HOST set)
    assert f.podman is not None
    bare = replace(f, podman=replace(f.podman, containers=()))
    assert compose_engine(bare).name == "docker"
    # another project's containers are no evidence for this file
    assert compose_engine(replace(f, compose=parse.compose(COMPOSE, "/srv/x.yaml"))).name == (
        "docker"
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, HostFacts]]:
    """The project in a directory of this test: the capture's labels name it there."""
    d = tmp_path / "srv-mail"
    d.mkdir()
    f = d / "compose.yaml"
    f.write_text(COMPOSE)
    o = apply.Owner(name="t", uid=os.geteuid(), gid=os.getegid(), home=tmp_path / "home")
    o.home.mkdir()
    state = {"facts": facts(CAPTURE.read_text().replace(WHERE, str(d)), str(f))}
    monkeypatch.setattr(cli_fix, "owner", lambda: o)
    monkeypatch.setattr(
        cli_fix, "host_paths", lambda _o: HostPaths(home=o.home, uid=o.uid, user="t")
    )
    monkeypatch.setattr(cli_fix, "gather_facts", lambda _p: state["facts"])
    return f, state


def test_fix_compose_writes_for_the_podman_compose_service(
    project: tuple[Path, dict[str, HostFacts]],
) -> None:
    f, state = project
    r = CliRunner().invoke(cli_fix.fix_app, ["compose", str(f), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "would write" in r.output and f"podman-compose -f {f} up -d" in r.output
    assert "with rootless Docker" not in r.output
    # the same host without the container: Docker's advice, as before (nothing to go by)
    p = state["facts"].podman
    assert p is not None
    state["facts"] = replace(state["facts"], podman=replace(p, containers=()))
    r = CliRunner().invoke(cli_fix.fix_app, ["compose", str(f), "--dry-run"])
    assert r.exit_code == 0 and "with rootless Docker" in r.output
    assert f.read_text() == COMPOSE


def test_check_reads_a_relative_compose_name_as_fix_compose_does(
    project: tuple[Path, dict[str, HostFacts]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`check --compose compose.yaml` in the project directory: the file is named absolute, as
    `fix compose compose.yaml` names it, so the podman-compose labels are evidence for both."""
    from rootless_doctor.host import system

    f, state = project
    monkeypatch.chdir(f.parent)
    read = system.compose_facts(Path("compose.yaml"), None, [], [])
    assert read is not None and read.path == str(f)
    assert compose_engine(replace(state["facts"], compose=read)).name == "podman"
