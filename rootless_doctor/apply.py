"""Diff, backup, atomic write, undo and restart: the only module that changes the system.

Planners (``fixes/``) return :class:`~rootless_doctor.model.FilePlan`; this module shows them as a
unified diff and writes them. Who the files are for (:class:`~rootless_doctor.model.Owner`: the
caller, or ``SUDO_USER`` under sudo) is resolved in host/identity.py. A write:

- refuses a target that is a symlink, a path (after resolving symlinks) inside another user's
  home, and, as root for ``SUDO_USER``, a path under their home that passes through a symlink or
  a directory that is not theirs (``~/.config`` or the state directory linked elsewhere);
- checks every target of a fix (and that none changed since planning) before writing any, under
  the lock of the state directory (``filelock``): two fixes at once never lose a change or a
  manifest entry; a failure after the first write names what was written;
- keeps the original once: the first time a fix touches a file, its bytes, mode and owner go to
  ``backups/`` of the state directory (``$XDG_STATE_HOME/rootless-doctor``, by default
  ``~/.local/state/rootless-doctor``) with an entry in ``manifest.json`` there, both on disk
  *before* the target is replaced: a signal, a crash or a full disk at any point leaves the
  original or a state ``undo`` knows. Later fixes keep that first original;
- under sudo, a file that is not SUDO_USER's own (a root file, another user's 0600 file) is
  backed up in root's own state directory (``/root/.local/state/rootless-doctor``, 0700/0600),
  never where SUDO_USER could read it; ``sudo rootless-doctor fix --undo`` restores those too;
- writes a temp file in the same directory with the original mode (and owner), fsyncs it and
  ``os.replace``s it over the target (never a truncate-then-write, never through a symlink); the
  bytes are the planner's: a last line without a newline keeps having none;
- under sudo, SUDO_USER's state directory, its lock and their own files in their home or in a
  directory of theirs are written with their uid and groups (:func:`_as_user`): a directory
  swapped for a symlink after the checks leads nowhere they could not write themselves;
- SIGTERM and SIGHUP while writing end the run as Ctrl-C does (temp files removed).

``undo`` puts the original bytes back exactly (same way), or removes a file the fix created, and
refuses to throw away edits made after the fix unless forced. Run as root on a manifest its user
can write, the manifest is untrusted input: every entry is checked with the rules of a write
(path, symlinks, the file is the user's, the backup is the user's own regular file inside their
``backups/``) before anything is touched, and the undo runs with the user's own uid and groups.
One bad entry: nothing is undone, one line says which entry and why.
:func:`carry_out` writes a fix's plans and returns what was done (the ``fix --json`` shape);
:func:`restart` runs its next steps (``systemctl --user restart docker``, ...) through the
host runner: the fix's other change to the system.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import pwd
import shlex
import signal
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .host import files, identity
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
LOCK = ".lock"
# A config file rootless-doctor edits is a few KiB; anything bigger is not one.
MAX_TARGET = 4 << 20
MAX_MANIFEST = 4 << 20
LOCK_TIMEOUT = 60.0  # seconds another fix may hold the state directory


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


def check_owner_dirs(d: Path, owner: Owner) -> None:
    """As root writing for another user (sudo), every existing directory from the owner's home
    down to ``d`` must be a real directory of the owner's (or root's): a symlink there
    (``~/.config``, ``~/.local/state/rootless-doctor``) would aim root's writes at a root-owned
    or another user's directory. Outside the owner's home, and for a user writing their own
    files, there is nothing to check (their own permissions apply)."""
    if os.geteuid() != 0 or owner.uid == 0 or not _is_under(d, owner.home):
        return
    p = owner.home
    for part in d.relative_to(owner.home).parts:
        p = p / part
        try:
            st = p.lstat()
        except FileNotFoundError:
            return  # created by us from here on, as the owner's
        except OSError as e:
            raise DoctorError(f"{p}: cannot read: {e.strerror or e}") from None
        if stat.S_ISLNK(st.st_mode):
            raise DoctorError(
                f"{p} is a symlink to {os.readlink(p)}; as root rootless-doctor follows no "
                f"symlink in {owner.name}'s home: run it as {owner.name} without sudo, or make "
                "it a real directory"
            )
        if not stat.S_ISDIR(st.st_mode):
            raise DoctorError(f"{p} is not a directory; not writing there")
        if st.st_uid != owner.uid:  # the write is made with their rights: say so now
            raise DoctorError(
                f"{p} belongs to uid {st.st_uid}, not {owner.name}; under sudo rootless-doctor "
                f"writes in {owner.name}'s home with their rights: `sudo chown {owner.name}: {p}`"
                f" or run it as {owner.name}"
            )


def _check_write(path: Path, owner: Owner) -> None:
    if not path.is_absolute():
        raise DoctorError(f"{path}: internal error, plans need absolute paths")
    check_target(path, owner)
    check_owner_dirs(path.parent, owner)


# --------------------------------------------------------------------------------------------
# reading


def read_text(path: Path) -> str | None:
    """The text of ``path``; None when it does not exist. Only a regular file is read (a FIFO
    or a device never blocks or floods us), at most :data:`MAX_TARGET` bytes; binary, non-UTF-8
    or larger → DoctorError."""
    data = _read_target(path)
    if data is None:
        return None
    if b"\0" in data:
        raise DoctorError(f"{path} is a binary file (NUL bytes); not editing it")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DoctorError(
            f"{path} is not valid UTF-8 (byte {e.start}); not editing it: save it as UTF-8 first"
        ) from None


def _read_target(path: Path) -> bytes | None:
    try:
        return files.read_regular(path, MAX_TARGET)
    except FileNotFoundError:
        return None
    except files.NotRegular as e:
        raise DoctorError(f"{path} is {e.kind}, not a regular file; not touching it") from None
    except files.TooLarge:
        raise DoctorError(
            f"{path} is larger than {MAX_TARGET >> 20} MiB: not a config file this fix edits"
        ) from None
    except PermissionError:
        raise DoctorError(f"{path}: permission denied; run as the file's owner") from None
    except OSError as e:
        raise DoctorError(f"{path}: cannot read: {e.strerror or e}") from None


class _NotOwn(Exception):
    """A state file that is not its owner's own regular file."""


