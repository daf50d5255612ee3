"""The evaluation calls of an experiment, in one place: a trained model on a BEIR split (per-query scores and a
TREC run file kept), and the paired significance test between two variants. Both come from `hardneg.evaluate`."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hardneg.data.atomic import atomic_dir
from hardneg.data.beir import load_qrels, load_queries
from hardneg.errors import ConfigError
from hardneg.evaluation.compare import paired_tests
from hardneg.evaluation.run import evaluate_model as evaluate

EVAL_OPTIONS = ("depth", "batch_size", "query_max_length", "passage_max_length", "ignore_identical_ids", "metrics")


def sliced_beir(beir: Path, split: str, max_queries: int, cache: Path) -> Path:
    """A BEIR folder with the first `max_queries` query ids (sorted) of `split`; the corpus is linked, not copied."""

    # hash() is salted per process: name the slice by a stable digest of the source folder's path.
    digest = hashlib.sha256(str(beir.resolve()).encode()).hexdigest()[:10]
    target = cache / f"{beir.name}-{split}-{max_queries}-{digest}"
    if (target / "qrels" / f"{split}.tsv").is_file():
        return target
    qrels = load_qrels(beir, split)
    keep = sorted(qrels)[:max_queries]
    queries = load_queries(beir)
    corpus = next(p for p in (beir / "corpus.jsonl", beir / "corpus.jsonl.gz") if p.is_file())
    with atomic_dir(target, overwrite=True) as tmp:  # a cache folder hardneg made (an unfinished slice)
        os.symlink(corpus.resolve(), tmp / corpus.name)
        with open(tmp / "queries.jsonl", "w", encoding="utf-8") as handle:
            for qid in keep:
                handle.write(json.dumps({"_id": qid, "text": queries[qid]}) + "\n")
        (tmp / "qrels").mkdir()
        with open(tmp / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as handle:
            handle.write("query-id\tcorpus-id\tscore\n")
            for qid in keep:
                for docid, label in qrels[qid].items():
                    handle.write(f"{qid}\t{docid}\t{label}\n")
    return target


def evaluate_model(
    model_dir: Path,
    beir: Path,
    split: str,
    out: Path,
    *,
    options: Mapping[str, Any],
    metric: str,
    max_queries: int | None,
    experiment_dir: Path,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Evaluate a model folder; write metrics.json, per_query.json ({qid: metric}) and run.trec into `out`."""

    unknown = sorted(set(options) - set(EVAL_OPTIONS))
    if unknown:
        raise ConfigError(f"evaluation.{unknown[0]}: unknown option (known: alpha, metric, {', '.join(EVAL_OPTIONS)})")
    kwargs = dict(options)
    metrics = list(dict.fromkeys([metric, *kwargs.pop("metrics", ["ndcg@10", "recall@100"])]))
    folder = beir if max_queries is None else sliced_beir(beir, split, max_queries, experiment_dir / "cache" / "beir")
    last: dict[str, int] = {}

    def report(what: str, done: int, total: int) -> None:
        tenth = (10 * done) // max(1, total)
        if progress is not None and tenth != last.get(what):
            last[what] = tenth
            progress(f"{what} {done}/{total}")

    result = evaluate(
        model_dir,
        folder,
        split,
        metrics=metrics,
        save_run=out / "run.trec",
        cache_dir=experiment_dir / "cache" / "embeddings",
        progress=report,
        **kwargs,
    )
    summary = result.to_dict()
    summary["system"] = "model"  # the folder path is not stable across machines; the step id names the model
    (out / "metrics.json").write_text(json.dumps(summary, indent=2))
    per_query = {qid: values[metric] for qid, values in result.per_query.items()}
    (out / "per_query.json").write_text(json.dumps(per_query, indent=1, sort_keys=True))
    return {k: v for k, v in summary.items() if k != "per_query"}


def paired_significance(
    ours: Mapping[str, float], theirs: Mapping[str, float], *, iterations: int = 10000, seed: int = 42
) -> dict[str, Any]:
    """Paired tests over the queries both have (ours vs the baseline), from `hardneg.evaluation.compare`.

    `p_value` is the paired randomization test's (no normality assumption); the t-test's is kept beside it.
    """

    qids = sorted(set(ours) & set(theirs))
    a = [theirs[q] for q in qids]
    b = [ours[q] for q in qids]
    if len(qids) < 2:
        return {"test": "paired randomization", "p_value": float("nan"), "t_pvalue": float("nan")}
    t_stat, t_p, perm_p = paired_tests(a, b, iterations=iterations, seed=seed)
    return {
        "test": "paired randomization",
        "p_value": perm_p,
        "t_pvalue": t_p,
        "t_statistic": t_stat if t_stat == t_stat and abs(t_stat) != float("inf") else None,
        "wins": sum(1 for x, y in zip(a, b, strict=True) if y - x > 1e-9),
        "losses": sum(1 for x, y in zip(a, b, strict=True) if x - y > 1e-9),
    }
