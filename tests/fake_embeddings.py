"""A deterministic embedding provider for tests: OpenAI's `/v1/embeddings`, each text a
bag of its words' meanings, hashed into a few dimensions. Words of one meaning (a small
synonym map) share a dimension, so a paraphrase is close to its fact though they share no
word; common words weigh nothing. `hang` makes it answer nothing until `release`."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.types import Receive, Scope, Send

DIMENSIONS = 256
SYNONYMS = {
    "nightly": "night",
    "evening": "night",
    "build": "compile",
    "compiled": "compile",
    "artifacts": "output",
    "outputs": "output",
    "uploaded": "store",
    "stored": "store",
    "bucket": "store",
}
COMMON = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "to",
        "of",
        "on",
        "in",
        "at",
        "do",
        "does",
        "get",
        "each",
        "where",
        "what",
        "which",
        "user",
        "assistant",
    ]
)


def embedding(text: str) -> list[float]:
    vector = np.zeros(DIMENSIONS, dtype=np.float32)
    for word in re.findall(r"[a-z0-9\-]+", text.lower()):
        if word not in COMMON:
            meaning = SYNONYMS.get(word, word)
            vector[int(hashlib.sha256(meaning.encode()).hexdigest(), 16) % DIMENSIONS] += 1
    return [float(x) for x in vector]


@dataclass
class FakeEmbeddings:
    """ASGI: POST .../embeddings answered as OpenAI does (floats, or base64 when asked)."""

    hang: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    inputs: list[list[str]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http" and scope["path"].endswith("/embeddings")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if self.hang.is_set():
            await asyncio.to_thread(self.release.wait)
        request: dict[str, Any] = json.loads(body)
        texts = request["input"] if isinstance(request["input"], list) else [request["input"]]
        self.inputs.append(texts)
        headers = dict(scope["headers"])
        self.authorizations.append(headers.get(b"authorization", b"").decode())
        data = []
        for index, text in enumerate(texts):
            vector: Any = embedding(text)
            if request.get("encoding_format") == "base64":
                vector = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        answer = {
            "object": "list",
            "data": data,
            "model": request["model"],
            "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
        }
        raw = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": raw})
