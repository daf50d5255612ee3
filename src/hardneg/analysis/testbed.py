"""Testbeds: training instances with known false negatives, built from any collection with graded qrels.

A judge is only as good as its agreement with people. A testbed turns a densely judged collection (NovelEval,
TREC DL, ...) into what a judge sees in training data, while keeping the human grade of every negative:

- per query, ONE labelled positive, drawn (seeded by the query id) from the passages of the top grade present;
- negatives: the top `negatives` hits of a hardneg retriever (`bm25`, `dense`, `hybrid`) among the query's judged
  passages (`pool="judged"`), or over the whole corpus (`pool="corpus"`, where a hit nobody judged is "unknown"
  and left out of scoring);
- a negative whose human grade is >= `min_grade` is a false negative (default: the collection's top grade but
  one, e.g. 1 on a 0-2 scale, 2 on a 0-3 scale); queries without a passage at that grade are skipped.

`write_testbed` writes the Tevatron rows (`train.jsonl`), the negatives' human grades (`qrels/qrels.tsv`, BEIR layout;
unknown pairs absent) and a card (`card.json`, `card.md`: queries, negatives, false negatives, base rate, grade
histogram, seed, method). The output is deterministic for a seed.

`limit=N` builds the testbed from the first N queries that have a relevant passage (in query-id order),
`sample=N` from a random N of them (seeded by `seed`); the card's `selection` says how many of how many. The
retriever still indexes the whole corpus, so these instances are the same as in the full testbed.
`load_testbed` counts queries, negatives and false negatives from the files, not from the card: a card that no
longer matches them (a train.jsonl cut by hand) is corrected, and what differed is kept in `card_mismatch`.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hardneg.data.atomic import atomic_dir, check_target
from hardneg.data.beir import BeirData, load_beir, load_qrels
from hardneg.data.io import read_instances, write_instances
from hardneg.data.records import Instance, Passage
from hardneg.data.source import select_items
from hardneg.errors import ConfigError, InputError
from hardneg.retrieval.fusion import rrf_fuse
from hardneg.retrieval.retriever import METHODS, Method, Retriever

Pool = Literal["judged", "corpus"]
POOLS: tuple[str, ...] = ("judged", "corpus")
TRAIN_FILE = "train.jsonl"
QRELS_FILE = "qrels.tsv"
CARD_FILE = "card.json"

Pair = tuple[str, str]


@dataclass
class Testbed:
    """Instances, the human grade of each (query_id, negative docid) judged by people, and the card."""

    instances: list[Instance]
    grades: dict[Pair, int]
    min_grade: int
    card: dict[str, Any] = field(default_factory=dict)

    def labels(self) -> dict[Pair, int]:
        """1 for a false negative (grade >= min_grade), 0 for a true negative; unknown pairs absent."""
        return {pair: int(grade >= self.min_grade) for pair, grade in self.grades.items()}


def default_min_grade(qrels: dict[str, dict[str, int]]) -> int:
    """The collection's top grade but one (at least 1): what counts as relevant by default."""
    top = max((g for docs in qrels.values() for g in docs.values()), default=1)
    return max(1, top - 1)


def _pool_ranking(retrievers: list[Retriever], query: str, qid: str, pool: list[str]) -> list[str]:
    """The pool's docids, best first, by the retriever's exact scores (RRF of both for hybrid)."""
    rankings = []
    for retriever in retrievers:
        scores = retriever.score({qid: query}, {qid: pool}).get(qid, {})
        rankings.append(sorted(scores, key=lambda d: (-scores[d], d)))
    if len(rankings) == 1:
        return rankings[0]
    index = {d: i for i, d in enumerate(pool)}
    fused = rrf_fuse([[index[d] for d in ranking] for ranking in rankings], len(pool))
    return [pool[i] for i, _ in fused]


