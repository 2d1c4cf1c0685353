"""`rootless-doctor collect`: one archive of what the tool read on this host, for a bug report;
and reading it back for `check --from ARCHIVE`.

The archive (tar + gzip, created mode 0600, never overwriting) holds, each file named by what it
is, with secrets redacted by :mod:`rootless_doctor.redact`:

- ``manifest.json``: tool version, user, time, every member with what it is (the command and its
  exit code, or the host path), and every redaction (which file, which key; never the value);
- ``report.json``: the tool's own ``check --json`` of the same reading;
- ``facts.json``: the facts the checks judged (``HostFacts``), so ``check --from ARCHIVE`` gives
  the same verdicts by construction;
- ``commands/*``: the output of each command the tool ran (``podman info``, ``docker version``,
  per-container inspect, the interfaces inside a container, ...);
- ``files/*``: the files it read (the Docker user unit and drop-ins, daemon.json, the
  containers.conf chain, the compose file; ``~`` is the user's home);
- ``processes.txt``: the engines' process lines (rootlesskit, dockerd, slirp4netns, pasta, conmon,
  rootlessport, catatonit) as ``ps -eo pid,ppid,user,args`` shows them; no other process.

Reading the host goes through :mod:`rootless_doctor.host`; the archive is written by
:func:`rootless_doctor.apply.create_private`, the one writer.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import tarfile
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

from . import __version__, redact
from .model import CmdOutput, DoctorError, HostFacts, HostPaths, Proc

ARCHIVE_SCHEMA = 1
MANIFEST = "manifest.json"
FACTS = "facts.json"
REPORT = "report.json"
# Untrusted input when read back: bounds on the archive (a collect archive is a few hundred KiB).
MAX_ARCHIVE_BYTES = 32 * 1024 * 1024
MAX_MEMBERS = 2000
MAX_UNPACKED_BYTES = 64 * 1024 * 1024
MAX_FILE_BYTES = 1024 * 1024  # one collected file; larger ones are cut (the manifest says so)
_ENGINE_PROCS = frozenset({
    "rootlesskit", "dockerd", "containerd", "containerd-shim-runc-v2", "slirp4netns", "pasta",
    "pasta.avx2", "conmon", "rootlessport", "rootlessport-child", "catatonit",
    "dockerd-rootless.sh", "docker-proxy", "vpnkit", "gvproxy",
})  # fmt: skip


# --------------------------------------------------------------------------- recording


class Recorder:
    """A runner for :func:`host.gather` that keeps every command's output."""

    def __init__(self, runner: Any) -> None:
        self._runner = runner
        self.outputs: list[CmdOutput] = []

    def __call__(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 5.0,
        env: Mapping[str, str] | None = None,
    ) -> CmdOutput:
        out: CmdOutput = self._runner(argv, timeout=timeout, env=env)
        self.outputs.append(out)
        return out


@dataclass(frozen=True)
class Member:
    name: str
    data: bytes
    what: str  # for the manifest: "output of `podman info`", "the file ~/.config/..."
    extra: Mapping[str, Any] | None = None


# --------------------------------------------------------------------------- facts <-> JSON


