"""RootlessKit: its processes, its state dir (port driver sockets, ``child_pid``) and its
REST API on ``api.sock``."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import fields, replace
from pathlib import Path

from .. import parse
from ..model import HostPaths, Proc, RootlessKitFacts
from .files import exists, is_dir, is_socket, parsed, read_int

API_TIMEOUT = 1.0  # RootlessKit's api.sock answers in about a millisecond; never wait long


def _is_rootlesskit(p: Proc) -> bool:
    return p.exe_name in ("rootlesskit", "docker-rootlesskit")


def top_rootlesskits(paths: HostPaths, procs: Sequence[Proc]) -> list[Proc]:
    """This user's rootlesskit parents (the re-exec'd ``/proc/self/exe`` children are skipped)."""
    by_pid = {p.pid: p for p in procs}
    found = []
    for p in procs:
        if not _is_rootlesskit(p) or (p.uid is not None and p.uid != paths.uid):
            continue
        parent = by_pid.get(p.ppid)
        if parent is not None and _is_rootlesskit(parent):
            continue
        found.append(p)
    return found


def standalone_rootlesskits(
    paths: HostPaths, procs: Sequence[Proc], notes: list[str], sources: list[str]
) -> tuple[RootlessKitFacts, ...]:
    """This user's rootlesskit instances that run neither dockerd nor containerd (nerdctl's)."""
    from ..parse_containerd import kit_owner, runs_containerd

    found = []
    for p in top_rootlesskits(paths, procs):
        argv = rootlesskit_from_proc(p, notes)
        if argv is None or "dockerd" in (argv.child or "") or kit_owner(argv) is not None:
            continue
        if runs_containerd(p.pid, procs):
            continue
        facts = rootlesskit_facts(paths, p, procs, notes, sources)
        if facts is not None:
            found.append(facts)
    return tuple(found)


def rootlesskit_facts(
    paths: HostPaths,
    proc: Proc | None,
    procs: Sequence[Proc],
    notes: list[str],
    sources: list[str],
    *,
    state_dir_hint: str | None = None,
    extra: Iterable[RootlessKitFacts | None] = (),
) -> RootlessKitFacts | None:
    """One RootlessKit from its process, its state dir and any ``extra`` (e.g. docker version)."""
    argv_facts = rootlesskit_from_proc(proc, notes) if proc is not None else None
    extra = list(extra)
    state_dir = (
        (argv_facts.state_dir if argv_facts else None)
        or state_dir_hint
        or next((f.state_dir for f in extra if f is not None and f.state_dir), None)
    )
    if state_dir is None:
        state_dir = _tmp_state_dir(paths, proc.pid if proc else None, procs)
    from_dir = state_dir_facts(paths, state_dir, notes, sources) if state_dir else []
    return merge_rk([*from_dir, argv_facts, *extra])


def rootlesskit_from_proc(p: Proc, notes: list[str]) -> RootlessKitFacts | None:
    facts = parsed(lambda: parse.rootlesskit_argv(p.cmdline), f"rootlesskit pid {p.pid}", notes)
    if facts is None:
        return None
    return replace(facts, pid=p.pid, source="command line")


def merge_rk(facts: Iterable[RootlessKitFacts | None]) -> RootlessKitFacts | None:
    """Fill each field from the first source that knows it (most direct source first)."""
    present = [f for f in facts if f is not None]
    if not present:
        return None
    known = {
        f.name: next((v for r in present if (v := getattr(r, f.name)) is not None), None)
        for f in fields(RootlessKitFacts)
        if f.name != "source"
    }
    return RootlessKitFacts(
        **known, source=" + ".join(dict.fromkeys(f.source for f in present if f.source))
    )


def _tmp_state_dir(paths: HostPaths, rk_pid: int | None, procs: Sequence[Proc]) -> str | None:
    """RootlessKit < Docker 25 keeps state in a random ``/tmp/rootlesskitNNN`` owned by the user.

    With a PID, pick the dir whose ``child_pid`` is a child of it; else the newest one.
    """
    ppid_of = {p.pid: p.ppid for p in procs}
    candidates: list[tuple[float, str]] = []
    try:
        entries = list(paths.at("/tmp").glob("rootlesskit*"))
    except OSError:
        return None
    for d in entries:
        try:
            st = d.stat()
        except OSError:
            continue
        if not is_dir(d) or (paths.root == Path("/") and st.st_uid != paths.uid):
            continue
        host = f"/tmp/{d.name}"
        child = read_int(d / "child_pid")
        if rk_pid is not None and child is not None and ppid_of.get(child) == rk_pid:
            return host
        if exists(d / "api.sock"):
            candidates.append((st.st_mtime, host))
    if rk_pid is not None and len(candidates) != 1:
        return None  # several daemons' dirs and none matched: do not guess
    return max(candidates)[1] if candidates else None


def state_dir_facts(
    paths: HostPaths, state_dir: str, notes: list[str], sources: list[str]
) -> list[RootlessKitFacts]:
    """What a RootlessKit state dir shows: the port driver's socket file and api.sock's info."""
    real = paths.at(state_dir)
    found: list[RootlessKitFacts] = []
    api = real / "api.sock"
    if exists(api):
        if is_socket(api):
            body, err = _api_get(api)
            if body is not None:
                sources.append(f"{api} GET /v1/info")
                info = parsed(lambda: parse.rootlesskit_api_info(body), f"{api} /v1/info", notes)
                if info is not None:
                    found.append(replace(info, state_dir=state_dir, source="api.sock"))
            else:
                notes.append(f"RootlessKit API not readable: {err}")
        else:
            notes.append(f"{api} is not a socket")
    # The port driver's own socket tells the running driver without an API call
    # (docs/facts.md "Docker rootless").
    port_driver = None
    if exists(real / ".bp.sock"):
        port_driver = "builtin"
    elif exists(real / ".s4nn.sock"):
        port_driver = "slirp4netns"
    if port_driver is not None:
        found.append(
            RootlessKitFacts(state_dir=state_dir, port_driver=port_driver, source="state dir")
        )
    elif is_dir(real):
        found.append(RootlessKitFacts(state_dir=state_dir, source="state dir"))
    return found


def _api_get(
    sock: Path, url: str = "/v1/info", timeout: float = API_TIMEOUT
) -> tuple[str | None, str]:
    """GET ``url`` over RootlessKit's api.sock: (body, error)."""
    status, body, err = api_request(sock, "GET", url, timeout=timeout)
    if err:
        return None, err
    if status != 200:
        return None, f"{sock}: GET {url} answered {status}: {body.strip()[:200]!r}"
    return body, ""


