"""Issue 11: ``check --from`` with hostile pastes and engines that answer badly, each case
reproduced from the issue's fuzz run. Every run is a real process (tests/hostile.py), its peak
memory measured by the kernel (wait4) under an address-space cap; time bounds only catch hangs.

Contract for every case: exit 0/1/2, no traceback, peak RSS under 200 MB, an answer long before
the hang bound; unreadable or oversized input is exit 2 and one line naming the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import hostile
import pytest
import stack
from conftest import DATA

PODMAN_INFO = DATA / "podman-info/podman-4.3.1-rootless-debian12.json"
SYSTEMCTL_TREE = DATA / "ps/rootlesskit-issue434-systemctl-user-status-docker-builtin-TRUNCATED.txt"
BLANKS = 1_000_000  # the 60,000 took 19-22 s (quadratic); 965k never finished


def check_from(*files: str | Path, stdin: bytes | Path | None = None) -> hostile.Outcome:
    args = ["check", "--json"]
    for f in files:
        args += ["--from", str(f)]
    return hostile.run(args, stdin=stdin)


# --------------------------------------------------------------------------- depth


def test_deep_json_brackets_are_one_line_not_a_recursion_error(tmp_path: Path) -> None:
    f = tmp_path / "paste.json"
    f.write_text("[" * 1000 + "\n")
    o = check_from(f)
    hostile.assert_bounded(o)
    hostile.one_line_error(o, str(f))


def test_deep_json_object_nesting_is_bounded(tmp_path: Path) -> None:
    f = tmp_path / "info.json"
    f.write_text('{"host": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + ', "version": {}}\n')
    hostile.assert_bounded(check_from(f))


def test_deep_block_yaml_is_bounded(tmp_path: Path) -> None:
    """400 levels of block mappings under `host:`: RecursionError, exit 3, before."""
    f = tmp_path / "info.yaml"
    body = "".join("  " * (i + 1) + f"k{i}:\n" for i in range(400))
    f.write_text("host:\n" + body + "  " * 401 + "v: 1\nversion:\n  Version: 4.3.1\n")
    hostile.assert_bounded(check_from(f))


def test_deep_flow_yaml_is_bounded(tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n  s:\n    image: a\n    ports: " + "[" * 2000 + "]" * 2000 + "\n")
    hostile.assert_bounded(check_from(f))


# --------------------------------------------------------------------------- quadratic regexes


def test_a_line_of_blanks_in_an_unknown_paste_is_linear(tmp_path: Path) -> None:
    """offline.recognise's `(?m)^\\s*(USER|UID)?\\s*PID...`: quadratic in a run of blanks."""
    f = tmp_path / "paste.txt"
    f.write_text("hello\n" + " " * BLANKS + "x\n")
    o = check_from(f)
    hostile.assert_bounded(o)
    hostile.one_line_error(o, str(f))


def test_a_line_of_blanks_in_a_systemctl_tree_is_linear(tmp_path: Path) -> None:
    """parse._SYSTEMCTL_TREE `^\\s*[│├└─\\s|`-]*[├└]─`: nested unbounded repeats."""
    f = tmp_path / "status.txt"
    f.write_text(SYSTEMCTL_TREE.read_text() + " " * BLANKS + "x\n")
    hostile.assert_bounded(check_from(f))


