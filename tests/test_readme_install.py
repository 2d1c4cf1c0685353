"""The README's first line, typed by a new user on Debian 13 with python3 and pipx from Debian.

It runs in the trixie root (.ci/roots.sh, /work/shared/modern-stack.md) as a user made for this
test, in a copy of this checkout the user owns (what `git clone` gives), in one shell: the
install must work, and the check must run in that same shell (exit 0 or 1, a report naming
the root's Podman). After a new login the command is on PATH (Debian's ~/.profile adds
~/.local/bin). Needs the roots: skips without them, fails in CI.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import roots
import stack

pytestmark = pytest.mark.realstack

REPO = Path(__file__).resolve().parent.parent
ROOT = "trixie"
# The host's TLS setup for the package index, put into each root by roots.sh (modern-stack.md).
# This is the CI machine's plumbing, not a step of the user's.
INDEX_ENV = {"PIP_CERT": "/etc/ssl/rd-host-ca.crt", "SSL_CERT_FILE": "/etc/ssl/rd-host-ca.crt"}


def readme_first_line() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(r"^```(?:sh|bash|console)?\n(.*?)^```", text, re.M | re.S)
    assert block, "README.md has no code block"
    return block.group(1).splitlines()[0]


def _roots_sh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(stack.ROOTS_SH), *args], capture_output=True, text=True, timeout=60
    )


def _end_processes(uid: int) -> None:
    """SIGTERM, then SIGKILL, every process of ``uid`` (a user this test made and owns)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _uid(p) == uid]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
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
def new_user() -> Iterator[stack.User]:
    """A user made for this test in the trixie root, removed afterwards with what it ran."""
    roots.require(ROOT)
    if not (roots.root_dir(ROOT) / "usr/bin/pipx").exists():
        pytest.fail(f"no pipx in the {ROOT} root: bash .ci/roots.sh build {ROOT}")
    name = f"rdnew{os.getpid()}"
    cp = _roots_sh("adduser", ROOT, name)
    assert cp.returncode == 0, cp.stderr
    pw = roots._passwd(ROOT, name)
    assert pw is not None
    uid, gid = int(pw[2]), int(pw[3])
    u = stack.User(name, uid, gid, pw[5], f"/run/user/{uid}", str(roots.root_dir(ROOT)))
    try:
        yield u
    finally:
        stack.run_as(u, ["podman", "system", "migrate"])  # podman's pause process
        _end_processes(uid)
        _roots_sh("enter", ROOT, "userdel", "-r", name)
        shutil.rmtree(u.host_path(u.runtime_dir), ignore_errors=True)


def test_readme_first_line_installs_and_checks(new_user: stack.User) -> None:
    u = new_user
    line = readme_first_line()
    assert "pipx install ." in line  # the install Debian allows an unprivileged user
    clone = u.host_path(u.home) / "rootless-doctor"
    shutil.copytree(
        REPO,
        clone,
        ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".*_cache"),
    )
    subprocess.run(["chown", "-R", f"{u.uid}:{u.gid}", str(clone)], check=True)

    # As typed: in the clone, the README's line verbatim, one shell.
    env = stack.user_env(u, **INDEX_ENV)
    cp = stack.run_as(u, ["bash", "-c", f"cd rootless-doctor && {line}"], env=env, timeout=600)
    out = cp.stdout + cp.stderr
    assert cp.returncode in (0, 1), out  # 0/1: the check ran (1: it found something)
    assert "installed package rootless-doctor" in out, out
    assert "Traceback" not in out, out
    assert re.search(r"podman 5\.4\.\d", cp.stdout, re.I), cp.stdout  # the root's Podman, found

    # After a new login the command is on PATH.
    login = stack.run_as(u, ["bash", "-lc", "command -v rootless-doctor"])
    assert login.stdout.strip() == f"{u.home}/.local/bin/rootless-doctor", login.stderr
