"""docker-mailserver keeps its settings in `env_file: mailserver.env` (issue 8, part 1).

Whole-file tests through the command line, on docker-mailserver's own compose.yaml and
mailserver.env (tests/data/compose/dms-upstream-c9b015d, verbatim from upstream) and on copies of
them where one line is changed the way the issue and docker-mailserver #2377 describe. The engine
loses client IPs (Docker 28.1.1, RootlessKit 2.3.4, builtin port driver: a real `docker version`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA
from fromcheck import check
from test_cli import rd

DMS = DATA / "compose/dms-upstream-c9b015d"
LOST = DATA / "docker-version/docker-28.1.1-rootless-rootlesskit-2.3.4-slirp4netns-builtin.txt"
PODMAN4 = DATA / "podman-info/podman-4.3.1-rootless-debian12.json"


def by_id(data: dict[str, Any], cid: str) -> list[dict[str, Any]]:
    return [c for c in data["checks"] if c["id"] == cid]


def one(data: dict[str, Any], cid: str) -> dict[str, Any]:
    found = by_id(data, cid)
    assert len(found) == 1, [c["id"] for c in data["checks"]]
    return found[0]


def dms_copy(tmp_path: Path, **env: str) -> Path:
    """The upstream pair in tmp_path, with the env file's KEY=value lines replaced by ``env``."""
    d = tmp_path / "dms"
    shutil.copytree(DMS, d)
    text = (d / "mailserver.env").read_text()
    for key, value in env.items():
        old = next(ln for ln in text.splitlines() if ln.startswith(f"{key}="))
        text = text.replace(old + "\n", f"{key}={value}\n", 1)
    (d / "mailserver.env").write_text(text)
    return d / "compose.yaml"


def test_upstream_pair_as_shipped_is_safe_and_says_where_it_read() -> None:
    # mailserver.env ships PERMIT_DOCKER=none and ENABLE_FAIL2BAN=0.
    _, data = check(LOST, DMS / "compose.yaml")
    pd = one(data, "COMPOSE-PERMIT-DOCKER")
    assert pd["status"] == "ok"
    assert "mailserver.env" in pd["detail"]
    assert one(data, "COMPOSE-NET-ADMIN")["status"] == "skip"


def test_permit_docker_network_in_env_file_is_an_open_relay(tmp_path: Path) -> None:
    # The false "no open relay" of the issue: the settings live in mailserver.env only.
    compose = dms_copy(tmp_path, PERMIT_DOCKER="network", ENABLE_FAIL2BAN="1")
    code, data = check(LOST, compose)
    assert code == 1
    pd = one(data, "COMPOSE-PERMIT-DOCKER")
    assert pd["status"] == "fail"
    assert "network" in pd["detail"] and "mailserver.env" in pd["detail"]
    # cap_add is commented out in upstream compose.yaml
    assert one(data, "COMPOSE-NET-ADMIN")["status"] == "fail"


def test_environment_wins_over_env_file(tmp_path: Path) -> None:
    compose = dms_copy(tmp_path, PERMIT_DOCKER="network")
    text = compose.read_text().replace(
        "    env_file: mailserver.env\n",
        "    env_file: mailserver.env\n    environment:\n      - PERMIT_DOCKER=none\n",
    )
    compose.write_text(text)
    _, data = check(LOST, compose)
    assert one(data, "COMPOSE-PERMIT-DOCKER")["status"] == "ok"


def test_env_file_value_does_not_override_environment(tmp_path: Path) -> None:
    compose = dms_copy(tmp_path)  # PERMIT_DOCKER=none in the env file
    text = compose.read_text().replace(
        "    env_file: mailserver.env\n",
        "    env_file: mailserver.env\n    environment:\n      PERMIT_DOCKER: connected-networks\n",
    )
    compose.write_text(text)
    _, data = check(LOST, compose)
    pd = one(data, "COMPOSE-PERMIT-DOCKER")
    assert pd["status"] == "fail"
    assert "connected-networks" in pd["detail"]


