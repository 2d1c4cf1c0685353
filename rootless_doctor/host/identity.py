"""Whose host this is, in one place: the user, home, runtime and config dirs and environment a
check reads (:class:`HostPaths`, :func:`default_paths`), the user a fix writes for
(:class:`Owner`, :func:`target_owner`: under sudo, ``SUDO_USER``) and that owner's paths
(:func:`owner_paths`), whether this process is root, and the programs on the user's PATH."""

from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..model import DoctorError, HostPaths, Owner
from .files import is_file

# The environment that changes what the engines and their CLIs do. default_paths() keeps these.
ENV_KEYS = (
    "PATH",
    "XDG_RUNTIME_DIR",
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "CONTAINERS_CONF",
    "CONTAINERS_CONF_OVERRIDE",
    "SUDO_USER",  # run through sudo: whose engines the user meant (the RUN-AS check)
)


DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"


# iptables/nft/newuidmap live in sbin on some distributions and a user's PATH may lack it.
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def default_paths() -> HostPaths:
    """This process's view: real root, this user's home/uid/name, its runtime and config dirs."""
    uid = os.getuid()
    try:
        pw = pwd.getpwuid(uid)
        user, pw_home = pw.pw_name, pw.pw_dir
    except KeyError:  # a uid without a passwd entry (containers, CI runners)
        user, pw_home = os.environ.get("USER", str(uid)), str(Path.home())
    home = Path(os.environ.get("HOME") or pw_home)
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}"
    config_home = os.environ.get("XDG_CONFIG_HOME")
    return HostPaths(
        root=Path("/"),
        home=home,
        uid=uid,
        user=user,
        runtime_dir=Path(runtime),
        config_home=Path(config_home) if config_home else None,
        env=tuple((k, os.environ[k]) for k in ENV_KEYS if k in os.environ),
    )


def target_owner(environ: dict[str, str] | None = None, euid: int | None = None) -> Owner:
    """Who the files of a fix are written for.

    Run through ``sudo`` (euid 0 and ``SUDO_USER`` set), the fix is for the user who ran sudo:
    paths are in their home and written files belong to them. A ``SUDO_USER`` that does not
    exist is refused rather than guessed.
    """
    env = dict(os.environ) if environ is None else environ
    euid = os.geteuid() if euid is None else euid
    sudo_user = env.get("SUDO_USER", "")
    if euid == 0 and sudo_user and sudo_user != "root":
        try:
            pw = pwd.getpwnam(sudo_user)
        except KeyError:
            raise DoctorError(
                f"SUDO_USER={sudo_user} is not a user here; run rootless-doctor as that user "
                "without sudo"
            ) from None
        home = Path(pw.pw_dir)
        return Owner(
            name=pw.pw_name,
            uid=pw.pw_uid,
            gid=pw.pw_gid,
            home=home,
            via_sudo=True,
            state_home=_state_home(env, inside=home),
        )
    try:
        pw = pwd.getpwuid(euid)
        name, gid, home = pw.pw_name, pw.pw_gid, Path(pw.pw_dir)
    except KeyError:  # a uid without a passwd entry (containers): trust $HOME
        name, gid, home = str(euid), os.getegid(), Path(env.get("HOME", "/"))
    if euid != 0 and env.get("HOME"):
        home = Path(env["HOME"])  # the user's own choice of HOME is theirs to make
    return Owner(name=name, uid=euid, gid=gid, home=home, state_home=_state_home(env))


def _state_home(env: dict[str, str], inside: Path | None = None) -> Path | None:
    """``$XDG_STATE_HOME`` when it is the owner's: an absolute path (the XDG Base Directory
    spec: a relative one is invalid and ignored). Under sudo (``inside`` = SUDO_USER's home) the
    environment may be root's (``sudo -E``, ``env_keep``): only a directory inside the owner's
    home is taken, so root's own state directory is never the owner's."""
    value = env.get("XDG_STATE_HOME", "")
    if not value.startswith("/"):
        return None
    p = Path(os.path.normpath(value))
    if inside is not None and (p == inside or inside not in p.parents):
        return None
    return p


def root_owner() -> Owner:
    """Root as the owner of its own state directory (``/root/.local/state/rootless-doctor``):
    under sudo, the backup of a file that is not SUDO_USER's own (a root file, another user's
    0600 file) is kept there, where SUDO_USER cannot read it. The home comes from the password
    database, never from the environment."""
    try:
        home = Path(pwd.getpwuid(0).pw_dir)
    except KeyError:
        home = Path("/root")
    return Owner(name="root", uid=0, gid=0, home=home)


def owner_paths(o: Owner) -> HostPaths:
    """The paths a fix reads for ``o``: this process's view; under sudo, SUDO_USER's home, uid
    and runtime dir."""
    paths = default_paths()
    if o.via_sudo:
        paths = replace(
            paths,
            home=o.home,
            uid=o.uid,
            user=o.name,
            runtime_dir=Path(f"/run/user/{o.uid}"),
            config_home=None,
        )
    return paths


def environment() -> dict[str, str]:
    """This process's environment (a copy): Compose reads it for ``${VAR}`` in a file."""
    return dict(os.environ)


def working_dir() -> Path:
    """The directory the command runs in: where the default compose file is looked for."""
    return Path.cwd()


def hostname() -> str:
    """This machine's host name (the collect archive's name and manifest)."""
    return socket.gethostname()


def is_root() -> bool:
    """Does this process run as root (effective uid 0)? Files under /etc need it."""
    return os.geteuid() == 0


def runtime_path(paths: HostPaths) -> Path:
    """$XDG_RUNTIME_DIR as the engines see it; pam_systemd's default when it is unset."""
    return paths.runtime_dir or Path(f"/run/user/{paths.uid}")


def locate(paths: HostPaths, name: str, extra: Sequence[str] = ()) -> tuple[str, Path] | None:
    """(host path, path on this filesystem) of ``name`` on the host's PATH (plus ``extra``)."""
    dirs = (paths.getenv("PATH") or DEFAULT_PATH).split(":")
    for d in [*dirs, *extra]:
        if not d.startswith("/"):
            continue  # relative PATH entries depend on the cwd; engines' users do not rely on them
        real = paths.at(d) / name
        if is_file(real) and os.access(real, os.X_OK):
            return str(Path(d) / name), real
    return None


def which(paths: HostPaths, name: str) -> str | None:
    """The program ``name`` on the host's PATH (plus the sbin dirs), as a path to run, or None."""
    found = locate(paths, name, SBIN_DIRS)
    return found[1].as_posix() if found else None


def engine_env(paths: HostPaths) -> dict[str, str]:
    """The environment the engines' CLIs run with: ours, with the host's values of ENV_KEYS."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.update(paths.env)
    env.setdefault("PATH", DEFAULT_PATH)
    env["HOME"] = str(paths.home)
    if paths.runtime_dir is not None:
        env["XDG_RUNTIME_DIR"] = str(paths.runtime_dir)
    if paths.config_home is not None:
        env["XDG_CONFIG_HOME"] = str(paths.config_home)
    env.setdefault("LC_ALL", "C")  # stable, parseable messages
    return env
