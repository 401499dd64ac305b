"""Instructions per call of the memory turn of a request naming no session, on the event
loop (issue 19's hot path): `begin` (the last human turn, recall deciding there is no
question), reading the answer with its message, as the turn asks (its bytes kept for the
index process, which reads the message) and for usage alone, `finish` (the
exchange handed to the index process's batch), the whole turn. The bench's request ("hi")
and nginx's answer (scripts/bench_nginx.py), the shipped recall settings.

Like scripts/bench_session_steps.py: each step run 200 and 1,200 times under callgrind,
the difference divided by 1,000 (start-up left out), which load does not move.

    .venv/bin/python -m scripts.bench_nosession_steps [--checkout DIR]
"""

from __future__ import annotations

from scripts.bench_session_steps import count_steps

STEPS = (
    "begin",
    "last human turn",
    "read with message",
    "read for the turn",
    "read usage",
    "finish",
    "memory turn",
)

# Run with the checkout on sys.path: `step` `count`. Written against what both the
# checkout and its base have (RequestMemory, AnswerReader, IndexProcess.remember).
DRIVER = """
import asyncio, sys
import orjson
from memory_proxy.config import Settings
from memory_proxy.memory.index_process import IndexProcess
from memory_proxy.memory.question import last_human_turn
from memory_proxy.memory.request_memory import MemoryScope, RequestMemory
from memory_proxy.wire.answer import AnswerReader
from memory_proxy.wire.registry import CHAT
from scripts.bench_nginx import COMPLETION

class Backend:  # never searched for "hi"
    async def search(self, *args, **kwargs): return []

class Timer:
    def cancel(self): pass

settings = Settings()
indexer = IndexProcess(settings, lambda count: None, lambda text: text)
indexer._timer = Timer()  # a batch waiting already: its exchanges are kept, not sent
indexer._send = indexer._waiting.clear
memory = RequestMemory(
    None, Backend(), settings.recall, on_recall_timeout=lambda: None,
    on_recall_busy=lambda: None, on_failure=lambda: None,
    on_memories_dropped=lambda count: None, indexer=indexer,
)
scope = MemoryScope("alice", None, "", "curl", "bench", True, True, False, "hosted")
REQUEST = b'{"model":"bench","messages":[{"role":"user","content":"hi"}]}'
ANSWER = COMPLETION.replace("$request_id", "0123456789abcdef0123456789abcdef").encode()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))]
payload = orjson.loads(REQUEST)

def run(coroutine):  # nothing awaited really waits for "hi"
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("begin waited")

def read(parser):
    reader = AnswerReader(parser)
    reader.start(200, HEADERS)
    reader.feed(ANSWER)
    return reader.finish()

def whole():
    turn = run(memory.begin(CHAT, payload, payload, scope))
    parser = turn.answer_parser()
    turn.answer_headers()
    memory.finish(turn, read(parser))

turn = run(memory.begin(CHAT, payload, payload, scope))
answer = read(turn.answer_parser())  # as `finish` gets it
steps = {
    "begin": lambda: run(memory.begin(CHAT, payload, payload, scope)),
    "last human turn": lambda: last_human_turn(CHAT, payload),
    "read with message": lambda: read(CHAT.answer_parser()),
    "read for the turn": lambda: read(turn.answer_parser()),
    "read usage": lambda: read(None),
    "finish": lambda: memory.finish(turn, answer),
    "memory turn": whole,
}
step = steps[sys.argv[1]]

async def main():
    for _ in range(int(sys.argv[2])):
        step()

asyncio.run(main())
"""


if __name__ == "__main__":
    count_steps(__doc__.split("\n\n")[0], STEPS, DRIVER)
