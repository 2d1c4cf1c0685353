"""Text → facts. Pure parsers of what engines print and what config files say.

Used by host.py (live: it runs the command / reads the file and hands the text here) and by
offline.py (``check --from``: the text a user pasted). Nothing here touches the OS.
Every parser raises ``ParseError`` (a DoctorError) with a one-line reason on text it cannot read.

CONTRACT (signatures are fixed; bodies are being written):
"""

from __future__ import annotations

from collections.abc import Sequence

from .model import (
    ComposeFacts,
    ContainerFacts,
    DockerFacts,
    DoctorError,
    PodmanFacts,
    Proc,
    RootlessKitFacts,
)


class ParseError(DoctorError):
    """Text that is not what it claims to be. The message says why, without the file name;
    callers add the file name."""


def podman_info(text: str) -> PodmanFacts:
    """`podman info` as JSON (``--format json``) or YAML, also the remote ``Client:``/``host:`` form."""
    raise NotImplementedError


def docker_version(text: str) -> DockerFacts:
    """`docker version` text or ``--format '{{json .}}'`` JSON. Engine version, rootless (a
    ``rootlesskit`` component present), ``running`` RootlessKitFacts from that component."""
    raise NotImplementedError


def docker_info(text: str) -> DockerFacts:
    """`docker info` text or JSON: server version, ``rootless`` in Security Options."""
    raise NotImplementedError


def rootlesskit_argv(argv: Sequence[str]) -> RootlessKitFacts:
    """Flags of one rootlesskit command line (``--net=``, ``--port-driver``, ``--state-dir``, the
    child command). Defaults as rootlesskit applies them (net host, port driver none)."""
    raise NotImplementedError


def rootlesskit_api_info(text: str) -> RootlessKitFacts:
    """JSON of RootlessKit's ``GET /v1/info`` (or ``rootlessctl info --json``)."""
    raise NotImplementedError


def process_listing(text: str) -> list[Proc]:
    """Command lines out of ``ps`` output, ``systemctl status`` trees, or journal lines with
    ``exec rootlesskit ...``. PIDs/ppids/uids where the text shows them, else 0/None."""
    raise NotImplementedError


def podman_inspect(text: str) -> list[ContainerFacts]:
    """`podman inspect` JSON (a list of containers)."""
    raise NotImplementedError


def docker_inspect(text: str) -> list[ContainerFacts]:
    """`docker inspect` JSON (a list of containers)."""
    raise NotImplementedError


def containers_conf(files: Sequence[tuple[str, str]]) -> dict[str, object]:
    """Merge containers.conf texts given in load order → {"table.key": value}. Later files win
    per key, as Podman merges them."""
    raise NotImplementedError


def unit_environment(files: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Environment= of a systemd unit and its drop-ins, given in systemd's order (unit first,
    then drop-ins sorted by file name). Later assignments win; an empty ``Environment=`` resets
    the list, as systemd does. Only the [Service] section counts."""
    raise NotImplementedError


def daemon_json(text: str) -> dict[str, object]:
    """daemon.json → dict (JSON object)."""
    raise NotImplementedError


def compose(text: str, path: str) -> ComposeFacts:
    """A compose file → services with network_mode, networks, ports, cap_add, environment."""
    raise NotImplementedError


def tool_version(name: str, output: str) -> str | None:
    """The version out of ``NAME --version`` output (slirp4netns, pasta, rootlesskit, podman,
    newuidmap, ...)."""
    raise NotImplementedError
