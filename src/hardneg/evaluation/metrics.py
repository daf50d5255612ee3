"""Ranking metrics with trec_eval semantics (pytrec-eval-terrier), and TREC run / qrels files.

trec_eval conventions kept here: linear gain (nDCG uses the graded label as the gain), a document is relevant
when its label is >= 1, and documents with equal scores are ordered by docid in *descending* string order.
`mrr@k` is trec_eval's `recip_rank` on the run cut to its top k in that same order (trec_eval has no cutoff for
recip_rank).

Which queries a mean covers, as in BEIR (its `EvaluateRetrieval.evaluate` averages pytrec_eval's per-query scores,
and pytrec_eval scores the queries that are both in the qrels and in the run): the queries with at least one
relevant document that the run answers. A query the run lists with no document (or only its own id, removed)
scores 0; a qrels query the run does not list at all is not scored (trec_eval's `-c` would score it 0), and run
queries the qrels do not judge are ignored. Both are counted (`query_overlap`), and a run that shares no query with
the qrels is an error: its metrics would mean nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hardneg.data.atomic import atomic_path
from hardneg.data.io import open_text
from hardneg.errors import ConfigError, InputError

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]

DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10")
_METRIC = re.compile(r"^(ndcg|recall|precision|map|mrr)(?:@(\d+))?$")
# Our name -> (pytrec_eval measure family, key prefix in its output).
_TREC = {"ndcg": ("ndcg_cut", "ndcg_cut_"), "recall": ("recall", "recall_"), "precision": ("P", "P_"),
         "map": ("map_cut", "map_cut_")}  # fmt: skip


def parse_metric(name: str) -> tuple[str, int | None]:
    match = _METRIC.match(name.strip().lower())
    if not match:
        raise ConfigError(f"unknown metric {name!r}: use ndcg@k, recall@k, precision@k, map@k, mrr@k or mrr")
    family, cutoff = match.group(1), match.group(2)
    if family != "mrr" and cutoff is None:
        raise ConfigError(f"metric {name!r} needs a cutoff, e.g. {family}@10")
    return family, int(cutoff) if cutoff is not None else None


def trec_order(docs: Mapping[str, float]) -> list[tuple[str, float]]:
    """Documents in trec_eval's order: score descending, ties by docid descending."""
    return sorted(docs.items(), key=lambda item: (item[1], item[0]), reverse=True)


def remove_identical_ids(run: Run) -> dict[str, dict[str, float]]:
    """Drop every document whose id equals its query's id (BEIR does this for ArguAna and Quora)."""
    return {qid: {d: s for d, s in docs.items() if d != qid} for qid, docs in run.items()}


def judged_queries(qrels: Qrels) -> set[str]:
    """The qrels' queries with at least one relevant document (label >= 1): the only ones a metric can score."""
    return {qid for qid, docs in qrels.items() if any(r >= 1 for r in docs.values())}


@dataclass(frozen=True)
class QueryOverlap:
    """How a run's queries meet the qrels' judged queries (those with a relevant document).

    `shared` are scored; `run_only` (in the run, without a relevant document in the qrels) and `qrels_only`
    (judged, not in the run) are not.
    """

    qrels: int
    run: int
    shared: int
    run_only: int
    qrels_only: int
    run_only_example: str | None = None
    qrels_only_example: str | None = None

    def to_dict(self) -> dict[str, int]:
        """The counts (the examples are for messages)."""
        return {k: v for k, v in asdict(self).items() if not k.endswith("_example")}


def query_overlap(qrels: Qrels, run: Iterable[str]) -> QueryOverlap:
    """Count the judged qrels queries and the run's queries (a run, or just its query ids), shared and not."""
    judged = judged_queries(qrels)
    asked = set(run)
    run_only = sorted(asked - judged)
    qrels_only = sorted(judged - asked)
    return QueryOverlap(
        qrels=len(judged),
        run=len(asked),
        shared=len(judged & asked),
        run_only=len(run_only),
        qrels_only=len(qrels_only),
        run_only_example=run_only[0] if run_only else None,
        qrels_only_example=qrels_only[0] if qrels_only else None,
    )


def check_overlap(
    qrels: Qrels,
    run: Iterable[str],
    *,
    qrels_name: str = "the qrels",
    run_name: str = "the run",
    param: str | None = "qrels",
) -> QueryOverlap:
    """`query_overlap`, raising a `ConfigError` (on `param`) that names both sources when they share no judged
    query."""
    overlap = query_overlap(qrels, run)
    if overlap.qrels == 0:
        raise ConfigError(f"{qrels_name} has no query with a relevant document (label >= 1)", param=param)
    if overlap.run == 0:
        raise ConfigError(f"{run_name} has no query", param=param)
    if overlap.shared == 0:
        raise ConfigError(
            f"no query of {run_name} is judged in {qrels_name}: {overlap.run} queries (e.g. "
            f"{overlap.run_only_example!r}) against {overlap.qrels} judged queries (e.g. "
            f"{overlap.qrels_only_example!r}); are they from the same dataset and split?",
            param=param,
        )
    return overlap


