"""The answers ``check`` needs of ``podman info``, read where Podman itself gets them.

``podman info`` costs ~300 ms, most of it package lookups (``dpkg -S`` / ``rpm -qf`` of each
helper, serial) whose answers no check reads. Check reads seven fields: version, rootless,
network backend, rootless network command, rootless port forwarder, and the pasta and slirp4netns
versions. Each has a cheaper source that Podman reads itself (docs/facts.md, "podman info,
derived"): ``podman --version``; the effective user id; containers.conf in Podman's load order;
the store's ``defaultNetworkBackend`` file; the helper binaries found the way Podman finds them,
run with ``--version`` as Podman runs them.

The derivation is used only where each of those rules was read in Podman's source for that
version line (:func:`shape_of`) and nothing on the host steps outside them (:func:`refusal`,
:func:`derive`); anything else (remote Podman, root, an unknown version, a storage.conf, an
unreadable containers.conf, ...) runs ``podman info`` as before. The report's notes say which
source answered (:data:`DERIVED`, :data:`RAN`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from ..model import CmdOutput, DoctorError, HostPaths, PodmanFacts
from .files import exists, is_dir, is_file, read

# The two ways of asking; gathering starts one of them early (prefetch) under these keys.
INFO_KEY = "podman info"
VERSION_KEY = "podman --version"
INFO_ARGS = ("info", "--format", "json")
VERSION_ARGS = ("--version",)

# Note prefixes (report notes): which source gave the Podman answers.
DERIVED = "podman: the answers of `podman info` read from their sources"
RAN = "podman: `podman info` ran"


class Shape(NamedTuple):
    """How ``podman info`` of one version line gets the fields check reads (libpod/info*.go)."""

    reports_network_cmd: bool  # host.rootlessNetworkCmd (5.1+)
    reports_pasta: bool  # host.pasta: helper_binaries_dir, then PATH
    slirp_in_helper_dirs: bool  # slirp4netns: helper_binaries_dir, then PATH (4.3: PATH only)
    cni_by_build: bool  # "cni" works only in builds with the cni tag (5.x)


# Podman 4.3: containers/podman v4.3.1 libpod/info_linux.go (exec.LookPath("slirp4netns"), no
# pasta, no rootlessNetworkCmd), containers/common v0.50.1. Podman 5.0-5.8: v5.0.0 .. v5.8.2
# libpod/info.go + info_linux.go (FindHelperBinary for both; RootlessNetworkCmd from
# containers.conf from v5.1.0 on), containers/common v0.58.0 .. v0.67.1 (default "pasta"; CNI
# only with the cni build tag). Other versions run `podman info`.
_SHAPE_4_3 = Shape(
    reports_network_cmd=False, reports_pasta=False, slirp_in_helper_dirs=False, cni_by_build=False
)
_SHAPE_5 = Shape(
    reports_network_cmd=True, reports_pasta=True, slirp_in_helper_dirs=True, cni_by_build=True
)
_SHAPE_5_0 = _SHAPE_5._replace(reports_network_cmd=False)
PROVEN = "4.3, 5.0 to 5.8"


def shape_of(version: str) -> Shape | None:
    m = re.fullmatch(r"(\d+)\.(\d+)\.\d+(?:[-+~][\w.+~-]*)?", version)
    if not m:
        return None
    major, minor = int(m[1]), int(m[2])
    if (major, minor) == (4, 3):
        return _SHAPE_4_3
    if major == 5 and minor <= 8:
        return _SHAPE_5 if minor >= 1 else _SHAPE_5_0
    return None


# containers/common pkg/config/config_linux.go defaultHelperBinariesDir (v0.50.1 .. v0.67.1).
DEFAULT_HELPER_DIRS = (
    "/usr/local/libexec/podman",
    "/usr/local/lib/podman",
    "/usr/libexec/podman",
    "/usr/lib/podman",
)

# Variables that change what `podman info` answers or where Podman looks, beyond this module's
# rules: remote Podman (cmd/podman/registry/remote.go IsRemote), a re-exec'd or nested Podman
# (pkg/rootless), the test hook of FindHelperBinary, another storage.conf or an override conf.
_REFUSED_ENV = (
    ("CONTAINER_HOST", "remote Podman"),
    ("CONTAINER_CONNECTION", "remote Podman"),
    ("_CONTAINERS_USERNS_CONFIGURED", "inside Podman's user namespace"),
    ("_CONTAINERS_ROOTLESS_UID", "inside Podman's user namespace"),
    ("CONTAINERS_HELPER_BINARY_DIR", "another helper binary dir"),
    ("CONTAINERS_STORAGE_CONF", "another storage.conf"),
    ("CONTAINERS_CONF_OVERRIDE", "read by some Podman versions only"),
)


def refusal(podman: Path, env: Mapping[str, str], euid: int) -> str | None:
    """Why ``podman info`` must run, known before anything runs; None: try the sources."""
    if euid == 0:
        return "run as root (rootful Podman)"
    for var, why in _REFUSED_ENV:
        if var in env:
            return f"{var} is set ({why})"
    if any(not d.startswith("/") for d in env.get("PATH", "").split(":")):
        return "PATH has a relative entry"
    try:
        real = podman.resolve()
        with real.open("rb") as f:
            magic = f.read(4)
    except (OSError, RuntimeError):
        return f"{podman} does not resolve or cannot be read"
    if "remote" in real.name:
        return f"{podman} is {real.name}"
    if magic.startswith(b"#!"):
        # a wrapper (toolbox, distrobox: the host's Podman, with the host's files)
        return f"{podman} is a script"
    return None


def first_query(
    podman: str, real: Path, env: Mapping[str, str], euid: int, want_info: bool = False
) -> tuple[str, list[str]]:
    """(key, argv) of the first Podman command a check starts: ``podman --version`` where the
    sources can answer, else ``podman info``."""
    if want_info or refusal(real, env, euid) is not None:
        return INFO_KEY, [podman, *INFO_ARGS]
    return VERSION_KEY, [podman, *VERSION_ARGS]


class Refused(Exception):
    """A source this module cannot vouch for: ``podman info`` answers instead."""


def derive(
    paths: HostPaths,
    env: Mapping[str, str],
    version_out: CmdOutput,
    conf: Mapping[str, object] | None,
    helper_version: Callable[[Path], CmdOutput],
) -> tuple[PodmanFacts, str]:
    """The ``podman info`` fields check reads, and a note naming their sources.

    ``conf`` is the merged containers.conf (None: a file of it was unreadable or not TOML);
    ``helper_version(path)`` runs ``path --version``. Raises :class:`Refused` with the reason.
    """
    if not version_out.ok:
        raise Refused(version_out.why())
    m = re.fullmatch(r"podman version (\S+)\n?", version_out.stdout)
    if not m:
        raise Refused(f"`podman --version` said {version_out.stdout.strip()[:60]!r}")
    version = m[1]
    shape = shape_of(version)
    if shape is None:
        raise Refused(f"Podman {version}: derived for {PROVEN} only")
    if conf is None:
        raise Refused("containers.conf is unreadable or not TOML")
    only = env.get("CONTAINERS_CONF")
    if only and not exists(paths.at(only)):
        raise Refused(f"CONTAINERS_CONF={only} does not exist (Podman stops there)")
    _check_conf(paths, conf)
    dirs = _helper_dirs(conf)

    backend, backend_from = _network_backend(paths, env, conf, shape, dirs)
    cmd, cmd_from = None, ""
    if shape.reports_network_cmd:
        cmd = _conf_choice(conf, "network.default_rootless_network_cmd", ("pasta", "slirp4netns"))
        cmd_from = (
            ", rootless network command from containers.conf"
            if cmd
            else (", rootless network command: Podman's default")
        )
        cmd = cmd or "pasta"  # containers/common pkg/config/default.go (v0.58.0 .. v0.67.1)
    slirp = _find(paths, env, "slirp4netns", dirs if shape.slirp_in_helper_dirs else ())
    pasta = _find(paths, env, "pasta", dirs) if shape.reports_pasta else None
    facts = PodmanFacts(
        version=version,
        rootless=True,
        network_backend=backend,
        rootless_network_cmd=cmd,
        rootless_port_forwarder=None,  # in podman info from 6.0 on
        slirp4netns_version=_version_of("slirp4netns", slirp, helper_version),
        pasta_version=_version_of("pasta", pasta, helper_version),
    )
    note = (
        f"{DERIVED} (Podman {version}): version from `podman --version`, network backend "
        f"from {backend_from}" + cmd_from + ", helper versions from their `--version`"
    )
    return facts, note


def _check_conf(paths: HostPaths, conf: Mapping[str, object]) -> None:
    rootless = paths.at("/etc/containers/containers.rootless.conf")
    if exists(rootless) or exists(Path(f"{rootless}.d")):
        # read from containers/common v0.6x on only: the merged conf differs by version
        raise Refused(f"{rootless}(.d) is read by some Podman versions only")
    if conf.get("engine.remote") not in (None, False):
        raise Refused("containers.conf [engine] remote is set (remote Podman)")
    if conf.get("engine.network_cmd_path") not in (None, ""):
        raise Refused("containers.conf [engine] network_cmd_path is set")


def _conf_choice(conf: Mapping[str, object], key: str, allowed: Sequence[str]) -> str | None:
    """The value of ``key`` (None: not set); any value but ``allowed`` is refused."""
    if key not in conf:
        return None
    value = conf[key]
    if value in allowed:
        return str(value)
    raise Refused(f"containers.conf {key} = {value!r}")


def _helper_dirs(conf: Mapping[str, object]) -> tuple[str, ...]:
    """containers.conf ``[engine] helper_binaries_dir`` (absolute paths only) or the default."""
    value = conf.get("engine.helper_binaries_dir")
    if value is None:
        return DEFAULT_HELPER_DIRS
    if isinstance(value, list) and all(isinstance(d, str) and d.startswith("/") for d in value):
        return tuple(value)
    raise Refused(f"containers.conf helper_binaries_dir = {value!r}")


def _network_backend(
    paths: HostPaths,
    env: Mapping[str, str],
    conf: Mapping[str, object],
    shape: Shape,
    dirs: Sequence[str],
) -> tuple[str, str]:
    """(backend, where it came from): containers.conf ``network_backend``, else what the store
    recorded on first use (containers/common libnetwork/network/interface.go)."""
    backend = conf.get("network.network_backend")
    if backend not in (None, ""):
        backend = _conf_choice(conf, "network.network_backend", ("netavark", "cni"))
        source = "containers.conf"
    else:
        graphroot = _graphroot(paths, env)
        file = graphroot / "defaultNetworkBackend"
        text = read(file)
        if text is None:
            raise Refused(f"no readable {file} (Podman writes it on first use)")
        backend, source = text, str(file)
        if backend not in ("netavark", "cni"):
            raise Refused(f"{file} says {text[:40]!r}")
    if backend == "cni" and shape.cni_by_build:
        raise Refused("network backend cni: Podman 5 uses it only when built with CNI")
    if backend == "netavark" and _in_dirs(paths, "netavark", dirs) is None:
        raise Refused("no netavark in the helper binary dirs (Podman fails without it)")
    return str(backend), source


def _graphroot(paths: HostPaths, env: Mapping[str, str]) -> Path:
    """The rootless store, where no storage.conf moves it (containers/storage types/options.go:
    ``rootless_storage_path`` of the system storage.conf, the user's storage.conf, else
    ``$XDG_DATA_HOME`` or ``~/.local/share``, then ``containers/storage``)."""
    from .. import parse  # here, not at the top: prefetch() imports this module early

    config_home = env.get("XDG_CONFIG_HOME")
    user_conf = (paths.at(config_home) if config_home else paths.home / ".config") / "containers"
    if exists(user_conf / "storage.conf"):
        raise Refused(f"{user_conf / 'storage.conf'} exists (its graphroot is not derived)")
    for system in ("/etc/containers/storage.conf", "/usr/share/containers/storage.conf"):
        f = paths.at(system)
        if not exists(f):
            continue
        text = read(f)
        try:
            merged = parse.containers_conf([(str(f), text)]) if text is not None else None
        except (DoctorError, ValueError):
            merged = None
        if merged is None:
            raise Refused(f"{f} is unreadable or not TOML")
        if merged.get("storage.rootless_storage_path"):
            raise Refused(f"{f} sets rootless_storage_path")
        break  # the first one found is the one read
    data_home = env.get("XDG_DATA_HOME")
    if data_home and not data_home.startswith("/"):
        raise Refused("XDG_DATA_HOME is relative")
    base = paths.at(data_home) if data_home else paths.home / ".local/share"
    return base / "containers" / "storage"


def _in_dirs(paths: HostPaths, name: str, dirs: Sequence[str]) -> Path | None:
    for d in dirs:
        p = paths.at(d) / name
        if _executable(p):
            return p
    return None


def _find(paths: HostPaths, env: Mapping[str, str], name: str, dirs: Sequence[str]) -> Path | None:
    """``name`` as Podman finds it: the helper dirs first, then PATH (Go's exec.LookPath)."""
    found = _in_dirs(paths, name, dirs)
    if found is not None:
        return found
    return _in_dirs(paths, name, env.get("PATH", "").split(":"))


def _executable(p: Path) -> bool:
    try:
        return is_file(p) and not is_dir(p) and p.stat().st_mode & 0o111 != 0
    except OSError:
        return False


def _version_of(name: str, path: Path | None, run: Callable[[Path], CmdOutput]) -> str | None:
    """What ``podman info`` reports: ``PATH --version``'s stdout minus one final newline, empty
    when it fails (containers/common pkg/version Program; podman v4.3.1 libpod/util.go)."""
    from .. import parse  # here, not at the top: prefetch() imports this module early

    if path is None:
        return None
    out = run(path)
    if out.code is None:  # timed out / could not start: Podman would have waited or failed
        raise Refused(f"`{path} --version`: {out.why()}")
    text = out.stdout.removesuffix("\n") if out.code == 0 else ""
    return parse.tool_version(name, text.strip())


def euid_of(paths: HostPaths) -> int:
    """Who runs Podman: this process on the real host; the fake host's user in tests."""
    return os.geteuid() if paths.root == Path("/") else paths.uid
