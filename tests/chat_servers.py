"""OpenAI-compatible servers on 127.0.0.1 for the judge's endpoint tests.

`TransformersServe` runs `transformers serve` on the course's tiny model, offline, as a real server would run.
`ErrorServer` (standard library only) answers each request the way its path says, to test the failures:

    http://127.0.0.1:PORT/<mode>/v1/chat/completions, where <mode> is one of
    ok          200 and a well-formed chat completion whose content is REPLY
    error500    500, with the request's Authorization header echoed in the body (an error must not show the key)
    flaky       503 to the first request, then like ok
    hang        waits HANG_SECONDS before answering, longer than the client's time-out
    malformed   200 and a body that is not JSON
    nochoices   200 and JSON without choices
    unauthorized 401
    drop        closes the connection without answering

A GET to any path is recorded as well (urllib turns a POST into a GET when it follows a 301, 302 or 303) and
answered like a POST. `RedirectServer(code, target)` answers every request with that redirect to `target`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPLY = '{"score": 4}'
BUILD = Path(__file__).resolve().parent.parent / "build"
HANG_SECONDS = 3.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TransformersServe:
    """`transformers serve` on one local model folder, on 127.0.0.1 and a free port, offline."""

    def __init__(self, model_path: Path, *, startup_timeout: float = 240.0):
        self.model = str(model_path)  # the server is pinned to this name: requests must use it
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log = BUILD / "transformers-serve.log"  # the server's output, shown if it fails to start
        BUILD.mkdir(exist_ok=True)
        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_DISABLE_UPDATE_CHECK="1", TRANSFORMERS_VERBOSITY="error")
        command = [sys.executable, "-m", "transformers.cli.transformers", "serve", self.model, "--host", "127.0.0.1",
                   "--port", str(self.port), "--device", "cpu", "--dtype", "float32", "--log-level", "warning"]
        started = time.perf_counter()
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            self._wait_until_healthy(started + startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - started

    def _wait_until_healthy(self, deadline: float) -> None:
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("transformers serve exited with code "
                                   f"{self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"transformers serve did not become healthy in time:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Stop the server process (and only it)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format, *args):  # keep the test output quiet
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        parts = self.path.strip("/").split("/")
        mode = parts[0] if parts else ""
        with self.server.lock:
            self.server.requests.append({"mode": mode, "path": self.path, "method": self.command,
                                         "headers": dict(self.headers), "json": json.loads(body or b"null")})
            count = sum(r["mode"] == mode for r in self.server.requests)
        if parts[1:] != ["v1", "chat", "completions"]:
            return self._send(404, {"error": f"no route {self.path}"})
        if mode == "ok" or (mode == "flaky" and count > 1):
            return self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                                    "choices": [{"index": 0, "finish_reason": "stop",
                                                 "message": {"role": "assistant", "content": REPLY}}]})
        if mode == "flaky":
            return self._send(503, {"error": "overloaded, try again"})
        if mode == "error500":
            return self._send(500, {"error": "internal error", "authorization": self.headers.get("Authorization")})
        if mode == "hang":
            time.sleep(HANG_SECONDS)
            return self._send(200, {"choices": [{"message": {"role": "assistant", "content": "too late"}}]})
        if mode == "malformed":
            return self._send(200, b"<html>this is not json {")
        if mode == "nochoices":
            return self._send(200, {"object": "chat.completion", "choices": []})
        if mode == "unauthorized":
            return self._send(401, {"error": "invalid api key"})
        if mode == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        return self._send(404, {"error": f"unknown mode {mode!r}"})

    do_GET = do_POST  # recorded and answered alike, so that a followed redirect shows up in `requests`

    def _send(self, status: int, payload) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (the hang mode)
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hanging handler never holds up shutdown

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[dict] = []


class _RedirectHandler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.requests.append({"path": self.path, "method": self.command, "headers": dict(self.headers)})
        self.send_response(self.server.code)
        self.send_header("Location", self.server.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST


class RedirectServer:
    """A server on 127.0.0.1 that answers every request with HTTP `code` and `Location: target`."""

    def __init__(self, code: int, target: str):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _RedirectHandler)
        self._server.daemon_threads = True
        self._server.lock, self._server.requests = threading.Lock(), []
        self._server.code, self._server.target = code, target
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def requests(self) -> list[dict]:
        """Every request received so far: path, method, headers."""
        return self._server.requests

    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class ErrorServer:
    """A server on 127.0.0.1 that fails on purpose; `url(mode)` is the base URL of one behaviour."""

    def __init__(self):
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def requests(self) -> list[dict]:
        """Every request received so far: mode, path, headers, JSON body."""
        return self._server.requests

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{mode}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
