"""Label sources: qrels files, stores (stage, judge, final, another store's final), Label Studio exports and the
reference implementation's response files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from hardneg.analysis.agreement import compare
from hardneg.analysis.labels import (
    labels_from_qrels,
    labels_from_response_files,
    labels_from_store,
    load_labels,
)
from hardneg.data.io import read_instances
from hardneg.errors import ConfigError, InputError
from hardneg.judging.base import JudgeOutput
from hardneg.judging.importer import import_judgments
from hardneg.judging.store import JudgmentStore
from support.judged_sample import EXTRA_WORSE, FALSE_NEGATIVES, FINAL_FLAGGED, STAGE1_FLAGGED


def test_qrels_beir_and_trec(tmp_path: Path) -> None:
    beir = tmp_path / "test.tsv"
    beir.write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t1\nq1\td3\t0\n")
    trec = tmp_path / "qrels.txt"
    trec.write_text("q1 0 d1 2\nq1 0 d2 1\nq1 0 d3 0\n")
    for path in (beir, trec):
        assert labels_from_qrels(path).binary == {("q1", "d1"): 1, ("q1", "d2"): 1, ("q1", "d3"): 0}
        assert labels_from_qrels(path, threshold=2).binary[("q1", "d2")] == 0
    bad = tmp_path / "bad.tsv"
    bad.write_text("query-id\tcorpus-id\tscore\nq1\td1\tyes\n")
    with pytest.raises(InputError) as info:
        labels_from_qrels(bad)
    assert info.value.problem.line == 2 and info.value.problem.field == "score"
    with pytest.raises(ConfigError):
        load_labels("nonsense:thing")


def test_store_sources_and_score_judges(tmp_path: Path) -> None:
    store = JudgmentStore(tmp_path / "j.db")
    store.put("q1", 1, "emb", {"model": "minilm"}, JudgeOutput(["a", "b", "c"], scores={"a": 0.9, "b": 0.2, "c": 0.6}))
    store.put("q1", 2, "llm", {"model": "big"}, JudgeOutput(["a", "b", "c"], better=["a"], worse=["c"]))
    store.put("q2", 2, "llm", {"model": "big"}, JudgeOutput(["x"], status="parse_error", reason="no verdict"))
    with pytest.raises(ConfigError):
        labels_from_store(store, stage=1)  # scores need a threshold
    emb = load_labels("stage:1", store=store, score_threshold=0.5)
    llm = load_labels("judge:llm", store=store)
    assert llm.three == {("q1", "a"): "better", ("q1", "b"): "none", ("q1", "c"): "worse"}
    assert llm.notes == {"judgments_parse_error": 1}
    result = compare(emb, llm)
    assert result.binary["kappa"] == pytest.approx(1.0) and result.three is None


@pytest.mark.shared
def test_final_verdicts_across_two_stores(tmp_path: Path, rlhn_stage1: Path, rlhn_stage2: Path) -> None:
    """`final` reads what relabel would use; `final:STORE` compares against another store's final verdicts."""
    cascade_db, mini_db = tmp_path / "cascade.sqlite", tmp_path / "mini.sqlite"
    with JudgmentStore(cascade_db) as store:
        import_judgments([rlhn_stage1], 1, "gpt-4o-mini", store)
        import_judgments([rlhn_stage2], 2, "gpt-4o", store)
    with JudgmentStore(mini_db) as store:
        import_judgments([rlhn_stage1], 1, "gpt-4o-mini", store)

    with JudgmentStore(cascade_db, readonly=True) as store:
        final = load_labels("final", store=store)
        finals = store.final_verdicts()
    # every negative of the 25 instances was judged by stage 1: 25 x 15 pairs
    assert len(final) == 25 * 15
    flagged = {(qid, d) for qid, v in finals.items() for d in (*v.better, *v.worse)}
    assert {pair for pair, label in final.binary.items() if label} == flagged
    assert final.three is not None and final.three[next(iter(sorted(flagged)))] in ("better", "worse")

    # stage-1 final verdicts (another store) against the cascade's: they differ exactly on the 17 routed queries
    mini = load_labels(f"final:{mini_db}")
    result = compare(mini, final)
    assert result.pairs == 25 * 15
    differing = {qid for (qid, d), label in mini.binary.items() if label != final.binary[(qid, d)]}
    with gzip.open(rlhn_stage2, "rt") as handle:
        routed = {str(json.loads(line)["query_id"]) for line in handle}
    assert differing <= routed and differing
    with pytest.raises(InputError):
        load_labels(f"final:{tmp_path / 'missing.sqlite'}")


