"""Echo service for the twin's e2e tests: JSON with task id, service, path and headers.

Standard library only; it reads its task id from the task metadata endpoint like
backend_private does, and its service name from ``SERVICE_NAME``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def task_id() -> str:
    base = os.environ.get("ECS_CONTAINER_METADATA_URI_V4", "")
    if not base:
        return "unknown"
    with urllib.request.urlopen(f"{base}/task", timeout=2) as response:
        return str(json.load(response)["TaskARN"]).rsplit("/", 1)[-1]


TASK_ID = task_id()


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # headers and body in one write: no Nagle / delayed-ACK stall

    def _answer(self) -> None:
        if self.path.startswith("/call?"):
            url = self.path.split("url=", 1)[1]
            try:
                with urllib.request.urlopen(url, timeout=3) as response:
                    body = response.read()
            except OSError as err:
                body = json.dumps({"error": str(err)}).encode()
        else:
            body = json.dumps(
                {
                    "task": TASK_ID,
                    "service": os.environ.get("SERVICE_NAME", ""),
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                }
            ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        sys.stdout.write(f"{self.command} {self.path}\n")


def main() -> None:
    server = ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT"])), Echo)
    signal.signal(
        signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start()
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
