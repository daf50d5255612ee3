"""Hard-negative mining: retrieve, drop what must not be a negative, filter by margin, sample, write.

Per query (keyed by query_id and docid throughout):
1. positives = qrels docs with label >= `min_positive_score`; a query without one is skipped and counted.
2. retrieve the top `range_end` documents (`bm25`, `dense` or `hybrid`), one query block at a time.
3. candidates = ranks `range_start+1 .. range_end`; drop every doc with a qrels label > 0 (a positive, or
   a partly relevant doc, never becomes a negative), the query's own id (ArguAna), duplicates, empty texts.
   With `rescore` (a cross-encoder), the top `rescore_depth` retrieved documents are first rescored and
   re-ranked by the cross-encoder (`hardneg.mining.rescore`): ranks, and every score below, are then its own.
4. positive-aware margins against the lowest positive's exact score (computed also when a positive was not
   retrieved): relative (TopK-PercPos) drops scores above ``pos - |pos| x R`` (= (1-R) x pos for pos >= 0),
   absolute drops scores above ``pos - M``. With `hybrid`, margins use the dense cosine similarity (an RRF
   value has no scale a margin can refer to, and exists only for retrieved documents).
5. absolute cuts on the same score: `max_score` drops candidates above it, `min_score` those below it.
6. keep the first N (`top`) or N drawn at random (`random`, seeded per query_id, so the sample does not
   depend on query order), in rank order.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hardneg.cluster import PoolSize, resolve_engine
from hardneg.data.beir import BeirData, load_beir
from hardneg.data.formats import check_output
from hardneg.data.io import open_writer
from hardneg.data.records import Instance, Passage
from hardneg.data.source import select_items, to_dataset
from hardneg.errors import EmptyInput
from hardneg.mining.config import MineConfig, MineReport, default_subset, mine_config
from hardneg.mining.rescore import Rescored, Rescorer, check_rescore
from hardneg.progress import StageProgress
from hardneg.retrieval.retriever import Retriever


def _positives(
    qid: str, labels: Mapping[str, int], corpus: Mapping[str, Passage], config: MineConfig, report: MineReport
) -> list[str] | None:
    wanted = [d for d, label in labels.items() if label >= config.min_positive_score]
    if not wanted:
        report.skipped["no_positive"] += 1
        return None
    kept = []
    for docid in wanted:
        if docid not in corpus:
            report.positives_dropped["not_in_corpus"] += 1
        elif not corpus[docid].text.strip():
            report.positives_dropped["empty_text"] += 1
        else:
            kept.append(docid)
    if not kept:
        report.skipped["positives_not_in_corpus"] += 1
        return None
    return kept


def _round(value: float) -> float:
    return round(float(value), 6)


def mine_instances(
    corpus: Mapping[str, Passage],
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    config: MineConfig,
    *,
    subset: str = "",
    report: MineReport | None = None,
    retriever: Retriever | None = None,
    progress: StageProgress | None = None,
    rescorer: Any = None,
) -> Iterator[Instance]:
    """Yield one Instance per query that has positives and enough negatives, in qrels order.

    `report` (if given) is filled in as the generator runs. `retriever` may be passed to reuse a built
    index (it must be over `corpus` with `config.method`); `rescorer` a loaded cross-encoder scorer for
    `config.rescore` (`hardneg.retrieval.cross_encoder.load_cross_encoder`).
    """
    config.check()
    if rescorer is None:
        check_rescore(config)  # a missing folder or a bi-encoder stops before the index is built
    report = report if report is not None else MineReport()
    report.method = config.method
    report.config = config.to_dict()

    plan: list[tuple[str, list[str]]] = []
    for qid, labels in qrels.items():
        if qid not in queries:
            report.skipped["no_query_text"] += 1
            continue
        report.queries += 1
        positives = _positives(qid, labels, corpus, config, report)
        if positives is not None:
            plan.append((qid, positives))
    if not plan:
        return

    own = retriever is None
    if retriever is None:
        # GPU actors encode with torch (ONNX Runtime is the CPU path).
        backend = "torch" if config.worker_gpus and config.backend == "auto" else config.backend
        pool = PoolSize(config.workers, num_cpus=None if config.worker_gpus else 1, num_gpus=config.worker_gpus or None)
        retriever = Retriever(
            corpus,
            config.method,
            model=config.model,
            query_prefix=config.query_prefix,
            passage_prefix=config.passage_prefix,
            query_max_length=config.query_max_length,
            passage_max_length=config.passage_max_length,
            batch_size=config.batch_size,
            use_title=config.use_title,
            cache_dir=config.cache_dir,
            use_cache=config.use_cache,
            rrf_k=config.rrf_k,
            progress=progress,
            backend=backend,
            index=config.index,
            engine=config.engine,
            ray_address=config.ray_address,
            pool=pool,
        )
    if retriever.model is not None:
        report.encoder = getattr(retriever.model, "backend", "torch")
    docids = retriever.docids
    doc_index = retriever.doc_index
    rescore = None
    if config.rescore is not None or rescorer is not None:
        rescore = Rescorer(
            config, corpus, docids, doc_index, scorer=rescorer, progress=progress, total_queries=len(plan)
        )
        report.rescorer = rescore.backend
    query_emb = None
    try:
        if config.method != "bm25":
            query_emb = retriever.encode_queries([queries[qid] for qid, _ in plan], progress=progress)
    finally:
        if own:
            retriever.close()  # a Ray started for the encoding goes away now: search runs here

    cuts = config.min_score is not None or config.max_score is not None
    margins = config.relative_margin is not None or config.absolute_margin is not None
    need_scores = margins or cuts or config.save_scores
    for start in range(0, len(plan), config.block_size):
        block = plan[start : start + config.block_size]
        emb = query_emb[start : start + config.block_size] if query_emb is not None else None
        texts = [queries[qid] for qid, _ in block]
        hits = retriever.search_indices(texts, config.depth, query_emb=emb)
        rescored: list[Rescored | None] = [None] * len(block)
        if rescore is not None:
            rescored = list(rescore.rescore_block(texts, [pos for _, pos in block], hits))
            report.rescored = rescore.pairs_scored
        for row, ((qid, positives), ranked) in enumerate(zip(block, hits, strict=True)):
            qemb = emb[row] if emb is not None else None
            instance = _mine_one(
                qid, queries[qid], positives, qrels[qid], ranked, corpus, docids, doc_index, retriever, qemb,
                config, report, subset, need_scores, rescored[row],
            )  # fmt: skip
            if instance is not None:
                yield instance
        if progress:
            progress("mine", min(start + config.block_size, len(plan)), len(plan))


def _first_stage_scores(
    query: str,
    docs: list[str],
    ranked: list[tuple[int, float]],
    docids: list[str],
    doc_index: Mapping[str, int],
    retriever: Retriever,
    qemb: np.ndarray | None,
    hybrid: bool,
) -> dict[str, float]:
    """The first stage's score of `docs` on the scale margins use without rescoring (hybrid: cosine)."""
    known: dict[str, float] = {} if hybrid else {docids[i]: s for i, s in ranked}
    missing = [d for d in docs if d not in known]
    if missing:
        values = retriever.score_indices(query, [doc_index[d] for d in missing], query_emb=qemb)
        known.update(zip(missing, values.tolist(), strict=True))
    return {d: known[d] for d in docs}