@pytest.mark.parametrize(
    "spec",
    [
        "    env_file:\n      - mailserver.env\n",
        "    env_file:\n      - path: ./mailserver.env\n        required: true\n",
        "    env_file:\n      - defaults.env\n      - path: mailserver.env\n",
    ],
    ids=["list", "long-form", "two-files-later-wins"],
)
def test_env_file_list_and_long_forms(tmp_path: Path, spec: str) -> None:
    compose = dms_copy(tmp_path, PERMIT_DOCKER="host")
    (compose.parent / "defaults.env").write_text("PERMIT_DOCKER=none\n")
    compose.write_text(compose.read_text().replace("    env_file: mailserver.env\n", spec))
    _, data = check(LOST, compose)
    assert one(data, "COMPOSE-PERMIT-DOCKER")["status"] == "fail"


def test_env_file_relative_to_the_compose_file_not_the_cwd(tmp_path: Path) -> None:
    compose = dms_copy(tmp_path, PERMIT_DOCKER="network")
    sub = compose.parent / "conf"
    sub.mkdir()
    (compose.parent / "mailserver.env").rename(sub / "mailserver.env")
    compose.write_text(
        compose.read_text().replace("env_file: mailserver.env", "env_file: conf/mailserver.env")
    )
    cp = rd("check", "--json", "--from", str(LOST), "--from", str(compose), cwd=tmp_path)
    assert one(json.loads(cp.stdout), "COMPOSE-PERMIT-DOCKER")["status"] == "fail"


def test_missing_env_file_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    compose = dms_copy(tmp_path)
    (compose.parent / "mailserver.env").unlink()
    code, data = check(LOST, compose)
    pd = one(data, "COMPOSE-PERMIT-DOCKER")
    # the settings that decide are in a file that is not there: not "ok"
    assert pd["status"] in ("unknown", "fail")
    assert "mailserver.env" in pd["detail"]
    assert code == 1 or pd["status"] == "unknown"


def test_optional_missing_env_file_is_skipped(tmp_path: Path) -> None:
    compose = dms_copy(tmp_path)
    compose.write_text(
        compose.read_text().replace(
            "    env_file: mailserver.env\n",
            "    env_file:\n      - path: mailserver.env\n      - path: local.env\n"
            "        required: false\n",
        )
    )
    _, data = check(LOST, compose)
    assert one(data, "COMPOSE-PERMIT-DOCKER")["status"] == "ok"


def test_unreadable_env_file_is_a_finding(tmp_path: Path) -> None:
    compose = dms_copy(tmp_path)
    env = compose.parent / "mailserver.env"
    env.unlink()
    env.mkdir()  # a directory where the file should be: unreadable as a file, even for root
    _, data = check(LOST, compose)
    pd = one(data, "COMPOSE-PERMIT-DOCKER")
    assert pd["status"] != "ok"
    assert "mailserver.env" in pd["detail"]


def test_dotenv_interpolation_in_the_compose_file(tmp_path: Path) -> None:
    # Compose reads `.env` next to the compose file for ${VAR} / ${VAR:-default} in the file itself
    # (docs.docker.com compose "Interpolation"; env_file values are not used for interpolation).
    compose = dms_copy(tmp_path)
    compose.write_text(
        compose.read_text().replace(
            "    env_file: mailserver.env\n",
            "    env_file: ${DMS_ENV_FILE:-mailserver.env}\n"
            "    environment:\n      PERMIT_DOCKER: ${DMS_PERMIT:-none}\n",
        )
    )
    _, data = check(LOST, compose)
    assert one(data, "COMPOSE-PERMIT-DOCKER")["status"] == "ok"
    (compose.parent / ".env").write_text("DMS_PERMIT=network\n")
    _, data = check(LOST, compose)
    assert one(data, "COMPOSE-PERMIT-DOCKER")["status"] == "fail"


def test_network_interface_from_env_file_against_podman_slirp4netns(tmp_path: Path) -> None:
    compose = dms_copy(tmp_path, NETWORK_INTERFACE="eth0")
    compose.write_text(
        compose.read_text().replace(
            "    env_file: mailserver.env\n",
            "    env_file: mailserver.env\n"
            '    network_mode: "slirp4netns:port_handler=slirp4netns"\n',
        )
    )
    _, data = check(PODMAN4, compose)
    ni = one(data, "COMPOSE-NETWORK-INTERFACE")
    assert ni["status"] == "fail"
    assert "tap0" in ni["remedy"] and "mailserver.env" in ni["detail"]
