"""`fix compose` puts NETWORK_INTERFACE where the user keeps it (issue 8): in the env file that
sets it, else in `environment:`; never both, never a duplicate. Whole files after the edit, on
docker-mailserver's own compose.yaml + mailserver.env (tests/data/compose/dms-upstream-c9b015d)."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import DATA
from typer.testing import CliRunner

from rootless_doctor import cli_fix, host
from rootless_doctor.fixes import compose
from rootless_doctor.model import PodmanFacts

DMS = DATA / "compose/dms-upstream-c9b015d"
P4 = PodmanFacts(cli="/usr/bin/podman", version="4.3.1", rootless=True)
MODE_LINE = '    network_mode: "slirp4netns:port_handler=slirp4netns"\n'
IMAGE_LINE = "    image: ghcr.io/docker-mailserver/docker-mailserver:latest\n"


def copy(tmp_path: Path) -> Path:
    shutil.copytree(DMS, tmp_path / "dms")
    return tmp_path / "dms/compose.yaml"


def plan(path: Path) -> compose.ComposePlan:
    text = path.read_text()
    env = host.compose_env(path, text, None)
    return compose.plan(path, text, service=None, engine="podman", podman=P4, env=env)


def test_interface_goes_into_the_env_file_that_sets_it(tmp_path: Path) -> None:
    path = copy(tmp_path)
    before_env = (path.parent / "mailserver.env").read_text()
    cp = plan(path)
    assert cp.plan is not None and cp.env_plan is not None
    # compose.yaml: network_mode only; no NETWORK_INTERFACE in environment:
    assert cp.plan.after == path.read_text().replace(IMAGE_LINE, IMAGE_LINE + MODE_LINE)
    # mailserver.env: its one `NETWORK_INTERFACE=` line set, every other byte kept
    assert cp.env_plan.path == (path.parent / "mailserver.env").absolute()
    assert cp.env_plan.after == before_env.replace(
        "\nNETWORK_INTERFACE=\n", "\nNETWORK_INTERFACE=tap0\n"
    )
    assert cp.env_plan.after.count("NETWORK_INTERFACE=") == before_env.count("NETWORK_INTERFACE=")
    # written, a second run has nothing to do in either file
    path.write_text(cp.plan.after)
    (path.parent / "mailserver.env").write_text(cp.env_plan.after)
    again = plan(path)
    assert again.plan is not None and not again.plan.changed
    assert again.env_plan is None


def test_environment_wins_so_the_env_file_is_left_alone(tmp_path: Path) -> None:
    path = copy(tmp_path)
    path.write_text(
        path.read_text().replace(
            "    env_file: mailserver.env\n",
            "    env_file: mailserver.env\n    environment:\n      NETWORK_INTERFACE: eth0\n",
        )
    )
    cp = plan(path)
    assert cp.env_plan is None
    assert cp.plan is not None
    assert "      NETWORK_INTERFACE: tap0\n" in cp.plan.after
    assert cp.plan.after.count("NETWORK_INTERFACE") == 1


def test_not_in_the_env_file_goes_into_environment(tmp_path: Path) -> None:
    path = copy(tmp_path)
    env = path.parent / "mailserver.env"
    env.write_text(
        "".join(ln for ln in env.read_text().splitlines(True) if "NETWORK_INTERFACE=" not in ln)
    )
    cp = plan(path)
    assert cp.env_plan is None and cp.plan is not None
    assert cp.plan.after == path.read_text().replace(
        IMAGE_LINE, IMAGE_LINE + MODE_LINE + "    environment:\n      NETWORK_INTERFACE: tap0\n"
    )


def test_fix_compose_command_writes_both_files_and_undo_restores_them(tmp_path: Path) -> None:
    path = copy(tmp_path)
    env = path.parent / "mailserver.env"
    before = (path.read_bytes(), env.read_bytes())
    home = tmp_path / "home"
    home.mkdir()
    runner = CliRunner()
    environ = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "PATH": "/nonexistent"}
    r = runner.invoke(cli_fix.fix_app, ["compose", str(path), "--engine", "podman"], env=environ)
    assert r.exit_code == 0, r.output
    assert "NETWORK_INTERFACE=tap0" in env.read_text()
    assert "NETWORK_INTERFACE" not in path.read_text()
    r = runner.invoke(cli_fix.fix_app, ["--undo"], env=environ)
    assert r.exit_code == 0, r.output
    assert (path.read_bytes(), env.read_bytes()) == before
