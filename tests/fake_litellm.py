"""A stand-in for the litellm binary in supervisor tests: `fake_litellm.py --port N`.

FAKE_MODE chooses its behaviour:
  serve           answer readiness, liveness and chat completions (with its pid and the
                  last message's content)
  crash           print a line and exit 3 at once
  hang            become ready, then stop answering liveness probes
  ignore-sigterm  serve, and ignore SIGTERM
  grandchild      serve, after starting a `sleep` that leaves the process group
  proxy-sees-ready  serve, but answer the supervisor's readiness probe (httpx's
                  User-Agent) with 503: only the memory proxy's probe (none) sees it ready
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE = os.environ.get("FAKE_MODE", "serve")
hung = threading.Event()


class Handler(BaseHTTPRequestHandler):
    # Keep-alive, as LiteLLM's uvicorn: the proxy pools its connection, which a kill leaves dead.
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/health/liveliness" and MODE == "hang":
            hung.set()
        if hung.is_set():
            time.sleep(3600)
        by_supervisor = "python-httpx" in self.headers.get("user-agent", "")
        if self.path == "/health/readiness" and MODE == "proxy-sees-ready" and by_supervisor:
            self._answer({"status": "starting"}, status=503)
            return
        self._answer({"status": "healthy"})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        messages = json.loads(self.rfile.read(length) or b"{}").get("messages") or [{}]
        # Which process answered, and to what: a restart's test tells the children apart.
        content = f"fake pid={os.getpid()}: {messages[-1].get('content', '')}"
        self._answer({"choices": [{"message": {"role": "assistant", "content": content}}]})

    def _answer(self, payload: object, status: int = 200) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print(f"{self.command} {self.path}", flush=True)


def main() -> None:
    port = int(sys.argv[sys.argv.index("--port") + 1])
    demo_url = os.environ.get("MEMORY_PROXY_DEMO_URL")  # what the shipped `demo` would call
    if MODE == "ignore-sigterm":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # After the handlers: tests take this first line to mean they are installed.
    print(f"fake litellm pid={os.getpid()} mode={MODE} demo_url={demo_url}", flush=True)
    if MODE == "crash":
        print("fatal: crashing on purpose", flush=True)
        sys.exit(3)
    if MODE == "grandchild":
        sleeper = subprocess.Popen(["sleep", "300"], start_new_session=True)
        print(f"grandchild pid={sleeper.pid}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
