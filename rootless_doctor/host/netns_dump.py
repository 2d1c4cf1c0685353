"""Prints the interfaces in the network namespaces of the given PIDs, as JSON, in one process.

    python3 -I -S netns_dump.py PID...

Run by :func:`rootless_doctor.host.containers.read_interfaces` as a script (never imported by
the package): the standard library only, no site packages, so it starts in a few milliseconds.

As the containers' owner the kernel refuses ``setns`` into a network namespace owned by the
containers' user namespace, so this process first enters that user namespace (once: the owner
has every capability there), then each PID's network namespace in turn, and dumps its links and
addresses over rtnetlink (RTM_GETLINK, RTM_GETADDR; rtnetlink(7)). No ``nsenter`` or ``ip`` exec
per container. A PID in yet another user namespace gets ``{"error": "other-userns"}``: the caller
runs this again for those (a process cannot move between sibling user namespaces). As root, no
user namespace is entered.

Output: ``{"PID": [{"ifname": ..., "addr_info": [{"local": ..., "prefixlen": ...}]}]}`` (the
fields of ``ip -j addr`` the caller reads; links in the kernel's dump order, each with its IPv4
then IPv6 addresses) or ``{"PID": {"error": "..."}}``.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
from collections.abc import Iterator

CLONE_NEWUSER = 0x10000000  # sched.h
CLONE_NEWNET = 0x40000000
RTM_NEWLINK, RTM_GETLINK, RTM_NEWADDR, RTM_GETADDR = 16, 18, 20, 22  # linux/rtnetlink.h
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300  # linux/netlink.h
NLMSG_ERROR, NLMSG_DONE = 2, 3
IFLA_IFNAME = 3  # linux/if_link.h
IFA_ADDRESS, IFA_LOCAL = 1, 2  # linux/if_addr.h
NLMSG_HDR = "=IHHII"  # length, type, flags, sequence, port id
IFINFOMSG = "=BxHiII"  # family, pad, type, index, flags, change
IFADDRMSG = "=BBBBI"  # family, prefix length, flags, scope, index
MAX_MESSAGES = 4096  # per dump: bounds a namespace with absurdly many links or addresses
OTHER_USERNS = "other-userns"


_LIBC: list[object] = []  # libc through ctypes, loaded once (a CDLL per container cost ~45 us)


def _setns(fd: int, nstype: int) -> None:
    setns = getattr(os, "setns", None)  # Python >= 3.12
    if setns is not None:
        setns(fd, nstype)
        return
    import ctypes

    if not _LIBC:
        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    libc: ctypes.CDLL = _LIBC[0]  # type: ignore[assignment]
    if libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _attributes(data: bytes, offset: int) -> Iterator[tuple[int, bytes]]:
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            return
        yield kind & 0x3FFF, data[offset + 4 : offset + length]  # without the NLA_F_* flag bits
        offset += (length + 3) & ~3


def _dump(sock: socket.socket, kind: int, body: bytes, seq: int) -> Iterator[tuple[int, bytes]]:
    """(message type, payload) of every message a NLM_F_DUMP request answers."""
    header = struct.pack(NLMSG_HDR, 16 + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    sock.send(header + body)
    seen = 0
    while True:
        data = sock.recv(1 << 16)
        if not data:
            return
        offset = 0
        while offset + 16 <= len(data):
            length, mtype, _flags, _seq, _port = struct.unpack_from(NLMSG_HDR, data, offset)
            if length < 16 or mtype == NLMSG_DONE:
                return
            if mtype == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, offset + 16)
                if code:
                    raise OSError(-code, os.strerror(-code))
                return
            seen += 1
            if seen > MAX_MESSAGES:
                raise OSError(f"more than {MAX_MESSAGES} netlink messages")
            yield mtype, data[offset + 16 : offset + length]
            offset += (length + 3) & ~3


def interfaces() -> list[dict[str, object]]:
    """Links and addresses of this process's network namespace."""
    links: dict[int, dict[str, object]] = {}
    addrs: dict[int, list[dict[str, object]]] = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0) as sock:  # NETLINK_ROUTE
        sock.settimeout(2.0)
        for mtype, msg in _dump(sock, RTM_GETLINK, struct.pack(IFINFOMSG, 0, 0, 0, 0, 0), 1):
            if mtype != RTM_NEWLINK or len(msg) < 16:
                continue
            index = struct.unpack_from(IFINFOMSG, msg)[2]
            for attr, value in _attributes(msg, 16):
                if attr == IFLA_IFNAME:  # near the front; a link has dozens more (stats ...)
                    name = value.split(b"\0", 1)[0].decode(errors="replace")
                    addrs[index] = []
                    links[index] = {"ifindex": index, "ifname": name, "addr_info": addrs[index]}
                    break
        for mtype, msg in _dump(sock, RTM_GETADDR, struct.pack(IFADDRMSG, 0, 0, 0, 0, 0), 2):
            if mtype != RTM_NEWADDR or len(msg) < 8:
                continue
            family, prefixlen, _flags, _scope, index = struct.unpack_from(IFADDRMSG, msg)
            got = dict(_attributes(msg, 8))
            # A point-to-point address has both: IFA_LOCAL is this side's (as `ip` shows it).
            raw = got.get(IFA_LOCAL) or got.get(IFA_ADDRESS)
            if raw is None or index not in addrs:
                continue
            if family in (socket.AF_INET, socket.AF_INET6):
                local = socket.inet_ntop(family, raw)
                addrs[index].append({"local": local, "prefixlen": prefixlen})
    return list(links.values())


