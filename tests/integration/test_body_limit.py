"""The body limit holds on the stream: a 100 MB chunked body without a key is refused with 413
after the backend read no more than the limit (issue 14: "a 100 MB chunked body, with no API key,
was buffered in full before the 401")."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.broker import BrokerProcess
from stack.processes import BackendProcess
from tests.helpers import own_backend

pytestmark = pytest.mark.integration

TOTAL = 100 * 1024 * 1024  # what the client would send: 100 MB
CHUNK = 64 * 1024
LIMIT = 64 * 1024  # the backend's default LIJIA_MAX_BODY_BYTES


@pytest.fixture
def lone_backend(
    broker: BrokerProcess, creds_dir: Path, tmp_path: Path
) -> Iterator[BackendProcess]:
    yield from own_backend(broker, creds_dir, f"sqlite:///{tmp_path / 'b.db'}", tmp_path / "b", {})


def _memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def _chunked_upload(port: int, method: str, path: str) -> tuple[bytes, int]:
    """Send a lazily generated chunked body of TOTAL bytes, without a key, and stop as soon as
    an answer arrives. Returns the answer's first bytes and how many body bytes were handed to
    the socket by then."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(60)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    sock.sendall(head)
    sock.setblocking(False)
    piece = f"{CHUNK:x}\r\n".encode() + b"x" * CHUNK + b"\r\n"
    pending = b""
    sent = 0
    answer = b""
    try:
        finished = False
        while not finished or pending:
            readable, writable, _ = select.select([sock], [sock], [], 30)
            if readable:
                break
            assert writable, "the server neither answered nor read for 30 s"
            if not pending and sent < TOTAL:
                pending, sent = piece, sent + CHUNK
            elif not pending:
                pending, finished = b"0\r\n\r\n", True
            try:
                pending = pending[sock.send(pending) :]
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.settimeout(60)
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    finally:
        sock.close()
    return answer, sent


@pytest.mark.parametrize(("method", "path"), [("POST", "/events/inject"), ("GET", "/stats")])
def test_a_100_mb_chunked_body_without_a_key_is_refused_after_the_limit(
    lone_backend: BackendProcess, method: str, path: str
) -> None:
    assert lone_backend.proc is not None
    pid = lone_backend.proc.pid
    peak_before = _memory_kib(pid, "VmHWM")
    answer, sent = _chunked_upload(lone_backend.port, method, path)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # The answer came while the client had handed over only a small part of the 100 MB: the
    # backend stopped reading at the limit (what was sent beyond it sits in the kernels' socket
    # buffers, a few MB on loopback at most).
    assert sent < TOTAL // 10, sent
    # Nothing near 100 MB was ever held: the backend's peak memory barely moved.
    assert _memory_kib(pid, "VmHWM") - peak_before < 16 * 1024
    # And it still serves.
    assert lone_backend.health()["database_ok"]


@pytest.fixture
def impatient_backend(
    broker: BrokerProcess, creds_dir: Path, tmp_path: Path
) -> Iterator[BackendProcess]:
    env = {"LIJIA_BODY_TIMEOUT_S": "1"}
    yield from own_backend(broker, creds_dir, f"sqlite:///{tmp_path / 'i.db'}", tmp_path / "i", env)


def test_a_body_that_trickles_is_refused_with_408_and_the_connection_freed(
    impatient_backend: BackendProcess,
) -> None:
    """A client that sends a little of its body and then nothing (without a key) cannot hold the
    connection: the backend answers 408 once the body's time is up, and closes it."""
    sock = socket.create_connection(("127.0.0.1", impatient_backend.port))
    sock.settimeout(60)  # a deadline for the answer, not a wait for time to pass
    try:
        sock.sendall(
            b"POST /events/inject HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\n{}\r\n"
        )
        answer = b""
        while True:
            data = sock.recv(65536)
            if not data:
                break  # closed by the backend after its answer
            answer += data
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"not received in time" in answer
    assert impatient_backend.health()["database_ok"]
