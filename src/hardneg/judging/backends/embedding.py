"""The embedding judge: a bi-encoder similarity between each negative and the reference (and the query).

Measured on the rlhn-sample (docs/judges.md): cos(reference, candidate) with all-MiniLM-L6-v2 ranks GPT-4o's
false negatives about as well as a 1.5B LLM pointwise judge (AUC 0.80) at ~1/80 of the cost, so it is the
cheap first stage of the local cascade. The reference is the instance's positives: a negative's reference
similarity is its best cosine over the positives.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar, Literal

from hardneg.data.records import Instance, passage_text
from hardneg.errors import ConfigError
from hardneg.judging.base import Judge
from hardneg.judging.verdicts import JudgeOutput
from hardneg.progress import announce
from hardneg.retrieval.encoders import check_backend, load_encoder

ScoreMode = Literal["reference", "query", "mean"]
SCORE_MODES: tuple[str, ...] = ("reference", "query", "mean")
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"

# Instances whose unique texts are encoded together in `judge_many`: large enough to fill batches,
# small enough that the first results reach the store quickly.
_TEXTS_PER_CHUNK = 1024
# Hard negatives recur across instances (popular passages are mined for many queries), so vectors are kept
# across chunks, most recently used first: 50,000 MiniLM vectors are ~75 MB.
DEFAULT_MEMO_SIZE = 50_000


class EmbeddingJudge(Judge):
    """Scores negatives by cosine similarity with the reference (max over positives) and with the query.

    `scores` holds the chosen mode ("reference", "query", or "mean" of the two); `extra` holds both per docid
    under "cos_reference" and "cos_query". Higher means more likely a false negative.
    """

    kind: ClassVar[str] = "embedding"

    def __init__(
        self,
        model: str | None = None,
        batch_size: int = 64,
        device: str | None = None,
        score: str = "reference",
        use_title: bool = False,
        memo_size: int = DEFAULT_MEMO_SIZE,
        encoder: str = "auto",
    ) -> None:

        check_backend(encoder, "embedding judge encoder")
        if score not in SCORE_MODES:
            raise ConfigError(f"embedding judge: score must be one of {', '.join(SCORE_MODES)}, not {score!r}")
        if batch_size < 1:
            raise ConfigError(f"embedding judge: batch_size must be >= 1, not {batch_size}")
        self.model_arg = model
        self.batch_size = batch_size
        self.device = device or "cpu"
        self.score_mode: ScoreMode = score  # type: ignore[assignment]
        self.use_title = use_title
        self.memo_size = max(0, int(memo_size))
        # auto: ONNX Runtime on a CPU (no torch in the process), else torch. Like device and batch size, it is
        # not part of config(): both compute the same cosines (to ~1e-7), so stored judgments stay valid.
        self.encoder_backend = encoder
        self._memo: OrderedDict[str, Any] = OrderedDict()  # text -> vector, least recently used first
        self._encoder: Any = None

    # A stable name for the config hash: the embedded default is named, not its install path.
    @property
    def model_name(self) -> str:
        return self.model_arg or DEFAULT_EMBEDDING_MODEL

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "kind": self.kind,
            "model": self.model_name,
            "score": self.score_mode,
            "use_title": self.use_title,
        }
        if self.use_title:
            # Titled texts follow hardneg.data.records.passage_text ("title text"); earlier releases joined them
            # with ". ", so judgments made with titles are keyed apart. Untitled judgments keep their key.
            config["title_join"] = "space"
        return config

    def _load(self) -> Any:
        if self._encoder is None:
            announce(f"loading the embedding judge's model ({self.model_name})")
            self._encoder = load_encoder(self.model_arg, device=self.device, backend=self.encoder_backend)
        return self._encoder

    def encode(self, texts: Sequence[str]) -> Any:
        """L2-normalised embeddings (numpy, one row per text)."""
        encoder = self._load()
        return encoder.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def _texts(self, instance: Instance, docids: Sequence[str]) -> tuple[list[str], list[str], list[str]] | str:
        """(query, positive texts, negative texts) or the reason the item cannot be judged."""
        known = {p.docid: p for p in instance.negatives}
        missing = [d for d in docids if d not in known]
        if missing:
            return f"docids not among the instance's negatives: {', '.join(missing[:5])}"
        if not instance.positives:
            return "instance has no positive to use as reference"
        positives = [passage_text(p, with_title=self.use_title) for p in instance.positives]
        negatives = [passage_text(known[d], with_title=self.use_title) for d in docids]
        return [instance.query], positives, negatives

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        return next(iter(self.judge_many([(instance, docids)])))[1]

    def judge_many(self, items: Iterable[tuple[Instance, Sequence[str]]]) -> Iterator[tuple[Instance, JudgeOutput]]:
        """Encode the unique texts of a chunk of instances once, then score each instance from the cache."""
        chunk: list[tuple[Instance, list[str]]] = []
        n_texts = 0
        for instance, docids in items:
            docids = list(docids)
            chunk.append((instance, docids))
            n_texts += 1 + len(instance.positives) + len(docids)
            if n_texts >= _TEXTS_PER_CHUNK:
                yield from self._judge_chunk(chunk)
                chunk, n_texts = [], 0
        if chunk:
            yield from self._judge_chunk(chunk)

    def _judge_chunk(self, chunk: list[tuple[Instance, list[str]]]) -> Iterator[tuple[Instance, JudgeOutput]]:
        prepared: list[tuple[Instance, list[str], Any]] = []
        unique: dict[str, int] = {}
        for instance, docids in chunk:
            texts = self._texts(instance, docids)
            prepared.append((instance, docids, texts))
            if isinstance(texts, str):
                continue
            for group in texts:
                for text in group:
                    unique.setdefault(text, len(unique))
        start = time.perf_counter()
        vectors = self._vectors(list(unique)) if unique else None
        elapsed = time.perf_counter() - start
        n_pairs = sum(len(d) for _, d, t in prepared if not isinstance(t, str)) or 1
        for instance, docids, texts in prepared:
            if isinstance(texts, str):
                yield instance, JudgeOutput(docids=docids, status="failed", reason=texts)
                continue
            query, positives, negatives = texts
            yield instance, self._score(docids, query[0], positives, negatives, unique, vectors, elapsed / n_pairs)

    def _vectors(self, texts: list[str]) -> Any:
        """Vectors for `texts` in order: remembered ones from the memo, the rest encoded in one call."""
        import numpy as np

        missing = [t for t in texts if t not in self._memo]
        fresh = self.encode(missing) if missing else None
        dim = fresh.shape[1] if fresh is not None else next(iter(self._memo.values())).shape[0]
        out = np.empty((len(texts), dim), dtype=np.float32)
        new = dict(zip(missing, fresh, strict=True)) if fresh is not None else {}
        for row, text in enumerate(texts):
            if text in new:
                out[row] = new[text]
            else:
                out[row] = self._memo[text]
                self._memo.move_to_end(text)
        if self.memo_size:
            for text, vector in new.items():
                self._memo[text] = vector
            while len(self._memo) > self.memo_size:
                self._memo.popitem(last=False)
        return out

    def _score(
        self,
        docids: list[str],
        query: str,
        positives: list[str],
        negatives: list[str],
        index: dict[str, int],
        vectors: Any,
        seconds_per_pair: float,
    ) -> JudgeOutput:
        if not docids:
            return JudgeOutput(docids=[], scores={}, extra={"cos_reference": {}, "cos_query": {}})
        neg = vectors[[index[t] for t in negatives]]
        pos = vectors[[index[t] for t in positives]]
        qvec = vectors[index[query]]
        # Normalised vectors: the dot product is the cosine.
        cos_reference = (neg @ pos.T).max(axis=1)
        cos_query = neg @ qvec
        by_mode = {
            "reference": cos_reference,
            "query": cos_query,
            "mean": (cos_reference + cos_query) / 2.0,
        }
        chosen = by_mode[self.score_mode]
        return JudgeOutput(
            docids=list(docids),
            scores={d: float(s) for d, s in zip(docids, chosen, strict=True)},
            latency_s=seconds_per_pair * len(docids),
            extra={
                "cos_reference": {d: float(s) for d, s in zip(docids, cos_reference, strict=True)},
                "cos_query": {d: float(s) for d, s in zip(docids, cos_query, strict=True)},
            },
        )

    def close(self) -> None:
        self._encoder = None
        self._memo.clear()
