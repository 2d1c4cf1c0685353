"""The console entry point: ``rootless-doctor`` → :func:`main`.

A one-shot command's wall time is mostly start-up (bench/check.py measures it):

- A live ``check`` waits mostly on ``podman info`` (~200 ms). Starting the engine queries here,
  before Typer and the checks are imported, lets Python's start-up run while the engines answer;
  host.gather() takes the running queries over. :func:`head_start` is the only code that reads
  argv before Typer does, and ``host.PREFETCHED`` the only place the queries wait.
- The garbage collector is off while the modules load (they create many long-lived objects and
  no garbage), then the survivors are frozen out of its way and it is switched back on.
- Modules load when their command needs them, so a ``check --from`` loads only the pure side
  (tests/test_startup.py lists what it must not load): commands import their implementation
  inside the command function, host/ imports each name's module on first use, and cli.py's
  ``Commands`` builds the ``fix`` group (cli_fix.py) only when it is asked for. cli.py keeps
  its annotations as objects (Typer reads them at each start), and render.py writes its colour
  codes itself instead of importing Rich (~25 ms; Typer still uses Rich for help and errors).
- What stays (issue 12, measured on Python 3.11): the interpreter's start (~12 ms) and
  ``import typer`` (~42 ms, gc off) are the floor of any run, above the 50 ms once wished for
  ``check --from``; model.py's 25 frozen dataclasses cost ~17 ms (3.11 compiles six methods
  each), kept because records are compared (==), shown (repr) and must not change (frozen).
- At the end the process exits without tearing the interpreter down (module and object
  cleanup that a finished command has no use for, ~7 ms): output is flushed and the engine
  queries nobody took over are ended first.
"""

from __future__ import annotations

import gc
import os
import sys


def head_start(args: list[str]) -> None:
    """The one start-up trick that reads argv, before Typer parses it: for a live ``check`` (not
    ``--help``, not ``--from``), start the engine queries now. They wait in ``host.PREFETCHED``
    until gather() asks for the same command; :func:`end_head_start` stops what nobody claimed.
    Any other command starts nothing."""
    if not args or args[0] != "check":
        return
    if any(a in ("--help", "--from") or a.startswith("--from=") for a in args[1:]):
        return
    from . import host

    host.prefetch(host.default_paths())


def end_head_start() -> None:
    """End the head-started queries nobody took over (only if any module ran a command)."""
    runner = sys.modules.get("rootless_doctor.host.runner")
    if runner is not None:
        runner.PREFETCHED.end()


def main() -> None:
    code: object = 0
    try:
        gc.disable()
        head_start(sys.argv[1:])
        from .cli import main as cli_main

        gc.freeze()
        gc.enable()
        cli_main()
    except SystemExit as done:
        code = done.code
    except KeyboardInterrupt:  # Ctrl-C while the modules load (cli.main handles it later)
        print("rootless-doctor: interrupted", file=sys.stderr)
        code = 130
    _exit(code)


def _exit(code: object) -> None:
    """Leave as ``sys.exit(code)`` would, minus the interpreter's teardown."""
    end_head_start()
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
