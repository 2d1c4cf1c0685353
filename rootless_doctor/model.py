"""Plain, frozen records that every layer shares.

host/ and offline.py produce ``HostFacts``; knowledge.py and checks/ turn facts into
``Verdict``/``CheckResult``/``Report`` without touching the OS; fixes/ produce ``FilePlan``s that
apply.py writes. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypedDict

Status = Literal["ok", "warn", "fail", "skip", "unknown"]
EngineName = Literal["docker", "podman", "containerd", "rootlesskit"]


class DoctorError(Exception):
    """An expected failure: bad input, unreadable file, refused write.

    The CLI prints ``str(err)`` as one line on stderr and exits with ``exit_code``.
    The message names the file or value and says what to do.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --------------------------------------------------------------------------- host access


@dataclass(frozen=True, kw_only=True)
class HostPaths:
    """Where host/ looks. Tests point ``root`` and ``home`` at a temp dir."""

    root: Path = Path("/")
    home: Path = Path("/nonexistent")  # host.default_paths() fills the real one
    uid: int = 0
    user: str = ""
    runtime_dir: Path | None = None  # $XDG_RUNTIME_DIR as the engines would see it
    config_home: Path | None = None  # $XDG_CONFIG_HOME, else home/.config
    env: tuple[tuple[str, str], ...] = ()  # the environment that matters (DOCKER_HOST, ...)

    def at(self, path: str | Path) -> Path:
        """An absolute host path under ``root`` (``/proc/1/cmdline`` → ``root/proc/1/cmdline``)."""
        p = Path(path)
        return self.root / p.relative_to("/") if p.is_absolute() else self.root / p

    @property
    def config_dir(self) -> Path:
        return self.config_home or self.home / ".config"

    def getenv(self, key: str) -> str | None:
        return dict(self.env).get(key)


# Where a fix keeps its backups and manifest, under the owner's home ($XDG_STATE_HOME when the
# owner set it: Owner.state_home).
STATE_SUBDIR = ".local/state/rootless-doctor"


@dataclass(frozen=True, kw_only=True)
class Owner:
    """The user a fix is for: the caller, or ``SUDO_USER`` when run through sudo as root
    (resolved in host/identity.py, beside :class:`HostPaths`)."""

    name: str
    uid: int
    gid: int
    home: Path
    via_sudo: bool = False
    state_home: Path | None = None  # the owner's $XDG_STATE_HOME (None: ~/.local/state)

    @property
    def state_dir(self) -> Path:
        if self.state_home is not None:
            return self.state_home / "rootless-doctor"
        return self.home / STATE_SUBDIR

    @property
    def is_root(self) -> bool:
        return self.uid == 0


@dataclass(frozen=True, kw_only=True)
class CmdOutput:
    """What one subprocess gave. Never raised: a missing binary or a timeout is data."""

    argv: tuple[str, ...]
    code: int | None = None  # None: it did not run to an exit (missing, timed out)
    stdout: str = ""
    stderr: str = ""
    error: str = ""  # "not installed", "timed out after 5 s", ...

    @property
    def ok(self) -> bool:
        return self.code == 0

    def why(self) -> str:
        """One line saying why this output cannot be used."""
        cmd = " ".join(self.argv)
        if self.error:
            return f"`{cmd}`: {self.error}"
        last = (self.stderr.strip().splitlines() or ["no output"])[-1]
        return f"`{cmd}` exited {self.code}: {last}"


@dataclass(frozen=True, kw_only=True)
class Proc:
    """One process: PID, parent, real UID, command line."""

    pid: int
    ppid: int
    uid: int | None
    cmdline: tuple[str, ...]

    @property
    def exe_name(self) -> str:
        # String ops, not Path(): asked thousands of times on a host with many containers.
        return self.cmdline[0].rstrip("/").rsplit("/", 1)[-1] if self.cmdline else ""


# --------------------------------------------------------------------------- engine facts


@dataclass(frozen=True, kw_only=True)
class DockerLaunch:
    """How this user's rootless dockerd runs as a process, for a restart without systemd."""

    pid: int | None = None  # the top RootlessKit of dockerd-rootless.sh; None: not running
    script: str | None = None  # dockerd-rootless.sh (from its command line, else PATH/contrib)
    env: dict[str, str] = field(default_factory=dict)  # its DOCKERD_ROOTLESS_* environment
    managed_by: str = ""  # "systemd --user (PID n)" when a user manager started it
    problem: str = ""  # why a restart by hand is refused ("" when it can be done)


