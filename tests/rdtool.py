"""Run the rootless-doctor under test as the unprivileged stack user.

CI sets RD_TOOL to the console script of a world-readable install (.ci/run). Elsewhere the
package is copied once per test session to a world-readable temp dir and run with a python the
user can execute, the deps coming from the venv running the tests.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import site
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import roots
import stack

REPO = Path(__file__).resolve().parent.parent


@cache
def _copy(u: stack.User) -> tuple[list[str], dict[str, str]]:
    tmp = Path(tempfile.mkdtemp(prefix="rd-tool-"))
    atexit.register(shutil.rmtree, tmp, True)
    shutil.copytree(REPO / "rootless_doctor", tmp / "rootless_doctor")
    # The reference files ship in the package (pyproject package-dir): mirror that mapping.
    shutil.copytree(REPO / "systemd", tmp / "rootless_doctor" / "ref_systemd", dirs_exist_ok=True)
    shutil.copytree(REPO / "podman", tmp / "rootless_doctor" / "ref_podman", dirs_exist_ok=True)
    subprocess.run(["chmod", "-R", "a+rX", str(tmp)], check=True)
    paths = [str(tmp), *site.getsitepackages()]
    py = sys.executable
    if stack.run_as(u, [py, "-c", "pass"]).returncode != 0:
        py = "/usr/bin/python3"  # this interpreter may live where the user cannot reach (/root)
    return [py, "-m", "rootless_doctor"], {"PYTHONPATH": ":".join(paths)}


def argv(u: stack.User) -> tuple[list[str], dict[str, str]]:
    """(argv prefix, extra environment) that run the tool as ``u``."""
    if u.root:  # a Debian root's user: the checkout installed there by the root's python3
        return [roots.TOOL], {}
    if os.environ.get("RD_TOOL"):
        return [os.environ["RD_TOOL"]], {}
    return _copy(u)


def run(
    u: stack.User, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``rootless-doctor ARGS`` as ``u`` (its usual environment plus ``env``)."""
    prefix, extra = argv(u)
    e = stack.user_env(u)
    e.update(extra)
    e.update(env or {})
    return stack.run_as(u, [*prefix, *args], env=e, timeout=timeout)


def check_json(u: stack.User, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``rootless-doctor check --json`` as ``u``; exit 0 or 1 (findings), parsed."""
    cp = run(u, "check", "--json", *args, env=env)
    assert cp.returncode in (0, 1), f"check exited {cp.returncode}: {cp.stderr.strip()}"
    data: dict[str, Any] = json.loads(cp.stdout)
    return data
