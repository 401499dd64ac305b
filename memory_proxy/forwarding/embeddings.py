"""Texts embedded by LiteLLM (`recall.embedding_model`): its OpenAI-compatible
/v1/embeddings, over the proxy's own client toward LiteLLM, with the proxy's own key
(`auth.upstream_key`, when set). Nothing of a caller's goes with it: no client key, no
Supermemory key (a model routed to Supermemory is refused by the config's checks of
memory's models)."""

from __future__ import annotations

from typing import Any

import orjson

from memory_proxy.errors import ProxyError
from memory_proxy.forwarding.upstream import Headers, UpstreamClient

EMBEDDINGS_PATH = b"/v1/embeddings"
READ_TIMEOUT_SECONDS = 30.0  # a batch of memories; a question is bounded by recall.timeout_ms
MAX_ANSWER_BYTES = 64 * 1024 * 1024


class EmbeddingFailed(ProxyError):
    """LiteLLM answered an embedding request with an error or an answer we can't read."""


class LiteLLMEmbeddings:
    def __init__(self, client: UpstreamClient, model: str, key: str | None) -> None:
        self._client = client
        self._model = model
        self._headers: Headers = [(b"content-type", b"application/json")]
        if key:
            self._headers.append((b"authorization", b"Bearer " + key.encode()))

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order."""
        body = orjson.dumps({"model": self._model, "input": texts})
        answer = await self._client.send(
            "POST", EMBEDDINGS_PATH, list(self._headers), body, read_timeout=READ_TIMEOUT_SECONDS
        )
        try:
            chunks = []
            size = 0
            async for chunk in answer.body():
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise EmbeddingFailed(f"{self._model}'s embeddings answer is too large")
                chunks.append(chunk)
        finally:
            await answer.aclose()
        if answer.status != 200:
            raise EmbeddingFailed(f"LiteLLM answered HTTP {answer.status} for {self._model}")
        return _vectors(b"".join(chunks), len(texts))


def _vectors(raw: bytes, count: int) -> list[list[float]]:
    """The vectors of an OpenAI embeddings answer, ordered by their `index`."""
    try:
        items: Any = orjson.loads(raw)["data"]
        ordered = sorted(items, key=lambda item: item["index"])
        vectors = [[float(x) for x in item["embedding"]] for item in ordered]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise EmbeddingFailed(f"an embeddings answer we can't read: {exc}") from None
    if len(vectors) != count:
        raise EmbeddingFailed(f"{len(vectors)} vectors for {count} texts")
    return vectors
