"""The console entry point: ``rootless-doctor`` → :func:`main`.

A live ``check`` waits mostly on ``podman info`` (~200 ms). Starting the engine queries here,
before Typer and the checks are imported, lets Python's start-up run while the engines answer
(bench/check.py measures it); host.gather() takes the running queries over.
"""

from __future__ import annotations

import sys


def _live_check(args: list[str]) -> bool:
    if not args or args[0] != "check":
        return False
    return not any(a in ("--help", "--from") or a.startswith("--from=") for a in args[1:])


def main() -> None:
    if _live_check(sys.argv[1:]):
        from . import host

        host.prefetch(host.default_paths())
    from .cli import main as cli_main

    cli_main()