def _filter(
    kept: list[tuple[str, int]], sim: Mapping[str, float], limit: float, above: bool, report: MineReport, reason: str
) -> list[tuple[str, int]]:
    """Drop candidates scoring above (`above`) or below `limit`, counting them under `reason`."""
    before = len(kept)
    kept = [(d, r) for d, r in kept if (sim[d] <= limit if above else sim[d] >= limit)]
    report.removed[reason] += before - len(kept)
    return kept


def _mine_one(
    qid: str,
    query: str,
    positives: list[str],
    labels: Mapping[str, int],
    ranked: list[tuple[int, float]],
    corpus: Mapping[str, Passage],
    docids: list[str],
    doc_index: Mapping[str, int],
    retriever: Retriever,
    qemb: np.ndarray | None,
    config: MineConfig,
    report: MineReport,
    subset: str,
    need_scores: bool,
    rescored: Rescored | None = None,
) -> Instance | None:
    hybrid = config.method == "hybrid"
    first_ranked = ranked
    if rescored is not None:
        ranked = rescored.ranked  # the cross-encoder's order: ranks and scores below are its own
    rank_of = {docids[i]: r for r, (i, _) in enumerate(ranked, start=1)}
    # Similarity of each retrieved doc on the scale margins use (hybrid: cosine, filled in below).
    sim: dict[str, float] = dict(rescored.scores) if rescored is not None else {}
    if rescored is None and not hybrid:
        sim = {docids[i]: s for i, s in ranked}

    pos_sim: dict[str, float] = {}
    if need_scores:
        missing = [d for d in positives if d not in sim]
        if missing:
            values = retriever.score_indices(query, [doc_index[d] for d in missing], query_emb=qemb)
            sim.update(zip(missing, values.tolist(), strict=True))
        pos_sim = {d: sim[d] for d in positives}

    excluded = {d for d, label in labels.items() if label > 0}
    window = ranked[config.range_start : config.range_end]
    report.candidates += len(window)
    kept: list[tuple[str, int]] = []
    seen: set[str] = set()
    for offset, (index, _score) in enumerate(window):
        docid = docids[index]
        reason = None
        if docid in excluded:
            reason = "positive"
        elif docid == qid:
            reason = "self_id"
        elif docid in seen:
            reason = "duplicate"
        elif not corpus[docid].text.strip():
            reason = "empty_text"
        if reason:
            report.removed[reason] += 1
            continue
        seen.add(docid)
        kept.append((docid, config.range_start + offset + 1))

    if rescored is None and hybrid and need_scores and kept:
        values = retriever.score_indices(query, [doc_index[d] for d, _ in kept], query_emb=qemb)
        sim.update(zip([d for d, _ in kept], values.tolist(), strict=True))

    if pos_sim and (config.relative_margin is not None or config.absolute_margin is not None):
        floor = min(pos_sim.values())
        if config.relative_margin is not None:
            # Sign-safe form of (1 - R) x floor: for a negative floor, (1 - R) x floor would raise the bar.
            limit = floor - abs(floor) * config.relative_margin
            kept = _filter(kept, sim, limit, True, report, "relative_margin")
        if config.absolute_margin is not None:
            kept = _filter(kept, sim, floor - config.absolute_margin, True, report, "absolute_margin")
    if config.max_score is not None:
        kept = _filter(kept, sim, config.max_score, True, report, "max_score")
    if config.min_score is not None:
        kept = _filter(kept, sim, config.min_score, False, report, "min_score")

    if len(kept) > config.negatives:
        if config.sampling == "random":
            # Seeded by (seed, query_id): the same query gets the same sample whatever the query order.
            rng = random.Random(f"{config.seed}:{qid}")
            chosen = sorted(rng.sample(range(len(kept)), config.negatives))
            picked = [kept[i] for i in chosen]
        else:
            picked = kept[: config.negatives]
        report.not_sampled += len(kept) - len(picked)
        kept = picked

    if len(kept) < config.min_negatives:
        report.skipped["too_few_negatives"] += 1
        return None

    fused = {docids[i]: s for i, s in first_ranked} if hybrid else {}
    first: dict[str, float] = {}
    first_rank: dict[str, int] = {}
    if rescored is not None and config.save_scores:
        # The first stage's score and rank beside the cross-encoder's (`retrieval_score`, `retrieval_rank`).
        docs = [*positives, *(d for d, _ in kept)]
        first = _first_stage_scores(query, docs, first_ranked, docids, doc_index, retriever, qemb, hybrid)
        first_rank = {docids[i]: r for r, (i, _) in enumerate(first_ranked, start=1)}

    def passage(docid: str, rank: int | None) -> Passage:
        source = corpus[docid]
        extra: dict[str, object] = {}
        if config.save_scores:
            extra["score"] = _round(sim[docid])
            extra["rank"] = rank
            if rescored is not None:
                extra["retrieval_score"] = _round(first[docid])
                extra["retrieval_rank"] = first_rank.get(docid)
            if hybrid and docid in fused:
                extra["fused_score"] = _round(fused[docid])
        return Passage(docid=docid, text=source.text, title=source.title, extra=extra)

    report.add_instance(len(kept))
    return Instance(
        query_id=qid,
        query=query,
        positives=[passage(d, rank_of.get(d)) for d in positives],
        negatives=[passage(d, r) for d, r in kept],
        subset=subset,
    )


