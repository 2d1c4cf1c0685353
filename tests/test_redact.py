"""redact.py: secrets out of the raw facts a `collect` archive holds, and nothing the tool reads.

Inputs are real captures (tests/data, sources in SOURCES.md) with secrets added where the capture
had none; each test asserts the secret is gone, the values the tool reads stay, and the result
still parses as before.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomlkit
from ruamel.yaml import YAML

from rootless_doctor import redact

DATA = Path(__file__).parent / "data"
SECRET = "s3cr3t-Value-91f2"


def test_unit_environment_values_but_not_dockerd_rootless() -> None:
    base = (
        DATA / "systemd/docker-mailserver-docs-fail2ban-docker-rootless-override.conf"
    ).read_text()
    text = base + f'Environment="API_TOKEN={SECRET}" OTHER={SECRET}\nEnvironment=DB="{SECRET} x"\n'
    out, found = redact.unit_text(text)
    assert SECRET not in out
    assert sorted(found) == [
        "environment value of API_TOKEN",
        "environment value of DB",
        "environment value of OTHER",
    ]
    # The settings the tool reads are unchanged, line for line.
    keep = [line for line in base.splitlines() if "DOCKERD_ROOTLESS_" in line]
    assert keep and all(line in out.splitlines() for line in keep)
    assert 'Environment="API_TOKEN=%redacted%" OTHER=%redacted%' in out
    assert "Environment=DB=%redacted%" in out  # quotes around part of the word: one assignment


def test_unit_without_secrets_is_unchanged() -> None:
    text = (DATA / "systemd/moby-issue52641-override-commented-lines.conf").read_text()
    assert redact.unit_text(text) == (text, [])


def test_podman_inspect_env_and_create_command() -> None:
    doc = json.loads((DATA / "podman-inspect/podman-4.3.1-rootless-s4-default.json").read_text())
    cfg = doc[0]["Config"]
    cfg["Env"] += [f"DB_PASSWORD={SECRET}", "NETWORK_INTERFACE=tap0", "PERMIT_DOCKER=network"]
    cfg["CreateCommand"][2:2] = ["-e", f"DB_PASSWORD={SECRET}", f"--env=MAIL={SECRET}"]
    cfg["CreateCommand"] += [f"--api-token={SECRET}", "--password", SECRET]
    raw = json.dumps(doc)
    out, found = redact.json_text(raw)
    assert SECRET not in out
    new = json.loads(out)[0]["Config"]
    assert "NETWORK_INTERFACE=tap0" in new["Env"] and "PERMIT_DOCKER=network" in new["Env"]
    assert "DB_PASSWORD=%redacted%" in new["Env"]
    assert new["CreateCommand"][:6] == ["podman", "run", "-e", "DB_PASSWORD=%redacted%",
                                        "--env=MAIL=%redacted%", "-d"]  # fmt: skip
    assert new["CreateCommand"][-3:] == ["--api-token=%redacted%", "--password", "%redacted%"]
    # Published ports and the network mode (what the checks read) are untouched.
    assert json.loads(out)[0]["HostConfig"] == doc[0]["HostConfig"]
    assert "value of --password" in found and "environment value of MAIL" in found


def test_json_without_secrets_is_byte_identical() -> None:
    raw = (DATA / "podman-info/podman-4.3.1-rootless-debian12.json").read_text()
    assert redact.json_text(raw) == (raw, [])


def test_daemon_json_proxy_credentials() -> None:
    raw = json.dumps(
        {
            "userland-proxy": False,
            "proxies": {"http-proxy": f"http://bob:{SECRET}@proxy.example:3128"},
        }
    )
    out, found = redact.json_text(raw)
    assert SECRET not in out and "bob" not in out
    assert json.loads(out)["userland-proxy"] is False
    assert json.loads(out)["proxies"]["http-proxy"] == "http://%redacted%@proxy.example:3128"
    assert found == ["credentials in a http URL"]


def test_compose_environment_list_and_mapping() -> None:
    base = (DATA / "compose/docker-mailserver-compose.yaml").read_text()
    text = base + (
        "  extra:\n    image: x  # comment\n    environment:\n"
        f"      - DB_PASS={SECRET}\n      - PERMIT_DOCKER=network\n"
        "  third:\n    image: y\n    environment:\n"
        f"      API_KEY: {SECRET}\n      NETWORK_INTERFACE: tap0\n"
    )
    out, found = redact.compose_text(text)
    assert SECRET not in out
    assert "# comment" in out  # round-trip: comments stay
    yaml = YAML(typ="safe")
    old, new = yaml.load(text), yaml.load(out)
    assert new["services"]["extra"]["environment"] == [
        "DB_PASS=%redacted%",
        "PERMIT_DOCKER=network",
    ]
    assert new["services"]["third"]["environment"] == {
        "API_KEY": "%redacted%",
        "NETWORK_INTERFACE": "tap0",
    }
    assert new["services"]["mailserver"] == old["services"]["mailserver"]
    assert sorted(found) == ["environment value of API_KEY", "environment value of DB_PASS"]


def test_containers_conf_env_array() -> None:
    base = (DATA / "containers-conf/user-snippet-slackware-package-etc-containers.conf").read_text()
    env = f'env = ["HTTP_PROXY=http://u:{SECRET}@p:1", "A=b"]\n'
    text = base.replace("[engine]\n", "[engine]\n" + env, 1)
    out, found = redact.toml_text(text)
    assert SECRET not in out
    old, new = tomlkit.parse(text), tomlkit.parse(out)
    assert new["engine"]["env"] == ["HTTP_PROXY=%redacted%", "A=%redacted%"]
    assert new["network"] == old["network"] and new["engine"]["runtime"] == "crun"
    assert found == ["environment value of HTTP_PROXY", "environment value of A"]


def test_env_file() -> None:
    out, found = redact.env_file_text(
        f"# mail\nexport DB_PASS={SECRET}\nPERMIT_DOCKER=none\nEMPTY=\n\n"
    )
    assert out == "# mail\nexport DB_PASS=%redacted%\nPERMIT_DOCKER=none\nEMPTY=\n\n"
    assert found == ["environment value of DB_PASS"]


@pytest.mark.parametrize(
    "line",
    [
        f"alice 1234 dockerd --registry-mirror=https://u:{SECRET}@mirror",
        f"alice 99 app MYSQL_ROOT_PASSWORD={SECRET}",
        f"HTTP Proxy: http://bob:{SECRET}@proxy:3128",
    ],
)
def test_free_text(line: str) -> None:
    out, found = redact.text(line)
    assert SECRET not in out and found


def test_free_text_leaves_driver_settings() -> None:
    line = (
        "rootlesskit --net=slirp4netns --port-driver=builtin --state-dir=/run/user/1000/x "
        "dockerd-rootless.sh"
    )
    assert redact.text(line) == (line, [])
