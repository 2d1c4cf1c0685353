"""The console entry point: ``rootless-doctor`` → :func:`main`.

A one-shot command's wall time is mostly start-up (bench/check.py measures it):

- A live ``check`` waits mostly on ``podman info`` (~200 ms). Starting the engine queries here,
  before Typer and the checks are imported, lets Python's start-up run while the engines answer;
  host.gather() takes the running queries over.
- The garbage collector is off while the modules load (they create many long-lived objects and
  no garbage), then the survivors are frozen out of its way and it is switched back on.
- At the end the process exits without tearing the interpreter down (module and object
  cleanup that a finished command has no use for, ~7 ms): output is flushed and the engine
  queries nobody took over are ended first.
"""

from __future__ import annotations

import gc
import os
import sys


def _live_check(args: list[str]) -> bool:
    if not args or args[0] != "check":
        return False
    return not any(a in ("--help", "--from") or a.startswith("--from=") for a in args[1:])


def main() -> None:
    gc.disable()
    if _live_check(sys.argv[1:]):
        from . import host

        host.prefetch(host.default_paths())
    from .cli import main as cli_main

    gc.freeze()
    gc.enable()
    code: object = 0
    try:
        cli_main()
    except SystemExit as done:
        code = done.code
    _exit(code)


def _exit(code: object) -> None:
    """Leave as ``sys.exit(code)`` would, minus the interpreter's teardown."""
    if "rootless_doctor.host.runner" in sys.modules:  # something may have been started
        sys.modules["rootless_doctor.host.runner"].PREFETCHED.end()
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): printed, status 1
        print(code, file=sys.stderr)
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`): nothing more to say
            status = status or 1
    os._exit(status)
