"""Secrets out of the raw facts before they go into a `collect` archive. Pure: text in, text out.

What is redacted (the value only: keys, order, comments and layout stay, so every reader of the
tool parses the redacted text as it parsed the original):
- environment values of containers, compose services, env files and unit ``Environment=`` lines,
  except the variables the tool itself reads (:data:`ENV_READ`, :data:`ENV_READ_PREFIXES`);
- any value whose key or option name says it is a secret (:data:`SECRET_NAME`): JSON, TOML, YAML
  keys, ``KEY=value`` / ``KEY: value`` in text, ``--password=x`` / ``--token x`` in command lines;
- credentials in URLs (``scheme://user:password@host`` → ``scheme://%redacted%@host``).
Each function returns the new text (or object) and what it redacted, as short phrases naming the
key and never the value, for the archive's manifest.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

REDACTED = "%redacted%"

# The environment variables whose values a check reads (checks/compose.py, checks/interfaces.py,
# knowledge.is_mailserver reads only the key). Their values decide verdicts: they stay.
ENV_READ = frozenset({"NETWORK_INTERFACE", "ENABLE_FAIL2BAN", "PERMIT_DOCKER"})
# dockerd-rootless.sh's own settings, read from the unit and drop-ins (docs/facts.md).
ENV_READ_PREFIXES = ("DOCKERD_ROOTLESS_",)

SECRET_NAME = re.compile(
    r"pass(?:word|wd|phrase)?\b|secret|token|api[_-]?key|private[_-]?key|access[_-]?key"
    r"|credential|auth(?:[_-]?(?:key|token|header))?\b|cookie|session[_-]?key|salt",
    re.I,
)
# A scheme starts where no scheme character precedes it (with \b it could start after every `.`:
# "a.a.a..." in an engine's output took 19 s on 40 KB); user and password are bounded.
_URL_CREDS = re.compile(
    r"(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*://)([^/@\s:]{1,256}):([^/@\s]{1,256})@", re.I
)
# KEY=value in free text (ps lines, docker info, a remedy's command); KEY names a secret.
# (Not `KEY: value`: in prose a colon follows any word, a container's name too.)
_TEXT_ASSIGN = re.compile(
    # A key starts where no key character precedes it (not at every `.`: with \b, "a.a.a..." in
    # an engine's output, e.g. an image label, was quadratic); `--db-password=x` still finds
    # `password`.
    r"""(?P<key>(?<![A-Za-z0-9_.])[A-Za-z_][A-Za-z0-9_.]*)(?P<sep>=)"""
    r"""(?P<val>"[^"\n]*"|'[^'\n]*'|[^\s,;`]+)"""
)


def _secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name.replace("-", "_")))


def env_value_kept(key: str) -> bool:
    """Does the tool read this variable's value (so it must stay)?"""
    return key in ENV_READ or key.startswith(ENV_READ_PREFIXES)


def url_credentials(text: str) -> tuple[str, list[str]]:
    found: list[str] = []

    def sub(m: re.Match[str]) -> str:
        found.append(f"credentials in a {m.group(1)[:-3]} URL")
        return f"{m.group(1)}{REDACTED}@"

    return _URL_CREDS.sub(sub, text), found


# ``-e KEY=value`` / ``--env KEY=value`` / ``--env=KEY=value`` inside a command shown as text.
_ENV_FLAG = re.compile(
    r"(?<!\S)(?P<flag>-e|--env)(?P<sep>=|\s+)(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<val>\S+)"
)


def text(value: str) -> tuple[str, list[str]]:
    """Free text (process lines, `docker info`, a remedy's command): URL credentials,
    ``-e KEY=value`` environment values, and ``SECRET=value`` pairs."""
    out, found = url_credentials(value)

    def env_sub(m: re.Match[str]) -> str:
        if env_value_kept(m.group("key")) or m.group("val").strip("`'\"") == REDACTED:
            return m.group(0)
        found.append(f"environment value of {m.group('key')}")
        tail = m.group("val")[len(m.group("val").rstrip("`'\"")) :]  # a closing quote stays
        return f"{m.group('flag')}{m.group('sep')}{m.group('key')}={REDACTED}{tail}"

    out = _ENV_FLAG.sub(env_sub, out)

    def sub(m: re.Match[str]) -> str:
        if not _secret_name(m.group("key")) or m.group("val") == REDACTED:
            return m.group(0)
        found.append(f"value of {m.group('key')}")
        return f"{m.group('key')}{m.group('sep')}{REDACTED}"

    return _TEXT_ASSIGN.sub(sub, out), found


def env_pair(pair: str) -> tuple[str, str | None]:
    """``KEY=value`` → (kept or redacted pair, the key when its value was redacted)."""
    key, eq, value = pair.partition("=")
    if not eq or env_value_kept(key) or value == REDACTED or value == "":
        return pair, None
    return f"{key}={REDACTED}", key


