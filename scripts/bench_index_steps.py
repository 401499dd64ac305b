"""Instructions per memory of the index process's own steps (memory/index_worker.py), each
alone: the memory made (indexing.MemoryMaker: its text, the redaction screen, its id, its
record), the redaction screen of its text, and its terms counted (relevance.terms_of, as
sqlite_term_counts.py counts them) with the words they are stemmed from.

`bench_index_process --callgrind` counts the whole process; this says where it goes. Each
memory is new, as in that bench ("hi", and an answer holding a new reference): each step
makes its input, so "text" (the answer and exchange_text's text, unredacted) is in the
screen's, the terms' and the words' counts too. Each step is run 200 and 1,200 times
under callgrind (bench_session_steps.count_steps), the difference divided by 1,000.

    .venv/bin/python -m scripts.bench_index_steps [--checkout DIR]
"""

from __future__ import annotations

from scripts.bench_session_steps import count_steps

STEPS = ("memory made", "text", "redaction screen", "terms", "words")

# Run with the checkout on sys.path: `step` `count`. Written against what both the
# checkout and 1d3743b have.
_DRIVER = """
import random
import sys
import time
from memory_proxy.config import Settings
from memory_proxy.memory.indexing import Exchange, MemoryMaker, exchange_text
from memory_proxy.memory.redaction import Redactor
from memory_proxy.stores import porter
from memory_proxy.stores.relevance import terms_of

redactor = Redactor.configured(Settings())
maker = MemoryMaker(redactor.text)
references = random.Random(0)  # the same references each run: the same stems missed


def answer():
    return f"Noted (reference {references.randbytes(16).hex()})."


def text():
    return exchange_text("hi", answer())


def memory():
    one = Exchange("anonymous", "", None, "unknown", "bench", time.time(), "hi", answer(), False)
    return maker.memory(one)


steps = {
    "memory made": memory,
    "text": text,
    "redaction screen": lambda: redactor.text(text()),
    "terms": lambda: terms_of(text()),
    "words": lambda: porter.words(text()),
}
step = steps[sys.argv[1]]
for _ in range(200):  # the kept stems and texts as after the first batches
    step()
for _ in range(int(sys.argv[2])):
    step()
"""


if __name__ == "__main__":
    count_steps(__doc__.split("\n\n")[0], STEPS, _DRIVER)