def test_final_verdicts_across_two_stores_on_the_sample(
    tmp_path: Path, sample_train: Path, sample_stage1: Path, sample_stage2: Path
) -> None:
    """The same on the shipped sample, judged in the reference layout (tests/support/judged_sample.py)."""
    cascade_db, stage1_db = tmp_path / "cascade.sqlite", tmp_path / "stage1.sqlite"
    with JudgmentStore(cascade_db) as store:
        import_judgments([sample_stage1], 1, "judge-1", store)
        import_judgments([sample_stage2], 2, "judge-2", store)
    with JudgmentStore(stage1_db) as store:
        import_judgments([sample_stage1], 1, "judge-1", store)

    with JudgmentStore(cascade_db, readonly=True) as store:
        final = load_labels("final", store=store)
        finals = store.final_verdicts()
    # every negative of the 24 instances was judged by stage 1
    pairs = sum(len(i.negatives) for i in read_instances(sample_train))
    assert len(final) == pairs
    flagged = {(qid, d) for qid, v in finals.items() for d in (*v.better, *v.worse)}
    assert {pair for pair, label in final.binary.items() if label} == flagged
    assert flagged == {(q, d) for q, docids in FALSE_NEGATIVES.items() for d in docids}
    assert final.three is not None and final.three[next(iter(sorted(flagged)))] == "better"

    # stage-1 final verdicts (another store) against the cascade's: they differ where stage 2 cleared a flag
    first = load_labels(f"final:{stage1_db}")
    result = compare(first, final)
    assert result.pairs == pairs
    differing = {qid for (qid, d), label in first.binary.items() if label != final.binary[(qid, d)]}
    assert differing == set(EXTRA_WORSE) and differing <= STAGE1_FLAGGED
    with pytest.raises(InputError):
        load_labels(f"final:{tmp_path / 'missing.sqlite'}")


def test_labels_from_qrels(tmp_path: Path) -> None:
    from hardneg.data.records import Instance, Passage

    qrels = tmp_path / "beir" / "qrels" / "train.tsv"
    qrels.parent.mkdir(parents=True)
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\tp\t1\nq1\tn2\t2\nq1\tn3\t0\n")
    inst = Instance("q1", "query", [Passage("p", "pos")], [Passage(d, d) for d in ("n1", "n2", "n3")])
    got = labels_from_qrels(str(qrels), instances=[inst]).graded
    assert got == {("q1", "n1"): 0, ("q1", "n2"): 1, ("q1", "n3"): 0}
    with pytest.raises(InputError):
        labels_from_qrels(str(tmp_path / "elsewhere.tsv"), instances=[inst])


@pytest.mark.shared
def test_labels_from_rlhn_responses(rlhn_stage1: Path, rlhn_stage2: Path) -> None:
    first = labels_from_response_files([str(rlhn_stage1)])
    final = labels_from_response_files([str(rlhn_stage1), str(rlhn_stage2)])
    assert not first.skipped and not final.skipped
    assert len({q for q, _ in final.graded}) == 25 and len(final.graded) == 25 * 15
    # 17 stage-1 verdicts flag something; the 17 stage-2 rows replace them.
    flagged_1 = {q for (q, _), v in first.graded.items() if v > 0}
    assert len(flagged_1) == 17
    assert sum(src.endswith("gpt-4o.jsonl.gz") for src in final.sources.values()) == 17
    assert final.graded != first.graded


@pytest.mark.shared
def test_labels_from_a_store_match_the_response_files(tmp_path: Path, rlhn_stage1: Path, rlhn_stage2: Path) -> None:
    from hardneg.judging.importer import import_judgments
    from hardneg.judging.store import JudgmentStore

    db = tmp_path / "judgments.sqlite"
    with JudgmentStore(db) as store:
        import_judgments([rlhn_stage1], 1, "gpt-4o-mini", store)
        import_judgments([rlhn_stage2], 2, "gpt-4o", store)
    final = labels_from_store(db)
    assert final.graded == labels_from_response_files([str(rlhn_stage1), str(rlhn_stage2)]).graded
    stage1 = labels_from_store(db, stage=1)
    assert stage1.graded == labels_from_response_files([str(rlhn_stage1)]).graded
    assert len(labels_from_store(db, stage=2).graded) == 17 * 15


def test_labels_from_response_files_on_the_sample(sample_train: Path, sample_stage1: Path, sample_stage2: Path) -> None:
    first = labels_from_response_files([str(sample_stage1)])
    final = labels_from_response_files([str(sample_stage1), str(sample_stage2)])
    assert not first.skipped and not final.skipped
    pairs = sum(len(i.negatives) for i in read_instances(sample_train))
    assert len({q for q, _ in final.graded}) == 24 and len(final.graded) == pairs
    # 9 stage-1 verdicts flag something; the 9 stage-2 rows replace them.
    flagged_1 = {q for (q, _), v in first.graded.items() if v > 0}
    assert flagged_1 == STAGE1_FLAGGED
    assert sum(src.endswith("stage_2.jsonl.gz") for src in final.sources.values()) == len(STAGE1_FLAGGED)
    assert {q for (q, _), v in final.graded.items() if v > 0} == FINAL_FLAGGED
    # <better> is graded 2, <worse> 1
    assert {p for p, v in first.graded.items() if v == 1} == set(EXTRA_WORSE.items())
    assert {p for p, v in final.graded.items() if v == 2} == {(q, d) for q, ds in FALSE_NEGATIVES.items() for d in ds}
    assert final.graded != first.graded


def test_labels_from_a_store_match_the_response_files_on_the_sample(
    tmp_path: Path, sample_stage1: Path, sample_stage2: Path
) -> None:
    db = tmp_path / "judgments.sqlite"
    with JudgmentStore(db) as store:
        import_judgments([sample_stage1], 1, "judge-1", store)
        import_judgments([sample_stage2], 2, "judge-2", store)
    final = labels_from_store(db)
    assert final.graded == labels_from_response_files([str(sample_stage1), str(sample_stage2)]).graded
    stage1 = labels_from_store(db, stage=1)
    assert stage1.graded == labels_from_response_files([str(sample_stage1)]).graded
    routed = list(read_instances(sample_stage2))
    assert len(labels_from_store(db, stage=2).graded) == sum(len(i.negatives) for i in routed)