def build_testbed(
    beir: str | Path | BeirData,
    *,
    split: str = "test",
    min_grade: int | None = None,
    negatives: int = 20,
    method: Method = "bm25",
    pool: Pool = "judged",
    seed: int = 0,
    name: str | None = None,
    model: str | None = None,
    limit: int | None = None,
    sample: int | None = None,
) -> Testbed:
    """A testbed from a BEIR folder (or `BeirData`) with graded qrels; see the module docstring."""
    if method not in METHODS:
        raise ConfigError(f"expected one of {', '.join(METHODS)}; got {method!r}", param="method")
    if pool not in POOLS:
        raise ConfigError(f"expected judged or corpus; got {pool!r}", param="pool")
    if negatives < 1:
        raise ConfigError(f"must be at least 1; got {negatives}", param="negatives")
    data = beir if isinstance(beir, BeirData) else load_beir(beir, split)
    grade_floor = default_min_grade(data.qrels) if min_grade is None else int(min_grade)
    if grade_floor < 1:
        raise ConfigError(f"must be at least 1 (grade 0 is judged not relevant); got {grade_floor}", param="min_grade")
    dataset = name or (Path(beir).name if not isinstance(beir, BeirData) else "testbed")
    skipped: Counter[str] = Counter()
    eligible: list[tuple[str, dict[str, int], int]] = []  # (qid, its judged passages with text, top grade)
    for qid in sorted(data.qrels):
        judged = {d: g for d, g in data.qrels[qid].items() if d in data.corpus and data.corpus[d].text.strip()}
        top = max(judged.values(), default=0)
        if top < grade_floor:
            skipped["no_relevant_passage"] += 1
            continue
        eligible.append((qid, judged, top))
    chosen_queries, selection = select_items(eligible, limit=limit, sample=sample, seed=seed)
    methods = ["bm25", "dense"] if method == "hybrid" else [method]
    retrievers = [Retriever(data.corpus, m, model=model if m == "dense" else None) for m in methods]
    instances: list[Instance] = []
    grades: dict[Pair, int] = {}
    for qid, judged, top in chosen_queries:
        candidates = sorted(d for d, g in judged.items() if g == top)
        positive = random.Random(f"{seed}:{qid}").choice(candidates)
        query = data.queries[qid]
        if pool == "judged":
            ranked = [d for d in _pool_ranking(retrievers, query, qid, sorted(judged)) if d != positive]
        else:
            depth = negatives + 1
            lists = [dict(r.search({qid: query}, depth, exclude_self=True)).get(qid, []) for r in retrievers]
            if len(lists) == 1:
                ranked = [d for d, _ in lists[0]]
            else:
                docids = sorted({d for hits in lists for d, _ in hits})
                index = {d: i for i, d in enumerate(docids)}
                fused = rrf_fuse([[index[d] for d, _ in hits] for hits in lists], depth)
                ranked = [docids[i] for i, _ in fused]
            ranked = [d for d in ranked if d != positive]
        chosen = ranked[:negatives]
        if not chosen:
            skipped["no_negative"] += 1
            continue
        for docid in chosen:
            if docid in judged:
                grades[(qid, docid)] = judged[docid]
        instances.append(
            Instance(
                query_id=qid,
                query=query,
                positives=[_passage(data.corpus[positive])],
                negatives=[_passage(data.corpus[d]) for d in chosen],
                subset=dataset,
            )
        )
    if not instances:
        raise InputError(dataset, None, "qrels", f"no query has a passage of grade >= {grade_floor}")
    testbed = Testbed(instances, grades, grade_floor)
    testbed.card = _card(testbed, dataset, split, method, pool, seed, negatives, skipped, data.qrels)
    if selection is not None:
        testbed.card["selection"] = selection.to_dict()
    return testbed


def _passage(p: Passage) -> Passage:
    return Passage(p.docid, p.text, p.title)


def _card(
    testbed: Testbed,
    dataset: str,
    split: str,
    method: str,
    pool: str,
    seed: int,
    negatives: int,
    skipped: Counter[str],
    qrels: dict[str, dict[str, int]],
) -> dict[str, Any]:
    counts = testbed_counts(testbed)
    return {
        "dataset": dataset,
        "split": split,
        "queries": counts["queries"],
        "queries_skipped": dict(skipped),
        **{k: v for k, v in counts.items() if k not in ("queries", "negative_grade_histogram")},
        "min_grade": testbed.min_grade,
        "grades_in_collection": sorted({g for docs in qrels.values() for g in docs.values()}),
        "negative_grade_histogram": counts["negative_grade_histogram"],
        "method": method,
        "pool": pool,
        "negatives_per_query": negatives,
        "seed": seed,
    }


def testbed_counts(testbed: Testbed) -> dict[str, Any]:
    """Queries, negatives, human-judged negatives, false negatives, base rate and the negatives' grade histogram,
    counted from the testbed's instances and grades (what a card says, measured on the data)."""
    pairs = [(i.query_id, d) for i in testbed.instances for d in i.negative_ids]
    judged = [testbed.grades[p] for p in pairs if p in testbed.grades]
    false_negatives = sum(1 for g in judged if g >= testbed.min_grade)
    histogram = Counter(judged)
    return {
        "queries": len(testbed.instances),
        "negatives": len(pairs),
        "negatives_judged": len(judged),
        "negatives_unknown": len(pairs) - len(judged),
        "false_negatives": false_negatives,
        "base_rate": round(false_negatives / len(judged), 4) if judged else 0.0,
        "negative_grade_histogram": {str(g): histogram[g] for g in sorted(histogram)},
    }


