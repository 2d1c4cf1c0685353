"""Run rootless-doctor as a user meets it, with hostile input, and measure what it cost.

Not a test module (tests import it as ``import hostile``). Every run is a real process of the
installed console script (``RD_TOOL``) or of the package under test (``python -m
rootless_doctor``), so the tests do not depend on how the package is laid out inside.

Bounds (issue 11): every input and every engine answer gets exit 0/1/2 within the engine timeout
+ 1 s and under ~200 MB. Memory is measured, not timed: the child runs under an address-space
limit (``RLIMIT_AS``, as ``prlimit --as`` sets it) so a runaway cannot take the machine down, and
its peak resident set comes from ``wait4``'s rusage. Wall-clock bounds here only detect hangs and
are generous (the machine is shared; a linear run takes well under a second).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import stack

REPO = Path(__file__).resolve().parent.parent

MEM_BOUND_MB = 200  # the bound on peak resident memory
AS_LIMIT_MB = 1536  # hard address-space cap of the child: a runaway fails here, not the machine
STATE = ".local/state/rootless-doctor"  # the owner's state dir, relative to HOME
HANG_S = 60.0  # no correct run comes near this; a quadratic or endless one never finishes


@dataclass(frozen=True)
class Outcome:
    argv: tuple[str, ...]
    code: int | None  # None: killed after the hang bound
    stdout: str
    stderr: str
    maxrss_mb: float
    seconds: float

    @property
    def hung(self) -> bool:
        return self.code is None

    def describe(self) -> str:
        tail = self.stderr.strip().splitlines()[-3:]
        return (
            f"exit {self.code} after {self.seconds:.1f} s, peak {self.maxrss_mb:.0f} MB; "
            f"stderr: {' | '.join(tail)[:600]}"
        )


def tool(u: stack.User | None = None) -> tuple[list[str], dict[str, str]]:
    """(argv prefix, extra environment) that run the tool under test (as ``u`` when given)."""
    if os.environ.get("RD_TOOL"):
        return [os.environ["RD_TOOL"]], {}
    if u is not None:
        import rdtool

        return rdtool.argv(u)
    return [sys.executable, "-m", "rootless_doctor"], {"PYTHONPATH": str(REPO)}


def root_env(**extra: str) -> dict[str, str]:
    """A clean environment for a run as root (no NO_COLOR games, no debug switches)."""
    env = {
        "PATH": os.environ.get("PATH", stack.USER_PATH),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
    }
    env.update(extra)
    return env


def run(
    args: Sequence[str],
    *,
    u: stack.User | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | Path | None = None,
    cwd: str | Path | None = None,
    hang_s: float = HANG_S,
    as_limit_mb: int = AS_LIMIT_MB,
    sig_after: tuple[float, int] | None = None,
    wrap: Sequence[str] = (),
) -> Outcome:
    """``rootless-doctor ARGS`` as root (or as ``u``), bounded, measured.

    ``sig_after=(seconds, signum)`` sends a signal to the tool's process that long after start.
    ``wrap`` runs in front of it all (e.g. strace injecting faults), as root.
    """
    prefix, extra = tool(u)
    if u is not None:
        e = stack.user_env(u)
        e.update(extra)
        e.update(env or {})
        argv = stack._as_user_argv(u, [*prefix, *args], e)
        full_env: dict[str, str] | None = None
        cwd = cwd or u.home
    else:
        full_env = root_env()
        full_env.update(extra)
        full_env.update(env or {})
        argv = [*prefix, *args]
    argv = [*wrap, *argv]
    limit = as_limit_mb * 1024 * 1024

    def limit_child() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        stdin_file = None
        if isinstance(stdin, Path):
            stdin_file = open(stdin, "rb")  # noqa: SIM115 (closed below)
        elif isinstance(stdin, bytes):
            stdin_file = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
            stdin_file.write(stdin)
            stdin_file.seek(0)
        try:
            start = time.monotonic()
            proc = subprocess.Popen(
                argv,
                stdin=stdin_file if stdin_file is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=full_env,
                cwd=cwd,
                preexec_fn=limit_child,
            )
        finally:
            if stdin_file is not None:
                stdin_file.close()
        code, rss_kb = _wait(proc, start, hang_s, sig_after)
        seconds = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        return Outcome(
            argv=tuple(argv),
            code=code,
            stdout=out.read(4_000_000).decode(errors="replace"),
            stderr=err.read(4_000_000).decode(errors="replace"),
            maxrss_mb=rss_kb / 1024,
            seconds=seconds,
        )


def _wait(
    proc: subprocess.Popen[bytes],
    start: float,
    hang_s: float,
    sig_after: tuple[float, int] | None,
) -> tuple[int | None, int]:
    """Reap ``proc`` with wait4 (its own peak RSS); SIGKILL it after ``hang_s``."""
    sent = sig_after is None
    killed = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not reap it again
            return (None if killed else proc.returncode), usage.ru_maxrss
        now = time.monotonic() - start
        if not sent and sig_after is not None and now >= sig_after[0]:
            os.kill(proc.pid, sig_after[1])
            sent = True
        if now > hang_s and not killed:
            os.kill(proc.pid, signal.SIGKILL)  # only the process this call started
            killed = True
        time.sleep(0.005)


def assert_bounded(o: Outcome, *, codes: Sequence[int] = (0, 1, 2)) -> None:
    """The issue's contract: an exit code of the documented ones, no traceback, no internal
    error, peak memory under the bound, and no hang."""
    assert not o.hung, f"no answer before the hang bound (killed): {o.describe()}"
    assert o.code in codes, o.describe()
    assert "Traceback" not in o.stderr, o.describe()
    assert "internal error" not in o.stderr, o.describe()
    assert o.maxrss_mb < MEM_BOUND_MB, o.describe()


def one_line_error(o: Outcome, *names: str) -> str:
    """Exit 2, one line on stderr that names each of ``names``; returns the line."""
    assert o.code == 2, o.describe()
    lines = [ln for ln in o.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, o.describe()
    for n in names:
        assert n in lines[0], o.describe()
    return lines[0]


# --------------------------------------------------------------------------------------------
# the hostile pastes (tests/test_hostile_input.py asserts on them, bench/hostile.py
# measures them): name → (builder writing the input under a directory, refused?). A refused
# input must give exit 2 and one line naming it; the others any of 0/1/2.

DATA = Path(__file__).resolve().parent / "data"
SYSTEMCTL_TREE = DATA / "ps/rootlesskit-issue434-systemctl-user-status-docker-builtin-TRUNCATED.txt"
PS_EO = DATA / "ps/podman-4.3.1-debian12-rootless-4-containers-ps-eo.txt"
BLANKS = 1_000_000  # the 60,000 took 19-22 s (quadratic); 965k never finished


def alias_bomb(levels: int = 9) -> str:
    """Billion laughs: each anchor lists the previous one 9 times (9**levels leaves)."""
    lines = ['x-a: &a ["1","1","1","1","1","1","1","1","1"]']
    prev = "a"
    for n in "bcdefghijk"[: levels - 1]:
        lines.append(f"x-{n}: &{n} [" + ",".join(["*" + prev] * 9) + "]")
        prev = n
    lines.append(f"services:\n  s:\n    image: a\n    ports: *{prev}\n    environment: *{prev}")
    return "\n".join(lines) + "\n"


def merge_bomb() -> str:
    """`<<:` merges of merges, 2**24 keys deep."""
    lines = ["x0: &x0 {a: 1, b: 2}"]
    for i in range(1, 25):
        lines.append(f"x{i}: &x{i} {{<<: [*x{i - 1}, *x{i - 1}], k{i}: 1}}")
    return "services:\n  s:\n    image: a\n" + "\n".join(lines) + "\n"


def big_paste(mb: int = 50) -> bytes:
    """A real capture repeated to ``mb`` MB: a paste of a long ps listing."""
    unit = PS_EO.read_bytes()
    return unit * (mb * 1024 * 1024 // len(unit) + 1)


def _file(name: str, data: str | bytes) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        p = d / name
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        return p

    return build


def _fifo(d: Path) -> Path:
    p = d / "paste"
    os.mkfifo(p)
    return p


def _link(target: str) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        p = d / "paste.txt"
        p.symlink_to(target)
        return p

    return build


def _lazy(name: str, make: Callable[[], str | bytes]) -> Callable[[Path], Path]:
    return lambda d: _file(name, make())(d)


PASTES: dict[str, tuple[Callable[[Path], Path], bool]] = {
    "1,000 unclosed [": (_file("paste.json", "[" * 1000 + "\n"), True),
    "JSON objects 5,000 deep": (
        _file("info.json", '{"host": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + ', "version": {}}'),
        False,
    ),
    "YAML block mappings 400 deep": (
        _file("info.yaml", "host:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(400))
              + "  " * 401 + "v: 1\nversion:\n  Version: 4.3.1\n"),
        False,
    ),
    "YAML flow 2,000 deep": (
        _file("compose.yaml", "services:\n  s:\n    image: a\n    ports: "
              + "[" * 2000 + "]" * 2000 + "\n"),
        False,
    ),
    "1M blanks in an unknown paste": (_file("paste.txt", "hello\n" + " " * BLANKS + "x\n"), True),
    "1M blanks in a systemctl tree": (
        _lazy("status.txt", lambda: SYSTEMCTL_TREE.read_text() + " " * BLANKS + "x\n"), False
    ),
    "500k '│ ' in a systemctl tree": (
        _lazy("status.txt", lambda: SYSTEMCTL_TREE.read_text() + "│ " * (BLANKS // 2) + "x\n"),
        False,
    ),
    "FIFO": (_fifo, True),
    "symlink to /dev/zero": (_link("/dev/zero"), True),
    "symlink to /dev/urandom": (_link("/dev/urandom"), True),
    "a directory": (lambda d: d, True),
    "YAML alias bomb (compose)": (_file("compose.yaml", alias_bomb()), False),
    "YAML alias bomb (podman info)": (
        _file("info.yaml", alias_bomb().split("services:")[0]
              + "host:\n  a: *i\nstore:\n  b: *i\nversion:\n  Version: *i\n"),
        False,
    ),
    "YAML merge-key bomb": (_file("compose.yaml", merge_bomb()), False),
    "50 MB file": (_lazy("huge.txt", big_paste), True),
    # Just under the paste cap (4 MiB), in short lines: per-line Python loops took 7-15 s here.
    "4 MiB of blank lines": (
        _lazy("paste.txt", lambda: "hello\n" + " \n" * ((2 << 20) - 100) + "x"), True
    ),
    "4 MiB of one-number lines": (_lazy("ps.txt", lambda: "1 \n" * ((4 << 20) // 3 - 10)), False),
    "4 MiB of YAML-like lines": (
        _lazy("info.yaml", lambda: "host:\n" + "  a:\n" * ((4 << 20) // 5 - 10)), False
    ),
}  # fmt: skip


def remove_tree(base: Path) -> None:
    """Remove a test's directory; podman, run with it as HOME, may still be creating its storage
    directories there for a moment after the tool returned: try again until it is gone."""
    for _ in range(20):
        shutil.rmtree(base, ignore_errors=True)
        if not base.exists():
            return
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------
# engine CLIs that answer badly, as the stack user
UNIT_V20 = DATA / "systemd/docker-rootless-user-unit-rendered-from-moby-v20.10.24-setuptool.service"


@contextlib.contextmanager
def engine_sandbox(u: stack.User) -> Iterator[tuple[Path, dict[str, str]]]:
    """(bin dir first on PATH, the environment of the run), all the user's: a fresh runtime dir
    holding a unix socket listened on as docker.sock (so the docker CLI is asked at all), and a
    config dir holding the user unit dockerd-rootless-setuptool.sh writes (moby v20.10.24)."""
    base = stack._user_tmpdir(u, "rd-h11-engine-")
    bindir, run, units = base / "bin", base / "run", base / "cfg/systemd/user"
    for d in (bindir, run, units):
        d.mkdir(parents=True, mode=0o700)
    shutil.copy(UNIT_V20, units / "docker.service")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(run / "docker.sock"))
    srv.listen(8)
    for p in (base, *base.rglob("*")):
        os.chown(p, u.uid, u.gid)
    env = {
        "PATH": f"{bindir}:{stack.USER_PATH}",
        "XDG_RUNTIME_DIR": str(run),
        "XDG_CONFIG_HOME": str(base / "cfg"),
    }
    try:
        yield bindir, env
    finally:
        srv.close()
        # Podman started a pause process for this runtime dir: end it (its PID is in its file).
        pid_file = run / "libpod/tmp/pause.pid"
        if pid_file.is_file():
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        remove_tree(base)


def live_check(u: stack.User, env: dict[str, str]) -> tuple[Outcome, dict[str, str]]:
    """`check --json` live as ``u``: bounded, exit 0/1; (outcome, check ID → status)."""
    o = run(["check", "--json"], u=u, env=env)
    assert_bounded(o, codes=(0, 1))
    report = json.loads(o.stdout)
    status = {c["id"]: c["status"] for c in report["checks"]}
    return o, status | {"notes": " ".join(report["notes"])}


def fake(bindir: Path, name: str, body: str) -> None:
    p = bindir / name
    p.write_text(f"#!/bin/sh\n{body}\n")
    p.chmod(0o755)


# --------------------------------------------------------------------------------------------
# the stack user's files for one test


@dataclass
class Sandbox:
    """The stack user's files for one test: home, config dir, a bin dir first on PATH, work."""

    u: stack.User
    base: Path

    @property
    def home(self) -> Path:
        return self.base / "home"

    @property
    def cfg(self) -> Path:
        return self.base / "cfg"

    @property
    def bin(self) -> Path:
        return self.base / "bin"

    @property
    def work(self) -> Path:
        return self.base / "work"

    @property
    def state(self) -> Path:
        return self.home / STATE

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.cfg),
            "PATH": f"{self.bin}:{stack.USER_PATH}",
            "CONTAINERS_CONF": str(Path(self.u.home, ".config/containers/containers.conf")),
        }
        env.update(extra)
        return env

    def put(self, rel: str | Path, data: bytes | str, mode: int = 0o644) -> Path:
        """A file of the user's (parents too) at ``base/rel``."""
        p = self.base / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        p.chmod(mode)
        self.own()
        return p

    def own(self) -> None:
        for p in (self.base, *self.base.rglob("*")):
            os.lchown(p, self.u.uid, self.u.gid)

    def fix(self, *args: str, **kw: object) -> Outcome:
        env = self.env(**kw.pop("env", {}))  # type: ignore[arg-type]
        return run(["fix", *args], u=self.u, env=env, **kw)  # type: ignore[arg-type]


@contextlib.contextmanager
def sandbox(u: stack.User) -> Iterator[Sandbox]:
    """A fresh :class:`Sandbox` under /tmp, removed afterwards."""
    base = stack._user_tmpdir(u, "rd-h11-fix-")
    s = Sandbox(u, base)
    for d in (s.home, s.cfg, s.bin, s.work):
        d.mkdir(mode=0o755)
    s.own()
    try:
        yield s
    finally:
        remove_tree(base)


def fill(d: Path) -> None:
    """Fill the file system of ``d`` to the last block (a file ``fill`` in it)."""
    fd = os.open(d / "fill", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