def evaluate_run(
    qrels: Qrels,
    run: Run,
    *,
    metrics: Iterable[str] = DEFAULT_METRICS,
    ignore_identical_ids: bool = True,
    qrels_name: str = "the qrels",
    run_name: str = "the run",
) -> dict[str, Any]:
    """Mean metrics over the queries that have at least one relevant document and are in the run (BEIR's rule:
    see the module's docstring).

    Returns ``{metric: mean, ..., "queries": n, "per_query": {qid: {metric: value}}, "overlap": QueryOverlap}``.
    Raises `ConfigError` (naming `qrels_name` and `run_name`) when the run and the qrels share no judged query.
    """
    import pytrec_eval

    names = list(dict.fromkeys(metrics))
    parsed = {name: parse_metric(name) for name in names}
    overlap = check_overlap(qrels, run, qrels_name=qrels_name, run_name=run_name)
    scored = judged_queries(qrels) & set(run)
    judged = {qid: {d: int(r) for d, r in qrels[qid].items()} for qid in scored}
    cleaned = remove_identical_ids(run) if ignore_identical_ids else {q: dict(d) for q, d in run.items()}
    cleaned = {qid: {d: float(s) for d, s in docs.items()} for qid, docs in cleaned.items() if qid in judged and docs}

    per_query: dict[str, dict[str, float]] = {qid: dict.fromkeys(names, 0.0) for qid in sorted(judged)}
    plain: dict[str, str] = {}  # our name -> pytrec_eval output key, for metrics evaluated on the full run
    measures: set[str] = set()
    for name, (family, cutoff) in parsed.items():
        if family == "mrr":
            continue
        measure, prefix = _TREC[family]
        measures.add(f"{measure}.{cutoff}")
        plain[name] = f"{prefix}{cutoff}"
    if measures and cleaned:
        results = pytrec_eval.RelevanceEvaluator(judged, measures).evaluate(cleaned)
        for qid, values in results.items():
            for name, key in plain.items():
                per_query[qid][name] = float(values[key])
    for name, (family, cutoff) in parsed.items():
        if family != "mrr":
            continue
        # trec_eval's recip_rank has no cutoff: cut each ranked list to its top k in trec_eval's own order.
        cut = {qid: dict(trec_order(docs)[:cutoff] if cutoff else trec_order(docs)) for qid, docs in cleaned.items()}
        results = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"}).evaluate(cut) if cut else {}
        for qid, values in results.items():
            per_query[qid][name] = float(values["recip_rank"])
    n = len(per_query)
    out: dict[str, Any] = {name: math.fsum(v[name] for v in per_query.values()) / n for name in names}
    out["queries"] = n
    out["per_query"] = per_query
    out["overlap"] = overlap
    return out


# ------------------------------------------------------------------------------------------------------- run files


def write_run(path: str | Path, run: Run, *, tag: str = "hardneg") -> None:
    """Write a TREC run file (`qid Q0 docid rank score tag`), atomically, in trec_eval order per query."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for qid in sorted(run):
            for rank, (docid, score) in enumerate(trec_order(run[qid]), start=1):
                if any(c.isspace() for c in qid + docid):
                    raise ConfigError(f"ids with whitespace cannot go into a TREC run file: {qid!r} / {docid!r}")
                out.write(f"{qid} Q0 {docid} {rank} {score!r} {tag}\n")


def _rows(path: Path, kind: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, whitespace-separated fields) of each non-blank line of a `kind` file (run, qrels)."""
    if not path.is_file():
        raise InputError(path, None, "-", f"no such {kind} file")
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if fields:
                yield number, fields


def read_run(path: str | Path) -> dict[str, dict[str, float]]:
    """Read a TREC run file: ``{qid: {docid: score}}``. Bad lines raise InputError with the line number."""
    path = Path(path)
    run: dict[str, dict[str, float]] = {}
    for number, fields in _rows(path, "run"):
        if len(fields) != 6:
            raise InputError(path, number, "-", f"expected 6 fields (qid Q0 docid rank score tag), got {len(fields)}")
        try:
            score = float(fields[4])
        except ValueError:
            raise InputError(path, number, "score", f"not a number: {fields[4]!r}") from None
        if not math.isfinite(score):
            raise InputError(path, number, "score", f"not a finite number: {fields[4]!r}")
        docs = run.setdefault(fields[0], {})
        if fields[2] in docs:
            raise InputError(path, number, "docid", f"document {fields[2]!r} listed twice for query {fields[0]!r}")
        docs[fields[2]] = score
    if not run:
        raise InputError(path, None, "-", "the run file is empty")
    return run


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read qrels: a BEIR TSV (`query-id corpus-id score`, header optional) or a TREC file (`qid iter docid rel`)."""
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    for number, fields in _rows(path, "qrels"):
        if number == 1 and fields[0] == "query-id":
            continue
        if len(fields) == 3:
            qid, docid, label = fields
        elif len(fields) == 4:
            qid, _, docid, label = fields
        else:
            raise InputError(path, number, "-", f"expected 3 (BEIR) or 4 (TREC) columns, got {len(fields)}")
        try:
            value = int(float(label))
        except ValueError:
            raise InputError(path, number, "label", f"not a number: {label!r}") from None
        qrels.setdefault(qid, {})[docid] = value
    if not qrels:
        raise InputError(path, None, "-", "the qrels file is empty")
    return qrels


def run_from_lists(ranked: Mapping[str, list[tuple[str, float]]]) -> dict[str, dict[str, float]]:
    """`{qid: [(docid, score), ...]}` (what `hardneg.retrieval.search` returns) -> `{qid: {docid: score}}`."""
    return {qid: dict(hits) for qid, hits in ranked.items()}