def _read_own(path: Path, uid: int, cap: int) -> bytes:
    """The bytes of a state file (manifest, backup) that must be ``uid``'s own regular file:
    opened without following a symlink, checked on the open descriptor, at most ``cap`` bytes.
    Raises FileNotFoundError/OSError or :class:`_NotOwn` (why)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _NotOwn("not a regular file")
        if st.st_uid != uid:
            raise _NotOwn(f"owned by uid {st.st_uid}, not {uid}")
        if st.st_size > cap:
            raise _NotOwn(f"larger than {cap >> 20} MiB")
        chunks: list[bytes] = []
        left = st.st_size
        while left > 0 and (chunk := os.read(fd, left)):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# showing


def diff(plan: FilePlan) -> str:
    """Unified diff of the plan (empty when nothing changes); a last line without a newline is
    marked as diff(1) does."""
    if not plan.changed:
        return ""
    before = plan.before or ""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        plan.after.splitlines(keepends=True),
        fromfile=str(plan.path) if plan.before is not None else "/dev/null",
        tofile=str(plan.path),
    )
    return "".join(
        ln if ln.endswith("\n") else ln + "\n\\ No newline at end of file\n" for ln in lines
    )


# --------------------------------------------------------------------------------------------
# writing


@dataclass(frozen=True, kw_only=True)
class Written:
    path: Path
    created: bool
    backup: Path | None  # where the original is kept (None: the file did not exist)
    # written through sudo with its undo entry in root's state directory (a root file, another
    # user's file, a new file outside the owner's home): only `sudo ... fix --undo` restores it
    root_state: bool = False


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _atomic_write(path: Path, data: bytes, mode: int, uid: int | None, gid: int | None) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".rdtmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            if uid is not None and gid is not None and (uid, gid) != _ids(f.fileno()):
                try:
                    os.fchown(f.fileno(), uid, gid)
                except PermissionError:
                    if os.geteuid() == 0:
                        raise
                    # a user keeps the group only where they are in it: as before, theirs
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _ids(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_uid, st.st_gid


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


def _makedirs(d: Path, owner: Owner, mode: int = 0o755) -> None:
    """Create missing parents; under the owner's home they belong to the owner (mode 0700 for
    state, 0755 otherwise, as systemd/podman would create them)."""
    check_owner_dirs(d, owner)
    missing: list[Path] = []
    p = d
    while not p.exists():
        if p.is_symlink():  # dangling link
            raise DoctorError(f"{p} is a dangling symlink; not creating through it")
        missing.append(p)
        p = p.parent
    for m in reversed(missing):
        m.mkdir(mode=mode)
        if os.geteuid() == 0 and _is_under(m, owner.home):
            os.chown(m, owner.uid, owner.gid, follow_symlinks=False)


# --------------------------------------------------------------------------------------------
# the state directory: manifest, backups, lock


# Manifest entry: {"existed": bool, "backup": str (when it existed), "mode", "uid", "gid": int,
# "sha_before": str, "written": [sha, ...], "for": name (in root's state directory under sudo:
# whose fix it was)}. "written" lists every version rootless-doctor wrote (undo accepts any of
# them, and the original); manifests of older versions have "sha_written" only.
class _Manifest:
    """One state directory's ``manifest.json`` and ``backups/``, for ``owner`` (whose files they
    are). Loaded as untrusted input: not through a symlink, the owner's own file, bounded,
    shape-checked."""

    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self.dir = owner.state_dir
        self.file = self.dir / MANIFEST
        self.backups = self.dir / "backups"
        self.entries: dict[str, dict[str, object]] = {}
        self.untrusted = False  # read by root for its user (set by undo, which reads it so)
        check_owner_dirs(self.dir, owner)
        try:
            data = _read_own(self.file, owner.uid, MAX_MANIFEST)
        except FileNotFoundError:
            return
        except _NotOwn as e:
            raise DoctorError(f"{self.file} is {e}; move it away") from None
        except OSError as e:
            raise DoctorError(
                f"{self.file}: cannot read ({e.strerror or e}); move it away"
            ) from None
        try:
            loaded = json.loads(data)
        except (ValueError, RecursionError) as e:
            raise DoctorError(f"{self.file} is not valid JSON ({e}); move it away") from None
        entries = loaded.get("files") if isinstance(loaded, dict) else None
        if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
            raise DoctorError(f"{self.file} is not a rootless-doctor manifest; move it away")
        self.entries = entries

    def save(self) -> None:
        data = json.dumps({"version": 2, "files": self.entries}, indent=2, sort_keys=True) + "\n"
        with _as_user(self.owner):
            self.make_backups()
            _atomic_write(self.file, data.encode(), 0o600, self.owner.uid, self.owner.gid)

    def make_backups(self) -> None:
        """``backups/`` (and the state directory) exist and are 0700: an older version or
        another tool may have made them 0755. As the state's owner (:func:`_as_user`)."""
        with _as_user(self.owner):
            _makedirs(self.backups, self.owner, mode=0o700)
            for d in (self.dir, self.backups):
                st = d.lstat()
                if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and st.st_mode & 0o077:
                    os.chmod(d, 0o700)

    def keep(self, key: str, data: bytes) -> Path:
        """A new backup of ``key``'s ``data`` (0600, the state owner's)."""
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{_sha(key.encode())[:12]}-{Path(key).name}"
        backup = self.backups / name
        with _as_user(self.owner):
            self.make_backups()
            _atomic_write(backup, data, 0o600, self.owner.uid, self.owner.gid)
        return backup


