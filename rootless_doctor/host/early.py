""":func:`prefetch`: what a live check starts before the CLI framework and the checks load.

The first Podman query (``podman --version``, or ``podman info`` where its answers cannot be read
from their sources) starts first, from the few modules it needs (identity, runner,
podman_info); the rest (``docker version``, the tools' ``--version``, the process list and
``podman inspect``) once :mod:`.gathering` is imported. gather() takes all of it over (same
argv and environment through ``PREFETCHED``)."""

from __future__ import annotations

from ..model import HostPaths
from .identity import engine_env, locate
from .podman_info import euid_of, first_query
from .runner import PREFETCHED


def prefetch(paths: HostPaths) -> None:
    env = engine_env(paths)
    podman = locate(paths, "podman")
    if podman:
        _, argv = first_query(podman[1].as_posix(), podman[1], env, euid_of(paths))
        PREFETCHED.start(argv, dict(env))
    from .gathering import prefetch_rest

    prefetch_rest(paths, env)
    if PREFETCHED:
        import atexit

        atexit.register(PREFETCHED.end)
