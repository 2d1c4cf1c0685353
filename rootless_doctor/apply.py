"""Diff, backup, atomic write, undo and restart: the only module that changes the system.

Planners (``fixes/``) return :class:`~rootless_doctor.model.FilePlan`; this module shows them as a
unified diff and writes them. A write:

- refuses a target that is a symlink, a path (after resolving symlinks) inside another user's
  home, and, under ``sudo``, anything it cannot give back to ``SUDO_USER``;
- keeps the original once: the first time a fix touches a file, its bytes, mode and owner go to
  ``~/.local/state/rootless-doctor/backups/`` with an entry in ``manifest.json`` there; later
  fixes of the same file keep that first original, so ``--undo`` always goes back to the state
  before rootless-doctor;
- writes a temp file in the same directory with the original mode (and owner), fsyncs it and
  ``os.replace``s it over the target (never a truncate-then-write, never delete-then-write);
- ``undo`` puts the original bytes back exactly (same way), or removes a file the fix created,
  and refuses to throw away edits made after the fix unless forced;
- :func:`carry_out` writes a fix's plans and returns what was done (the ``fix --json`` shape);
  :func:`restart` runs its next steps (``systemctl --user restart docker``, ...) through the
  host runner: the fix's other change to the system.

Who the files are for (:class:`~rootless_doctor.model.Owner`) is resolved in host/identity.py.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import pwd
import shlex
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .model import (
    FIX_SCHEMA_VERSION,
    DockerLaunch,
    DoctorError,
    FilePlan,
    JsonFix,
    JsonFixFile,
    Owner,
)

MANIFEST = "manifest.json"


def _other_homes(owner: Owner) -> list[tuple[str, Path]]:
    """Home directories of other users (not ``/`` or system dirs that hold shared files)."""
    homes: list[tuple[str, Path]] = []
    skip = {Path("/"), Path("/root") if owner.uid == 0 else Path("/nonexistent")}
    for pw in pwd.getpwall():
        home = Path(pw.pw_dir)
        if pw.pw_uid == owner.uid or home in skip or not home.is_absolute():
            continue
        # System accounts with homes like /var/lib/x, /bin, /usr/sbin are not "homes" to guard,
        # except that a real user (uid >= 1000) or root can have files anywhere.
        if pw.pw_uid != 0 and pw.pw_uid < 1000:
            continue
        if home == owner.home:
            continue
        homes.append((pw.pw_name, home))
    return homes


def _is_under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def check_target(path: Path, owner: Owner) -> None:
    """Refuse a symlink target and a path inside another user's home."""
    if path.is_symlink():
        raise DoctorError(
            f"{path} is a symlink to {os.readlink(path)}; not writing through it: fix the file "
            "it points to by hand, or replace the link with a regular file and run again"
        )
    if path.exists() and not path.is_file():
        raise DoctorError(f"{path} exists and is not a regular file; not touching it")
    real = path.resolve()
    for name, home in _other_homes(owner):
        for candidate in (path, real):
            if _is_under(candidate, home) and not _is_under(candidate, owner.home):
                raise DoctorError(
                    f"{path} is inside {name}'s home ({home}); rootless-doctor writes only "
                    f"{owner.name}'s files: run it as {name}"
                )


# --------------------------------------------------------------------------------------------
# reading


