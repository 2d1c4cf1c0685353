"""This host's layout, for the probe: what it builds its listener from (the host's addresses,
its top-level directories, a python3 under /usr and a static busybox). Real root only (the probe
runs real processes). psutil is imported only where addresses are read."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from .files import is_dir

ROOT_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def local_addresses() -> list[tuple[str, str]]:
    """(interface, address) for every IPv4/IPv6 address of this host, kernel order (psutil)."""
    import psutil

    out: list[tuple[str, str]] = []
    for name, addrs in psutil.net_if_addrs().items():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                out.append((name, a.address.split("%", 1)[0]))
    return out


def is_local_address(addr: str) -> bool:
    """Is ``addr`` an address of this host? A socket binds to it only then (EADDRNOTAVAIL
    otherwise; net.ipv4.ip_nonlocal_bind aside). Without psutil: ``probe --source`` asks only
    this, and psutil's import costs ~8 ms of the CLI's start."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    try:
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.bind((addr, 0))
    except (OSError, ValueError, OverflowError):
        return False
    return True


def port_listening(port: int) -> bool | None:
    """Whether a TCP socket listens on ``port`` in this network namespace (/proc/net/tcp and
    tcp6, state 0A), None when neither can be read. A published port's forwarder listens there
    (rootlessport, RootlessKit, slirp4netns, pasta -t PORT) before ``run`` returns; pasta's
    automatic forwarding (RootlessKit implicit) binds it only once its scan found the port."""
    found = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, "rb") as f:
                rows = f.read(8 << 20).splitlines()[1:]
        except OSError:
            continue
        found = False
        for row in rows:
            cols = row.split()
            if len(cols) > 3 and cols[3] == b"0A" and cols[1].endswith(b":%04X" % port):
                return True
    return found


def root_layout() -> dict[str, str | None]:
    """The top-level program/library dirs of ``/`` that exist: name → symlink target (merged
    /usr, e.g. ``bin`` → ``usr/bin``), or None for a real directory."""
    out: dict[str, str | None] = {}
    for name in ROOT_DIRS:
        p = Path("/", name)
        if p.is_symlink():
            out[name] = os.readlink(p)
        elif is_dir(p):
            out[name] = None
    return out


def usr_python() -> str | None:
    """A python3 under /usr (so visible in a container that mounts the host's /usr), or None."""
    import shutil

    for cand in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if cand and cand.startswith("/usr/") and os.access(cand, os.X_OK):
            return cand
    return None


def static_busybox() -> str | None:
    """The host's busybox when it is statically linked (so it runs in any image), else None."""
    for cand in ("/bin/busybox", "/usr/bin/busybox"):
        try:
            with open(cand, "rb") as f:
                head = f.read(64 * 1024)
        except OSError:
            continue
        if _static_elf(head):
            return cand
    return None


def _static_elf(head: bytes) -> bool:
    """True for a 64-bit ELF image without a PT_INTERP program header (no dynamic loader)."""
    import struct

    if head[:4] != b"\x7fELF" or head[4] != 2:  # only 64-bit
        return False
    order = "<" if head[5] == 1 else ">"
    (phoff,) = struct.unpack_from(order + "Q", head, 0x20)
    phentsize, phnum = struct.unpack_from(order + "HH", head, 0x36)
    for i in range(phnum):
        off = phoff + i * phentsize
        if off + 4 > len(head):
            return False
        (ptype,) = struct.unpack_from(order + "I", head, off)
        if ptype == 3:  # PT_INTERP
            return False
    return True
