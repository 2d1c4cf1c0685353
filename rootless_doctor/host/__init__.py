"""The one door to the OS: /proc, /sys, /etc, ~/.config, sockets, subprocesses.

Every path is built from a :class:`HostPaths` (``paths.at("/etc/subuid")``, ``paths.home``,
``paths.config_dir``), so a test builds a whole fake host in a temp dir out of real captured files.
Every command goes through one runner (:func:`run` by default; tests inject one that serves
captured outputs). Text is handed to :mod:`rootless_doctor.parse`; what comes back is plain data
(:class:`HostFacts`). Nothing here raises for a missing binary, a hung CLI or an unreadable file:
it becomes ``None`` plus a note saying why.

One module per subject (a question → its file):

- ``run``: the subprocess runner (timeouts, never raises), the prefetched queries, the thread pool
- ``files``: bounded file reads on a (fake) root
- ``identity``: whose host: user, home, runtime/config dirs, environment, PATH lookups;
  the owner a fix writes for (SUDO_USER under sudo), is this process root
- ``gather``: :func:`gather`, the top level, and the engine queries :func:`prefetch` starts early
- ``system``: prerequisites, tool versions, user manager, firewall, compose file, processes
- ``podman`` / ``docker`` / ``rootlesskit``: each engine's files, CLI output and processes
- ``containers``: the ps → inspect chain, interfaces inside a container's netns
- ``layout``: what the probe asks about this host (addresses, top-level dirs, python, busybox)

Callers import this package (``from . import host``) and use the names below.
"""

from __future__ import annotations

from .containers import container_interfaces
from .gather import ENGINES, cli_env, gather, prefetch
from .identity import default_paths, is_root, owner_paths, target_owner, which
from .layout import is_local_address, local_addresses, root_layout, static_busybox, usr_python
from .podman import containers_conf_files
from .rootlesskit import api_request, rootlesskit_child_pid
from .run import PREFETCHED, Runner, run
from .system import COMPOSE_NAMES, find_compose

__all__ = [
    "COMPOSE_NAMES",
    "ENGINES",
    "PREFETCHED",
    "Runner",
    "api_request",
    "cli_env",
    "container_interfaces",
    "containers_conf_files",
    "default_paths",
    "find_compose",
    "gather",
    "is_local_address",
    "is_root",
    "local_addresses",
    "owner_paths",
    "prefetch",
    "root_layout",
    "rootlesskit_child_pid",
    "run",
    "static_busybox",
    "target_owner",
    "usr_python",
    "which",
]
