"""The files around a compose file that decide its services' environment: the project's ``.env``
(interpolation variables) and each ``env_file:`` (envfile.py has Compose's rules).

Read bounded and never raising: a missing or unreadable env file is data (``EnvFileText.error``)
that the compose checks report; only regular files are read (a FIFO or a device is refused
without blocking), at most :data:`MAX_ENV_FILE` bytes each.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from .. import parse
from ..envfile import DOTENV, ComposeEnv, EnvFileText, variables

# docker-mailserver's mailserver.env is 27 KiB; an env file of more than 1 MiB is not one.
MAX_ENV_FILE = 1 << 20


def read_env_file(path: Path) -> EnvFileText:
    """The text of an env file, or why it could not be read (never raises, never blocks)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        why = "not found" if e.errno == errno.ENOENT else f"not readable ({e.strerror})"
        return EnvFileText(text=None, error=why)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return EnvFileText(text=None, error="not a regular file")
        data = os.read(fd, MAX_ENV_FILE + 1)
    except OSError as e:
        return EnvFileText(text=None, error=f"not readable ({e.strerror})")
    finally:
        os.close(fd)
    if len(data) > MAX_ENV_FILE:
        return EnvFileText(text=None, error=f"larger than {MAX_ENV_FILE >> 20} MiB")
    if b"\0" in data:
        return EnvFileText(text=None, error="binary data, not an env file")
    return EnvFileText(text=data.decode("utf-8", errors="replace").lstrip("\ufeff"))


def compose_env(compose_path: Path, text: str, shell: Mapping[str, str] | None) -> ComposeEnv:
    """``.env`` next to ``compose_path`` (+ ``shell``, which wins) and every env file its services
    name, relative to its directory. ``shell`` is None for pasted files (not this host's)."""
    notes: list[str] = []
    dotenv = read_env_file(compose_path.parent / DOTENV)
    if dotenv.text is None and dotenv.error != "not found":
        notes.append(f"{compose_path.parent / DOTENV}: {dotenv.error}")
    try:
        found = variables(dotenv.text, shell)
    except ValueError as e:  # python-dotenv on a broken .env
        notes.append(f"{compose_path.parent / DOTENV}: {e}")
        found = dict(shell or {})
    try:
        first = parse.compose(text, str(compose_path), ComposeEnv(variables=found))
    except parse.ParseError:
        first = None  # the compose parse that follows says what is wrong with the file
    wanted = {ref.path for s in first.services for ref in s.env_files} if first else set()
    files = {p: read_env_file(Path(p)) for p in sorted(wanted)}
    return ComposeEnv(variables=found, env_files=files, notes=tuple(notes))
