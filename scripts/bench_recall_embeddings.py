"""Recall by meaning (`recall.embedding_model`) measured with a real small model: wordllama
(its 256-dimension weights ship in its wheel, so it runs offline), served by a tiny
OpenAI-compatible /v1/embeddings server. Bench-only: scripts/requirements-bench.txt.

Paraphrases (scripts/recall_dataset.py, as `bench_recall --parts paraphrase`): the model
behind the real LiteLLM (LITELLM_BIN, or the pinned one), the memories embedded through it,
each question asked through Recall with and without embeddings, for a few
`recall.min_similarity` values; and the question's embedding time through LiteLLM (its p50
is what `recall.timeout_ms` must allow).

Long histories (`bench_recall --parts history`): through a running proxy as there, its
fake LiteLLM answering /v1/embeddings with the model (no real LiteLLM in that path), the
proxy's embedding writer filling the vectors before the questions are asked.

    .venv/bin/python -m scripts.bench_recall_embeddings [--parts paraphrase,history]
        [--thresholds 0.3,0.4,0.5] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import html
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from starlette.types import Receive, Scope, Send

from memory_proxy.config.recall import RecallSettings
from memory_proxy.forwarding.embeddings import LiteLLMEmbeddings
from memory_proxy.forwarding.upstream import client_for
from memory_proxy.memory.embeddings import SemanticSearch
from memory_proxy.memory.recall import Recall
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from scripts.bench_processes import free_port, process
from scripts.bench_recall import KINDS, add_in_batches, question, recalled_block
from scripts.bench_recall_history import counts, figures, run, serving
from scripts.recall_dataset import build
from scripts.recall_history import USERS, build_dataset
from supervisor.litellm_binary import find_litellm

MODEL = "bench-embed"
MASTER_KEY = "sk-bench-embeddings"
BATCH = 256


class WordLlamaServer:
    """ASGI: POST .../embeddings answered by wordllama, as OpenAI answers (floats, or
    base64 when the request asks: LiteLLM's OpenAI client does)."""

    def __init__(self) -> None:
        import wordllama
        from wordllama import WordLlama

        # The wheel's own files (0.4.0 looks for its tokenizer in the wrong folder).
        here = Path(wordllama.__file__).parent
        self.model = WordLlama.load(cache_dir=here, disable_download=True)

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
        vectors = np.asarray(self.model.embed(texts), dtype="<f4")
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


@contextmanager
def litellm_in_front_of(directory: Path, embeddings_url: str) -> Iterator[str]:
    """The real LiteLLM, its one model `bench-embed` the server at `embeddings_url`."""
    config = directory / "litellm.yaml"
    config.write_text(
        f"model_list:\n  - model_name: {MODEL}\n    litellm_params:\n"
        f"      model: openai/wordllama\n      api_base: {embeddings_url}/v1\n"
        "      api_key: not-needed\n"
        "general_settings:\n  master_key: os.environ/LITELLM_MASTER_KEY\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [str(find_litellm(None)), "--config", str(config), "--port", str(port)]
    argv += ["--host", "127.0.0.1"]
    env = {"LITELLM_MASTER_KEY": MASTER_KEY, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    with process(argv, url, env=env, timeout=180):
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health/readiness", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield url


async def paraphrase(directory: Path, litellm_url: str, thresholds: list[float]) -> dict[str, Any]:
    test_set = build()
    index = SQLiteMemoryIndex(directory / "paraphrase.sqlite3")
    client = client_for(litellm_url)
    embedder = LiteLLMEmbeddings(client, MODEL, MASTER_KEY)
    try:
        await add_in_batches(index, test_set.records)
        started = time.perf_counter()
        while batch := await index.vectors.unembedded(0, BATCH):
            vectors = await embedder.embed([text for _, text in batch])
            await index.vectors.add([(seq, v) for (seq, _), v in zip(batch, vectors, strict=True)])
        embedding_seconds = time.perf_counter() - started
        samples = []
        for fact in test_set.facts[:100]:
            started = time.perf_counter()
            await embedder.embed([fact.paraphrase])
            samples.append((time.perf_counter() - started) * 1000)
        figures: dict[str, Any] = {
            "memories": len(test_set.records),
            "facts": len(test_set.facts),
            "embedding the memories through LiteLLM, s": round(embedding_seconds, 1),
            "question embedding through LiteLLM, p50 ms": round(statistics.median(samples), 1),
            "question embedding through LiteLLM, max ms": round(max(samples), 1),
        }
        semantic = SemanticSearch(embedder, index.vectors)
        for threshold in [None, *thresholds]:
            # A budget the LiteLLM round trip fits in: this measures quality, not time.
            settings = RecallSettings(timeout_ms=5000, min_similarity=threshold or 1.0)
            recall = Recall(
                index,
                settings,
                on_timeout=lambda: None,
                on_failure=lambda: None,
                semantic=semantic if threshold is not None else None,
            )
            name = "lexical" if threshold is None else f"embeddings, min_similarity {threshold}"
            for kind in KINDS:
                in_block = 0
                for fact in test_set.facts:
                    user, project = fact.record.user_id, fact.record.project
                    text = question(fact, kind)
                    block = html.unescape(await recalled_block(recall, user, project, text))
                    in_block += fact.record.text.strip() in block
                figures[f"{name}: {kind} recall@budget"] = round(in_block / len(test_set.facts), 3)
        return figures
    finally:
        await client.aclose()
        await index.aclose()


def history(directory: Path, server: WordLlamaServer, thresholds: list[float]) -> dict[str, Any]:
    """The long histories through a running proxy: by words alone, then with embeddings at
    each threshold (the fake LiteLLM embeds with `server`)."""
    dataset = build_dataset(users=USERS)
    rows: dict[str, Any] = {"set": counts(dataset)}
    asked, counters, _ = run(directory, dataset, "lexical")
    rows["lexical"] = figures(asked) | counters
    for threshold in thresholds:
        recall: dict[str, object] = {"min_similarity": threshold}
        asked, counters, _ = run(directory, dataset, f"t{threshold}", recall, embeddings=server)
        rows[f"embeddings, min_similarity {threshold}"] = figures(asked) | counters
    return rows


SHOWN = (
    "all",
    "tune",
    "test",
    "off-topic with a block, tune",
    "off-topic with a block, test",
    "tokens on-topic",
    "recall_embeddings_late",
    "recall_timeouts",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="paraphrase")
    parser.add_argument("--thresholds", default="0.3,0.4,0.5,0.6")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    thresholds = [float(t) for t in args.thresholds.split(",")]
    results: dict[str, Any] = {}
    server = WordLlamaServer()
    with tempfile.TemporaryDirectory() as temporary, serving(server) as model_url:
        directory = Path(temporary)
        if "paraphrase" in args.parts:
            with litellm_in_front_of(directory, model_url) as litellm_url:
                results["paraphrase"] = asyncio.run(paraphrase(directory, litellm_url, thresholds))
            print(json.dumps(results["paraphrase"], indent=2))
        if "history" in args.parts:
            results["history"] = history(directory, server, thresholds)
            for name, row in results["history"].items():
                if name != "set":
                    print(name, {key: round(row.get(key, 0.0), 3) for key in SHOWN})
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
