"""Instructions per call of the plain hop's own steps on the event loop (issue 19: the path
every request takes, whatever memory does): the browser guard, the header lookup and the
request's id, reading and identifying the body, the headers for LiteLLM and the request
head, the answer's relayed headers, reading its usage, and recording it (the usage record,
the metrics, the log line). A `hi` request as scripts/bench sends it, nginx's answer
(scripts/bench_nginx.py), the no-memory config (usage records on).

Like scripts/bench_session_steps.py: each step run 200 and 1,200 times under callgrind,
the difference divided by 1,000 (start-up left out), which load does not move.
`bench_hop --callgrind` counts the whole request (its coroutines, the event loop, the
sockets) beside these.

    .venv/bin/python -m scripts.bench_hop_steps [--checkout DIR]
"""

from __future__ import annotations

from scripts.bench_session_steps import count_steps

STEPS = (
    "guard",
    "lookup and id",
    "read body",
    "identify",
    "prepare",
    "upstream headers",
    "request head",
    "relayed headers",
    "read usage",
    "usage record",
    "metrics",
    "log line",
    "record",
)

# Run with the checkout on sys.path: `step` `count`. Written against what both the
# checkout and its base have (the pipeline's steps, the forwarder's helpers).
DRIVER = """
import asyncio, os, sys, tempfile, time
from pathlib import Path
import yaml
from memory_proxy.app import MemoryProxy
from memory_proxy.config import load_settings
from memory_proxy.forwarding.forwarder import ForwardResult, relayed_headers
from memory_proxy.logging_setup import configure_logging, log_request
from memory_proxy.proxied_request import ProxiedRequest, RequestBody, header_lookup
from memory_proxy import pipeline as pipeline_module
from memory_proxy.wire.answer import AnswerReader
from scripts.bench_nginx import COMPLETION

config = yaml.safe_load(Path("config.yaml").read_text())
config["memory"] = {**config.get("memory", {}), "enabled": False}
config["model_list"] = [*config.get("model_list", []), {
    "model_name": "bench", "litellm_params": {"model": "openai/bench", "api_key": "none"}}]
directory = tempfile.mkdtemp()
config["memory"]["sqlite_path"] = os.path.join(directory, "usage.sqlite3")
path = Path(directory, "config.yaml")
path.write_text(yaml.safe_dump(config))
settings = load_settings(path)
sys.stdout = open(os.devnull, "w")
configure_logging(settings.log_format, settings.secrets())
app = MemoryProxy(settings)
pipeline = app._proxy
guard = app._guard
BODY = b'{"model": "bench", "messages": [{"role": "user", "content": "hi"}]}'
HEADERS = [
    (b"host", b"127.0.0.1:8764"),
    (b"content-type", b"application/json"),
    (b"content-length", b"%d" % len(BODY)),
]
PATH = "/v1/chat/completions"
scope = {
    "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1", "server": ("127.0.0.1", 8764), "client": ("127.0.0.1", 40000),
    "scheme": "http", "method": "POST", "root_path": "", "path": PATH,
    "raw_path": PATH.encode(), "query_string": b"", "headers": HEADERS,
}
ANSWER = COMPLETION.replace("$request_id", "0123456789abcdef0123456789abcdef").encode()
ANSWER_HEADERS = [
    (b"server", b"nginx/1.22.1"), (b"date", b"Mon, 07 Dec 2026 04:00:00 GMT"),
    (b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER)),
    (b"connection", b"keep-alive"),
]

def run(coroutine):  # nothing here really waits
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("waited")

async def receive():
    return {"type": "http.request", "body": BODY, "more_body": False}

def request():
    lookup = header_lookup(scope)
    request_id = pipeline.identifier.request_id(lookup)
    return ProxiedRequest(
        scope, PATH, "POST", request_id, lookup, time.perf_counter(), time.time()
    )

def read(reader):
    reader.start(200, ANSWER_HEADERS)
    reader.feed(ANSWER)
    return reader.finish()

proxied = request()
body = run(pipeline._read_body(proxied, receive))
who = pipeline._identify(proxied, body)
result = ForwardResult(200, "complete", 0.0005, 0.0006, True)
answer = read(AnswerReader(None))
ours = [(b"x-request-id", proxied.request_id.encode())]
usage_record = pipeline_module._usage_record
fields = usage_record(proxied, who, body.payload, result, answer, 0.001).as_dict()

class Reader:
    def finish(self):
        return answer

def guarded():
    guard._refusal(scope, dict(HEADERS))

steps = {
    "guard": guarded,
    "lookup and id": request,
    "read body": lambda: run(pipeline._read_body(proxied, receive)),
    "identify": lambda: pipeline._identify(proxied, body),
    "prepare": lambda: run(pipeline._prepare(proxied, body, who)),
    "upstream headers": lambda: pipeline.upstream_headers.build(
        HEADERS, who, streamed_body=False
    ),
    "request head": lambda: pipeline.forwarder._client._head(
        "POST", scope["raw_path"], HEADERS, BODY
    ),
    "relayed headers": lambda: relayed_headers(ANSWER_HEADERS, ours),
    "read usage": lambda: read(AnswerReader(None)),
    "usage record": lambda: usage_record(proxied, who, body.payload, result, answer, 0.001),
    "metrics": lambda: (
        pipeline.metrics.observe(who.model, 0.001, 0.0006, "complete"),
        pipeline.metrics.count(who.user_id, who.model, 200),
    ),
    "log line": lambda: log_request(dict(fields)),
    "record": lambda: pipeline._record(proxied, who, body, None, Reader(), result),
}
step = steps[sys.argv[1]]

async def main():
    for _ in range(int(sys.argv[2])):
        step()
    app.usage._writer._queue = asyncio.Queue()  # what was queued is not written

asyncio.run(main())
"""


if __name__ == "__main__":
    count_steps(__doc__.split("\n\n")[0], STEPS, DRIVER)
