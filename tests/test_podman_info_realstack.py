"""podman info's fields from their sources equal ``podman info`` on every real stack.

As the stack user on the host (Podman 4.3.1) and inside the trixie and sid roots (5.4.2, 5.8.6),
the tool under test gathers the Podman facts twice: as a live check does (its sources) and with
``podman info`` itself. The fields check reads must be equal, with the user's own
containers.conf, with a drop-in that changes the rootless network command and the network
backend, and (host, Podman 4.3 keeps a recorded ``cni``) with the store's recorded backend
changed. Offline counterparts from captured files: tests/test_podman_info.py.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import rdtool
import roots
import stack
from conftest import stack_user

from rootless_doctor.host import podman_info as pi

pytestmark = pytest.mark.realstack

# Run as the user by the tool's own python: both routes, the seven fields and the source note.
CODE = """
import json
from rootless_doctor import host
F = ("version", "rootless", "network_backend", "rootless_network_cmd",
     "rootless_port_forwarder", "pasta_version", "slirp4netns_version")
out = {}
for name, info in (("derived", False), ("info", True)):
    f = host.gather(host.default_paths(), interfaces=False, engines=("podman",), podman_info=info)
    out[name] = {"fields": {k: getattr(f.podman, k) for k in F},
                 "notes": [n for n in f.notes if n.startswith("podman:")]}
print(json.dumps(out))
"""


@pytest.fixture(scope="module", params=("host", *roots.ROOTS))
def su(request: pytest.FixtureRequest) -> stack.User:
    return stack_user(request.param)


def tool_python(u: stack.User) -> tuple[str, dict[str, str]]:
    """The python of the tool under test as ``u`` runs it, and the environment it needs."""
    prefix, extra = rdtool.argv(u)
    # [python, -m, rootless_doctor], or a console script: its venv's python
    py = prefix[0] if prefix[-1] == "rootless_doctor" else str(Path(prefix[0]).parent / "python")
    return py, extra


def both(u: stack.User) -> dict[str, Any]:
    py, extra = tool_python(u)
    env = stack.user_env(u, PODMAN_IGNORE_CGROUPSV1_WARNING="1", **extra)
    cp = stack.run_as(u, [py, "-c", CODE], env=env, timeout=120)
    assert cp.returncode == 0, cp.stderr[-2000:]
    got: dict[str, Any] = json.loads(cp.stdout)
    assert got["info"]["notes"] and got["info"]["notes"][0].startswith(pi.RAN), got
    return got


def major(u: stack.User) -> int:
    cp = stack.run_as(u, ["podman", "--version"], timeout=30)
    return int(cp.stdout.split()[-1].split(".")[0])


@contextmanager
def user_file(u: stack.User, rel: str, text: str) -> Iterator[None]:
    """``~/rel`` with ``text`` for the duration; the dirs it made, and ~/.config/cni when Podman
    made it (a CNI backend), are removed after, and the old text is put back."""
    home = u.host_path(u.home)
    path = home / rel
    new_dirs = [d for d in reversed(path.parents) if home in d.parents and not d.exists()]
    cni = home / ".config/cni"
    cni_new = not cni.exists()
    old = path.read_text() if path.exists() else None
    try:
        for d in new_dirs:
            d.mkdir()
            os.chown(d, u.uid, u.gid)
        path.write_text(text)
        os.chown(path, u.uid, u.gid)
        yield
    finally:
        if old is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(old)
        for d in reversed(new_dirs):
            shutil.rmtree(d, ignore_errors=True)
        if cni_new:
            shutil.rmtree(cni, ignore_errors=True)
        stack.podman_reset(u)


def test_derived_equals_podman_info(su: stack.User) -> None:
    got = both(su)
    assert got["derived"]["notes"][0].startswith(pi.DERIVED), got["derived"]["notes"]
    assert got["derived"]["fields"] == got["info"]["fields"]
    assert got["info"]["fields"]["version"]  # a real answer, not two empty ones
    stack.podman_reset(su)


def test_conf_drop_in_changes_both_alike(su: stack.User) -> None:
    """slirp4netns as the rootless network command; network_backend explicitly (cni on 4.3,
    netavark on 5.x, whose Debian builds have no CNI)."""
    five = major(su) >= 5
    backend = "netavark" if five else "cni"
    text = (
        f'[network]\ndefault_rootless_network_cmd = "slirp4netns"\nnetwork_backend = "{backend}"\n'
    )
    with user_file(su, ".config/containers/containers.conf.d/zz-rd-test-net.conf", text):
        got = both(su)
    derived, info = got["derived"], got["info"]
    assert derived["notes"][0].startswith(pi.DERIVED), derived["notes"]
    assert derived["fields"] == info["fields"]
    assert info["fields"]["network_backend"] == backend
    # Podman 5.1+ reports the conf's choice; 4.3 has no such field
    assert info["fields"]["rootless_network_cmd"] == ("slirp4netns" if five else None)


def test_recorded_backend_is_read_like_podman(su: stack.User) -> None:
    """The store's defaultNetworkBackend says cni: Podman 4.3 keeps it; on 5.x (a build without
    CNI) check does not guess and runs podman info."""
    rel = ".local/share/containers/storage/defaultNetworkBackend"
    if not su.host_path(f"{su.home}/{rel}").exists():
        both(su)  # the first podman info records it
    five = major(su) >= 5
    with user_file(su, rel, "cni"):
        got = both(su)
    if five:
        assert got["derived"]["notes"][0].startswith(pi.RAN), got["derived"]["notes"]
    else:
        assert got["derived"]["notes"][0].startswith(pi.DERIVED)
        assert got["info"]["fields"]["network_backend"] == "cni"
    assert got["derived"]["fields"] == got["info"]["fields"]


# prefetch() as a live check starts it (entry.head_start), then gather(): what is left unclaimed.
PREFETCH_CODE = """
import json
from rootless_doctor import host
from rootless_doctor.host.runner import PREFETCHED
p = host.default_paths()
host.prefetch(p)
f = host.gather(p, interfaces=False)
print(json.dumps({"left": bool(PREFETCHED), "names": [c.name for c in f.podman.containers],
                  "notes": [n for n in f.notes if n.startswith("podman:")]}))
"""


def test_prefetch_starts_the_inspect_gather_takes_over(u: stack.User) -> None:
    """With a running container, prefetch's process list names it (its conmon) and starts
    `podman inspect` early; gather() takes that very process over (nothing left unclaimed)."""
    py, extra = tool_python(u)
    with stack.podman_container(u, network=None, name="rd-prefetch"):
        cp = stack.run_as(u, [py, "-c", PREFETCH_CODE], env=stack.user_env(u, **extra))
    assert cp.returncode == 0, cp.stderr[-2000:]
    got = json.loads(cp.stdout)
    assert "rd-prefetch" in got["names"], got
    assert got["left"] is False, got
    assert got["notes"][0].startswith(pi.DERIVED), got
    stack.podman_reset(u)