@contextlib.contextmanager
def _locked(owners: Iterable[Owner]) -> Iterator[None]:
    """Hold the lock of each state directory (in one order, so two runs never deadlock): two
    fixes at once would otherwise both read the manifest and the second save lose the first's
    entry, or both replace one file and one change be lost. filelock opens the lock file
    without following a symlink (since 3.20.1)."""
    from filelock import FileLock, Timeout

    with contextlib.ExitStack() as stack:
        for o in sorted(set(owners), key=lambda o: str(o.state_dir)):
            lock_file = o.state_dir / LOCK
            lock = FileLock(str(lock_file), timeout=LOCK_TIMEOUT)
            try:
                with _as_user(o):  # the lock file is the owner's, made by them
                    _makedirs(o.state_dir, o, mode=0o700)
                    stack.enter_context(lock)
            except Timeout:
                raise DoctorError(
                    f"another rootless-doctor fix holds {lock_file} for more than "
                    f"{LOCK_TIMEOUT:g} s; wait for it to finish and run again"
                ) from None
        yield


@contextlib.contextmanager
def _as_user(o: Owner) -> Iterator[None]:
    """As root, act with ``o``'s uid, gid and groups (effective ids only, restored after): in
    the owner's state directory and home under sudo, and for an untrusted manifest, the kernel
    then allows only what the owner could do themselves (a directory swapped for a symlink
    after it was checked leads nowhere they cannot write)."""
    if os.geteuid() != 0 or o.uid == 0:
        yield
        return
    groups, egid = os.getgroups(), os.getegid()
    os.setgroups(os.getgrouplist(o.name, o.gid))
    os.setegid(o.gid)
    os.seteuid(o.uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(egid)
        os.setgroups(groups)


@contextlib.contextmanager
def _terminate_like_interrupt() -> Iterator[None]:
    """SIGTERM (and SIGHUP) while files are written clean up as Ctrl-C does: temp files are
    removed on the way out (what undo needs was saved before any target changed)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        old = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    except ValueError:  # not the main thread: nothing to install
        yield
        return
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _state_owner(path: Path, owner: Owner) -> Owner:
    """Whose state directory keeps the backup of ``path``: the owner's, except a file run
    through sudo that is not the owner's own (a root file, another user's 0600 file) or, new,
    outside their home: its bytes must not land where SUDO_USER can read them, and its entry
    must not be one SUDO_USER can forge, so root's state directory keeps them."""
    if not owner.via_sudo:
        return owner
    try:
        uid = path.lstat().st_uid
    except FileNotFoundError:
        return owner if _is_under(path, owner.home) else identity.root_owner()
    return owner if uid == owner.uid else identity.root_owner()


