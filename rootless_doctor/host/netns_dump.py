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


def _setns(fd: int, nstype: int) -> None:
    setns = getattr(os, "setns", None)  # Python >= 3.12
    if setns is not None:
        setns(fd, nstype)
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
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
                if attr == IFLA_IFNAME:
                    name = value.split(b"\0", 1)[0].decode(errors="replace")
                    addrs[index] = []
                    links[index] = {"ifindex": index, "ifname": name, "addr_info": addrs[index]}
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


def main(pids: list[int]) -> dict[str, object]:
    out: dict[str, object] = {}
    root = os.geteuid() == 0
    my_userns = os.stat("/proc/self/ns/user").st_ino
    entered = False
    for pid in pids:
        step = "open its user namespace"
        try:
            if not root:
                ufd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
                try:
                    ino = os.fstat(ufd).st_ino
                    if ino != my_userns:
                        if entered:
                            out[str(pid)] = {"error": OTHER_USERNS}
                            continue
                        step = "enter its user namespace"
                        _setns(ufd, CLONE_NEWUSER)
                        entered, my_userns = True, ino
                finally:
                    os.close(ufd)
            step = "enter its network namespace"
            nfd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(nfd, CLONE_NEWNET)
            finally:
                os.close(nfd)
            step = "read its interfaces"
            out[str(pid)] = interfaces()
        except OSError as e:
            out[str(pid)] = {"error": f"pid {pid}: cannot {step}: {e.strerror or e}"}
    return out


if __name__ == "__main__":
    json.dump(main([int(a) for a in sys.argv[1:] if a.isdigit()]), sys.stdout)