def read_text(path: Path) -> str | None:
    """The text of ``path``; None when it does not exist. Binary or non-UTF-8 → DoctorError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise DoctorError(f"{path} is a directory, not a file") from None
    except PermissionError:
        raise DoctorError(f"{path}: permission denied; run as the file's owner") from None
    except OSError as e:
        raise DoctorError(f"{path}: cannot read: {e.strerror or e}") from None
    if b"\0" in data:
        raise DoctorError(f"{path} is a binary file (NUL bytes); not editing it")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DoctorError(
            f"{path} is not valid UTF-8 (byte {e.start}); not editing it: save it as UTF-8 first"
        ) from None


# --------------------------------------------------------------------------------------------
# showing


def diff(plan: FilePlan) -> str:
    """Unified diff of the plan (empty when nothing changes)."""
    if not plan.changed:
        return ""
    before = plan.before or ""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            _ensure_nl(plan.after).splitlines(keepends=True),
            fromfile=str(plan.path) if plan.before is not None else "/dev/null",
            tofile=str(plan.path),
        )
    )


def _ensure_nl(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


# --------------------------------------------------------------------------------------------
# writing


@dataclass(frozen=True, kw_only=True)
class Written:
    path: Path
    created: bool
    backup: Path | None  # where the original is kept (None: the file did not exist)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _atomic_write(path: Path, data: bytes, mode: int, uid: int | None, gid: int | None) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".rdtmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            if uid is not None and gid is not None and os.geteuid() == 0:
                os.fchown(f.fileno(), uid, gid)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def create_private(path: Path, data: bytes) -> None:
    """A new file only its owner can read (mode 0600), written whole or not at all, never over
    an existing file or through a symlink (`collect`'s archive): a temp file (0600 from the
    start) in the same directory, fsynced, then hard-linked to the name, which fails if the name
    exists; the temp name goes away either way."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise DoctorError(f"{parent}: no such directory; choose another -o")
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".rdtmp")
    except OSError as e:
        raise DoctorError(
            f"{parent}: cannot write here ({e.strerror}); choose another -o"
        ) from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise DoctorError(f"{path} exists; choose another -o (nothing was written)") from None
        except OSError as e:
            raise DoctorError(f"{path}: cannot create it ({e.strerror})") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    _fsync_dir(parent)


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _makedirs(d: Path, owner: Owner) -> None:
    """Create missing parents; under the owner's home they belong to the owner (mode 0700 for
    state, 0755 otherwise, as systemd/podman would create them)."""
    missing: list[Path] = []
    p = d
    while not p.exists():
        if p.is_symlink():  # dangling link
            raise DoctorError(f"{p} is a dangling symlink; not creating through it")
        missing.append(p)
        p = p.parent
    for m in reversed(missing):
        m.mkdir(mode=0o755)
        if os.geteuid() == 0 and _is_under(m, owner.home):
            os.chown(m, owner.uid, owner.gid)


class _Manifest:
    """``manifest.json``: {path: {"existed", "backup", "mode", "uid", "gid", "sha_written"}}."""

    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self.dir = owner.state_dir
        self.file = self.dir / MANIFEST
        self.entries: dict[str, dict[str, object]] = {}
        text = read_text(self.file)
        if text is not None:
            try:
                loaded = json.loads(text)
            except json.JSONDecodeError as e:
                raise DoctorError(
                    f"{self.file} is not valid JSON ({e.msg}); move it away"
                ) from None
            if not isinstance(loaded, dict) or not isinstance(loaded.get("files"), dict):
                raise DoctorError(f"{self.file} is not a rootless-doctor manifest; move it away")
            self.entries = loaded["files"]

    def save(self) -> None:
        _makedirs(self.dir / "backups", self.owner)
        data = json.dumps({"version": 1, "files": self.entries}, indent=2, sort_keys=True) + "\n"
        _atomic_write(self.file, data.encode(), 0o600, self.owner.uid, self.owner.gid)


def write(plan: FilePlan, owner: Owner) -> Written:
    """Apply ``plan``: backup once, atomic write. Raises DoctorError on a refused target."""
    path = plan.path
    if not path.is_absolute():
        raise DoctorError(f"{path}: internal error, plans need absolute paths")
    check_target(path, owner)
    current = read_text(path)
    if current != plan.before:
        raise DoctorError(f"{path} changed while planning; run the fix again")
    new = _ensure_nl(plan.after).encode("utf-8")
    manifest = _Manifest(owner)
    key = str(path)
    backup: Path | None = None
    try:
        st = path.stat() if current is not None else None
        if st is not None:
            mode, uid, gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
        else:
            mode = plan.mode if plan.mode is not None else 0o644
            if _is_under(path, owner.home):
                uid, gid = owner.uid, owner.gid
            else:
                uid, gid = os.geteuid(), os.getegid()
        entry = manifest.entries.get(key)
        if entry is None:
            entry = {"existed": current is not None, "mode": mode, "uid": uid, "gid": gid}
            if current is not None:
                name = f"{time.strftime('%Y%m%dT%H%M%S')}-{_sha(key.encode())[:12]}-{path.name}"
                backup = manifest.dir / "backups" / name
                _makedirs(backup.parent, owner)
                _atomic_write(backup, path.read_bytes(), 0o600, owner.uid, owner.gid)
                entry["backup"] = str(backup)
        elif entry.get("backup"):
            backup = Path(str(entry["backup"]))
        _makedirs(path.parent, owner)
        _atomic_write(path, new, mode, uid, gid)
        entry["sha_written"] = _sha(new)
        manifest.entries[key] = entry
        manifest.save()
    except PermissionError as e:
        raise DoctorError(
            f"{e.filename or path}: permission denied; "
            + ("run with sudo" if not owner.is_root else "check the file's owner")
        ) from None
    except OSError as e:
        raise DoctorError(f"{e.filename or path}: cannot write: {e.strerror or e}") from None
    return Written(path=path, created=current is None, backup=backup)