def encode(value: Any) -> Any:
    """Facts → JSON-able data (dataclasses as objects, tuples as lists, paths as strings)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def decode(tp: Any, data: Any, where: str = "facts") -> Any:
    """JSON data → an instance of the type ``tp`` (the model's annotations), checked on the
    way: a value of the wrong type is a :class:`DoctorError` naming where it is."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return data
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        errors = []
        for alt in (a for a in args if a is not type(None)):
            try:
                return decode(alt, data, where)
            except DoctorError as e:
                errors.append(str(e))
        raise DoctorError(errors[0] if errors else f"{where}: unexpected null")
    if origin is typing.Literal:
        if data not in args:
            raise DoctorError(f"{where}: {data!r} is not one of {list(args)}")
        return data
    if origin is tuple:
        if not isinstance(data, list):
            raise DoctorError(f"{where}: expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v, f"{where}[{i}]") for i, v in enumerate(data))
        if len(args) != len(data):
            raise DoctorError(f"{where}: expected {len(args)} items")
        return tuple(
            decode(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, data, strict=True))
        )
    if origin is dict:
        if not isinstance(data, dict):
            raise DoctorError(f"{where}: expected an object")
        return {str(k): decode(args[1], v, f"{where}.{k}") for k, v in data.items()}
    if is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(data, dict):
            raise DoctorError(f"{where}: expected an object")
        hints = typing.get_type_hints(tp)
        kw = {}
        for f in fields(tp):
            if f.name in data:
                kw[f.name] = decode(hints[f.name], data[f.name], f"{where}.{f.name}")
            elif f.default is MISSING and f.default_factory is MISSING:
                raise DoctorError(f"{where}: {f.name} is missing")
        return tp(**kw)
    if tp is Path:
        if not isinstance(data, str):
            raise DoctorError(f"{where}: expected a path")
        return Path(data)
    if tp is float and isinstance(data, int | float) and not isinstance(data, bool):
        return float(data)
    if tp in (str, int, bool) and type(data) is tp:
        return data
    if tp is object:
        return data
    raise DoctorError(f"{where}: {type(data).__name__} where {tp} was expected")


# --------------------------------------------------------------------------- the archive's members


def _slug(argv: Sequence[str]) -> str:
    words = [Path(argv[0]).name, *argv[1:]] if argv else ["command"]
    s = "-".join(re.sub(r"[^A-Za-z0-9._-]+", "_", w.lstrip("-")).strip("_") for w in words)
    return re.sub(r"-+", "-", s).strip("-")[:100] or "command"


def _looks_json(text: str) -> bool:
    t = text.lstrip()
    if not t.startswith(("{", "[")):
        return False
    try:
        json.loads(t)
    except ValueError:
        return False
    return True


def _unique(name: str, taken: set[str]) -> str:
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    candidate, n = name, 2
    while candidate in taken:
        candidate = f"{stem}-{n}.{ext}" if ext else f"{stem}-{n}"
        n += 1
    taken.add(candidate)
    return candidate


def command_members(outputs: Sequence[CmdOutput], taken: set[str]) -> list[Member]:
    members = []
    for out in outputs:
        argv, found = redact.command_line(out.argv)
        shown = " ".join(argv)
        if _looks_json(out.stdout):
            stdout, more = redact.json_text(out.stdout)
            ext = "json"
        else:
            stdout, more = redact.text(out.stdout)
            ext = "txt"
        stderr, err_found = redact.text(out.stderr[-4000:])
        name = _unique(f"commands/{_slug(argv)}.{ext}", taken)
        members.append(
            Member(
                name,
                stdout.encode(),
                f"output of `{shown}`",
                {
                    "exit_code": out.code,
                    "error": out.error,
                    "stderr": stderr,
                    "redacted": found + more + err_found,
                },
            )
        )
    return members


def _redact_file(path: str, text: str, paths: HostPaths) -> tuple[str, list[str]]:
    name = Path(path).name
    if path in ("/etc/subuid", "/etc/subgid"):  # other users' lines are none of the report's
        keep = {paths.user, str(paths.uid)}
        kept = [ln for ln in text.splitlines(keepends=True) if ln.split(":", 1)[0] in keep]
        return "".join(kept), []
    if "/systemd/" in path and name.endswith((".service", ".conf")):
        return redact.unit_text(text)
    if name.endswith(".json"):
        return redact.json_text(text)
    if ("/containers/" in path and name.endswith(".conf")) or name.endswith(".toml"):
        return redact.toml_text(text)
    if name.endswith((".yaml", ".yml")):
        return redact.compose_text(text)
    if name.endswith(".env") or name == ".env":
        return redact.env_file_text(text)
    return redact.text(text)


def compose_env_files(facts: HostFacts) -> list[str]:
    """The compose file's ``.env`` and every ``env_file:`` its services name (Compose reads
    them; so does the check)."""
    if facts.compose is None:
        return []
    files = [str(Path(facts.compose.path).parent / ".env")]
    files += [ref.path for s in facts.compose.services for ref in s.env_files]
    return list(dict.fromkeys(files))


def file_members(
    paths: HostPaths,
    sources: Sequence[str],
    read: Any,
    taken: set[str],
    env_files: Sequence[str] = (),
) -> list[Member]:
    members = []
    home = str(paths.home).rstrip("/") + "/"
    for src in [*sources, *env_files]:
        if not src.startswith("/") or " " in src:
            continue  # a command or an API call, not a file
        text = read(paths.at(src))
        if text is None:
            continue
        cut = len(text) > MAX_FILE_BYTES
        if src in env_files:
            text, found = redact.env_file_text(text[:MAX_FILE_BYTES])
        else:
            text, found = _redact_file(src, text[:MAX_FILE_BYTES], paths)
        shown = "~/" + src[len(home) :] if src.startswith(home) else src
        name = _unique(f"files/{shown.lstrip('/')}", taken)
        what = f"the file {shown}" + (" (cut at 1 MiB)" if cut else "")
        members.append(Member(name, text.encode(), what, {"redacted": found}))
    return members


def processes_member(procs: Sequence[Proc], paths: HostPaths) -> Member:
    rows = ["  PID  PPID USER     COMMAND"]
    found: list[str] = []
    for p in procs:
        if not p.cmdline or p.uid != paths.uid:
            continue
        prog = Path(p.cmdline[0]).name
        if prog not in _ENGINE_PROCS and not (
            prog == "exe" and any("rootlesskit" in a for a in p.cmdline)
        ):
            continue
        argv, f = redact.command_line(p.cmdline)
        found += f
        rows.append(f"{p.pid:>5} {p.ppid:>5} {paths.user or p.uid:<8} {' '.join(argv)}")
    return Member(
        "processes.txt",
        ("\n".join(rows) + "\n").encode(),
        "the engines' processes of this user (ps -eo pid,ppid,user,args form)",
        {"redacted": found},
    )


def facts_member(facts: HostFacts) -> Member:
    data, found = redact.json_value(encode(facts))
    return Member(
        FACTS,
        (json.dumps(data, indent=1, sort_keys=True) + "\n").encode(),
        "the facts the checks judged (check --from ARCHIVE reads these)",
        {"redacted": found},
    )


def build(
    *,
    paths: HostPaths,
    facts: HostFacts,
    outputs: Sequence[CmdOutput],
    procs: Sequence[Proc],
    report_json: object,
    read: Any,
    hostname: str,
    now: dt.datetime,
) -> tuple[bytes, dict[str, Any]]:
    """The archive's bytes and its manifest (also inside it)."""
    taken = {MANIFEST, FACTS, REPORT, "processes.txt"}
    report, report_found = redact.json_value(report_json)
    members = [
        facts_member(facts),
        Member(
            REPORT,
            (json.dumps(report, indent=2) + "\n").encode(),
            "rootless-doctor check --json of the same reading",
            {"redacted": report_found},
        ),
        processes_member(procs, paths),
        *command_members(outputs, taken),
        *file_members(paths, facts.sources, read, taken, compose_env_files(facts)),
    ]
    redactions = [
        {"file": m.name, "what": what}
        for m in members
        for what in (m.extra or {}).get("redacted", [])
    ]
    manifest: dict[str, Any] = {
        "schema_version": ARCHIVE_SCHEMA,
        "tool_version": __version__,
        "created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "hostname": hostname,
        "user": paths.user,
        "uid": paths.uid,
        "redaction": (
            "environment values other than "
            + ", ".join(sorted(redact.ENV_READ))
            + " and DOCKERD_ROOTLESS_*; values whose name says secret, password, token, key, "
            "auth, credential; credentials in URLs. Each is replaced by "
            f"{redact.REDACTED!r}; the list below names the key, never the value."
        ),
        "redacted": redactions,
        "members": [
            {"name": m.name, "what": m.what}
            | {k: v for k, v in (m.extra or {}).items() if k != "redacted"}
            for m in members
        ],
    }
    buf = io.BytesIO()
    stamp = now.timestamp()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [
            (MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode()),
            *((m.name, m.data) for m in members),
        ]:
            info = tarfile.TarInfo(f"rootless-doctor-collect/{name}")
            info.size = len(data)
            info.mode = 0o600
            info.mtime = int(stamp)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), manifest


