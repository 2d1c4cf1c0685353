"""A compose service's environment as Compose builds it: texts in, values and where each came from.

Pure: the host reads the files (bounded), this module combines texts. Compose's rules (compose-spec
``05-services.md`` "env_file" and "environment", ``12-interpolation.md``; docs.docker.com compose
"Environment variables precedence"; docs/facts.md "docker-mailserver"):

- ``env_file``: a path, a list of paths, or the long form ``{path, required}``; relative to the
  compose file's directory; a later file overrides an earlier one; a missing file stops
  ``compose up`` unless it says ``required: false``.
- ``environment:`` overrides every env file.
- The compose file's own strings are interpolated from the shell environment and the project's
  ``.env`` (the shell wins): ``$VAR``, ``${VAR}``, ``${VAR:-d}``, ``${VAR-d}``, ``${VAR:?e}``,
  ``${VAR?e}``, ``${VAR:+r}``, ``${VAR+r}``; ``$$`` is a literal ``$``. Env-file values are not
  interpolated here (what they hold is used as written).

Env-file syntax is python-dotenv's (imported only when a file has to be read: about 20 ms).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from .model import EnvFileRef

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_NESTING = 20  # ${A:-${B:-...}} inside each other: bounded (the file is untrusted input)
MAX_DEPTH = 64  # YAML nesting walked when interpolating
DOTENV = ".env"  # the project's environment file, next to the compose file


class InterpolationError(ValueError):
    """A ``${...}`` Compose would refuse (``${VAR:?msg}`` unset, bad syntax)."""


@dataclass(frozen=True, kw_only=True)
class EnvFileText:
    """What the host read for one env file: its text, or why not (``text is None``)."""

    text: str | None
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class ComposeEnv:
    """What the host read around one compose file: the interpolation variables (``.env`` and, on
    a live check, the shell) and each env file the services name, by resolved path."""

    variables: dict[str, str] = field(default_factory=dict)
    env_files: dict[str, EnvFileText] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ServiceEnv:
    """A service's environment: values, their origin, and the env files that could not be read."""

    values: dict[str, str] = field(default_factory=dict)
    origin: dict[str, str] = field(
        default_factory=dict
    )  # key → "environment" or the file as written
    missing: tuple[str, ...] = ()  # required env files not read: "mailserver.env: not found"
    skipped: tuple[str, ...] = ()  # optional ones (required: false) not there


# --------------------------------------------------------------------------- interpolation


def interpolate(value: str, variables: Mapping[str, str], nesting: int = 0) -> str:
    """``value`` with Compose's ``$`` forms replaced from ``variables`` (unset → "")."""
    if nesting > MAX_NESTING:
        raise InterpolationError("interpolation nested too deep")
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        j = value.find("$", i)
        if j < 0:
            out.append(value[i:])
            break
        out.append(value[i:j])
        if value.startswith("$$", j):
            out.append("$")
            i = j + 2
        elif value.startswith("${", j):
            end = _closing_brace(value, j + 2)
            if end < 0:
                raise InterpolationError(f"unclosed '${{' in {value[j : j + 40]!r}")
            out.append(_expand(value[j + 2 : end], variables, nesting))
            i = end + 1
        elif m := _NAME.match(value, j + 1):
            out.append(variables.get(m.group(0), ""))
            i = m.end()
        else:
            out.append("$")
            i = j + 1
    return "".join(out)


def _closing_brace(s: str, start: int) -> int:
    level = 1
    for k in range(start, len(s)):
        if s[k] == "{":
            level += 1
        elif s[k] == "}":
            level -= 1
            if level == 0:
                return k
    return -1


def _expand(body: str, variables: Mapping[str, str], nesting: int) -> str:
    m = _NAME.match(body)
    if not m:
        raise InterpolationError(f"invalid interpolation '${{{body[:40]}}}'")
    name, rest = m.group(0), body[m.end() :]
    val = variables.get(name)
    if not rest:
        return val or ""
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if not rest.startswith(op):
            continue
        arg = rest[len(op) :]
        unset = val is None or (op.startswith(":") and val == "")
        if op in (":-", "-"):
            return interpolate(arg, variables, nesting + 1) if unset else (val or "")
        if op in (":?", "?"):
            if unset:
                raise InterpolationError(f"required variable {name} is missing: {arg or 'unset'}")
            return val or ""
        return "" if unset else interpolate(arg, variables, nesting + 1)
    raise InterpolationError(f"invalid interpolation '${{{body[:40]}}}'")


def interpolate_tree(data: Any, variables: Mapping[str, str], depth: int = 0) -> Any:
    """Every string value of a YAML tree interpolated (mapping keys are not, as in Compose)."""
    if depth > MAX_DEPTH:
        raise InterpolationError("compose file nested too deep")
    if isinstance(data, str):
        return interpolate(data, variables) if "$" in data else data
    if isinstance(data, Mapping):
        return {k: interpolate_tree(v, variables, depth + 1) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate_tree(v, variables, depth + 1) for v in data]
    return data