def env_pairs(pairs: Iterable[str]) -> tuple[list[str], list[str]]:
    out, found = [], []
    for p in pairs:
        new, key = env_pair(p)
        out.append(new)
        if key is not None:
            found.append(f"environment value of {key}")
    return out, found


_ENV_FLAGS = ("-e", "--env")


def command_line(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """An argv (CreateCommand, a process's command line): ``-e K=V``/``--env[=]K=V`` values,
    ``--secret-ish=value`` / ``--secret-ish value`` options, URL credentials in any argument."""
    out: list[str] = []
    found: list[str] = []
    take_env = take_secret = False
    for arg in argv:
        if take_env:
            new, key = env_pair(arg)
            if key is not None:
                found.append(f"environment value of {key}")
            out.append(new)
            take_env = False
            continue
        if take_secret:
            out.append(REDACTED)
            found.append(f"value of {out[-2]}")
            take_secret = False
            continue
        if arg in _ENV_FLAGS:
            take_env = True
            out.append(arg)
            continue
        flag, eq, value = arg.partition("=")
        if eq and flag in _ENV_FLAGS:
            new, key = env_pair(value)
            if key is not None:
                found.append(f"environment value of {key}")
            out.append(f"{flag}={new}")
            continue
        if arg.startswith("-e") and len(arg) > 2 and "=" in arg and not arg.startswith("--"):
            new, key = env_pair(arg[2:])
            if key is not None:
                found.append(f"environment value of {key}")
            out.append(f"-e{new}")
            continue
        if arg.startswith("--") and _secret_name(flag[2:]):
            if eq:
                out.append(f"{flag}={REDACTED}")
                found.append(f"value of {flag}")
            else:
                out.append(arg)
                take_secret = True
            continue
        new_arg, creds = url_credentials(arg)
        out.append(new_arg)
        found.extend(creds)
    return out, found


# --------------------------------------------------------------------------- JSON (inspect, info)

_ENV_LIST_KEYS = frozenset({"env", "environment", "configured_env"})
_ARGV_KEYS = frozenset({"createcommand", "create_command", "cmd", "entrypoint", "args", "cmdline"})


def env_mapping(env: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``{KEY: value}`` (compose ``environment:``, the facts' container env): values the tool
    does not read."""
    out: dict[str, Any] = {}
    found = []
    for k, v in env.items():
        if isinstance(v, str) and v not in ("", REDACTED) and not env_value_kept(str(k)):
            out[k] = REDACTED
            found.append(f"environment value of {k}")
        else:
            out[k] = v
    return out, found


def json_value(obj: Any) -> tuple[Any, list[str]]:
    """A parsed JSON document (``podman inspect``, ``docker inspect``, ``podman info``,
    daemon.json): ``Env`` lists, command arrays, secret-named keys, URL credentials."""
    found: list[str] = []

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            new: dict[str, Any] = {}
            for k, v in node.items():
                lk = str(k).lower()
                if lk in _ENV_LIST_KEYS and isinstance(v, dict):
                    new[k], f = env_mapping(v)
                    found.extend(f)
                elif (
                    lk in _ENV_LIST_KEYS
                    and isinstance(v, list)
                    and all(isinstance(x, str) for x in v)
                ):
                    new[k], f = env_pairs(v)
                    found.extend(f)
                elif (
                    lk in _ARGV_KEYS and isinstance(v, list) and all(isinstance(x, str) for x in v)
                ):
                    new[k], f = command_line(v)
                    found.extend(f)
                elif isinstance(v, str) and v and v != REDACTED and _secret_name(str(k)):
                    new[k] = REDACTED
                    found.append(f"value of {k}")
                elif lk == "proxies" and isinstance(v, dict):  # daemon.json
                    new[k] = walk(v)
                else:
                    new[k] = walk(v)
            return new
        if isinstance(node, list):
            return [walk(x) for x in node]
        if isinstance(node, str):
            s, f = text(node)
            found.extend(f)
            return s
        return node

    return walk(copy.deepcopy(obj)), found


def json_text(value: str) -> tuple[str, list[str]]:
    """JSON text; text that is not JSON goes through :func:`text`."""
    try:
        obj = json.loads(value)
    except ValueError:
        return text(value)
    new, found = json_value(obj)
    if not found:
        return value, []
    return json.dumps(new, indent=2) + "\n", found


# --------------------------------------------------------------------------- systemd units

_UNIT_ENV = re.compile(r"^(?P<lead>\s*Environment\s*=\s*)(?P<rest>.*)$")
# systemd.exec(5) Environment=: space-separated assignments; quotes may wrap the assignment or
# part of it ("FOO=bar baz" and FOO="bar baz" are both one assignment).
_UNIT_WORD = re.compile(r"""(?:"(?:[^"\\]|\\.)*"|'[^']*'|[^\s"'])+""")
_UNIT_PIECE = re.compile(r""""((?:[^"\\]|\\.)*)"|'([^']*)'|([^"']+)""")


def _unquote(word: str) -> str:
    out = []
    for dq, sq, plain in _UNIT_PIECE.findall(word):
        out.append(re.sub(r"\\(.)", r"\1", dq) if dq else sq or plain)
    return "".join(out)


def unit_text(value: str) -> tuple[str, list[str]]:
    """A unit file or drop-in: values of ``Environment=`` assignments the tool does not read,
    then :func:`text` for secret-named settings elsewhere."""
    found: list[str] = []
    lines = []
    for line in value.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        end = line[len(body) :]
        m = _UNIT_ENV.match(body)
        if not m:
            lines.append(line)
            continue
        parts = []
        for word in _UNIT_WORD.findall(m.group("rest")):
            new, key = env_pair(_unquote(word))
            if key is None:
                parts.append(word)
                continue
            found.append(f"environment value of {key}")
            quote = word[0] if word[0] in "\"'" else ""
            parts.append(f"{quote}{new}{quote}")
        lines.append(m.group("lead") + " ".join(parts) + end)
    out, more = text("".join(lines))
    return out, found + more


def env_file_text(value: str) -> tuple[str, list[str]]:
    """An env file (``KEY=value`` lines, comments): values the tool does not read."""
    found: list[str] = []
    lines = []
    for line in value.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        end = line[len(body) :]
        stripped = body.lstrip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            lines.append(line)
            continue
        lead = body[: len(body) - len(stripped)]
        export = "export " if stripped.startswith("export ") else ""
        new, key = env_pair(stripped[len(export) :])
        if key is not None:
            found.append(f"environment value of {key}")
        lines.append(lead + export + new + end)
    return "".join(lines), found


# ---------------------------------------------------------------- compose, containers.conf


def compose_text(value: str) -> tuple[str, list[str]]:
    """A compose file (ruamel round-trip: comments and order stay): each service's
    ``environment`` (mapping or list) and any secret-named scalar; URL credentials."""
    from io import StringIO

    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    try:
        doc = yaml.load(value)
    except YAMLError:
        return text(value)  # not YAML the tool can read either: at least the plain-text rules
    found: list[str] = []

    def scalar(key: str, v: Any) -> Any:
        if v is None or isinstance(v, bool | int | float):
            return v
        s = str(v)
        if env_value_kept(key) or s in ("", REDACTED):
            return v
        found.append(f"environment value of {key}")
        return REDACTED

    def walk(node: Any, in_env: bool = False) -> None:
        if isinstance(node, dict):
            for k in list(node):
                v = node[k]
                if in_env:
                    node[k] = scalar(str(k), v)
                elif str(k) == "environment" and isinstance(v, dict | list):
                    walk(v, in_env=True)
                elif isinstance(v, str) and _secret_name(str(k)) and v != REDACTED:
                    node[k] = REDACTED
                    found.append(f"value of {k}")
                elif isinstance(v, str):
                    new, f = url_credentials(v)
                    if f:
                        node[k] = new
                        found.extend(f)
                else:
                    walk(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                if in_env and isinstance(v, str):
                    new, key = env_pair(v)
                    if key is not None:
                        found.append(f"environment value of {key}")
                        node[i] = new
                elif isinstance(v, str):
                    new, f = url_credentials(v)
                    if f:
                        node[i] = new
                        found.extend(f)
                else:
                    walk(v)

    walk(doc)
    if not found:
        return value, []
    out = StringIO()
    yaml.dump(doc, out)
    return out.getvalue(), found


def toml_text(value: str) -> tuple[str, list[str]]:
    """containers.conf (tomlkit: comments and layout stay): ``env`` arrays, secret-named keys,
    URL credentials."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(value)
    except TOMLKitError:
        return text(value)
    found: list[str] = []

    def walk(table: Any) -> None:
        for k in list(table.keys()):
            v = table[k]
            if hasattr(v, "keys"):
                walk(v)
            elif isinstance(v, list) and str(k).lower() in _ENV_LIST_KEYS:
                for i, item in enumerate(v):
                    if isinstance(item, str):
                        new, key = env_pair(str(item))
                        if key is not None:
                            v[i] = new
                            found.append(f"environment value of {key}")
            elif isinstance(v, str):
                if _secret_name(str(k)) and str(v) != REDACTED:
                    table[k] = REDACTED
                    found.append(f"value of {k}")
                else:
                    new, f = url_credentials(str(v))
                    if f:
                        table[k] = new
                        found.extend(f)

    walk(doc)
    if not found:
        return value, []
    return tomlkit.dumps(doc), found