def default_name(hostname: str, now: dt.datetime) -> str:
    host = re.sub(r"[^A-Za-z0-9.-]+", "_", hostname)[:40] or "host"
    return f"rootless-doctor-{host}-{now.strftime('%Y%m%dT%H%M%SZ')}.tar.gz"


# --------------------------------------------------------------------------- reading it back


class _Bounded(io.RawIOBase):
    """A reader that refuses to give more than ``limit`` bytes (a gzip bomb stops here)."""

    def __init__(self, raw: typing.BinaryIO, limit: int, what: str) -> None:
        self._raw, self._left, self._what = raw, limit, what

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._raw.read(min(len(b), self._left + 1))
        if len(data) > self._left:
            raise DoctorError(self._what)
        self._left -= len(data)
        b[: len(data)] = data
        return len(data)


def members_of(data: bytes, label: str) -> dict[str, bytes]:
    """The regular files of an archive (collect's top directory stripped), bounded."""
    import gzip

    if len(data) > MAX_ARCHIVE_BYTES:
        raise DoctorError(
            f"{label}: larger than {MAX_ARCHIVE_BYTES >> 20} MiB: not a collect archive"
        )
    raw: typing.BinaryIO = io.BytesIO(data)
    if data[:2] == b"\x1f\x8b":
        raw = gzip.GzipFile(fileobj=raw)  # type: ignore[assignment]
    stream = io.BufferedReader(
        _Bounded(raw, MAX_UNPACKED_BYTES, f"{label}: unpacks to more than "
                 f"{MAX_UNPACKED_BYTES >> 20} MiB: not a collect archive")
    )  # fmt: skip
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for n, info in enumerate(tar):
                if n >= MAX_MEMBERS:
                    raise DoctorError(
                        f"{label}: more than {MAX_MEMBERS} files: not a collect archive"
                    )
                name = info.name
                if name.startswith("/") or ".." in Path(name).parts:
                    raise DoctorError(f"{label}: member {name!r} points outside the archive")
                if not info.isfile():
                    continue
                f = tar.extractfile(info)
                if f is None:
                    continue
                short = (
                    name.split("/", 1)[1] if name.startswith("rootless-doctor-collect/") else name
                )
                out[short] = f.read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DoctorError(f"{label}: not a readable tar.gz archive ({e})") from None
    return out


def load(data: bytes, label: str) -> tuple[HostFacts, dict[str, Any]]:
    """The facts and the manifest of a collect archive."""
    members = members_of(data, label)
    if FACTS not in members:
        raise DoctorError(
            f"{label}: no {FACTS} in the archive: not made by `rootless-doctor collect`"
        )
    try:
        manifest = json.loads(members.get(MANIFEST, b"{}"))
        raw = json.loads(members[FACTS])
    except ValueError as e:
        raise DoctorError(f"{label}: {FACTS} or {MANIFEST} is not JSON ({e})") from None
    if not isinstance(manifest, dict):
        manifest = {}
    try:
        facts = decode(HostFacts, raw)
    except DoctorError as e:
        raise DoctorError(f"{label}: {e}") from None
    return facts, manifest
