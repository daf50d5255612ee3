"""Exports of training instances to the layouts other trainers read.

Layouts (`EXPORT_LAYOUTS`), each written in the format the output path names (.jsonl, .jsonl.gz,
.parquet, .hf folder):

- `tevatron`: the Tevatron rows themselves (extra fields kept).
- `st-triplet` (sentence-transformers): columns `query`, `positive`, `negative`; one row per negative,
  paired with the positives in turn (negative i gets positive i mod P), so every negative is used once.
- `st-ntuple`: columns `query`, `positive`, `negative_1` .. `negative_k`; one row per positive, with
  k negatives. With more than k negatives, k are drawn at random (seeded by `seed` and the query_id, so
  the choice does not depend on row order) and kept in file order; instances with fewer than k
  negatives are skipped and counted in `ExportResult.skipped`.
- `st-labeled-pair`: columns `sentence1` (query), `sentence2` (passage), `label` (1 positive, 0 negative).
- `st-labeled-list`: sentence-transformers' "labeled-list" layout (listwise cross-encoder losses such as
  LambdaLoss or ListNetLoss): columns `query`, `docs` (the positives, then the negatives, as texts) and
  `labels` (1 for each positive, 0 for each negative); one row per instance. `read_labeled_list` reads it back
  into instances (ids derived from the texts, which the layout does not keep).
- `flag` (FlagEmbedding): `query`, `pos` (list of texts), `neg` (list of texts).
- `tevatron-ids`: `query_id`, `query`, `positive_passages: [{docid}]`, `negative_passages: [{docid}]`,
  `subset`, plus a BEIR-style corpus (`_id`, `title`, `text`, one line per docid, first text wins)
  written beside it as `<name>.corpus.jsonl` (`.jsonl.gz` when the output is gzipped).

Passage texts in the sentence-transformers and FlagEmbedding layouts are `title + " " + text` when the
passage has a title (`with_title=False` gives the text alone).
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardneg.data.formats import check_output
from hardneg.data.io import iter_raw_rows, open_writer
from hardneg.data.records import Instance, Passage, passage_text
from hardneg.errors import ConfigError, EmptyInput, InputError

EXPORT_LAYOUTS = (
    "tevatron",
    "st-triplet",
    "st-ntuple",
    "st-labeled-pair",
    "st-labeled-list",
    "flag",
    "tevatron-ids",
)


@dataclass
class ExportResult:
    layout: str
    path: Path
    instances: int = 0
    rows: int = 0
    # Instances that produced no row (st-ntuple: fewer than k negatives).
    skipped: int = 0
    corpus_path: Path | None = None
    corpus_docs: int = 0
    # Docids seen with two different texts (tevatron-ids; the first text is kept).
    corpus_conflicts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "path": str(self.path),
            "instances": self.instances,
            "rows": self.rows,
            "skipped": self.skipped,
            "corpus_path": str(self.corpus_path) if self.corpus_path else None,
            "corpus_docs": self.corpus_docs,
            "corpus_conflicts": len(self.corpus_conflicts),
        }


def corpus_path_for(path: str | Path) -> Path:
    """Where `tevatron-ids` writes its corpus: `<name>.corpus.jsonl[.gz]` beside the output."""
    text = str(path).rstrip("/")
    out = Path(text)
    name = out.name
    for suffix in (".jsonl.gz", ".json.gz", ".jsonl", ".json", ".parquet", ".hf"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    gz = str(path).lower().endswith(".gz")
    return out.with_name(f"{name}.corpus.jsonl" + (".gz" if gz else ""))


def _types(layout: str, negatives: int) -> dict[str, Any] | None:
    import pyarrow as pa

    string = pa.string()
    if layout == "tevatron":
        return None
    if layout == "st-triplet":
        return {"query": string, "positive": string, "negative": string}
    if layout == "st-ntuple":
        types: dict[str, Any] = {"query": string, "positive": string}
        types.update({f"negative_{i}": string for i in range(1, negatives + 1)})
        return types
    if layout == "st-labeled-pair":
        return {"sentence1": string, "sentence2": string, "label": pa.int64()}
    if layout == "st-labeled-list":
        return {"query": string, "docs": pa.list_(string), "labels": pa.list_(pa.int64())}
    if layout == "flag":
        return {"query": string, "pos": pa.list_(string), "neg": pa.list_(string)}
    if layout == "tevatron-ids":
        ids = pa.list_(pa.struct([("docid", string)]))
        return {
            "query_id": string,
            "query": string,
            "positive_passages": ids,
            "negative_passages": ids,
            "subset": string,
        }
    raise ConfigError(f"unknown export layout {layout!r}; expected one of {', '.join(EXPORT_LAYOUTS)}")


def _pick_negatives(inst: Instance, k: int, seed: int) -> list[Passage]:
    if len(inst.negatives) <= k:
        return list(inst.negatives)
    # Seeded by query_id too, so a shuffled or filtered input picks the same negatives per query.
    rng = random.Random(f"{seed}:{inst.query_id}")
    chosen = sorted(rng.sample(range(len(inst.negatives)), k))
    return [inst.negatives[i] for i in chosen]


def export_rows(
    inst: Instance, layout: str, *, negatives: int = 3, seed: int = 0, with_title: bool = True
) -> Iterator[dict[str, Any]]:
    """The rows of one instance in `layout` (see the module docstring)."""

    def text(p: Passage) -> str:
        return passage_text(p, with_title=with_title)

    if layout == "tevatron":
        yield inst.to_row()
    elif layout == "st-triplet":
        for i, neg in enumerate(inst.negatives):
            pos = inst.positives[i % len(inst.positives)]
            yield {"query": inst.query, "positive": text(pos), "negative": text(neg)}
    elif layout == "st-ntuple":
        if len(inst.negatives) < negatives:
            return
        picked = _pick_negatives(inst, negatives, seed)
        for pos in inst.positives:
            row = {"query": inst.query, "positive": text(pos)}
            row.update({f"negative_{i}": text(neg) for i, neg in enumerate(picked, start=1)})
            yield row
    elif layout == "st-labeled-pair":
        for pos in inst.positives:
            yield {"sentence1": inst.query, "sentence2": text(pos), "label": 1}
        for neg in inst.negatives:
            yield {"sentence1": inst.query, "sentence2": text(neg), "label": 0}
    elif layout == "st-labeled-list":
        yield {
            "query": inst.query,
            "docs": [text(p) for p in (*inst.positives, *inst.negatives)],
            "labels": [1] * len(inst.positives) + [0] * len(inst.negatives),
        }
    elif layout == "flag":
        yield {"query": inst.query, "pos": [text(p) for p in inst.positives], "neg": [text(p) for p in inst.negatives]}
    elif layout == "tevatron-ids":
        yield {
            "query_id": inst.query_id,
            "query": inst.query,
            "positive_passages": [{"docid": p.docid} for p in inst.positives],
            "negative_passages": [{"docid": p.docid} for p in inst.negatives],
            "subset": inst.subset,
        }
    else:
        raise ConfigError(f"unknown export layout {layout!r}; expected one of {', '.join(EXPORT_LAYOUTS)}")


def export(
    instances: Iterable[Instance],
    path: str | Path,
    layout: str,
    *,
    negatives: int = 3,
    seed: int = 0,
    with_title: bool = True,
    progress: Callable[[int], None] | None = None,
    allow_empty: bool = False,
    source: str = "<instances>",
    overwrite: bool = False,
) -> ExportResult:
    """Write `instances` to `path` in `layout`, atomically (the corpus of `tevatron-ids` too).

    `path` follows `hardneg.data.formats.check_output` (checked before anything is read): an existing datasets
    folder is replaced only with `overwrite`, and only one hardneg wrote; an existing file is replaced.
    `progress(n)` is called after each instance. A bad instance midway (an InputError raised by the
    reader feeding `instances`) leaves no output file at all, and so does an empty input unless `allow_empty`
    (`source` names the input in that error).
    """
    if layout not in EXPORT_LAYOUTS:
        raise ConfigError(f"unknown export layout {layout!r}; expected one of {', '.join(EXPORT_LAYOUTS)}")
    if layout == "st-ntuple" and negatives < 1:
        raise ConfigError("--negatives must be at least 1 for st-ntuple")
    check_output(path, overwrite=overwrite, param="path")  # before reading anything
    types = _types(layout, negatives)
    result = ExportResult(layout=layout, path=Path(str(path).rstrip("/")))
    with contextlib.ExitStack() as stack:
        corpus = None
        # Docid -> hash of its text: detects conflicting texts without keeping the texts.
        corpus_seen: dict[str, int] = {}
        if layout == "tevatron-ids":
            result.corpus_path = corpus_path_for(path)
            corpus = stack.enter_context(open_writer(result.corpus_path))
        sink = stack.enter_context(open_writer(path, types=types, overwrite=overwrite, param="path"))
        for inst in instances:
            result.instances += 1
            produced = 0
            for row in export_rows(inst, layout, negatives=negatives, seed=seed, with_title=with_title):
                sink.write(row)
                produced += 1
            result.rows += produced
            if produced == 0:
                result.skipped += 1
            if corpus is not None:
                for passage in (*inst.positives, *inst.negatives):
                    digest = hash((passage.title, passage.text))
                    known = corpus_seen.get(passage.docid)
                    if known is None:
                        corpus_seen[passage.docid] = digest
                        corpus.write({"_id": passage.docid, "title": passage.title, "text": passage.text})
                    elif known != digest:
                        result.corpus_conflicts.append(passage.docid)
            if progress is not None:
                progress(result.instances)
        result.corpus_docs = len(corpus_seen)
        if result.instances == 0 and not allow_empty:
            # raised inside the writers: nothing is left at `path`
            raise EmptyInput(source)
        # ExitStack closes the main output first, then the corpus: both renames happen only on success.
    return result


def _text_id(prefix: str, text: str) -> str:
    return f"{prefix}{hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}"


def labeled_list_instance(row: Any, *, source: str = "<rows>", line: int | None = None, subset: str = "") -> Instance:
    """One `st-labeled-list` row (`query`, `docs`, `labels`) as an Instance: labels 1 are the positives, 0 the
    negatives, in row order. The layout keeps texts only: the query id is ``q`` + a hash of the query, a docid
    ``d`` + a hash of its text (so a text met in two rows gets the same docid), titles are empty (the text is
    ``title + " " + text`` as exported). Bad rows raise `InputError` naming `source`, `line` and the field."""
    if not isinstance(row, dict):
        raise InputError(source, line, "-", "expected a row with query, docs and labels")
    query, docs, labels = row.get("query"), row.get("docs"), row.get("labels")
    if not isinstance(query, str):
        raise InputError(source, line, "query", "expected a string")
    if not isinstance(docs, list) or not all(isinstance(d, str) for d in docs):
        raise InputError(source, line, "docs", "expected a list of texts")
    if not isinstance(labels, list) or len(labels) != len(docs):
        raise InputError(source, line, "labels", f"expected a list of {len(docs)} labels, one per doc")
    if not all(label in (0, 1) and not isinstance(label, bool) for label in labels):
        raise InputError(source, line, "labels", "expected labels 1 (positive) or 0 (negative)")
    if 1 not in labels:
        raise InputError(source, line, "labels", "no positive (label 1) in the row")
    positives = [Passage(_text_id("d", d), d) for d, label in zip(docs, labels, strict=True) if label == 1]
    negatives = [Passage(_text_id("d", d), d) for d, label in zip(docs, labels, strict=True) if label == 0]
    return Instance(_text_id("q", query), query, positives, negatives, subset)


def read_labeled_list(path: str | Path, *, subset: str = "") -> Iterator[Instance]:
    """Instances from an `st-labeled-list` file (any format `export` writes), one per row (see
    `labeled_list_instance`)."""
    for number, row in iter_raw_rows(path):
        yield labeled_list_instance(row, source=str(path), line=number, subset=subset)
