"""host.api_request (RootlessKit's api.sock, the Docker Engine API of the probe) on a real unix
socket served here: a whole answer, and one that trickles in, which the timeout cuts off as a
whole (it bounds the exchange, not each read)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rootless_doctor.host.rootlesskit import api_request


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

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield got
    finally:
        stop.set()
        t.join(5)
        srv.close()


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