def select_testbed(testbed: Testbed, *, limit: int | None = None, sample: int | None = None, seed: int = 0) -> Testbed:
    """The testbed's first `limit` instances, or a seeded random `sample` of them (in order), with a card whose
    counts are those of the chosen instances and whose `selection` says how many of how many."""
    chosen, selection = select_items(testbed.instances, limit=limit, sample=sample, seed=seed)
    if selection is None:
        return testbed
    keep = {i.query_id for i in chosen}
    grades = {pair: g for pair, g in testbed.grades.items() if pair[0] in keep}
    out = Testbed(chosen, grades, testbed.min_grade, dict(testbed.card))
    out.card.update(testbed_counts(out))
    out.card["selection"] = selection.to_dict()
    return out


def card_markdown(card: dict[str, Any]) -> str:
    lines = [
        f"# Testbed: {card['dataset']} ({card['split']})",
        "",
        f"- queries: {card['queries']} (skipped: {card['queries_skipped'] or 'none'})",
        f"- negatives: {card['negatives']} ({card['negatives_judged']} judged by people, "
        f"{card['negatives_unknown']} unknown)",
        f"- false negatives (human grade >= {card['min_grade']}): {card['false_negatives']} "
        f"(base rate {card['base_rate']:.1%} of the judged negatives)",
        f"- grades of the negatives: {card['negative_grade_histogram']}",
        f"- negatives: top {card['negatives_per_query']} of {card['method']} over the {card['pool']} pool; "
        f"seed {card['seed']}",
    ]
    chosen = card.get("selection")
    if chosen:
        how = f"the first {chosen['used']}" if chosen["limit"] is not None else f"a random {chosen['used']}"
        lines.append(f"- built from {how} of the {chosen['total']} queries with a relevant passage")
    return "\n".join(lines) + "\n"


def write_testbed(testbed: Testbed, folder: str | Path, *, overwrite: bool = False) -> Path:
    """Write `train.jsonl`, `qrels.tsv`, `card.json` and `card.md` into `folder` (atomically, as one folder).

    An existing folder is replaced only with `overwrite`, and only one hardneg wrote (`hardneg.data.atomic`;
    `check_testbed_folder` runs the same check before any work).
    """
    folder = Path(folder)
    with atomic_dir(folder, overwrite=overwrite, param="folder") as tmp:
        write_instances(tmp / TRAIN_FILE, testbed.instances)
        rows = ["query-id\tcorpus-id\tscore"]
        rows += [f"{q}\t{d}\t{g}" for (q, d), g in sorted(testbed.grades.items())]
        (tmp / "qrels").mkdir()
        (tmp / "qrels" / QRELS_FILE).write_text("\n".join(rows) + "\n", encoding="utf-8")
        (tmp / CARD_FILE).write_text(json.dumps(testbed.card, indent=2) + "\n", encoding="utf-8")
        (tmp / "card.md").write_text(card_markdown(testbed.card), encoding="utf-8")
    return folder


def check_testbed_folder(folder: str | Path, *, overwrite: bool = False, param: str = "folder") -> None:
    """Raise `ConfigError` (naming `param`) before any work if `write_testbed` may not write `folder`."""
    check_target(folder, folder=True, overwrite=overwrite, param=param)


def load_testbed(folder: str | Path) -> Testbed:
    """A testbed written by `write_testbed`."""
    folder = Path(folder)
    card_path = folder / CARD_FILE
    if not card_path.is_file():
        raise InputError(folder, None, "-", "not a testbed folder (no card.json): make one with `hardneg testbed`")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    qrels = load_qrels(folder, QRELS_FILE.removesuffix(".tsv"))
    grades = {(q, d): g for q, docs in qrels.items() for d, g in docs.items()}
    testbed = Testbed(list(read_instances(folder / TRAIN_FILE)), grades, int(card["min_grade"]), card)
    counted = testbed_counts(testbed)
    mismatch = {k: {"card": card.get(k), "data": v} for k, v in counted.items() if card.get(k) != v}
    card.update(counted)  # the figures every report shows are the data's
    if mismatch:
        card["card_mismatch"] = mismatch
    return testbed


__all__ = [
    "POOLS",
    "Testbed",
    "build_testbed",
    "check_testbed_folder",
    "default_min_grade",
    "load_testbed",
    "select_testbed",
    "testbed_counts",
    "write_testbed",
]
