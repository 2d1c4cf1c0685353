"""Real-stack harness for the Debian roots (.ci/roots.sh): the engines users run today.

Not a test module. ``/srv/stacks/trixie`` and ``/srv/stacks/sid`` are Debian root filesystems
next to the host (Podman 5.4 / 5.8, Docker 26 / 28, RootlessKit 2, passt 2025 / 2026, Python 3.13
/ 3.14), built by ``bash .ci/roots.sh build``. A root's user is a :class:`stack.User` with
``root`` set: every helper of tests/stack.py (podman containers, rootless dockerd, the busybox
rootfs, leftovers) then runs inside the root through ``.ci/roots.sh user`` -- pivot_root in a
private mount namespace, setpriv, ``env -i``, all exec'd, so the PID held is the program's own.

The roots share the host's network namespace: the test client namespace and veth of
:func:`stack.client_netns` (10.200.0.1 / 10.200.0.2) work unchanged, and traffic stays there.
The tool under test is the checkout installed into each root by the root's own python3
(``/opt/rootless-doctor``, ``RD_ROOT_TOOL`` to use another venv inside the roots).
Facts and addresses a server saw: /work/shared/modern-stack.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import stack

STACKS = os.environ.get("RD_STACKS", "/srv/stacks")
ROOTS = ("trixie", "sid")
MARKER = ".rd-root-complete"  # written by .ci/roots.sh once mmdebstrap finished
TOOL_VENV = os.environ.get("RD_ROOT_TOOL_VENV", "/opt/rootless-doctor")
HINT = "run: sudo bash .ci/roots.sh build"
# The root's rootless-doctor and podman-compose (same venv), as its user runs them.
TOOL = f"{TOOL_VENV}/bin/rootless-doctor"
PODMAN_COMPOSE = f"{TOOL_VENV}/bin/podman-compose"


def root_dir(root: str) -> Path:
    return Path(STACKS, root)


def _passwd(root: str, name: str) -> list[str] | None:
    try:
        lines = (root_dir(root) / "etc/passwd").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        f = line.split(":")
        if len(f) >= 7 and f[0] == name:
            return f
    return None


def missing(root: str) -> str | None:
    """None when real-stack tests can run in ``root``, else one line naming what is missing."""
    r = root_dir(root)
    if os.geteuid() != 0:
        return f"root tests run as root (the stack runs as {stack.STACK_USER} in {r}); {HINT}"
    if not (r / MARKER).is_file():
        return f"{r} is not built; {HINT}"
    if not os.path.ismount(r / "proc") or not os.path.ismount(r / "run"):
        return f"{r} is not mounted; run: sudo bash .ci/roots.sh mount {root}"
    pw = _passwd(root, stack.STACK_USER)
    if pw is None:
        return (
            f"no user {stack.STACK_USER} in {r}; run: sudo bash .ci/roots.sh adduser {root} "
            f"{stack.STACK_USER}"
        )
    if not (r / f"run/user/{pw[2]}").is_dir():
        return f"{r}/run/user/{pw[2]} is missing; run: sudo bash .ci/roots.sh mount {root}"
    if not os.access(f"{r}{TOOL}", os.X_OK):
        return f"no {r}{TOOL}; run: sudo bash .ci/roots.sh tool {root}"
    return None


def require(root: str) -> None:
    """Skip the calling test when ``root`` is not usable; fail instead when ``CI=true``."""
    import pytest

    reason = missing(root)
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"real stack required in CI: {reason}")
    pytest.skip(reason)


def user(root: str) -> stack.User:
    """The stack user (``RDSTACK_USER``, default rdtest) inside ``root``."""
    pw = _passwd(root, stack.STACK_USER)
    if pw is None:
        raise stack.StackError(f"no user {stack.STACK_USER} in {root_dir(root)}")
    uid, gid = int(pw[2]), int(pw[3])
    return stack.User(pw[0], uid, gid, pw[5], f"/run/user/{uid}", str(root_dir(root)))


def versions(u: stack.User) -> dict[str, str]:
    """The first line of ``--version`` of each engine part inside the root (for messages)."""
    out = {}
    for prog in ("podman", "dockerd", "rootlesskit", "pasta", "slirp4netns", "python3"):
        cp = stack.run_as(u, [prog, "--version"], timeout=20)
        out[prog] = (cp.stdout or cp.stderr).strip().splitlines()[0] if cp.returncode == 0 else "?"
    return out