# --------------------------------------------------------------------------------------------
# undo


@dataclass(frozen=True, kw_only=True)
class Undone:
    path: Path
    action: str  # "restored", "removed", "skipped: ..."


def undo(owner: Owner, only: Iterable[Path] = (), force: bool = False) -> list[Undone]:
    """Restore every file in the manifest (or those in ``only``) to its original bytes, or remove
    it when the fix created it. A file edited since the fix is skipped unless ``force``."""
    manifest = _Manifest(owner)
    wanted = {str(Path(p).absolute()) for p in only}
    results: list[Undone] = []
    for key in sorted(manifest.entries):
        if wanted and key not in wanted:
            continue
        entry = manifest.entries[key]
        path = Path(key)
        if path.is_symlink():
            results.append(Undone(path=path, action="skipped: it is now a symlink"))
            continue
        try:
            now = path.read_bytes() if path.exists() else None
        except OSError as e:
            raise DoctorError(f"{path}: cannot read: {e.strerror or e}") from None
        if now is not None and _sha(now) != entry.get("sha_written") and not force:
            results.append(
                Undone(
                    path=path,
                    action="skipped: changed since rootless-doctor wrote it (use --force to "
                    "restore the original anyway)",
                )
            )
            continue
        try:
            if entry.get("existed"):
                backup = Path(str(entry["backup"]))
                try:
                    original = backup.read_bytes()
                except OSError:
                    raise DoctorError(
                        f"backup {backup} of {path} is missing; cannot undo"
                    ) from None
                _makedirs(path.parent, owner)
                _atomic_write(
                    path, original, _int(entry["mode"]), _int(entry["uid"]), _int(entry["gid"])
                )
                backup.unlink()
                results.append(Undone(path=path, action="restored"))
            else:
                path.unlink(missing_ok=True)
                _fsync_dir(path.parent)
                results.append(Undone(path=path, action="removed (the fix created it)"))
        except PermissionError as e:
            raise DoctorError(f"{e.filename or path}: permission denied; run with sudo") from None
        del manifest.entries[key]
    if wanted:
        missing = wanted - {str(r.path) for r in results}
        if missing:
            raise DoctorError(f"no rootless-doctor backup of {', '.join(sorted(missing))}")
    manifest.save()
    return results


def _int(v: object) -> int:
    if isinstance(v, int):
        return v
    raise DoctorError(f"manifest entry has a bad value {v!r}; move {MANIFEST} away")


# --------------------------------------------------------------------------------------------
# carrying a fix out: write the plans, then (on request) run their next steps


def carry_out(plans: list[FilePlan], owner: Owner, *, preview: bool, notes: list[str]) -> JsonFix:
    """Write every changed plan for ``owner`` (or, with ``preview``, only diff it); what was
    done, in the ``fix --json`` shape. The next steps are collected in order, once each."""
    changed = [p for p in plans if p.changed]
    files: list[JsonFixFile] = []
    if not changed:
        files = [{"path": str(p.path), "changed": False, "what": p.what} for p in plans]
    steps: list[str] = []
    for p in changed:
        entry: JsonFixFile = {"path": str(p.path), "changed": True, "what": p.what}
        if preview:
            entry["diff"] = diff(p)
        else:
            w = write(p, owner)
            entry["created"] = w.created
            entry["backup"] = str(w.backup) if w.backup else None
        files.append(entry)
        steps.extend(s for s in p.next_steps if s not in steps)
    from . import __version__

    return {
        "schema_version": FIX_SCHEMA_VERSION,
        "tool_version": __version__,
        "changed": bool(changed),
        "dry_run": preview,
        "files": files,
        "next_steps": steps,
        "notes": notes,
    }