def api_request(
    sock: Path,
    method: str,
    url: str,
    body: object = None,
    timeout: float = API_TIMEOUT,
    *,
    raw: bytes | None = None,
    content_type: str = "application/json",
) -> tuple[int, str, str]:
    """One request to RootlessKit's REST API on ``sock`` (HTTP/1.0, host ``rootlesskit``, the API
    ``rootlessctl`` speaks; ``body`` is sent as JSON, ``raw`` as it is, e.g. a tar to the Docker
    Engine API): (status, body, error). Never raises. ``timeout`` bounds the whole exchange, not
    each read: an answer that trickles in is cut off (at most 1 MiB is read)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dir_fd: int | None = None
    payload = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
    head = f"{method} {url} HTTP/1.0\r\nHost: rootlesskit\r\n"
    if body is not None or raw is not None:
        head += f"Content-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n"
    try:
        deadline = time.monotonic() + timeout
        s.settimeout(timeout)
        target = str(sock)
        if len(target.encode()) > 100:  # sun_path holds 108 bytes: reach it through an O_PATH fd
            dir_fd = os.open(sock.parent, os.O_PATH)
            target = f"/proc/self/fd/{dir_fd}/{sock.name}"
        s.connect(target)
        s.sendall(head.encode() + b"\r\n" + payload)
        data = b""
        while len(data) < 1 << 20:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            s.settimeout(left)
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:  # connect, send or the answer (socket.timeout is TimeoutError)
        return 0, "", f"{sock}: no complete answer within {timeout:g} s"
    except OSError as e:
        return 0, "", f"{sock}: {e.strerror or e}"
    finally:
        s.close()
        if dir_fd is not None:
            os.close(dir_fd)
    head_b, _, answer = data.partition(b"\r\n\r\n")
    status = head_b.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = status.split()
    if len(parts) < 2 or not parts[1].isdigit():
        return 0, "", f"{sock}: {method} {url} answered {status or 'nothing'!r}"
    return int(parts[1]), answer.decode(errors="replace"), ""


def rootlesskit_child_pid(state_dir: str | Path) -> tuple[int | None, str]:
    """The PID of a RootlessKit's child (whose namespaces the containers share): ``childPID`` of
    ``GET /v1/info``, else the ``child_pid`` file of its state dir. (pid, why not)."""
    body, err = _api_get(Path(state_dir, "api.sock"))
    if body is not None:
        with contextlib.suppress(ValueError, AttributeError):
            child = json.loads(body).get("childPID")
            if isinstance(child, int):
                return child, ""
    child_file = Path(state_dir, "child_pid")
    child = read_int(child_file)
    if child is None:
        return None, err or f"{child_file}: not readable"
    return child, ""
