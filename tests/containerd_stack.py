"""A real rootless containerd, as nerdctl's launcher runs it, for the real-stack tests.

nerdctl is packaged neither by Debian nor on PyPI, so its launcher (`containerd-rootless.sh`,
nerdctl extras/rootless) is not here. What it does is documented, and that is what this
reproduces with Debian's own rootlesskit and containerd:

- rootlesskit with the launcher's flags (nerdctl `extras/rootless/containerd-rootless.sh`,
  8da5040):
  ``--state-dir=$XDG_RUNTIME_DIR/containerd-rootless --net=slirp4netns --mtu=65520
  --slirp4netns-sandbox=auto --slirp4netns-seccomp=auto --disable-host-loopback
  --port-driver=<driver> --copy-up=/etc --copy-up=/run --copy-up=/var/lib --propagation=rslave``,
  then ``$CONTAINERD_ROOTLESS_ROOTLESSKIT_FLAGS``;
- its child execs containerd (the launcher bind-mounts ~/.local/share/containerd over
  /var/lib/containerd and $XDG_RUNTIME_DIR/containerd over /run/containerd; containerd's own
  ``--root``/``--state``/``--address`` flags put the same directories in place without mounts);
- ``nerdctl run -p HOST:CTR`` asks RootlessKit's API for parent HOST → child HOST
  (pkg/rootlessutil/port_linux.go: ``ChildPort: HostPort``) and CNI's portmap takes it on to the
  container: the address RootlessKit delivers in the child namespace is what the container sees.
  Here the peer server listens on the child port itself, entered with nsenter.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import stack

STATE_NAME = "containerd-rootless"  # the launcher's default state dir under $XDG_RUNTIME_DIR

_CHILD = """\
set -e
mkdir -p "$XDG_RUNTIME_DIR/containerd" "$HOME/.local/share/containerd"
exec containerd --root "$HOME/.local/share/containerd" --state "$XDG_RUNTIME_DIR/containerd" \
  --address "$XDG_RUNTIME_DIR/containerd/containerd.sock" --config /dev/null
"""


@dataclass(frozen=True)
class RootlessContainerd:
    """The running rootlesskit (PID), its state dir, and the port published through it."""

    pid: int
    state_dir: str
    host_port: int


def launcher_argv(u: stack.User, net: str, port_driver: str, flags: str = "") -> list[str]:
    """rootlesskit's argv as containerd-rootless.sh builds it (MTU 65520 for slirp4netns)."""
    return [
        "rootlesskit",
        f"--state-dir={u.runtime_dir}/{STATE_NAME}",
        f"--net={net}",
        "--mtu=65520",
        "--slirp4netns-sandbox=auto",
        "--slirp4netns-seccomp=auto",
        "--disable-host-loopback",
        f"--port-driver={port_driver}",
        "--copy-up=/etc",
        "--copy-up=/run",
        "--copy-up=/var/lib",
        "--propagation=rslave",
        *flags.split(),
        "sh",
        "-c",
        _CHILD,
    ]


@contextmanager
def rootless_containerd(
    u: stack.User, port_driver: str = "builtin", net: str = "slirp4netns", flags: str = ""
) -> Iterator[RootlessContainerd]:
    """Run rootless containerd as ``u`` and publish a free host port to a peer server."""
    tmp = stack._user_tmpdir(u, "rd-containerd-")
    log = tmp / "containerd.log"
    state = Path(u.runtime_dir, STATE_NAME)
    sock = Path(u.runtime_dir, "containerd/containerd.sock")
    host_port = stack.free_port()
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, tmp, ignore_errors=True)
        # containerd's state and data (the user's own dirs, made by the child): gone afterwards
        cleanup.callback(shutil.rmtree, Path(u.runtime_dir, "containerd"), ignore_errors=True)
        cleanup.callback(shutil.rmtree, Path(u.home, ".local/share/containerd"), True)
        with open(log, "wb") as out:
            proc = stack.spawn_as(
                u, launcher_argv(u, net, port_driver, flags), stdout=out, stderr=subprocess.STDOUT
            )
        cleanup.callback(stack._stop, proc, 30)
        stack._wait_for(
            lambda: sock.exists() and (state / "child_pid").exists(),
            "rootless containerd",
            30,
            proc,
            log,
        )
        child = (state / "child_pid").read_text().strip()
        peer = stack.spawn_as(
            u,
            ["nsenter", "-U", "--preserve-credentials", "-n", "-t", child,
             "python3", "-c", stack.PEER_SERVER, str(host_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        cleanup.callback(stack._stop, peer)
        spec = f"0.0.0.0:{host_port}:{host_port}/tcp"
        api = str(state / "api.sock")
        add = stack.run_as(u, ["rootlessctl", "--socket", api, "add-ports", spec], timeout=10)
        stack._check(add, "rootlessctl add-ports")
        yield RootlessContainerd(proc.pid, str(state), host_port)