def test_a_line_of_tree_art_without_a_branch_is_linear(tmp_path: Path) -> None:
    f = tmp_path / "status.txt"
    f.write_text(SYSTEMCTL_TREE.read_text() + "│ " * (BLANKS // 2) + "x\n")
    hostile.assert_bounded(check_from(f))


# --------------------------------------------------------------------------- not regular files


def test_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "paste"
    os.mkfifo(fifo)
    o = hostile.run(["check", "--from", str(fifo)], hang_s=30)
    hostile.assert_bounded(o)
    hostile.one_line_error(o, str(fifo))


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_symlink_to_an_endless_device_is_refused(tmp_path: Path, device: str) -> None:
    link = tmp_path / "paste.txt"
    link.symlink_to(device)
    o = hostile.run(["check", "--from", str(link)], hang_s=30)
    hostile.assert_bounded(o)
    hostile.one_line_error(o, str(link))


def test_a_directory_is_one_line(tmp_path: Path) -> None:
    o = check_from(tmp_path)
    hostile.assert_bounded(o)
    hostile.one_line_error(o, str(tmp_path))


# --------------------------------------------------------------------------- YAML bombs


def _alias_bomb(levels: int = 9) -> str:
    """Billion laughs: each anchor lists the previous one 9 times (9**levels leaves)."""
    lines = ['x-a: &a ["1","1","1","1","1","1","1","1","1"]']
    prev = "a"
    for n in "bcdefghijk"[: levels - 1]:
        lines.append(f"x-{n}: &{n} [" + ",".join(["*" + prev] * 9) + "]")
        prev = n
    lines.append(f"services:\n  s:\n    image: a\n    ports: *{prev}\n    environment: *{prev}")
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_is_bounded(tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(_alias_bomb())
    assert len(f.read_bytes()) < 600  # the bomb: 449 bytes, 48 s, 934 MB
    hostile.assert_bounded(check_from(f))


def test_yaml_alias_bomb_in_podman_info_is_bounded(tmp_path: Path) -> None:
    f = tmp_path / "info.yaml"
    bomb = _alias_bomb().split("services:")[0]
    f.write_text(bomb + "host:\n  a: *i\nstore:\n  b: *i\nversion:\n  Version: *i\n")
    hostile.assert_bounded(check_from(f))


def test_yaml_merge_key_bomb_is_bounded(tmp_path: Path) -> None:
    """`<<:` merges of merges: > 60 s and > 1 GB before."""
    lines = ["x0: &x0 {a: 1, b: 2}"]
    for i in range(1, 25):
        lines.append(f"x{i}: &x{i} {{<<: [*x{i - 1}, *x{i - 1}], k{i}: 1}}")
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n  s:\n    image: a\n" + "\n".join(lines) + "\n")
    assert len(f.read_bytes()) < 1000
    hostile.assert_bounded(check_from(f))


# --------------------------------------------------------------------------- size


def _big_paste(mb: int = 50) -> bytes:
    """A real capture repeated to ``mb`` MB: a paste of a long journal or ps listing."""
    unit = (DATA / "ps/podman-4.3.1-debian12-rootless-4-containers-ps-eo.txt").read_bytes()
    return unit * (mb * 1024 * 1024 // len(unit) + 1)


def test_a_50_mb_file_is_refused_early(tmp_path: Path) -> None:
    f = tmp_path / "huge.txt"
    f.write_bytes(_big_paste())
    o = check_from(f)
    hostile.assert_bounded(o)
    hostile.one_line_error(o, str(f))


def test_stdin_is_read_with_dash() -> None:
    o = check_from("-", stdin=PODMAN_INFO)
    hostile.assert_bounded(o)
    assert o.code in (0, 1), o.describe()
    (engine,) = json.loads(o.stdout)["engines"]
    assert (engine["engine"], engine["version"]) == ("podman", "4.3.1")


def test_a_50_mb_paste_on_stdin_is_refused_early() -> None:
    o = check_from("-", stdin=_big_paste())
    hostile.assert_bounded(o)
    hostile.one_line_error(o, "stdin")


# ------------------------------------------------------------------ engines that answer badly
# As the real stack user: a fake engine CLI first on PATH (a script that runs `yes`, or sleeps),
# the rest of the host as it is. The user's runtime dir is a fresh one holding a unix socket this
# test listens on as docker.sock (so the docker CLI is asked at all), and its config dir holds the
# user unit dockerd-rootless-setuptool.sh writes (tests/data/systemd, moby v20.10.24).
UNIT = DATA / "systemd/docker-rootless-user-unit-rendered-from-moby-v20.10.24-setuptool.service"


@pytest.fixture
def engine_env(u: stack.User) -> Iterator[tuple[Path, dict[str, str]]]:
    """(bin dir first on PATH, the environment of the run), all the user's."""
    import shutil

    base = stack._user_tmpdir(u, "rd-h11-engine-")
    bindir, run, units = base / "bin", base / "run", base / "cfg/systemd/user"
    for d in (bindir, run, units):
        d.mkdir(parents=True, mode=0o700)
    shutil.copy(UNIT, units / "docker.service")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(run / "docker.sock"))
    srv.listen(8)
    for p in (base, *base.rglob("*")):
        os.chown(p, u.uid, u.gid)
    env = {
        "PATH": f"{bindir}:{stack.USER_PATH}",
        "XDG_RUNTIME_DIR": str(run),
        "XDG_CONFIG_HOME": str(base / "cfg"),
    }
    try:
        yield bindir, env
    finally:
        srv.close()
        # Podman started a pause process for this runtime dir: end it (its PID is in its file).
        pid_file = run / "libpod/tmp/pause.pid"
        if pid_file.is_file():
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        shutil.rmtree(base, ignore_errors=True)


def _fake(bindir: Path, name: str, body: str) -> None:
    p = bindir / name
    p.write_text(f"#!/bin/sh\n{body}\n")
    p.chmod(0o755)


def _live_check(u: stack.User, env: dict[str, str]) -> tuple[hostile.Outcome, dict[str, str]]:
    o = hostile.run(["check", "--json"], u=u, env=env)
    hostile.assert_bounded(o, codes=(0, 1))
    report = json.loads(o.stdout)
    status = {c["id"]: c["status"] for c in report["checks"]}
    return o, status | {"notes": " ".join(report["notes"])}


@pytest.mark.realstack
@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_an_engine_cli_that_prints_without_end_is_cut(
    u: stack.User, engine_env: tuple[Path, dict[str, str]], engine: str
) -> None:
    """`yes` as the engine CLI: 30 s and 13 GB before, despite the 5 s timeout."""
    bindir, env = engine_env
    _fake(bindir, engine, "exec yes")
    o, status = _live_check(u, env)
    assert o.seconds < 5 + 1 + 20, o.describe()  # engine timeout + 1 s; 20 s for a busy machine
    assert "truncated" in status["notes"], status["notes"]
    assert status[f"{engine.upper()}-SOURCE-IP"] == "unknown", status


@pytest.mark.realstack
def test_a_hung_docker_cli_gives_unknown_not_fail(
    u: stack.User, engine_env: tuple[Path, dict[str, str]]
) -> None:
    """A `docker` that never answers, the user's unit naming dockerd-rootless.sh: DOCKER-SOURCE-IP
    said fail from the launcher's defaults (builtin) although nothing running was read."""
    bindir, env = engine_env
    _fake(bindir, "docker", "exec sleep 100")
    o, status = _live_check(u, env)
    assert status["DOCKER-SOURCE-IP"] == "unknown", (status, o.stdout[-2000:])