def mine(
    beir: str | Path | BeirData,
    *,
    split: str = "train",
    output: str | Path | None = None,
    config: MineConfig | None = None,
    subset: str | None = None,
    as_dataset: bool = False,
    report: MineReport | None = None,
    progress: StageProgress | None = None,
    allow_empty: bool = False,
    overwrite: bool = False,
    limit: int | None = None,
    sample: int | None = None,
    **options: Any,
) -> list[Instance] | Any | Path:
    """Mine hard negatives for the queries of a BEIR split: one training instance per query with positives.

    `beir`: a BEIR folder (corpus, queries, qrels/`split`.tsv) or `BeirData` in memory. `options` are
    `MineConfig` fields (``method="bm25" | "dense" | "hybrid"``, ``negatives``, ``range_start``, ``range_end``,
    ``sampling="top" | "random"``, ``relative_margin``, ``model``, ...), applied over `config`.
    Returns the instances (a `datasets.Dataset` with `as_dataset`), or, with `output`, writes them there
    atomically and returns that path (the one output rule, checked before any mining: .jsonl, .jsonl.gz, .parquet,
    or .hf / a trailing / for a datasets folder, which replaces an existing folder only with `overwrite` and only one
    hardneg wrote; `hardneg.data.formats.check_output`). `report` (a `MineReport`) is filled in.
    `subset` (the rows' `subset`) defaults to the folder's name. Mining no instance at all is an `EmptyInput`
    error (nothing is written) unless `allow_empty`. `limit=N` mines the first N queries of the qrels (file order)
    that have a query text, `sample=N` a random N of them (seeded by the config's `seed`); the corpus is searched
    whole either way, and `report.selection` says how many of how many.

    >>> import hardneg
    >>> from hardneg.data.sample import sample_beir_dir
    >>> train = hardneg.mine(sample_beir_dir(), split="train", negatives=5)
    >>> len(train), len(train[0].negatives)
    (24, 5)
    """
    config = mine_config(config, **options)
    check_rescore(config)  # before the corpus is read
    resolve_engine(config.engine, config.ray_address, probe=True)  # an unreachable Ray cluster, too
    if output is not None:
        check_output(output, overwrite=overwrite)
    started = time.perf_counter()
    if isinstance(beir, BeirData):
        data, default_name = beir, ""
    else:
        data, default_name = load_beir(beir, split), default_subset(beir)
    report = report if report is not None else MineReport()
    report.subset = subset if subset is not None else default_name
    report.split = split
    qrels: Mapping[str, Mapping[str, int]] = data.qrels
    if limit is not None or sample is not None:
        known = [qid for qid in data.qrels if qid in data.queries]
        chosen, selection = select_items(known, limit=limit, sample=sample, seed=config.seed)
        qrels = {qid: data.qrels[qid] for qid in chosen}
        report.skipped["no_query_text"] += len(data.qrels) - len(known)
        report.selection = selection.to_dict() if selection is not None else None
    instances = mine_instances(
        data.corpus, data.queries, qrels, config, subset=report.subset, report=report, progress=progress
    )
    where = beir if not isinstance(beir, BeirData) else "<beir data>"
    try:
        if output is not None:
            with open_writer(output, overwrite=overwrite) as sink:
                for instance in instances:
                    sink.write(instance.to_row())
                if sink.count == 0 and not allow_empty:
                    raise EmptyInput(where)  # raised inside the writer: nothing is left at `output`
            report.output = str(output)
            return Path(output)
        mined = list(instances)
        if not mined and not allow_empty:
            raise EmptyInput(where)
        return to_dataset(mined) if as_dataset else mined
    finally:
        report.seconds = time.perf_counter() - started


def mine_beir(
    folder: str | Path,
    split: str,
    output: str | Path,
    config: MineConfig,
    *,
    subset: str | None = None,
    progress: StageProgress | None = None,
    overwrite: bool = False,
    limit: int | None = None,
    sample: int | None = None,
) -> MineReport:
    """Mine a BEIR folder's `split` into Tevatron rows at `output`, and return the report (the file adapter of
    `mine`). Bad input raises `InputError` before anything is written; the output is written atomically."""
    report = MineReport()
    mine(
        folder, split=split, output=output, config=config, subset=subset, report=report, progress=progress,
        overwrite=overwrite, limit=limit, sample=sample,
    )  # fmt: skip
    return report
