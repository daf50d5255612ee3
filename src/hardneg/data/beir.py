"""BEIR folders: `corpus.jsonl[.gz]` (`_id`, `title`, `text`), `queries.jsonl[.gz]` (`_id`, `text`),
`qrels/<split>.tsv` (header `query-id corpus-id score`)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hardneg.data.io import iter_jsonl, open_text
from hardneg.data.records import Passage
from hardneg.errors import EmptyInput, InputError


def _find(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.jsonl", f"{stem}.jsonl.gz"):
        if (folder / name).is_file():
            return folder / name
    raise InputError(folder, None, stem, f"no {stem}.jsonl or {stem}.jsonl.gz in the BEIR folder")


def iter_corpus(folder: str | Path) -> Iterator[Passage]:
    """Stream the corpus as Passages (docid = `_id`); a repeated `_id` is an error (which text is meant?)."""
    path = _find(Path(folder), "corpus")
    first: dict[str, int] = {}  # docid -> line: the one index that grows with the corpus
    for line, row in iter_jsonl(path):
        if not isinstance(row, dict) or row.get("_id") in (None, ""):
            raise InputError(path, line, "_id", "missing or empty")
        docid = str(row["_id"])
        seen = first.setdefault(docid, line)
        if seen != line:
            raise InputError(path, line, "_id", f"duplicate _id {docid!r} (first at line {seen})")
        text = row.get("text")
        if not isinstance(text, str):
            raise InputError(path, line, "text", "missing or not a string")
        title = row.get("title") or ""
        yield Passage(docid=docid, text=text, title=str(title))


def load_queries(folder: str | Path) -> dict[str, str]:
    path = _find(Path(folder), "queries")
    queries: dict[str, str] = {}
    for line, row in iter_jsonl(path):
        if not isinstance(row, dict) or row.get("_id") in (None, ""):
            raise InputError(path, line, "_id", "missing or empty")
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise InputError(path, line, "text", "missing or empty")
        queries[str(row["_id"])] = text
    return queries


def load_qrels(folder: str | Path, split: str) -> dict[str, dict[str, int]]:
    """qrels[query_id][docid] = graded label (zeros kept: callers decide what counts as relevant)."""
    path = Path(folder) / "qrels" / f"{split}.tsv"
    if not path.is_file():
        available = sorted(p.stem for p in (Path(folder) / "qrels").glob("*.tsv"))
        raise InputError(
            path, None, "split", f"no qrels for split {split!r} (available: {', '.join(available) or 'none'})"
        )
    qrels: dict[str, dict[str, int]] = {}
    with open_text(path) as handle:
        reader = csv.reader(handle, delimiter="\t")
        for number, fields in enumerate(reader, start=1):
            if not fields or (number == 1 and fields[0] == "query-id"):
                continue
            if len(fields) < 3:
                raise InputError(path, number, "-", f"expected 3 tab-separated columns, got {len(fields)}")
            try:
                score = int(float(fields[2]))
            except ValueError:
                raise InputError(path, number, "score", f"not a number: {fields[2]!r}") from None
            qrels.setdefault(fields[0], {})[fields[1]] = score
    return qrels


@dataclass
class BeirData:
    corpus: dict[str, Passage]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(folder: str | Path, split: str) -> BeirData:
    """Corpus, the queries that have qrels in `split`, and those qrels."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, None, "-", "not a BEIR folder")
    qrels = load_qrels(folder, split)
    all_queries = load_queries(folder)
    missing = [qid for qid in qrels if qid not in all_queries]
    if missing:
        raise InputError(
            folder / "queries.jsonl", None, "_id", f"{len(missing)} qrels query ids have no query, e.g. {missing[0]!r}"
        )
    queries = {qid: all_queries[qid] for qid in qrels}
    corpus = {p.docid: p for p in iter_corpus(folder)}
    if not corpus:
        raise EmptyInput(_find(folder, "corpus"))
    return BeirData(corpus=corpus, queries=queries, qrels=qrels)