# --------------------------------------------------------------------------------------------
# writing a fix's files


def write_all(plans: Sequence[FilePlan], owner: Owner) -> list[Written]:
    """Apply every plan (backup once, atomic write), under the state directories' locks. Every
    target is checked (and re-read: unchanged since planning) before any is written; a failure
    after the first write names what was already written."""
    for p in plans:
        _check_write(p.path, owner)
    states = {p.path: _state_owner(p.path, owner) for p in plans}
    for s in set(states.values()):
        check_owner_dirs(s.state_dir, s)
    done: list[Written] = []
    try:
        with _terminate_like_interrupt(), _locked(states.values()):
            for p in plans:  # again under the lock: another fix may have been faster
                _check_write(p.path, owner)
                if read_text(p.path) != p.before:
                    raise DoctorError(
                        f"{p.path} changed while planning (another fix or an editor?); "
                        "run the fix again"
                    )
            manifests = {s: _Manifest(s) for s in set(states.values())}
            for p in plans:
                done.append(_write_one(p, owner, manifests[states[p.path]]))
    except PermissionError as e:
        hint = "run with sudo" if not owner.is_root else "check the file's owner"
        if owner.via_sudo:
            hint = f"{owner.name} may not write there (their files are written with their rights)"
        raise _partial(
            done, DoctorError(f"{e.filename or '?'}: permission denied; {hint}")
        ) from None
    except OSError as e:
        raise _partial(
            done, DoctorError(f"{e.filename or '?'}: cannot write: {e.strerror or e}")
        ) from None
    except DoctorError as e:
        raise _partial(done, e) from None
    return done


UNDO = "rootless-doctor fix --undo"


def undo_command(written: Iterable[Written]) -> str:
    """The command that restores ``written``: with sudo when any undo entry is root's (the
    user's own ``fix --undo`` does not read root's state directory)."""
    return ("sudo " if any(w.root_state for w in written) else "") + UNDO


def _partial(done: list[Written], e: DoctorError) -> DoctorError:
    if not done:
        return DoctorError(f"{e} (nothing was written)", exit_code=e.exit_code)
    names = ", ".join(str(w.path) for w in done)
    return DoctorError(
        f"{e}; already written: {names} (`{undo_command(done)}` restores it)",
        exit_code=e.exit_code,
    )


def write(plan: FilePlan, owner: Owner) -> Written:
    """Apply one plan (see :func:`write_all`)."""
    return write_all([plan], owner)[0]