@dataclass(frozen=True, kw_only=True)
class RootlessKitFacts:
    """One RootlessKit instance (Docker's, or a standalone one)."""

    pid: int | None = None
    version: str | None = None
    network_driver: str | None = None  # slirp4netns, pasta, vpnkit, gvisor-tap-vsock, ...
    port_driver: str | None = None  # builtin, slirp4netns, implicit, pesto, gvisor-tap-vsock
    state_dir: str | None = None
    child: str | None = None  # what it runs: "dockerd-rootless.sh", "dockerd", "python3", ...
    source: str = ""  # how these were learned: "api.sock", "command line", "docker version", ...
    # builtin ≥ 3: /v1/info portDriver.extra.sourceIPTransparentBackend ("nft", "iptables", "none"
    # = off; rootlesskit PR 613), or "none" for --source-ip-transparent=false; None = not shown
    transparent_backend: str | None = None


@dataclass(frozen=True, kw_only=True)
class PublishedPort:
    """A published port: host port → container port."""

    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""


@dataclass(frozen=True, kw_only=True)
class Interface:
    """A network interface inside a container's namespace, with its addresses."""

    name: str
    addresses: tuple[str, ...] = ()  # CIDR strings, e.g. "10.0.2.100/24"


@dataclass(frozen=True, kw_only=True)
class ContainerFacts:
    """One running container, as its engine and its processes show it."""

    engine: Literal["docker", "podman", "containerd"]
    name: str
    id: str = ""
    # pasta, slirp4netns[:opts], bridge, host, none, container:ID, or a network name
    network_mode: str | None = None
    port_handler: str | None = None  # rootlesskit, slirp4netns, pasta, rootlessport
    networks: tuple[str, ...] = ()  # networks joined (user-defined ones matter)
    ports: tuple[PublishedPort, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    pid: int | None = None  # PID of the container's init on the host
    create_command: tuple[str, ...] = ()
    interfaces: tuple[Interface, ...] | None = None  # read from its netns; None = not read
    interfaces_error: str = ""  # why not read


@dataclass(frozen=True, kw_only=True)
class DockerFacts:
    """Docker as found: rootless or not, the running and the configured drivers."""

    cli: str | None = None  # path of the docker CLI, None when not installed
    reachable: bool | None = None  # did the daemon answer
    rootless: bool | None = None
    rootless_reason: str = ""  # how rootless-ness was decided
    version: str | None = None  # Engine (server) version
    running: RootlessKitFacts | None = None  # the RootlessKit of the running daemon
    configured_net: str | None = None  # from unit + drop-ins (DOCKERD_ROOTLESS_ROOTLESSKIT_NET)
    configured_port_driver: str | None = None  # ..._PORT_DRIVER
    configured_env: dict[str, str] = field(default_factory=dict)  # all DOCKERD_ROOTLESS_* seen
    unit_files: tuple[str, ...] = ()  # unit + drop-ins read, in systemd order
    # "FILE: Key=value" lines before any [Section] header: systemd ignores them (moby#52641)
    ignored_unit_lines: tuple[str, ...] = ()
    userland_proxy: bool | None = None  # daemon.json; None = not set (dockerd default: on)
    daemon_json: str | None = None  # path read
    # br_netfilter on the host, as dockerd tests it for "userland-proxy": false (moby bridge
    # setup_bridgenetfiltering.go stats /proc/sys/net/bridge/bridge-nf-call-iptables); None =
    # not read (--from, no /proc)
    br_netfilter: bool | None = None
    containers: tuple[ContainerFacts, ...] = ()
    notes: tuple[str, ...] = ()  # what could not be read, and why


@dataclass(frozen=True, kw_only=True)
class ContainerdFacts:
    """Rootless containerd as nerdctl's ``containerd-rootless.sh`` runs it: under RootlessKit, set
    up by ``CONTAINERD_ROOTLESS_ROOTLESSKIT_*`` in ``containerd.service`` and its drop-ins."""

    rootless: bool | None = None
    rootless_reason: str = ""  # how rootless-ness was decided
    version: str | None = None  # containerd's
    nerdctl_version: str | None = None
    running: RootlessKitFacts | None = None  # the RootlessKit containerd runs under
    configured_env: dict[str, str] = field(default_factory=dict)  # CONTAINERD_ROOTLESS_* set
    unit_files: tuple[str, ...] = ()  # unit + drop-ins read, in systemd order
    ignored_unit_lines: tuple[str, ...] = ()  # "FILE: Key=value" before any [Section]
    # "FILE: VAR": variables in its unit/drop-ins that the launcher never reads
    ignored_vars: tuple[str, ...] = ()
    published: tuple[PublishedPort, ...] = ()  # ports forwarded by its RootlessKit (nerdctl -p)
    # nerdctl ps/inspect; without nerdctl, one entry per RootlessKit port (name "port N/proto")
    containers: tuple[ContainerFacts, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PodmanFacts:
    """Podman as found: version, defaults, merged containers.conf, containers."""

    cli: str | None = None
    version: str | None = None
    rootless: bool | None = None
    network_backend: str | None = None  # netavark / cni
    rootless_network_cmd: str | None = None  # effective default: slirp4netns / pasta
    rootless_port_forwarder: str | None = None  # 6.0+: rootlessport / pasta
    pasta_version: str | None = None
    slirp4netns_version: str | None = None
    conf: dict[str, object] = field(default_factory=dict)  # merged containers.conf, "table.key"
    conf_files: tuple[str, ...] = ()  # files read, in load order
    conf_origin: dict[str, str] = field(default_factory=dict)  # "table.key" → file that set it
    containers: tuple[ContainerFacts, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Tool:
    """A helper binary: where it is, its version, how it gets privileges."""

    name: str
    path: str | None = None
    version: str | None = None
    setid: str | None = None  # newuidmap/newgidmap: "setuid", "file caps" or "neither"


@dataclass(frozen=True, kw_only=True)
class EnvFileRef:
    """One ``env_file:`` entry of a compose service: as written, resolved against the compose
    file's directory, and whether Compose requires it (``required: false`` lets it be missing)."""

    written: str
    path: str
    required: bool = True


@dataclass(frozen=True, kw_only=True)
class ComposeService:
    """One service of a compose file, with what decides its source IPs."""

    name: str
    image: str = ""
    network_mode: str | None = None
    networks: tuple[str, ...] = ()
    ports: tuple[PublishedPort, ...] = ()
    cap_add: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)  # env files + `environment:`
    # where each variable came from: "environment", an env file as written, or the shell
    env_origin: dict[str, str] = field(default_factory=dict)
    env_files: tuple[EnvFileRef, ...] = ()  # `env_file:` entries, in order
    env_missing: tuple[str, ...] = ()  # required env files not read: "mailserver.env: not found"
    env_skipped: tuple[str, ...] = ()  # optional ones (required: false) that are not there


@dataclass(frozen=True, kw_only=True)
class ComposeFacts:
    """A compose file's services (or why it could not be read)."""

    path: str
    services: tuple[ComposeService, ...] = ()
    error: str = ""  # why the file found in the working directory could not be read


@dataclass(frozen=True, kw_only=True)
class QuadletFacts:
    """A Quadlet ``.container`` unit: its ``Network=`` (None: Podman's default) and ports."""

    name: str
    network: str | None = None  # the last Network= line, as podman run --network takes it
    ports: tuple[PublishedPort, ...] = ()
    image: str = ""


@dataclass(frozen=True, kw_only=True)
class HostFacts:
    """Everything the checks need, read once. ``None`` always means "not known"."""

    user: str = ""
    uid: int | None = None
    sudo_user: str | None = None  # SUDO_USER when run through sudo: the engines' likely owner
    offline: bool = False  # built from --from files, not from this host
    sources: tuple[str, ...] = ()  # files and commands the facts came from
    docker: DockerFacts | None = None  # None: no trace of Docker at all
    containerd: ContainerdFacts | None = None  # rootless containerd (nerdctl); None: no trace
    podman: PodmanFacts | None = None
    rootlesskits: tuple[RootlessKitFacts, ...] = ()  # standalone ones (not Docker's)
    tools: dict[str, Tool] = field(default_factory=dict)  # newuidmap, slirp4netns, pasta, ...
    subuid: tuple[tuple[int, int], ...] | None = None  # (start, count) ranges for this user
    subgid: tuple[tuple[int, int], ...] | None = None
    max_user_namespaces: int | None = None
    userns_clone: int | None = None  # kernel.unprivileged_userns_clone where it exists
    dev_net_tun: Literal["ok", "missing", "no-access"] | None = None
    unprivileged_port_start: int | None = None
    # net.ipv4.ip_local_port_range (first, last): pasta's automatic forwarding skips it
    ephemeral_ports: tuple[int, int] | None = None
    systemd_user: bool | None = None  # user manager reachable (systemctl --user)
    # systemd runs the host (sd_booted(3): /run/systemd/system exists); False on WSL without
    # systemd, in containers, on OpenRC/runit hosts
    systemd_booted: bool | None = None
    # Other users seen running rootless engines (rootlesskit, conmon, Podman's pause process):
    # read only when running as root, to say whom to run as
    engine_owners: tuple[str, ...] = ()
    linger: bool | None = None
    xdg_runtime_dir: str | None = None
    firewall: str | None = None  # "nftables", "iptables-nft", "iptables-legacy"
    compose: ComposeFacts | None = None
    quadlets: tuple[QuadletFacts, ...] = ()  # Quadlet .container units given with --from
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """Whether client source IPs arrive, why, and what would make them arrive."""

    preserved: bool | None  # None: cannot tell from what is known
    reason: str  # one line naming the driver and version that decide it
    fix: str = ""  # the command or change that would keep source IPs ("" when none needed)
    # the address a server behind this path sees: "the client", "127.0.0.1", "172.17.0.1", ...
    seen: str = ""


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """One check's outcome, with the values seen and the remedy."""

    id: str  # stable, e.g. "DOCKER-PORT-DRIVER"; documented in the README
    title: str
    status: Status
    detail: str = ""  # the values seen, and why it matters
    remedy: str = ""  # what to run, or which `rootless-doctor fix ...` writes it
    engine: str | None = None  # the engine this belongs to, for grouping
    container: str | None = None  # the container a per-container result is about


@dataclass(frozen=True, kw_only=True)
class ContainerReport:
    """A container's line in the report."""

    name: str
    network_mode: str | None
    port_handler: str | None
    source_ip_preserved: bool | None
    reason: str
    seen_address: str = ""  # what a server in it sees as the client's address (Verdict.seen)


@dataclass(frozen=True, kw_only=True)
class EngineReport:
    """An engine's part of the report: what a default container gets."""

    engine: EngineName
    rootless: bool | None
    version: str | None
    rootlesskit_version: str | None
    network_driver: str | None
    port_driver: str | None
    source_ip_preserved: bool | None
    reason: str
    containers: tuple[ContainerReport, ...] = ()
    seen_address: str = ""  # what a server behind a default published port sees (Verdict.seen)


@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    """What one end-to-end probe saw."""

    engine: EngineName
    ran: bool  # False: could not run (see error)
    source: str = ""  # address the client connected from
    observed: str = ""  # address the listener inside saw
    preserved: bool | None = None
    elapsed_ms: float = 0.0
    used: str = ""  # what it started: image/rootfs, port, network mode
    error: str = ""
    expected: bool | None = None  # check's static verdict, for comparison


@dataclass(frozen=True, kw_only=True)
class Report:
    """Everything `check` says: engines, checks, probes, what could not be read."""

    engines: tuple[EngineReport, ...]
    checks: tuple[CheckResult, ...]
    probes: tuple[ProbeResult, ...] = ()
    offline: bool = False
    notes: tuple[str, ...] = ()  # host facts that could not be read, and why

    @property
    def failed(self) -> bool:
        return any(c.status == "fail" for c in self.checks)

    def select(self, only: tuple[str, ...] = (), ignore: tuple[str, ...] = ()) -> Report:
        """The checks whose ID matches a pattern of ``only`` (all when empty) and none of
        ``ignore``; shell-style patterns (``COMPOSE-*``). For preflight runs (CI, Ansible)."""
        from dataclasses import replace
        from fnmatch import fnmatchcase

        def keep(check_id: str) -> bool:
            wanted = not only or any(fnmatchcase(check_id, p) for p in only)
            return wanted and not any(fnmatchcase(check_id, p) for p in ignore)

        return replace(self, checks=tuple(c for c in self.checks if keep(c.id)))


@dataclass(frozen=True, kw_only=True)
class FilePlan:
    """One file a fix would write. ``before == after`` means nothing to do."""

    path: Path
    before: str | None  # None: the file does not exist yet
    after: str
    what: str  # one line: what the change does and why
    next_steps: tuple[str, ...] = ()  # commands to run afterwards (restart, recreate)
    mode: int | None = None  # for new files; existing files keep theirs

    @property
    def changed(self) -> bool:
        return self.before != self.after


# --------------------------------------------------------------------------- fix --json

FIX_SCHEMA_VERSION = 1


class JsonFixFile(TypedDict, total=False):
    """One file of ``fix ... --json``: ``diff`` when previewed, ``created``/``backup`` when
    written."""

    path: str
    changed: bool
    what: str
    diff: str
    created: bool
    backup: str | None


class JsonFix(TypedDict):
    """``fix docker|compose|podman|quadlet|privileged-ports --json``."""

    schema_version: int
    tool_version: str
    changed: bool
    dry_run: bool  # previewed only (--dry-run, or a file this user may not write)
    files: list[JsonFixFile]
    next_steps: list[str]  # commands to run afterwards (what --restart runs)
    notes: list[str]
    undo: str | None  # the command that restores what was written (with sudo when needed)


class JsonFixAdvice(TypedDict):
    """``fix compose --json`` when there is nothing the tool should write (e.g. a Docker
    service: the daemon fix is the answer; a service on user-defined networks)."""

    schema_version: int
    tool_version: str
    changed: bool  # always False
    advice: str
