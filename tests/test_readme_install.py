"""The README's first line, typed by a new user on Debian 13 with python3 and pipx from Debian.

It runs in the trixie root (.ci/roots.sh, /work/shared/modern-stack.md) as a user made for this
test, in a copy of this checkout the user owns (what `git clone` gives), in one shell: the
install must work, and the check must run in that same shell (exit 0 or 1, a report naming
the root's Podman). After a new login the command is on PATH (Debian's ~/.profile adds
~/.local/bin). Needs the roots: skips without them, fails in CI.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.realstack

REPO = Path(__file__).resolve().parent.parent
ROOTS_SH = REPO / ".ci" / "roots.sh"
STACKS = Path(os.environ.get("RD_STACKS", "/srv/stacks"))
ROOT = "trixie"
# The host's TLS setup for the package index, put into each root by roots.sh (modern-stack.md).
# This is the CI machine's plumbing, not a step of the user's.
INDEX_ENV = ["PIP_CERT=/etc/ssl/rd-host-ca.crt", "SSL_CERT_FILE=/etc/ssl/rd-host-ca.crt"]


def readme_first_line() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(r"^```(?:sh|bash|console)?\n(.*?)^```", text, re.M | re.S)
    assert block, "README.md has no code block"
    return block.group(1).splitlines()[0]


def _require_root() -> Path:
    r = STACKS / ROOT
    problem = None
    if os.geteuid() != 0:
        problem = "runs as root (it enters the Debian roots)"
    elif not (STACKS / "READY").exists() or not (r / "usr/bin/python3").exists():
        problem = f"no {ROOT} root under {STACKS} (bash .ci/roots.sh build)"
    elif not (r / "usr/bin/pipx").exists():
        problem = f"no pipx in the {ROOT} root (.ci/roots.sh INCLUDE)"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    return r


def _roots(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOTS_SH), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _passwd(root: Path, name: str) -> list[str] | None:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return fields
    return None


def _end_processes(uid: int) -> None:
    """SIGTERM, then SIGKILL, every process of ``uid`` (a user this test made and owns)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [
            int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _uid(p) == uid
        ]
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
            time.sleep(0.05)


def _uid(proc: Path) -> int | None:
    try:
        return proc.stat().st_uid
    except OSError:
        return None


@pytest.fixture
def new_user() -> Iterator[tuple[str, Path]]:
    """A user made for this test in the trixie root: (name, home on the host side)."""
    root = _require_root()
    name = f"rdnew{os.getpid()}"
    cp = _roots("adduser", ROOT, name)
    assert cp.returncode == 0, cp.stderr
    fields = _passwd(root, name)
    assert fields is not None
    uid, home = int(fields[2]), root / fields[5].lstrip("/")
    try:
        yield name, home
    finally:
        _roots("user", ROOT, name, "podman", "system", "migrate", timeout=60)  # podman's pause
        _end_processes(uid)
        _roots("enter", ROOT, "userdel", "-r", name)
        shutil.rmtree(root / f"run/user/{uid}", ignore_errors=True)


def test_readme_first_line_installs_and_checks(new_user: tuple[str, Path]) -> None:
    name, home = new_user
    line = readme_first_line()
    assert "pipx install ." in line  # the install Debian allows an unprivileged user
    clone = home / "rootless-doctor"
    shutil.copytree(
        REPO,
        clone,
        ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".*_cache"),
    )
    owner = f"{home.stat().st_uid}:{home.stat().st_gid}"
    subprocess.run(["chown", "-R", owner, str(clone)], check=True)

    # As typed: in the clone, the README's line verbatim, one shell.
    cp = _roots(
        "user", ROOT, name, *INDEX_ENV, "bash", "-c", f"cd rootless-doctor && {line}", timeout=600
    )
    out = cp.stdout + cp.stderr
    assert cp.returncode in (0, 1), out  # 0/1: the check ran (1: it found something)
    assert "installed package rootless-doctor" in out, out
    assert "Traceback" not in out, out
    assert re.search(r"podman 5\.4\.\d", cp.stdout, re.I), cp.stdout  # the root's Podman, found

    # After a new login the command is on PATH.
    login = _roots("user", ROOT, name, "bash", "-lc", "command -v rootless-doctor")
    assert login.stdout.strip() == f"/home/{name}/.local/bin/rootless-doctor", login.stderr