# --------------------------------------------------------------------------- env files


def parse_env_text(text: str) -> dict[str, str | None]:
    """An env file or ``.env`` (python-dotenv syntax: comments, quotes, ``export``); a ``KEY``
    without ``=`` is None (Compose takes it from the shell)."""
    from dotenv import dotenv_values

    return dict(dotenv_values(stream=io.StringIO(text), interpolate=False))


def variables(dotenv_text: str | None, shell: Mapping[str, str] | None) -> dict[str, str]:
    """Interpolation variables: ``.env`` below the shell environment (Compose's order)."""
    out = {}
    if dotenv_text:
        out = {k: v for k, v in parse_env_text(dotenv_text).items() if v is not None}
    out.update(shell or {})
    return out


def env_file_refs(spec: Any, base_dir: str) -> tuple[EnvFileRef, ...]:
    """``env_file`` in any of its forms → refs resolved against the compose file's directory."""
    items = spec if isinstance(spec, list) else [] if spec is None else [spec]
    refs = []
    for item in items:
        if isinstance(item, Mapping):
            path, required = item.get("path"), item.get("required", True)
        else:
            path, required = item, True
        if not isinstance(path, str) or not path:
            continue
        p = PurePosixPath(path)
        resolved = p if p.is_absolute() else PurePosixPath(base_dir) / p
        refs.append(EnvFileRef(written=path, path=str(resolved), required=required is not False))
    return tuple(refs)


def environment_entries(v: Any) -> dict[str, str | None]:
    """``environment:`` as a mapping or ``KEY=value`` list; ``KEY`` alone (shell) is None."""
    out: dict[str, str | None] = {}
    if isinstance(v, Mapping):
        for k, val in v.items():
            if val is None:
                out[str(k)] = None
            else:
                out[str(k)] = str(val).lower() if isinstance(val, bool) else str(val)
    elif isinstance(v, list):
        for item in v:
            k, eq, val = str(item).partition("=")
            out[k] = val if eq else None
    return out


def service_env(
    environment: Any, refs: Sequence[EnvFileRef], env_files: Mapping[str, EnvFileText]
) -> ServiceEnv:
    """Compose's precedence: env files in order (a later one wins), ``environment:`` over all.
    Values taken from the shell at ``up`` time (``KEY`` alone) are left out: unknown here."""
    values: dict[str, str] = {}
    origin: dict[str, str] = {}
    missing: list[str] = []
    skipped: list[str] = []
    for ref in refs:
        got = env_files.get(ref.path) or EnvFileText(text=None, error="not read")
        if got.text is None:
            (missing if ref.required else skipped).append(f"{ref.written}: {got.error}")
            continue
        for k, val in parse_env_text(got.text).items():
            if val is not None:
                values[k], origin[k] = val, ref.written
    for k, val in environment_entries(environment).items():
        values.pop(k, None)
        if val is None:
            origin[k] = "the shell (`environment:` names it without a value)"
        else:
            values[k], origin[k] = val, "environment"
    return ServiceEnv(values=values, origin=origin, missing=tuple(missing), skipped=tuple(skipped))


# --------------------------------------------------------------------------- editing one value

_ASSIGN = r"^(?P<lead>[ \t]*(?:export[ \t]+)?{key}[ \t]*=[ \t]*)(?P<val>[^\r\n]*?)(?P<eol>\r?\n?)$"


def defines(text: str, key: str) -> bool:
    """Whether an env file assigns ``key`` (a comment, or ``KEY`` without ``=``, does not)."""
    pat = re.compile(_ASSIGN.format(key=re.escape(key)))
    return any(pat.match(ln) for ln in text.splitlines(keepends=True))


def set_value(text: str, key: str, value: str) -> str:
    """``text`` with the assignment of ``key`` that wins (the last one) set to ``value``; its
    quotes, ``export``, trailing comment, the other lines and the file's last newline (or its
    absence) kept. A file without the key gets ``KEY=value`` appended."""
    pat = re.compile(_ASSIGN.format(key=re.escape(key)))
    lines = text.splitlines(keepends=True)
    for i in range(len(lines) - 1, -1, -1):
        m = pat.match(lines[i])
        if not m:
            continue
        old, rest = m.group("val"), ""
        quote = old[:1] if old[:1] in ("'", '"') else ""
        if quote and (end := old.find(quote, 1)) > 0:
            rest = old[end + 1 :]  # what follows the closing quote (a comment) stays
        elif not quote and " #" in old:
            rest = " #" + old.partition(" #")[2]
        lines[i] = f"{m.group('lead')}{quote}{value}{quote}{rest}{m.group('eol')}"
        return "".join(lines)
    sep = "" if not text or text.endswith("\n") else "\n"
    return f"{text}{sep}{key}={value}\n"