def _write_one(plan: FilePlan, owner: Owner, manifest: _Manifest) -> Written:
    """Backup and manifest entry first (on disk), then the target."""
    path, state = plan.path, manifest.owner
    key = str(path)
    current = _read_target(path)
    new = plan.after.encode("utf-8")
    if current is not None:
        st = path.stat()
        mode, uid, gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
    else:
        mode = plan.mode if plan.mode is not None else 0o644
        if _is_under(path, owner.home):
            uid, gid = owner.uid, owner.gid
        else:
            uid, gid = os.geteuid(), os.getegid()
    # Under sudo, the owner's own files in their home or in a directory of theirs are written
    # with their rights: a directory they own can be swapped for a symlink after the checks.
    mine = owner.via_sudo and state == owner and _theirs(path.parent, owner)
    entry = manifest.entries.get(key)
    old_entry = dict(entry) if entry is not None else None
    backup: Path | None = None
    made: Path | None = None
    if entry is None:
        entry = {
            "existed": current is not None,
            "mode": mode,
            "uid": uid,
            "gid": gid,
            "sha_before": _sha(current or b""),
        }
        if state != owner:
            entry["for"] = owner.name
        if current is not None:
            backup = made = manifest.keep(key, current)
            entry["backup"] = str(backup)
    elif isinstance(entry.get("backup"), str):
        backup = Path(str(entry["backup"]))
    entry["written"] = [*(w for w in _written(entry) if w != _sha(new)), _sha(new)]
    entry.pop("sha_written", None)
    manifest.entries[key] = entry
    try:
        manifest.save()  # what undo needs is on disk before the target changes
    except OSError:  # not saved (the rename is the last step that can fail): drop the backup
        if made is not None:
            made.unlink(missing_ok=True)
        raise
    # (a signal during the save may come after its rename: the backup then stays, as it must)
    try:
        with _as_user(owner) if mine else contextlib.nullcontext():
            _makedirs(path.parent, owner)
            _atomic_write(path, new, mode, uid, gid)
    except OSError:  # the target is untouched: its entry goes back to what it was
        if old_entry is None:
            del manifest.entries[key]
        else:
            manifest.entries[key] = old_entry
        with contextlib.suppress(OSError):
            manifest.save()
            if made is not None:
                made.unlink(missing_ok=True)
        raise
    return Written(path=path, created=current is None, backup=backup, root_state=state != owner)


def _theirs(d: Path, owner: Owner) -> bool:
    """Is ``d`` in the owner's home, or an existing directory of theirs?"""
    if _is_under(d, owner.home):
        return True
    try:
        return d.lstat().st_uid == owner.uid
    except OSError:
        return False


def _written(entry: Mapping[str, object]) -> list[str]:
    w = entry.get("written")
    if isinstance(w, list):
        return [s for s in w if isinstance(s, str)]
    old = entry.get("sha_written")
    return [old] if isinstance(old, str) else []


# --------------------------------------------------------------------------------------------
# undo


@dataclass(frozen=True, kw_only=True)
class Undone:
    path: Path
    action: str  # "restored", "removed", "skipped: ..."


def undo(owner: Owner, only: Iterable[Path] = (), force: bool = False) -> list[Undone]:
    """Restore every file in the manifest (or those in ``only``) to its original bytes, or remove
    it when the fix created it. A file edited since the fix is skipped unless ``force``. Under
    sudo, root's own state directory (files that were not SUDO_USER's) is undone too."""
    wanted = {str(Path(p).absolute()) for p in only}
    states = [owner]
    if owner.via_sudo:
        states.append(identity.root_owner())
    results: list[Undone] = []
    with _terminate_like_interrupt():
        for state in states:
            results.extend(_undo_state(state, owner, wanted, force))
    if wanted:
        missing = wanted - {str(r.path) for r in results}
        if missing:
            raise DoctorError(f"no rootless-doctor backup of {', '.join(sorted(missing))}")
    return results


