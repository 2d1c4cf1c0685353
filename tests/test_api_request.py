"""host.api_request (RootlessKit's api.sock, the Docker Engine API of the probe) on a real unix
socket served here: a whole answer, and one that trickles in, which the timeout cuts off as a
whole (it bounds the exchange, not each read)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from rootless_doctor.host.rootlesskit import api_request


@contextmanager
def _serving(
    srv: socket.socket, stop: threading.Event, serve: Callable[[], None]
) -> Iterator[None]:
    """``serve`` on a thread while the block runs; then stopped, joined and the socket closed."""
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(5)
        srv.close()


@contextmanager
def _server(path: Path, answer: bytes, gap: float) -> Iterator[list[bytes]]:
    """Serves one connection on ``path``: reads the request, then sends ``answer`` one byte
    every ``gap`` s (all at once when 0). Yields the requests it read."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)
    got: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            got.append(conn.recv(65536))
            try:
                if not gap:
                    conn.sendall(answer)
                    return
                for i in range(len(answer)):
                    if stop.wait(gap):
                        return
                    conn.sendall(answer[i : i + 1])
            except OSError:  # the client gave up and closed
                return

    with _serving(srv, stop, serve):
        yield got


def test_a_whole_answer(tmp_path: Path) -> None:
    sock = tmp_path / "api.sock"
    answer = b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"a": 1}'
    with _server(sock, answer, 0) as got:
        status, body, err = api_request(sock, "GET", "/v1/info", timeout=5)
    assert (status, body, err) == (200, '{"a": 1}', "")
    assert got[0].startswith(b"GET /v1/info HTTP/1.0\r\nHost: rootlesskit\r\n")


def test_an_answer_that_trickles_in_is_cut_off_at_the_timeout(tmp_path: Path) -> None:
    """One byte every 0.1 s: each read gets a byte well within the timeout, so only a bound on
    the whole exchange ends it before the 5 s the answer takes."""
    sock = tmp_path / "api.sock"
    answer = b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 31
    with _server(sock, answer, 0.1):
        status, body, err = api_request(sock, "GET", "/v1/info", timeout=0.5)
    assert (status, body) == (0, "")
    assert err == f"{sock}: no complete answer within 0.5 s"


def test_a_missing_socket_is_one_line(tmp_path: Path) -> None:
    status, body, err = api_request(tmp_path / "gone.sock", "GET", "/v1/info", timeout=0.5)
    assert (status, body) == (0, "")
    assert err.startswith(f"{tmp_path / 'gone.sock'}: ") and "\n" not in err


@contextmanager
def _rootlesskit_api(path: Path, post_delay: float, post_answer: bytes) -> Iterator[list[str]]:
    """A stand-in for RootlessKit's api.sock (the requests probe.py sends): POST /v1/ports
    answers ``post_answer`` after ``post_delay`` s; GET /v1/ports lists port 7 (parent 18080,
    child 40001) and port 8 (another parent port); DELETE answers 200. Yields the request lines."""
    import json

    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(8)
    srv.settimeout(0.1)
    seen: list[str] = []
    stop = threading.Event()
    ports = [
        {"id": 7, "spec": {"proto": "tcp", "parentPort": 18080, "childPort": 40001}},
        {"id": 8, "spec": {"proto": "tcp", "parentPort": 18081, "childPort": 40001}},
    ]

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                line = conn.recv(65536).split(b"\r\n", 1)[0].decode()
                seen.append(line)
                body = b""
                if line.startswith("POST"):
                    if stop.wait(post_delay):
                        return
                    body = post_answer
                elif line.startswith("GET"):
                    body = json.dumps(ports).encode()
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + body)

    with _serving(srv, stop, serve):
        yield seen


def _run_for(port: int) -> Any:
    from rootless_doctor import probe

    return probe.Run("10.0.0.1", port, time.monotonic() + 0.5, probe.Undo(), probe.Guard())


def test_a_port_whose_answer_was_lost_is_still_removed(tmp_path: Path) -> None:
    """RootlessKit added the port but its answer came after the deadline: the undo finds it by
    its parent and child port and removes that one only."""
    from rootless_doctor import probe

    sock = tmp_path / "api.sock"
    with _rootlesskit_api(sock, 1.5, b'{"id": 7}') as seen:
        r = _run_for(18080)
        with pytest.raises(probe.CouldNotRun, match="no complete answer"):
            probe._publish(r, str(sock), 40001)
        r.undo.run()
    assert r.undo.errors == []
    assert seen == [
        "POST /v1/ports HTTP/1.0",
        "GET /v1/ports HTTP/1.0",
        "DELETE /v1/ports/7 HTTP/1.0",
    ]


def test_a_port_added_is_removed_by_its_id(tmp_path: Path) -> None:
    from rootless_doctor import probe

    sock = tmp_path / "api.sock"
    with _rootlesskit_api(sock, 0, b'{"id": 9}') as seen:
        r = _run_for(18080)
        probe._publish(r, str(sock), 40001)
        r.undo.run()
    assert r.undo.errors == []
    assert seen == ["POST /v1/ports HTTP/1.0", "DELETE /v1/ports/9 HTTP/1.0"]