def restart(steps: list[str], owner: Owner, on_run: Callable[[list[str]], None]) -> None:
    """Run a fix's next steps in order (programs found on this process's PATH, through the host
    runner); ``on_run`` hears each command first. Under sudo, ``systemctl --user`` is aimed at
    the owner's manager; any other step but ``sysctl`` is refused (it must run as the owner)."""
    from . import host

    paths = host.default_paths()  # our PATH, also under sudo: the commands run as us
    for step in steps:
        argv = shlex.split(step)
        exe = host.which(paths, argv[0])
        if exe is None:
            raise DoctorError(f"--restart: {argv[0]} not found on PATH; run by hand: {step}")
        if owner.via_sudo:
            if argv[:2] == ["systemctl", "--user"]:
                argv.insert(2, f"--machine={owner.name}@")
            elif argv[0] != "sysctl":
                raise DoctorError(f"--restart under sudo: run this as {owner.name}: {step}")
        on_run(argv)
        out = host.run([exe, *argv[1:]], timeout=180)
        if not out.ok:
            raise DoctorError(f"--restart: {out.why()}", exit_code=1)


DOCKERD_LOG = "dockerd.log"  # in the owner's state dir: the by-hand daemon's output


def restart_docker_by_hand(
    launch: DockerLaunch,
    env: Mapping[str, str],
    owner: Owner,
    on_say: Callable[[str], None],
    *,
    stop_timeout: float = 30.0,
    start_timeout: float = 90.0,
) -> int:
    """Restart rootless Docker where no systemd user manager answers: SIGTERM the running
    RootlessKit of dockerd-rootless.sh and wait for it to exit, start the launcher again in its
    own session with ``env`` (the DOCKERD_ROOTLESS_* settings of the unit and drop-ins, over the
    ones it ran with), output appended to the state dir's dockerd.log, and wait until the daemon
    answers. Returns the new launcher's PID. Refuses (DoctorError, nothing stopped) when it
    cannot be done safely: under sudo, no launcher, several daemons, one a user manager runs."""
    import signal
    import subprocess

    from . import host

    if owner.via_sudo:
        raise DoctorError(
            f"--restart under sudo: run `rootless-doctor fix docker --restart` as {owner.name}"
        )
    if launch.problem:
        raise DoctorError(f"--restart: cannot restart rootless Docker by hand: {launch.problem}")
    if not launch.script:
        raise DoctorError("--restart: dockerd-rootless.sh not found; install the rootless extras")
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{owner.uid}"
    if launch.pid is not None:
        on_say(f"stopping rootless dockerd (RootlessKit PID {launch.pid})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(launch.pid, signal.SIGTERM)
        deadline = time.monotonic() + stop_timeout
        while _alive(launch.pid):
            if time.monotonic() > deadline:
                raise DoctorError(
                    f"--restart: rootless dockerd (PID {launch.pid}) did not stop within "
                    f"{stop_timeout:.0f} s; it was not started again",
                    exit_code=1,
                )
            time.sleep(0.1)
    log_dir = owner.state_dir
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = log_dir / DOCKERD_LOG
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    child_env = dict(os.environ)
    child_env.update(launch.env)
    child_env.update(env)
    child_env.setdefault("XDG_RUNTIME_DIR", runtime)
    child_env.setdefault("HOME", str(owner.home))
    shown = " ".join(f"{k}={v}" for k, v in sorted({**launch.env, **env}.items()))
    on_say(f"starting {shown} {launch.script} (log: {log_path})".replace("  ", " "))
    try:
        proc = subprocess.Popen(
            [launch.script],
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            start_new_session=True,  # not ours to end: it outlives this command
            cwd=str(owner.home),
        )
    except OSError as e:
        raise DoctorError(
            f"--restart: cannot start {launch.script}: {e.strerror}", exit_code=1
        ) from None
    finally:
        os.close(fd)
    docker_env = {**child_env, "DOCKER_HOST": f"unix://{runtime}/docker.sock"}
    deadline = time.monotonic() + start_timeout
    while True:
        if proc.poll() is not None:
            raise DoctorError(
                f"--restart: {launch.script} exited ({proc.returncode}); see {log_path}",
                exit_code=1,
            )
        if host.run(["docker", "version"], timeout=10, env=docker_env).ok:
            break
        if time.monotonic() > deadline:
            raise DoctorError(
                f"--restart: the daemon did not answer within {start_timeout:.0f} s; see "
                f"{log_path}",
                exit_code=1,
            )
        time.sleep(0.3)
    on_say(f"rootless dockerd is up (launcher PID {proc.pid})")
    return proc.pid


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False