def _undo_state(state: Owner, owner: Owner, wanted: set[str], force: bool) -> list[Undone]:
    # Run as root on a manifest its user can write, every entry is untrusted input: all are
    # checked before any file is touched, and the undo runs with the user's own rights.
    untrusted = os.geteuid() == 0 and state.uid != 0
    check_owner_dirs(state.state_dir, state)
    if not state.state_dir.is_dir():
        return []
    results: list[Undone] = []
    with _as_user(state) if untrusted else contextlib.nullcontext(), _locked([state]):
        manifest = _Manifest(state)
        manifest.untrusted = untrusted
        keys = [
            k
            for k in sorted(manifest.entries)
            if (not wanted or k in wanted) and _whose(manifest.entries[k], state, owner)
        ]
        refused: dict[str, str] = {}
        for key in keys:
            try:
                _validate(key, manifest.entries[key], manifest, owner, untrusted)
            except OSError as e:  # as the user: a path they cannot even look at
                refused[key] = str(_bad(manifest, key, f"cannot be checked ({e.strerror or e})"))
            except DoctorError as e:
                refused[key] = str(e)
            if refused and untrusted:  # root on a user's manifest: one bad entry, no undo
                raise DoctorError(refused[key])
        for key in keys:
            if key in refused:  # the user's own manifest: that file is left as it is
                results.append(Undone(path=Path(key), action=f"skipped: {refused[key]}"))
                continue
            done = _undo_one(key, manifest, force)
            results.append(done)
            if done.action.startswith("skipped"):
                continue
            backup = manifest.entries.pop(key).get("backup")
            manifest.save()  # the entry goes before its backup: never an entry without one
            if isinstance(backup, str):
                Path(backup).unlink(missing_ok=True)
    return results


def _whose(entry: Mapping[str, object], state: Owner, owner: Owner) -> bool:
    """Under sudo, root's state directory holds entries of every SUDO_USER: only theirs."""
    return not (owner.via_sudo and state != owner) or entry.get("for") == owner.name


def _bad(manifest: _Manifest, key: str, why: str) -> DoctorError:
    if manifest.untrusted:
        return DoctorError(
            f"{manifest.file}: the entry for {key} {why}; nothing was undone (move the "
            "manifest away if you did not write it)"
        )
    return DoctorError(f"its entry in {manifest.file} {why}")


def _validate(
    key: str, entry: Mapping[str, object], manifest: _Manifest, owner: Owner, untrusted: bool
) -> None:
    """The rules of a write, for one manifest entry; DoctorError (one line) if it breaks one."""
    path = Path(key)
    if not path.is_absolute() or os.path.normpath(key) != key:
        raise _bad(manifest, key, "is not a plain absolute path")
    for k in ("mode", "uid", "gid"):
        v = entry.get(k)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 1 << 32:
            raise _bad(manifest, key, f"has no valid {k}")
    if not isinstance(entry.get("existed"), bool):
        raise _bad(manifest, key, "does not say whether the file existed")
    try:
        _check_write(path, owner)
    except DoctorError as e:
        raise _bad(manifest, key, f"is refused ({e})") from None
    if untrusted:
        try:
            uid: int | None = path.lstat().st_uid
        except FileNotFoundError:
            uid = None
        if uid is None and not _is_under(path, owner.home):
            raise _bad(manifest, key, f"names a missing file outside {owner.home}")
        if uid is not None and uid != manifest.owner.uid:
            raise _bad(manifest, key, f"names a file that is not {manifest.owner.name}'s")
    if entry["existed"]:
        backup = entry.get("backup")
        if not isinstance(backup, str) or Path(backup).parent != manifest.backups:
            raise _bad(manifest, key, f"has a backup outside {manifest.backups}")
        try:
            _read_own(Path(backup), manifest.owner.uid, MAX_TARGET)
        except FileNotFoundError:
            raise _bad(manifest, key, f"has lost its backup {backup}") from None
        except (OSError, _NotOwn) as e:
            raise _bad(manifest, key, f"has a backup {backup} that is refused ({e})") from None


