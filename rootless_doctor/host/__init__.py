"""The one door to the OS: /proc, /sys, /etc, ~/.config, sockets, subprocesses.

Every path is built from a :class:`HostPaths` (``paths.at("/etc/subuid")``, ``paths.home``,
``paths.config_dir``), so a test builds a whole fake host in a temp dir out of real captured files.
Every command goes through one runner (:func:`run` by default; tests inject one that serves
captured outputs). Text is handed to :mod:`rootless_doctor.parse`; what comes back is plain data
(:class:`HostFacts`). Nothing here raises for a missing binary, a hung CLI or an unreadable file:
it becomes ``None`` plus a note saying why.

One module per subject (a question → its file):

- ``runner``: the subprocess runner (timeouts, never raises), prefetched queries, gather's tasks
- ``files``: bounded file reads on a (fake) root
- ``identity``: whose host: user, home, runtime/config dirs, environment, PATH lookups;
  the owner a fix writes for (SUDO_USER under sudo), is this process root
- ``early``: :func:`prefetch`, what a live check starts before the CLI loads (the first Podman
  query first, from the few modules it needs); ``gathering``: :func:`gather`, the top level
- ``system``: prerequisites, tool versions, user manager, firewall, compose file, processes
- ``composefiles``: a compose file's ``.env`` and ``env_file:`` files (bounded reads)
- ``podman`` / ``docker`` / ``rootlesskit``: each engine's files, CLI output and processes
- ``podman_info``: the fields check reads of ``podman info``, from their sources where proven
- ``containers``: the ps → inspect chain, interfaces inside a container's netns
- ``daemon``: the running rootless dockerd as a process (for a restart without systemd)
- ``layout``: what the probe asks about this host (addresses, top-level dirs, python, busybox)

Callers import this package (``from . import host``) and use the names below. Each name is
imported from its module when first used (:func:`__getattr__`): ``check --from`` reads its files
through :mod:`.files` without loading the subprocess, engine and probe modules it never runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .composefiles import compose_env
    from .containers import container_interfaces
    from .daemon import docker_launch
    from .early import prefetch
    from .files import is_socket, read_archive, read_pasted
    from .gathering import ENGINES, cli_env, gather
    from .identity import (
        default_paths,
        environment,
        hostname,
        is_root,
        owner_paths,
        runtime_path,
        target_owner,
        which,
        working_dir,
    )
    from .layout import (
        is_local_address,
        local_addresses,
        port_listening,
        root_layout,
        static_busybox,
        usr_python,
    )
    from .podman import containers_conf_files
    from .rootlesskit import api_request, rootlesskit_child_pid
    from .runner import PREFETCHED, Runner, run
    from .system import COMPOSE_NAMES, find_compose, given_compose

# Where each public name lives (the lazy door below reads it).
_WHERE = {
    "COMPOSE_NAMES": "system",
    "ENGINES": "gathering",
    "PREFETCHED": "runner",
    "Runner": "runner",
    "api_request": "rootlesskit",
    "cli_env": "gathering",
    "compose_env": "composefiles",
    "container_interfaces": "containers",
    "containers_conf_files": "podman",
    "default_paths": "identity",
    "docker_launch": "daemon",
    "environment": "identity",
    "find_compose": "system",
    "gather": "gathering",
    "given_compose": "system",
    "hostname": "identity",
    "is_local_address": "layout",
    "is_socket": "files",
    "is_root": "identity",
    "local_addresses": "layout",
    "port_listening": "layout",
    "owner_paths": "identity",
    "prefetch": "early",
    "read_archive": "files",
    "read_pasted": "files",
    "root_layout": "layout",
    "runtime_path": "identity",
    "rootlesskit_child_pid": "rootlesskit",
    "run": "runner",
    "static_busybox": "layout",
    "target_owner": "identity",
    "usr_python": "layout",
    "which": "identity",
    "working_dir": "identity",
}
_SUBMODULES = (
    "composefiles",
    "containers",
    "daemon",
    "docker",
    "files",
    "gathering",
    "identity",
    "layout",
    "podman",
    "rootlesskit",
    "runner",
    "system",
)

__all__ = [
    "COMPOSE_NAMES",
    "ENGINES",
    "PREFETCHED",
    "Runner",
    "api_request",
    "cli_env",
    "compose_env",
    "container_interfaces",
    "containers_conf_files",
    "default_paths",
    "docker_launch",
    "environment",
    "find_compose",
    "gather",
    "given_compose",
    "hostname",
    "is_local_address",
    "is_root",
    "is_socket",
    "local_addresses",
    "owner_paths",
    "port_listening",
    "prefetch",
    "read_archive",
    "read_pasted",
    "root_layout",
    "rootlesskit_child_pid",
    "run",
    "runtime_path",
    "static_busybox",
    "target_owner",
    "usr_python",
    "which",
    "working_dir",
]


def __getattr__(name: str) -> object:
    """``host.NAME``: import NAME's module on first use (PEP 562) and keep the value here."""
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
