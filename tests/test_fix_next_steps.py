"""A fix's next steps are shell commands shown to copy and run by `fix --restart` through
shlex.split: a project path or unit name with a space or a quote stays one word."""

from __future__ import annotations

import shlex
from pathlib import Path

from rootless_doctor.fixes import compose, quadlet
from rootless_doctor.model import PodmanFacts

P5 = PodmanFacts(cli="/usr/bin/podman", version="5.4.2", rootless=True)
COMPOSE = "services:\n  web:\n    image: nginx\n    ports:\n      - 8080:80\n"
ODD = "it's my app"  # a space and an unmatched quote: split wrongly, or a ValueError


def test_compose_next_step_keeps_the_path_whole(tmp_path: Path) -> None:
    path = tmp_path / ODD / "compose.yaml"
    cp = compose.plan(path, COMPOSE, service=None, engine="podman", podman=P5)
    assert cp.plan is not None
    (step,) = cp.plan.next_steps
    assert shlex.split(step) == [
        "podman", "compose", "-f", str(path), "up", "-d", "--force-recreate", "web"
    ]  # fmt: skip


def test_compose_mtu_next_steps_keep_the_path_whole(tmp_path: Path) -> None:
    path = tmp_path / ODD / "compose.yaml"
    cp = compose.plan(path, COMPOSE, service=None, engine="docker", mtu=True)
    assert cp.plan is not None
    assert [shlex.split(s) for s in cp.plan.next_steps] == [
        ["docker", "compose", "-f", str(path), "down"],
        ["docker", "compose", "-f", str(path), "up", "-d"],
    ]


def test_quadlet_next_step_keeps_the_unit_whole(tmp_path: Path) -> None:
    path = tmp_path / f"{ODD}.container"
    text = "[Container]\nImage=nginx\nPublishPort=8080:80\n"
    cp = quadlet.plan(path, text, podman=P5, pasta_installed=True)
    assert cp.plan is not None
    assert [shlex.split(s) for s in cp.plan.next_steps] == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "restart", f"{ODD}.service"],
    ]