def _fd_budget() -> int:
    """How many namespace files may be held open at once (the soft limit, raised to the hard
    one where allowed); PIDs beyond it are left for the next run."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (OSError, ValueError):
            pass
    limit = soft if soft != resource.RLIM_INFINITY else 1 << 16
    return max(16, min(limit, 1 << 16) - 32)


def _failed(pid: int, step: str, e: OSError) -> dict[str, str]:
    return {"error": f"pid {pid}: cannot {step}: {e.strerror or e}"}


def main(pids: list[int]) -> dict[str, object]:
    """Every namespace file is opened first, in this process's own user namespace: once inside
    the containers' user namespace, /proc of a process in a sibling one is refused (EACCES)."""
    out: dict[str, object] = {}
    root = os.geteuid() == 0
    own = os.stat("/proc/self/ns/user").st_ino
    target: int | None = None  # the one other user namespace this run enters
    target_fd: int | None = None
    opened: dict[int, int] = {}  # pid -> its network namespace, open
    budget = _fd_budget()
    try:
        for pid in pids:
            try:
                userns = own if root else os.stat(f"/proc/{pid}/ns/user").st_ino
                if userns != own:
                    if target is None:
                        target_fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
                        target = userns
                    elif userns != target:
                        out[str(pid)] = {"error": OTHER_USERNS}  # the next run enters that one
                        continue
            except OSError as e:
                out[str(pid)] = _failed(pid, "open its user namespace", e)
                continue
            if len(opened) >= budget:
                out[str(pid)] = {"error": OTHER_USERNS}  # no file left: the next run
                continue
            try:
                opened[pid] = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                out[str(pid)] = _failed(pid, "open its network namespace", e)
        if target_fd is not None:
            try:
                _setns(target_fd, CLONE_NEWUSER)
            except OSError as e:
                out.update((str(p), _failed(p, "enter its user namespace", e)) for p in opened)
                return out
        for pid, fd in opened.items():
            try:
                _setns(fd, CLONE_NEWNET)
                out[str(pid)] = interfaces()
            except OSError as e:
                out[str(pid)] = _failed(pid, "read its network namespace", e)
    finally:
        for fd in (*opened.values(), *([target_fd] if target_fd is not None else [])):
            os.close(fd)
    return out


if __name__ == "__main__":
    json.dump(main([int(a) for a in sys.argv[1:] if a.isdigit()]), sys.stdout)
