"""A tiny hand-made BEIR folder for mining tests: a self-id query (ArguAna-like), graded and all-zero qrels."""

from __future__ import annotations

import json
from pathlib import Path

DOCS = {
    "a1": ("Cats", "Cats are small domesticated carnivores that purr and hunt mice."),
    "a2": ("", "Dogs are loyal animals; a dog barks and fetches sticks."),
    "a3": ("Mice", "Mice are small rodents that cats hunt at night."),
    "a4": ("", "Stock markets crash when investors panic and sell shares."),
    "a5": ("", "Interest rates set by central banks move stock markets."),
    "a6": ("", "Cats and dogs can live together when raised as pets."),
    "a7": ("", "Small carnivores such as cats hunt mice and birds."),
    "a8": ("", "Farmers markets sell fresh vegetables every week."),
    "q1": ("", "Cats should be kept indoors: they hunt mice and small birds."),  # also a query id (ArguAna)
}
QUERIES = {
    "q1": "Cats should be kept indoors: they hunt mice and small birds.",
    "q2": "why do stock markets crash",
    "q3": "do dogs bark",
    "q4": "a query whose qrels are all zero",
}
QRELS = [("q1", "a1", 1), ("q1", "a4", 0), ("q2", "a4", 2), ("q2", "a5", 1), ("q3", "a2", 1), ("q4", "a6", 0)]


def make_beir(folder: Path, qrels: list[tuple[str, str, int]] = QRELS) -> Path:
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w") as handle:
        for docid, (title, text) in DOCS.items():
            handle.write(json.dumps({"_id": docid, "title": title, "text": text}) + "\n")
    with open(folder / "queries.jsonl", "w") as handle:
        for qid, text in QUERIES.items():
            handle.write(json.dumps({"_id": qid, "text": text}) + "\n")
    with open(folder / "qrels" / "train.tsv", "w") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        handle.writelines(f"{q}\t{d}\t{s}\n" for q, d, s in qrels)
    return folder
