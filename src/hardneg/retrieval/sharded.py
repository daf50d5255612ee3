"""Encoding sharded over Ray actors (`engine="ray"`): corpus and query embeddings computed by an actor pool, into
the same embedding cache as local encoding; the search stays on the driver.

`encode_texts(model, texts, compute=RayCompute(session, pool))` is `hardneg.retrieval.embed.encode_texts` with
the forward passes moved to `pool.workers` actors (`hardneg.cluster.actor_map`). The driver keeps the encoder it
loaded for the cache key only: the cache file is the one `encode_texts` reads and writes (same model key, backend,
texts, prefix and max length), so a run on Ray and a local run share their embeddings. The texts go out longest
first in blocks of `rows_per_block`; each actor loads the model once, with the driver's backend (``onnx`` or
``torch``; on GPU actors, ``num_gpus`` in the pool, torch picks the GPU), and returns each block's normalised
embeddings with their row numbers, so results may arrive in any order.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from hardneg.cluster import MapStats, PoolSize, RaySession, actor_map, node_id
from hardneg.progress import StageProgress
from hardneg.retrieval.embed import longest_first
from hardneg.retrieval.encoders import load_encoder
from hardneg.retrieval.onnx import load_onnx_encoder

DEFAULT_ROWS_PER_BLOCK = 1024


class EncodeWorker:
    """One Ray actor's encoder: `model` (a name or path) on `backend`, `threads` ONNX Runtime threads (its CPUs)."""

    def __init__(
        self, model: str | None, backend: str, max_length: int | None, batch_size: int, threads: int | None
    ) -> None:
        if backend == "onnx":
            self.model: Any = load_onnx_encoder(model, threads=threads)
        else:
            self.model = load_encoder(model, backend="torch")
        if max_length is not None:
            self.model.max_seq_length = max_length
        self.batch_size = batch_size
        self.node = node_id()

    def __call__(self, block: Any) -> Any:
        import pyarrow as pa

        started = time.perf_counter()
        texts = block["text"].to_pylist()
        emb = np.asarray(
            self.model.encode(
                texts, batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True,
                show_progress_bar=False,
            ),
            dtype=np.float32,
        )  # fmt: skip
        values = pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), emb.shape[1])
        n = len(texts)
        busy = time.perf_counter() - started
        return pa.table({"row": block["row"], "embedding": values, "node": [self.node] * n, "busy_s": [busy] * n})


def _blocks(texts: Sequence[str], prefix: str, rows_per_block: int) -> Iterator[Any]:
    import pyarrow as pa

    order = longest_first(texts)
    for start in range(0, len(order), rows_per_block):
        rows = order[start : start + rows_per_block]
        yield pa.table({"row": pa.array(rows, type=pa.int64()), "text": [prefix + texts[i] for i in rows]})


class RayCompute:
    """The forward passes of `encode_texts` on `pool` actors of `session` (its `compute`): see the module docstring.

    `source` is the name or path the actors load (None: the embedded MiniLM); the driver's `model` gives the
    backend. `stats` (a `MapStats`) sums what the pool did.
    """

    def __init__(
        self,
        session: RaySession,
        pool: PoolSize,
        *,
        source: str | None = None,
        rows_per_block: int = DEFAULT_ROWS_PER_BLOCK,
        stats: MapStats | None = None,
    ) -> None:
        self.session, self.pool, self.source = session, pool, source
        self.rows_per_block = rows_per_block
        self.stats = stats if stats is not None else MapStats()

    def __call__(
        self,
        model: Any,
        texts: Sequence[str],
        out: np.ndarray,
        *,
        prefix: str,
        max_length: int | None,
        batch_size: int,
        progress: StageProgress | None,
        stage: str,
    ) -> None:
        threads = max(1, int(self.pool.num_cpus)) if self.pool.num_cpus else 1
        kwargs = {
            "model": self.source, "backend": str(getattr(model, "backend", "torch")), "max_length": max_length,
            "batch_size": batch_size, "threads": threads,
        }  # fmt: skip
        blocks = _blocks(texts, prefix, self.rows_per_block)
        done = 0
        for result in actor_map(self.session, blocks, EncodeWorker, kwargs, self.pool, stats=self.stats):
            rows = result["row"].to_numpy()
            out[rows] = result["embedding"].combine_chunks().flatten().to_numpy().reshape(len(rows), out.shape[1])
            done += len(rows)
            if progress:
                progress(stage, done, len(texts))