def _undo_one(key: str, manifest: _Manifest, force: bool) -> Undone:
    """Put one file back (the entry is valid); its entry and backup are dropped by the caller."""
    entry = manifest.entries[key]
    path = Path(key)
    try:
        now = _read_target(path)
    except DoctorError as e:
        return Undone(path=path, action=f"skipped: {e}")
    known = {*_written(entry), entry.get("sha_before")}
    if now is not None and _sha(now) not in known and not force:
        return Undone(
            path=path,
            action="skipped: changed since rootless-doctor wrote it (use --force to restore the "
            "original anyway)",
        )
    mode, uid, gid = (_int(entry[k]) for k in ("mode", "uid", "gid"))
    if manifest.owner.uid != 0 and os.geteuid() == 0:
        # root on a user's manifest: the file goes back to that user, without special bits
        mode, uid, gid = mode & 0o777, manifest.owner.uid, manifest.owner.gid
    try:
        if entry["existed"]:
            original = _read_own(Path(str(entry["backup"])), manifest.owner.uid, MAX_TARGET)
            if now != original:
                _makedirs(path.parent, manifest.owner)
                _atomic_write(path, original, mode & 0o7777, uid, gid)
            return Undone(path=path, action="restored")
        path.unlink(missing_ok=True)
        _fsync_dir(path.parent)
        return Undone(path=path, action="removed (the fix created it)")
    except PermissionError as e:
        raise DoctorError(f"{e.filename or path}: permission denied; run with sudo") from None
    except (OSError, _NotOwn) as e:
        raise DoctorError(f"{path}: cannot undo: {e}") from None


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
    done: list[JsonFixFile] = []
    undo_cmd: str | None = None
    if not changed:
        done = [{"path": str(p.path), "changed": False, "what": p.what} for p in plans]
    steps: list[str] = []
    for p in changed:
        entry: JsonFixFile = {"path": str(p.path), "changed": True, "what": p.what}
        if preview:
            entry["diff"] = diff(p)
        done.append(entry)
        steps.extend(s for s in p.next_steps if s not in steps)
    if not preview and changed:
        by_path = {str(w.path): w for w in write_all(changed, owner)}
        undo_cmd = undo_command(by_path.values())
        for f in done:
            w = by_path[f["path"]]
            f["created"] = w.created
            f["backup"] = str(w.backup) if w.backup else None
    from . import __version__

    return {
        "schema_version": FIX_SCHEMA_VERSION,
        "tool_version": __version__,
        "changed": bool(changed),
        "dry_run": preview,
        "files": done,
        "next_steps": steps,
        "notes": notes,
        "undo": undo_cmd,
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
    runtime_dir: Path,
    stop_timeout: float = 30.0,
    start_timeout: float = 90.0,
) -> int:
    """Restart rootless Docker where no systemd user manager answers: SIGTERM the running
    RootlessKit of dockerd-rootless.sh and wait for it to exit, start the launcher again in its
    own session with ``env`` (the DOCKERD_ROOTLESS_* settings of the unit and drop-ins, over the
    ones it ran with), output appended to the state dir's dockerd.log, and wait until the daemon
    answers on ``runtime_dir``/docker.sock (the owner's runtime dir, from host/). Returns the new
    launcher's PID. Refuses (DoctorError, nothing stopped) when it
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
    if launch.pid is not None:
        on_say(f"stopping rootless dockerd (RootlessKit PID {launch.pid})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(launch.pid, signal.SIGTERM)
        pid = launch.pid
        _wait_until(
            lambda: not _alive(pid),
            stop_timeout,
            f"rootless dockerd (PID {pid}) did not stop within {stop_timeout:.0f} s; it was not "
            "started again",
            interval=0.1,
        )
    log_dir = owner.state_dir
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = log_dir / DOCKERD_LOG
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    child_env = host.environment()
    child_env.update(launch.env)
    child_env.update(env)
    child_env["XDG_RUNTIME_DIR"] = str(runtime_dir)  # where the wait below looks for its socket
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
    docker_env = {**child_env, "DOCKER_HOST": f"unix://{runtime_dir}/docker.sock"}

    def answers() -> bool:
        if proc.poll() is not None:
            raise DoctorError(
                f"--restart: {launch.script} exited ({proc.returncode}); see {log_path}",
                exit_code=1,
            )
        return host.run(["docker", "version"], timeout=10, env=docker_env).ok

    _wait_until(
        answers,
        start_timeout,
        f"the daemon did not answer within {start_timeout:.0f} s; see {log_path}",
        interval=0.3,
    )
    on_say(f"rootless dockerd is up (launcher PID {proc.pid})")
    return proc.pid


def _wait_until(done: Callable[[], bool], timeout: float, what: str, *, interval: float) -> None:
    """Poll ``done`` every ``interval`` s until it is true; after ``timeout`` s a DoctorError
    ``--restart: {what}`` (exit 1). ``done`` may raise to end the wait early."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise DoctorError(f"--restart: {what}", exit_code=1)
        time.sleep(interval)


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False
