"""BEIR-style evaluation: first-stage retrieval (dense or BM25, via `hardneg.retrieval`), optional cross-encoder
reranking of the top of the first stage, trec_eval metrics. `evaluate` is the front door.

As in BEIR, a document whose id equals the query id is ignored by default (ArguAna and Quora list every query
as a corpus document); the first stage then retrieves one extra hit so the depth stays full. The metrics average
over the split's queries with a relevant document that were searched (`hardneg.evaluation.metrics`); queries and
qrels that share no query stop the evaluation before any model is loaded.

Progress (`progress(phase, done, total)`) reports each phase as it starts and as it goes: ``load data``,
``load model``, ``encode corpus`` (per chunk of texts), ``encode queries``, ``bm25 index``, ``search``, ``score``
and ``rerank``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hardneg.data.beir import BeirData, load_beir
from hardneg.data.records import Passage, passage_text
from hardneg.errors import ConfigError, InputError
from hardneg.evaluation.metrics import (
    DEFAULT_METRICS,
    check_overlap,
    evaluate_run,
    parse_metric,
    trec_order,
    write_run,
)
from hardneg.progress import StageProgress
from hardneg.retrieval.cross_encoder import check_cross_encoder
from hardneg.retrieval.encoders import load_encoder
from hardneg.retrieval.retriever import Retriever
from hardneg.training.common import read_metadata

ProgressFn = StageProgress
T = TypeVar("T")


@dataclass
class EvalResult:
    """Metrics of one system on one BEIR split (plus, when reranked, the first stage's)."""

    system: str
    dataset: str
    split: str
    metrics: dict[str, float]
    queries: int
    per_query: dict[str, dict[str, float]]
    run: dict[str, dict[str, float]]
    seconds: float
    first_stage: EvalResult | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # The run's queries against the qrels' judged ones: qrels, run, shared, run_only, qrels_only (`QueryOverlap`).
    overlap: dict[str, int] = field(default_factory=dict)

    def to_dict(self, *, per_query: bool = False) -> dict[str, Any]:
        """Metrics first (`ndcg@10`, `recall@100`, `mrr@10`, `queries`), then context."""
        out: dict[str, Any] = {name: round(value, 6) for name, value in self.metrics.items()}
        out["queries"] = self.queries
        out["overlap"] = self.overlap
        out["system"] = self.system
        out["dataset"] = self.dataset
        out["split"] = self.split
        out["seconds"] = round(self.seconds, 3)
        if self.first_stage is not None:
            out["first_stage"] = self.first_stage.to_dict(per_query=per_query)
        if per_query:
            out["per_query"] = self.per_query
        return out


def _depth(metrics: Iterable[str], depth: int | None, rerank_top: int) -> int:
    cutoffs = [parse_metric(m)[1] or 1000 for m in metrics]
    return max([depth or 0, rerank_top, *cutoffs])


def _result(
    system: str, dataset: str, split: str, qrels: Any, run: dict[str, dict[str, float]], metrics: Iterable[str],
    ignore_identical_ids: bool, seconds: float, options: dict[str, Any], progress: ProgressFn | None = None,
) -> EvalResult:  # fmt: skip
    scores = _phase(
        progress, "score",
        lambda: evaluate_run(qrels, run, metrics=metrics, ignore_identical_ids=ignore_identical_ids,
                             qrels_name=f"the qrels of {dataset} ({split})", run_name=f"the run of {system}"),
    )  # fmt: skip
    per_query = scores.pop("per_query")
    queries = scores.pop("queries")
    overlap = scores.pop("overlap").to_dict()
    return EvalResult(
        system, dataset, split, scores, queries, per_query, run, seconds, options=options, overlap=overlap
    )


def _phase(progress: ProgressFn | None, name: str, work: Callable[[], T]) -> T:
    """Run one step that has no count of its own, reported as ``name 0/1`` when it starts and ``1/1`` when done."""
    if progress:
        progress(name, 0, 1)
    out = work()
    if progress:
        progress(name, 1, 1)
    return out


def _check_reranker(reranker: Any) -> None:
    """A reranker folder that is not there stops the evaluation before any retrieval is done."""
    if isinstance(reranker, (str, Path)) and not Path(reranker).is_dir():
        raise InputError(reranker, None, "-", "no such reranker folder (a CrossEncoder, e.g. from `train reranker`)")
    if isinstance(reranker, (str, Path)):
        check_cross_encoder(reranker, param="reranker")  # a bi-encoder would rerank with a random head


def rerank(
    reranker: Any,
    data: BeirData,
    run: Mapping[str, Mapping[str, float]],
    *,
    top: int = 100,
    query_prefix: str | None = None,
    passage_prefix: str | None = None,
    max_length: int | None = None,
    batch_size: int = 32,
    progress: ProgressFn | None = None,
) -> dict[str, dict[str, float]]:
    """Rescore each query's top `top` documents with a cross-encoder (a folder or a loaded CrossEncoder).

    Documents below `top` keep their first-stage order, placed under the reranked ones.
    Prefixes default to those the reranker was trained with (its hardneg metadata), else none.
    """
    _check_reranker(reranker)
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder

    if isinstance(reranker, (str, Path)):
        saved = read_metadata(reranker).get("config", {})
        query_prefix = saved.get("query_prefix", "") if query_prefix is None else query_prefix
        passage_prefix = saved.get("passage_prefix", "") if passage_prefix is None else passage_prefix
        reranker = CrossEncoder(str(reranker), max_length=max_length)
    elif max_length is not None:
        reranker.max_length = max_length
    query_prefix = query_prefix or ""
    passage_prefix = passage_prefix or ""
    out: dict[str, dict[str, float]] = {}
    qids = list(run)
    for done, qid in enumerate(qids, start=1):
        ordered = trec_order(run[qid])
        head = [d for d, _ in ordered[:top] if d in data.corpus]
        tail = [d for d, _ in ordered[top:]]
        query = query_prefix + data.queries[qid]
        pairs = [(query, passage_prefix + passage_text(data.corpus[d], with_title=True)) for d in head]
        # Raw logits: a sigmoid saturates at 1.0 for confident pairs and would turn them into docid-ordered ties.
        scores = (
            reranker.predict(pairs, batch_size=batch_size, show_progress_bar=False, activation_fn=torch.nn.Identity())
            if pairs
            else []
        )
        ranked = {d: float(s) for d, s in zip(head, scores, strict=True)}
        floor = min(ranked.values(), default=0.0)
        for i, docid in enumerate(tail, start=1):
            ranked[docid] = floor - i  # strictly below every reranked document, first-stage order kept
        out[qid] = ranked
        if progress:
            progress("rerank", done, len(qids))
    return out


def _load(beir: str | Path | BeirData, split: str, progress: ProgressFn | None = None) -> tuple[BeirData, str]:
    """The BEIR data and the dataset's name (its folder's name; "<in memory>" for `BeirData`), checked: its
    queries and the split's qrels share at least one judged query (`ConfigError` naming both otherwise)."""
    if isinstance(beir, BeirData):
        data, dataset = beir, "<in memory>"
        qrels_name, queries_name = "the qrels of the BeirData", "its queries"
    else:
        data = _phase(progress, "load data", lambda: load_beir(beir, split))
        dataset = Path(beir).name
        qrels_name, queries_name = str(Path(beir) / "qrels" / f"{split}.tsv"), f"the queries of {beir}"
    check_overlap(data.qrels, data.queries, qrels_name=qrels_name, run_name=queries_name, param="beir_dir")
    return data, dataset


def _search_and_score(
    retriever: Retriever,
    system: str,
    queries: Mapping[str, str],
    data: BeirData,
    dataset: str,
    split: str,
    start: float,
    options: dict[str, Any],
    *,
    metrics: list[str],
    depth: int | None,
    ignore_identical_ids: bool,
    reranker: Any,
    rerank_top: int,
    reranker_max_length: int | None,
    batch_size: int,
    save_run: str | Path | None,
    progress: ProgressFn | None,
) -> EvalResult:
    """The first stage's run of `queries` (as deep as the metrics and the reranker need) and its metrics (timed
    from `start`), reranked when a reranker is given, the final run saved when asked."""
    k = _depth(metrics, depth, rerank_top if reranker is not None else 0)
    hits = retriever.search(queries, k, exclude_self=ignore_identical_ids, progress=progress)
    run = {qid: dict(ranked) for qid, ranked in hits.items()}
    first = _result(
        system, dataset, split, data.qrels, run, metrics, ignore_identical_ids, time.perf_counter() - start,
        {**options, "depth": k}, progress,
    )  # fmt: skip
    result = first
    if reranker is not None:
        start = time.perf_counter()
        reranked = rerank(
            reranker, data, first.run, top=rerank_top, max_length=reranker_max_length, batch_size=batch_size,
            progress=progress,
        )  # fmt: skip
        result = _result(
            f"{first.system} >> {reranker}", first.dataset, first.split, data.qrels, reranked, metrics,
            ignore_identical_ids, time.perf_counter() - start, {**first.options, "rerank_top": rerank_top},
            progress,
        )  # fmt: skip
        result.first_stage = first
    if save_run is not None:
        write_run(save_run, result.run, tag=_tag(result.system))
    return result


def evaluate_model(
    model: Any,
    beir_dir: str | Path | BeirData,
    split: str = "test",
    *,
    metrics: Iterable[str] = DEFAULT_METRICS,
    depth: int | None = None,
    query_prefix: str | None = None,
    passage_prefix: str | None = None,
    query_max_length: int | None = None,
    passage_max_length: int | None = None,
    batch_size: int = 64,
    ignore_identical_ids: bool = True,
    reranker: Any = None,
    rerank_top: int = 100,
    reranker_max_length: int | None = None,
    save_run: str | Path | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: ProgressFn | None = None,
) -> EvalResult:
    """Evaluate a dense retriever (a model folder, a name, or a loaded SentenceTransformer) on a BEIR split.

    Prefixes default to those a hardneg-trained model was trained with (its `hardneg_train.json`), else none.
    Corpus embeddings go through `hardneg.retrieval`'s disk cache, so a second evaluation of the same model is
    cheap. With `reranker`, the first stage's top `rerank_top` are rescored and the result holds both stages
    (`result.first_stage`); `save_run` then writes the reranked run.
    """

    _check_reranker(reranker)
    metrics = list(metrics)
    suffix = ""
    if isinstance(model, (str, Path)) or model is None:
        metadata = read_metadata(model) if model else {}
        saved = metadata.get("config", {})
        query_prefix = saved.get("query_prefix", "") if query_prefix is None else query_prefix
        passage_prefix = saved.get("passage_prefix", "") if passage_prefix is None else passage_prefix
        # Last-token (EOS) pooled models were trained with EOS appended to every text: encode the same way.
        suffix = str(metadata.get("text_suffix") or "")
    data, dataset = _load(beir_dir, split, progress)
    corpus = data.corpus
    queries = data.queries
    if suffix:
        corpus = {d: Passage(p.docid, p.text + suffix, p.title) for d, p in corpus.items()}
        queries = {q: text + suffix for q, text in queries.items()}
    start = time.perf_counter()
    encoder = model
    if model is None or isinstance(model, (str, os.PathLike)):
        encoder = _phase(progress, "load model", lambda: load_encoder(model))
    retriever = Retriever(
        corpus,
        "dense",
        model=encoder,
        query_prefix=query_prefix or "",
        passage_prefix=passage_prefix or "",
        query_max_length=query_max_length,
        passage_max_length=passage_max_length,
        batch_size=batch_size,
        cache_dir=cache_dir,
        use_cache=use_cache,
        progress=progress,
    )
    return _search_and_score(
        retriever, str(model) if model is not None else "all-MiniLM-L6-v2 (embedded)", queries, data, dataset, split,
        start, {"query_prefix": query_prefix, "passage_prefix": passage_prefix}, metrics=metrics, depth=depth,
        ignore_identical_ids=ignore_identical_ids, reranker=reranker, rerank_top=rerank_top,
        reranker_max_length=reranker_max_length, batch_size=batch_size, save_run=save_run, progress=progress,
    )  # fmt: skip


def evaluate_bm25(
    beir_dir: str | Path | BeirData,
    split: str = "test",
    *,
    metrics: Iterable[str] = DEFAULT_METRICS,
    depth: int | None = None,
    ignore_identical_ids: bool = True,
    reranker: Any = None,
    rerank_top: int = 100,
    reranker_max_length: int | None = None,
    batch_size: int = 32,
    save_run: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> EvalResult:
    """Evaluate BM25 (bm25s over title + text, via `hardneg.retrieval`) on a BEIR split, optionally reranked."""

    _check_reranker(reranker)
    metrics = list(metrics)
    data, dataset = _load(beir_dir, split, progress)
    start = time.perf_counter()
    retriever = Retriever(data.corpus, "bm25", progress=progress)
    return _search_and_score(
        retriever, "bm25", data.queries, data, dataset, split, start, {}, metrics=metrics, depth=depth,
        ignore_identical_ids=ignore_identical_ids, reranker=reranker, rerank_top=rerank_top,
        reranker_max_length=reranker_max_length, batch_size=batch_size, save_run=save_run, progress=progress,
    )  # fmt: skip


def evaluate(
    model: Any,
    beir: str | Path | BeirData,
    *,
    split: str = "test",
    reranker: Any = None,
    **options: Any,
) -> EvalResult:
    """nDCG@10, Recall@100 and MRR@10 (trec_eval semantics) of a retriever on a BEIR split.

    `model`: ``"bm25"``, a sentence-transformers folder or name, a loaded SentenceTransformer, or None (the
    embedded MiniLM). `beir`: a BEIR folder or `BeirData` in memory. `reranker`: a CrossEncoder folder (or a
    loaded one) rescoring the first stage's top `rerank_top`. Other `options` go to `evaluate_model` /
    `evaluate_bm25` (metrics, depth, prefixes, save_run, ...).

    >>> import hardneg
    >>> from hardneg.data.sample import sample_beir_dir
    >>> result = hardneg.evaluate("bm25", sample_beir_dir(), split="test")
    >>> round(result.metrics["ndcg@10"], 2) > 0.5
    True
    """
    if model == "bm25":
        return evaluate_bm25(beir, split, reranker=reranker, **options)
    return evaluate_model(model, beir, split, reranker=reranker, **options)


def _tag(system: str) -> str:
    tag = Path(system.split(" >> ")[-1]).name or "hardneg"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in tag)[:60] or "hardneg"


def check_split(beir_dir: str | Path, split: str) -> None:
    if not (Path(beir_dir) / "qrels" / f"{split}.tsv").is_file():
        raise ConfigError(f"{beir_dir}: no qrels for split {split!r}")
