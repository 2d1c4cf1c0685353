"""The one door for subprocesses: :func:`run` (timeouts, never raises), the engine queries
started early by :func:`rootless_doctor.host.prefetch`, and :class:`Cmds`, which runs the CLIs
of :func:`~rootless_doctor.host.gather` side by side, each on a thread of its own."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

from ..model import CmdOutput

T = TypeVar("T")


class Runner(Protocol):
    """What :func:`run` looks like; tests pass their own to serve captured outputs."""

    def __call__(
        self,
        argv: Sequence[str],
        *,
        timeout: float = ...,
        env: Mapping[str, str] | None = ...,
    ) -> CmdOutput: ...


def run(
    argv: Sequence[str], *, timeout: float = 5.0, env: Mapping[str, str] | None = None
) -> CmdOutput:
    """Run ``argv`` and capture its output. Never raises.

    A missing binary gives ``error="not installed"``; on timeout the child's whole process group
    (it runs in a new session, so only what this call started) is killed and
    ``error="timed out after N s"``.
    """
    args = tuple(str(a) for a in argv)
    started = PREFETCHED.take(args, env) or start(args, env)
    if isinstance(started, CmdOutput):
        return started
    return _collect(started, args, timeout)


def start(
    args: tuple[str, ...], env: Mapping[str, str] | None
) -> subprocess.Popen[bytes] | CmdOutput:
    try:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    except FileNotFoundError:
        return CmdOutput(argv=args, error="not installed")
    except PermissionError:
        return CmdOutput(argv=args, error="not executable (permission denied)")
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        return CmdOutput(argv=args, error=f"could not start: {e}")


# An engine's answer is KiBs (podman inspect of hundreds of containers: a few MiB). A CLI that
# prints without end (a wrapper looping, `yes`) is stopped there instead of filling memory.
MAX_STDOUT = 8 << 20
MAX_STDERR = 1 << 20


def _collect(proc: subprocess.Popen[bytes], args: tuple[str, ...], timeout: float) -> CmdOutput:
    out, err, error = _read_bounded(proc, timeout)
    if error is None:
        try:
            proc.wait(1.0)  # it closed its output: it is ending
        except subprocess.TimeoutExpired:
            error = f"timed out after {timeout:g} s"
    if error is not None:
        # Stop it: the whole process group (a new session, so only what this call started).
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()  # a grandchild that left the group may still hold the other end
        proc.wait()
        return CmdOutput(argv=args, stdout=_text(out), stderr=_text(err), error=error)
    return CmdOutput(argv=args, code=proc.returncode, stdout=_text(out), stderr=_text(err))


def _read_bounded(proc: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, bytes, str | None]:
    """Read stdout and stderr until both end, the deadline passes or one exceeds its cap:
    (stdout, stderr, None) or what was read so far and why it stopped."""
    import selectors
    import time

    deadline = time.monotonic() + timeout
    caps: dict[int, tuple[bytearray, int, str]] = {}
    for pipe, cap, what in (
        (proc.stdout, MAX_STDOUT, "output"),
        (proc.stderr, MAX_STDERR, "error output"),
    ):
        if pipe is not None:
            caps[pipe.fileno()] = (bytearray(), cap, what)
    with selectors.DefaultSelector() as sel:
        for fd in caps:
            sel.register(fd, selectors.EVENT_READ)
        error = None
        while sel.get_map() and error is None:
            left = deadline - time.monotonic()
            if left <= 0:
                error = f"timed out after {timeout:g} s"
                break
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                buf, cap, what = caps[key.fd]
                buf += chunk
                if len(buf) > cap:
                    del buf[cap:]
                    error = f"{what} truncated at {cap >> 20} MiB (it printed more); stopped it"
                    break
    out = bytes(caps[proc.stdout.fileno()][0]) if proc.stdout is not None else b""
    err = bytes(caps[proc.stderr.fileno()][0]) if proc.stderr is not None else b""
    return out, err, error


def _text(b: bytes | None) -> str:
    return (b or b"").decode("utf-8", errors="replace")


_Key = tuple[tuple[str, ...], tuple[tuple[str, str], ...] | None]


class Prefetched:
    """Commands started ahead of the code that wants their output, keyed by (argv, env).

    The one piece of state in this package, and the one door to it: :data:`PREFETCHED`.
    ``entry.py`` fills it (through :func:`rootless_doctor.host.prefetch`) before the CLI is
    imported; :func:`run` takes a started command over when it is asked for exactly that argv and
    environment; :meth:`end` stops what nobody took over (only processes started here, by their
    process group).
    """

    def __init__(self) -> None:
        self._started: dict[_Key, subprocess.Popen[bytes] | CmdOutput] = {}
        self._kept: dict[Hashable, Any] = {}  # reads made early (the process list)

    @staticmethod
    def _key(args: tuple[str, ...], env: Mapping[str, str] | None) -> _Key:
        return args, (tuple(sorted(env.items())) if env is not None else None)

    def start(self, argv: Sequence[str], env: Mapping[str, str] | None) -> None:
        args = tuple(str(a) for a in argv)
        self._started[self._key(args, env)] = start(args, env)

    def take(
        self, args: tuple[str, ...], env: Mapping[str, str] | None
    ) -> subprocess.Popen[bytes] | CmdOutput | None:
        return self._started.pop(self._key(args, env), None) if self._started else None

    def keep(self, key: Hashable, value: object) -> None:
        """Keep ``value`` (a read made early: the process list) for :meth:`claim`."""
        self._kept[key] = value

    def claim(self, key: Hashable) -> Any:
        """The value kept under ``key`` (once), or None."""
        return self._kept.pop(key, None) if self._kept else None

    def __bool__(self) -> bool:
        return bool(self._started) or bool(self._kept)

    def end(self) -> None:
        """End the prefetched commands nobody took over (only ours, by process group)."""
        self._kept.clear()
        for started in self._started.values():
            if isinstance(started, subprocess.Popen) and started.poll() is None:
                with contextlib.suppress(OSError):
                    os.killpg(started.pid, signal.SIGKILL)
                started.wait()
        self._started.clear()


# The commands prefetch() started for this process; run() takes them over.
PREFETCHED = Prefetched()


class Task(Generic[T]):
    """``fn(*args)`` running on a thread of its own; :meth:`result` waits for its value (or
    raises what it raised). A check runs a dozen of these at most, each mostly waiting on a
    subprocess: a thread each, not concurrent.futures, whose import (with logging) costs ~5 ms
    of every live check."""

    def __init__(self, fn: Callable[..., T], *args: object) -> None:
        self._fn, self._args = fn, args
        self._done = threading.Event()
        self._value: T | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, name="rd-host", daemon=True).start()

    def _run(self) -> None:
        try:
            self._value = self._fn(*self._args)
        except BaseException as e:  # handed to whoever asks for the result
            self._error = e
        finally:
            self._done.set()

    def result(self) -> T:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # set: the call returned


class Cmds:
    """Runs the CLIs side by side, each on a thread of its own (a :class:`Task`)."""

    def __init__(self, runner: Runner, env: Mapping[str, str], timeout: float) -> None:
        self.runner = runner
        self.env = dict(env)
        self.timeout = timeout
        self.ran: list[CmdOutput] = []

    def call(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> CmdOutput:
        out = self.runner(argv, timeout=self.timeout, env=env if env is not None else self.env)
        self.ran.append(out)
        return out

    def submit(self, fn: Callable[..., T], *args: object) -> Task[T]:
        return Task(fn, *args)

    def cmd(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Task[CmdOutput]:
        return Task(self.call, argv, env)
