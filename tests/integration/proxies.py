"""Fault-injecting proxies on 127.0.0.1, put between a client and a session server.

moto keeps everything in memory, so a fault test cannot stop it (its buckets and metrics
would vanish); it stops the proxy in front of it instead.

- ``FaultProxy`` (TCP): ``cut()`` resets every open connection and every new one until
  ``restore()``, counting the attempts.
- ``ThrottlingProxy`` (HTTP/1.1): answers chosen CloudWatch PutMetricData requests with
  CloudWatch's throttling error, in the protocol the request was made in, and forwards
  every other request to moto.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import socket
import struct
import threading
import uuid
from collections.abc import Callable
from urllib.parse import parse_qs

from genai_apm.stack.process import free_port


def _reset(sock: socket.socket) -> None:
    """Close with an RST, not a FIN: the peer sees "connection reset", as when a host dies.

    SHUT_RD first: on Linux, close() alone does not wake a thread blocked in recv() on the
    socket, and the socket (so the connection) lives on until that recv() returns; the
    client's request would then hang until its socket timeout instead of failing."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy:
    """TCP proxy 127.0.0.1:``port`` -> 127.0.0.1:``target_port``, one thread per direction."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self.connections = 0  # forwarded
        self.refused = 0  # reset at once during an outage
        self.reset = 0  # open connections reset by cut()
        self.down = False
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        """An outage: every open connection is reset, and so is every new one before a byte
        passes. (A closed port would refuse them with the same effect on the client, but
        then nobody could count the attempts.)"""
        with self._lock:
            self.down = True
            doomed, self._open = self._open, set()
        for sock in doomed:
            _reset(sock)
        self.reset += len(doomed) // 2

    def restore(self) -> None:
        with self._lock:
            self.down = False

    def stop(self) -> None:
        self.cut()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            self._listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stop() closed the listener
            with self._lock:
                if self.down:
                    self.refused += 1
                    _reset(client)
                    continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                server.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                if self.down:  # cut() came in between
                    self.refused += 1
                    _reset(client)
                    _reset(server)
                    continue
                self._open |= {client, server}
                self.connections += 1
            ends = [2]  # directions still open; the last one to end closes both sockets
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b, ends), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, ends: list[int]) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)  # pass the half-close on
        except OSError:  # one side broke: wake the other direction's recv too
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        with self._lock:
            ends[0] -= 1
            last = ends[0] == 0 and source in self._open
            if last:
                self._open -= {source, sink}
        if last:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.close()


# ---- CloudWatch throttling ------------------------------------------------------------------

THROTTLE_MESSAGE = "Rate exceeded"
# the query-protocol code and fault, sent with the JSON and CBOR protocols in the
# x-amzn-query-error header of awsQueryCompatible services (CloudWatch is one): botocore
# reports that code, so a throttle reads "Throttling" whatever protocol the client speaks
QUERY_ERROR = "Throttling;Sender"
# what AWS's JSON services name a throttle in the body
JSON_ERROR_TYPE = "com.amazon.coral.availability#ThrottlingException"


def _cbor_text(text: str) -> bytes:
    data = text.encode()
    assert len(data) < 256
    return (bytes([0x60 | len(data)]) if len(data) < 24 else bytes([0x78, len(data)])) + data


def _cbor_map(items: dict[str, str]) -> bytes:
    body = bytes([0xA0 | len(items)])
    for key, value in items.items():
        body += _cbor_text(key) + _cbor_text(value)
    return body


def throttling_response(protocol: str, request_id: str) -> tuple[dict[str, str], bytes]:
    """(headers, body) of CloudWatch's HTTP 400 "Rate exceeded" in ``protocol``."""
    common = {"x-amzn-RequestId": request_id}
    error = {"__type": JSON_ERROR_TYPE, "message": THROTTLE_MESSAGE}
    if protocol == "json":
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-query-error": QUERY_ERROR}
        return common | headers, json.dumps(error).encode()
    if protocol == "cbor":
        headers = {
            "Content-Type": "application/cbor",
            "smithy-protocol": "rpc-v2-cbor",
            "x-amzn-query-error": QUERY_ERROR,
        }
        return common | headers, _cbor_map(error)
    xml = (
        '<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/">'
        "<Error><Type>Sender</Type><Code>Throttling</Code>"
        f"<Message>{THROTTLE_MESSAGE}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return common | {"Content-Type": "text/xml"}, xml.encode()


def cloudwatch_operation(path: str, headers, body: bytes) -> tuple[str, str]:
    """(protocol, operation) of a CloudWatch request, as botocore sends it."""
    target = headers.get("X-Amz-Target", "")
    if target:  # awsJson1_0: X-Amz-Target: GraniteServiceVersion20100801.PutMetricData
        return "json", target.rpartition(".")[2]
    if "/operation/" in path:  # smithy-rpc-v2-cbor: /service/<service>/operation/<operation>
        return "cbor", path.rpartition("/operation/")[2]
    form = parse_qs(body.decode("utf-8", errors="replace"))
    return "query", form.get("Action", [""])[0]


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class ThrottlingProxy:
    """HTTP proxy to moto that throttles the PutMetricData requests ``throttle(n)`` picks
    (n counts PutMetricData requests from 0, throttled ones included)."""

    def __init__(self, target_port: int, throttle: Callable[[int], bool]):
        self.target_port, self.throttle = target_port, throttle
        self.puts = 0  # PutMetricData requests seen
        self.throttled = 0
        self.forwarded_puts = 0
        self.protocols: set[str] = set()
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ThrottlingProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _decide(self, protocol: str, operation: str) -> bool:
        if operation != "PutMetricData":
            return False
        with self._lock:
            self.protocols.add(protocol)
            n, self.puts = self.puts, self.puts + 1
            throttle = self.throttle(n)
            if throttle:
                self.throttled += 1
            else:
                self.forwarded_puts += 1
            return throttle

    def _handler(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects

            def log_message(self, *args):  # quiet
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                protocol, operation = cloudwatch_operation(self.path, self.headers, body)
                if proxy._decide(protocol, operation):
                    headers, answer = throttling_response(protocol, str(uuid.uuid4()))
                    self._answer(400, headers, answer)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.target_port, timeout=30)
                try:
                    upstream.request(self.command, self.path, body=body, headers=dict(self.headers))
                    response = upstream.getresponse()
                    answer = response.read()
                    headers = {
                        k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP
                    }
                    self._answer(response.status, headers, answer)
                finally:
                    upstream.close()

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _relay

        return Handler


class KinesisFaultProxy(ThrottlingProxy):
    """HTTP proxy to moto that answers chosen Kinesis GetRecords requests with an error:
    ``fault(n)`` (n counts GetRecords requests from 0) names the error type to return, e.g.
    ``ProvisionedThroughputExceededException`` or ``ExpiredIteratorException``, or None to
    forward the request. Kinesis speaks JSON 1.1 (the bridge turns CBOR off), the operation
    in ``X-Amz-Target``; the error is ``{"__type": ..., "message": ...}`` with HTTP 400."""

    def __init__(self, target_port: int, fault: Callable[[int], str | None]):
        super().__init__(target_port, throttle=lambda n: False)
        self.fault = fault
        self.get_records = 0
        self.answered: dict[str, int] = {}
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._kinesis_handler())
        self._server.daemon_threads = True

    def _error_for(self, target: str) -> str | None:
        if not target.endswith(".GetRecords"):
            return None
        with self._lock:
            n, self.get_records = self.get_records, self.get_records + 1
            error = self.fault(n)
            if error:
                self.answered[error] = self.answered.get(error, 0) + 1
            return error

    def _kinesis_handler(self):
        proxy, base = self, self._handler()

        class Handler(base):
            def _relay(self) -> None:
                error = proxy._error_for(self.headers.get("X-Amz-Target", ""))
                if error is None:
                    return super()._relay()
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                body = json.dumps({"__type": error, "message": "injected by the test"}).encode()
                headers = {
                    "Content-Type": "application/x-amz-json-1.1",
                    "x-amzn-RequestId": str(uuid.uuid4()),
                }
                self._answer(400, headers, body)

            do_GET = do_POST = _relay

        return Handler
