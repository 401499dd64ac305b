"""nginx answering a fixed OpenAI chat completion: the upstream scripts/bench measures the
proxy against. A Python fake on the same two cores spends most of the CPU itself and hides
what the proxy costs; nginx (one worker, `return 200`) is the floor.

Its own process, on a free loopback port, with a generated config in the bench's temporary
directory (error log and temporary files there too), stopped when the `with` ends. The
answer's id and content carry nginx's `$request_id`, as a real answer differs each time:
with a fixed text every exchange would be the same long-term memory, stored once.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scripts.bench_processes import free_port, process

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-$request_id",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Noted (reference $request_id)."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18},
    },
    separators=(",", ":"),
)
CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")

CONFIG = """\
worker_processes 1;
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    default_type application/json;
    server {{
        listen 127.0.0.1:{port};
{locations}
    }}
}}
"""
LOCATION = "        location = {path} {{ return 200 '{answer}'; }}"


def nginx_config(directory: Path, port: int) -> str:
    locations = "\n".join(LOCATION.format(path=path, answer=COMPLETION) for path in CHAT_PATHS)
    return CONFIG.format(directory=directory, port=port, locations=locations)


def nginx_binary() -> str | None:
    """Debian puts it in /usr/sbin, which is not on every user's PATH."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")


def nginx_version() -> str:
    output = subprocess.run([nginx_binary() or "nginx", "-v"], capture_output=True, text=True)
    return output.stderr.strip().removeprefix("nginx version: ")


@contextmanager
def nginx_upstream(directory: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """nginx's URL and process, in `directory` (created), stopped at the end."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed (scripts/bench installs nginx-light)")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "nginx.conf"
    config.write_text(nginx_config(directory, port))
    argv = [binary, "-p", str(directory), "-c", str(config), "-e", str(directory / "error.log")]
    url = f"http://127.0.0.1:{port}"
    with process(argv, url) as server:
        yield url, server
