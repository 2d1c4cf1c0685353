"""The command line as a user meets it: a subprocess of the package, real files, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA, read_terminal

import rootless_doctor

REPO = Path(__file__).resolve().parent.parent


def rd(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e["PYTHONPATH"] = str(REPO)
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "rootless_doctor", *args],
        capture_output=True,
        text=True,
        env=e,
        cwd=cwd or REPO,
        timeout=60,
        check=False,
    )


def assert_schema(data: dict[str, Any]) -> None:
    """The documented --json schema (README "JSON output"), key for key."""
    assert data["schema_version"] == 1
    assert {"schema_version", "tool_version", "engines", "checks", "notes"} <= set(data)
    assert set(data) <= {"schema_version", "tool_version", "engines", "checks", "probes", "notes"}
    assert data["tool_version"] == rootless_doctor.__version__
    assert all(isinstance(n, str) for n in data["notes"])
    for e in data["engines"]:
        assert set(e) == {
            "engine",
            "rootless",
            "version",
            "rootlesskit_version",
            "network_driver",
            "port_driver",
            "source_ip_preserved",
            "reason",
            "seen_address",
            "containers",
        }
        assert e["engine"] in ("docker", "podman", "containerd", "rootlesskit")
        assert e["source_ip_preserved"] in (True, False, None)
        assert isinstance(e["reason"], str) and e["reason"]
        # A verdict that is known names what the server sees; unknown ones may leave it empty.
        assert isinstance(e["seen_address"], str)
        assert e["source_ip_preserved"] is None or e["seen_address"], e
        for c in e["containers"]:
            assert set(c) == {
                "engine",
                "container",
                "name",
                "network_mode",
                "port_handler",
                "source_ip_preserved",
                "reason",
                "seen_address",
            }
            assert c["source_ip_preserved"] is None or c["seen_address"], c
            assert c["engine"] == e["engine"] and c["container"] == c["name"]
    ids = [c["id"] for c in data["checks"]]
    assert ids, "no checks"
    for c in data["checks"]:
        assert set(c) == {
            "id", "status", "title", "detail", "remedy", "engine", "container", "commands"
        }  # fmt: skip
        assert all(isinstance(cmd, str) and "\n" not in cmd for cmd in c["commands"])
        assert c["status"] in ("ok", "warn", "fail", "skip", "unknown")


def test_from_docker_rootless_builtin_is_lost_and_fails() -> None:
    cp = rd(
        "check",
        "--json",
        "--from",
        str(
            DATA / "docker-version/docker-28.1.1-rootless-rootlesskit-2.3.4-slirp4netns-builtin.txt"
        ),
    )
    assert cp.returncode == 1, cp.stderr
    data = json.loads(cp.stdout)
    assert_schema(data)
    (docker,) = data["engines"]
    assert (docker["engine"], docker["version"], docker["rootlesskit_version"]) == (
        "docker",
        "28.1.1",
        "2.3.4",
    )
    assert (docker["network_driver"], docker["port_driver"]) == ("slirp4netns", "builtin")
    assert docker["source_ip_preserved"] is False
    assert "builtin" in docker["reason"] and "2.3.4" in docker["reason"]
    failing = {c["id"] for c in data["checks"] if c["status"] == "fail"}
    assert "DOCKER-SOURCE-IP" in failing


S4NN_27 = "docker-27.1.1-rootless-rootlesskit-2.0.2-slirp4netns-portdriver-slirp4netns.txt"


def test_from_docker_slirp4netns_port_driver_is_kept() -> None:
    cp = rd(
        "check",
        "--json",
        "--from",
        str(DATA / "docker-version" / S4NN_27),
    )
    data = json.loads(cp.stdout)
    assert_schema(data)
    assert data["engines"][0]["source_ip_preserved"] is True
    assert data["engines"][0]["port_driver"] == "slirp4netns"


def test_from_several_files_combine_into_one_picture() -> None:
    cp = rd(
        "check",
        "--json",
        "--from",
        str(DATA / "podman-info/podman-4.3.1-rootless-debian12.json"),
        "--from",
        str(DATA / "podman-inspect/podman-4.3.1-rootless-s4-handler.json"),
    )
    data = json.loads(cp.stdout)
    assert_schema(data)
    (podman,) = data["engines"]
    assert podman["version"] == "4.3.1" and podman["rootless"] is True
    assert podman["source_ip_preserved"] is False  # default slirp4netns + rootlesskit handler
    (c,) = podman["containers"]
    assert c["port_handler"] == "slirp4netns" and c["source_ip_preserved"] is True


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\x01\x02binary",
        "caf\xe9".encode("latin-1"),
        b"hello, this is not an engine output\n",
        b"",
    ],
)
def test_unreadable_from_file_is_one_line_and_exit_2(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "pasted.txt"
    f.write_bytes(content)
    cp = rd("check", "--from", str(f))
    assert cp.returncode == 2
    assert cp.stdout == ""
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1 and str(f) in lines[0], cp.stderr
    assert "Traceback" not in cp.stderr


def test_missing_from_file_and_compose_are_exit_2(tmp_path: Path) -> None:
    cp = rd("check", "--from", str(tmp_path / "nope.json"))
    assert cp.returncode == 2 and "nope.json" in cp.stderr and "Traceback" not in cp.stderr
    archive = tmp_path / "a.tar.gz"
    for args in (["check"], ["collect", "-o", str(archive)]):
        for given in (tmp_path / "compose.yaml", tmp_path):  # missing, or a directory
            cp = rd(*args, "--compose", str(given))
            assert cp.returncode == 2, (args, given, cp.stdout)
            (line,) = cp.stderr.strip().splitlines()
            assert f"{given}: no such compose file" in line, (args, line)
    assert not archive.exists()


def test_bad_usage_is_exit_2() -> None:
    assert rd("check", "--no-such-option").returncode == 2


def test_no_engine_at_all_says_so_and_exits_0(tmp_path: Path) -> None:
    """A host with no docker/podman/rootlesskit on PATH and an empty home."""
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {
        "PATH": str(empty),
        "HOME": str(tmp_path),
        "XDG_RUNTIME_DIR": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / ".config"),
        "DOCKER_HOST": "",
        "CONTAINERS_CONF": "",
    }
    cp = rd("check", env=env, cwd=tmp_path)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "No Docker, Podman or RootlessKit found." in cp.stdout
    assert "\x1b[" not in cp.stdout  # not a terminal: no colour codes
    data = json.loads(rd("check", "--json", env=env, cwd=tmp_path).stdout)
    assert_schema(data)
    assert data["engines"] == []


def test_compose_lint_from_file() -> None:
    cp = rd(
        "check",
        "--json",
        "--from",
        str(DATA / "podman-info/podman-4.3.1-rootless-debian12.json"),
        "--compose",
        str(DATA / "compose/docker-mailserver-compose.yaml"),
    )
    data = json.loads(cp.stdout)
    assert_schema(data)
    ids = {c["id"]: c for c in data["checks"]}
    # docker-mailserver publishes 25/143/465/587/993 on the default (bridge) network. The sysctl
    # is not in the pasted files, so whether they can bind is honestly unknown.
    assert ids["COMPOSE-PRIVILEGED-PORTS"]["status"] == "unknown"
    assert "25" in ids["COMPOSE-PRIVILEGED-PORTS"]["detail"]
    assert ids["COMPOSE-NETWORK-MODE"]["status"] == "fail"


def test_human_report_problems_first_then_exact_commands() -> None:
    cp = rd(
        "check",
        "--from",
        str(DATA / "podman-info/podman-4.3.1-rootless-debian12.json"),
        env={"NO_COLOR": "1"},
    )
    assert cp.returncode == 1
    lines = cp.stdout.splitlines()
    assert lines[0] == "Diagnosis of the given files only (not this host)."
    # One line per area, the engine first, with its verdict.
    assert lines[1] == (
        "FAIL  Podman 4.3.1 (rootless): client IPs LOST; a server there sees 10.0.2.100"
    )
    assert lines[2] == "      slirp4netns, port handler rootlesskit"
    problems, do_next = lines.index("Problems"), lines.index("Do next")
    assert problems < do_next
    assert lines[problems + 1].startswith("FAIL  PODMAN-SOURCE-IP: ")
    # The remedy is a command on a line of its own, whole.
    assert lines[do_next + 1].strip() == "1. for PODMAN-SOURCE-IP:"
    assert lines[do_next + 2].strip() == "rootless-doctor fix podman"
    # Facts the pasted file does not hold are counted, not listed as problems.
    assert not any(line.startswith("  ??  SUBUID") for line in lines)
    assert any("checks need facts the given files do not hold" in line for line in lines)
    verbose = rd("check", "-v", "--from", PODMAN_INFO, env={"NO_COLOR": "1"}).stdout
    assert "??  SUBUID: /etc/subuid range for this user" in verbose
    assert "/etc/subuid not read" in verbose


PODMAN_INFO = str(DATA / "podman-info/podman-4.3.1-rootless-debian12.json")


def test_only_and_ignore_select_checks_and_the_exit_code() -> None:
    cp = rd("check", "--json", "--from", PODMAN_INFO, "--only", "podman-*", "--only", "SUBUID")
    assert cp.returncode == 1  # PODMAN-SOURCE-IP fails on Podman 4.3 defaults
    ids = {c["id"] for c in json.loads(cp.stdout)["checks"]}
    assert ids == {"PODMAN-SOURCE-IP", "SUBUID"}  # PODMAN6-* does not match PODMAN-*
    cp = rd("check", "--json", "--from", PODMAN_INFO, "--ignore", "PODMAN-SOURCE-IP")
    data = json.loads(cp.stdout)
    assert "PODMAN-SOURCE-IP" not in {c["id"] for c in data["checks"]}
    assert cp.returncode == (1 if any(c["status"] == "fail" for c in data["checks"]) else 0)
    assert data["engines"][0]["source_ip_preserved"] is False  # engines are not filtered


def test_bad_option_combinations_are_one_line_exit_2() -> None:
    for args in (
        ["--only", "rm -rf"],
        ["--only", "NO-SUCH-CHECK"],
        ["--ignore", "DOCKR-*"],
        ["--source", "10.200.0.1"],
        ["--probe"],
    ):
        cp = rd("check", "--from", PODMAN_INFO, *args)
        assert cp.returncode == 2, (args, cp.stdout, cp.stderr)
        assert len(cp.stderr.strip().splitlines()) == 1 and "Traceback" not in cp.stderr
        if args[-1] in ("NO-SUCH-CHECK", "DOCKR-*"):
            assert "matches no check ID" in cp.stderr and "PODMAN-SOURCE-IP" in cp.stderr


def test_broken_compose_given_is_one_line_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n  a:\n   image: x\n  ports: [1\n")
    cp = rd("check", "--compose", str(f), env={"PATH": str(tmp_path)}, cwd=tmp_path)
    assert cp.returncode == 2, cp.stdout
    (line,) = cp.stderr.strip().splitlines()
    assert str(f) in line and "Traceback" not in cp.stderr


def _on_a_terminal(*args: str, env: dict[str, str]) -> str:
    """Run the CLI with stdout on a pseudo-terminal; what it wrote there."""
    import pty

    leader, follower = pty.openpty()
    e = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    e.update(PYTHONPATH=str(REPO), TERM="xterm-256color", COLUMNS="120", **env)
    proc = subprocess.Popen([sys.executable, "-m", "rootless_doctor", *args], stdout=follower,
                            stderr=subprocess.DEVNULL, env=e, cwd=REPO)  # fmt: skip
    os.close(follower)
    out = read_terminal(leader)
    proc.wait(timeout=60)
    os.close(leader)
    return out.decode(errors="replace")


def test_colours_on_a_terminal_and_never_with_no_color() -> None:
    coloured = _on_a_terminal("check", "--from", PODMAN_INFO, env={})
    assert "\x1b[" in coloured and "PODMAN-SOURCE-IP" in coloured
    plain = _on_a_terminal("check", "--from", PODMAN_INFO, env={"NO_COLOR": "1"})
    assert "\x1b[" not in plain and "PODMAN-SOURCE-IP" in plain


def test_head_start_starts_queries_only_for_a_live_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """entry.head_start reads argv before Typer: only a live `check` starts engine queries."""
    from rootless_doctor import entry, host

    bindir = tmp_path / "bin"
    bindir.mkdir()
    podman = bindir / "podman"
    podman.write_text("#!/bin/sh\nsleep 30\n")  # a slow `podman info`, ended below
    podman.chmod(0o755)
    for k, v in {
        "PATH": str(bindir),
        "HOME": str(tmp_path),
        "XDG_RUNTIME_DIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(k, v)
    try:
        for args in (["version"], ["check", "--from", "x"], ["check", "--help"], []):
            entry.head_start(args)
            assert not host.PREFETCHED, args
        entry.head_start(["check", "--json"])
        assert host.PREFETCHED
    finally:
        entry.end_head_start()
    assert not host.PREFETCHED


def test_version_flags_and_completion() -> None:
    for flag in ("--version", "-V"):
        cp = rd(flag)
        assert (
            cp.returncode == 0 and cp.stdout == f"rootless-doctor {rootless_doctor.__version__}\n"
        )
    assert rd("version").stdout.strip() == rootless_doctor.__version__
    cp = rd("--show-completion", "bash", env={"SHELL": "/bin/bash"})
    assert cp.returncode == 0 and "complete" in cp.stdout and "rootless_doctor" in cp.stdout.lower()
    top = rd("--help", env={"COLUMNS": "200"}).stdout
    assert "--install-completion" in top and "Exit codes:" in top


@pytest.mark.parametrize(
    "command",
    [["check"], ["probe"], ["collect"], ["fix"], ["fix", "docker"], ["fix", "compose"],
     ["fix", "podman"], ["fix", "quadlet"], ["fix", "privileged-ports"], ["fix", "undo"]],
)  # fmt: skip
def test_every_command_has_help_that_says_what_it_does(command: list[str]) -> None:
    cp = rd(*command, "--help", env={"COLUMNS": "200"})
    assert cp.returncode == 0, cp.stderr
    rest = cp.stdout.partition("Usage:")[2]
    assert f"rootless_doctor {' '.join(command)}" in rest  # run as python -m rootless_doctor
    lines = [line.strip() for line in rest.splitlines()[1:] if line.strip()]
    assert len(lines[0]) > 30 and not lines[0].startswith("╭"), cp.stdout  # a sentence


def test_check_engine_restricts_the_report() -> None:
    both = [
        str(DATA / "podman-info/podman-4.3.1-rootless-debian12.json"),
        str(DATA / "docker-version/docker-20.10.24-debian12-rootless-client20.10.txt"),
    ]
    args = [a for f in both for a in ("--from", f)]
    full = json.loads(rd("check", "--json", *args).stdout)
    assert {e["engine"] for e in full["engines"]} == {"docker", "podman"}
    only = json.loads(rd("check", "--json", "--engine", "podman", *args).stdout)
    assert [e["engine"] for e in only["engines"]] == ["podman"]
    assert not any(c["id"].startswith("DOCKER-") for c in only["checks"])
    bad = rd("check", "--engine", "lxc", *args)
    assert bad.returncode == 2
