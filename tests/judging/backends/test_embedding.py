"""The embedding judge on real FiQA instances with the embedded MiniLM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from hardneg.analysis.labels import labels_from_response_files
from hardneg.data.io import read_instances
from hardneg.data.records import Instance, Passage
from hardneg.errors import ConfigError
from hardneg.judging.backends.embedding import EmbeddingJudge

pytestmark = [pytest.mark.slow, pytest.mark.shared]


@pytest.fixture(scope="module")
def judge() -> Iterator[EmbeddingJudge]:
    judge = EmbeddingJudge(batch_size=32)
    yield judge
    judge.close()


@pytest.fixture(scope="module")
def instances(rlhn_stage1: Path) -> list[Instance]:
    return list(read_instances(rlhn_stage1))


def test_relevant_negative_outscores_unrelated_one(judge: EmbeddingJudge, instances: list[Instance]) -> None:
    tax, other = instances[0], instances[5]
    assert "1099" in tax.query
    # A negative restating the positive's answer vs a passage answering another FiQA question.
    restated = Passage("restated", tax.positives[0].text[:600])
    unrelated = Passage("unrelated", other.positives[0].text)
    probe = Instance(tax.query_id, tax.query, tax.positives, [restated, unrelated])
    out = judge.judge(probe, ["restated", "unrelated"])
    assert out.status == "ok" and out.scores is not None
    assert out.scores["restated"] > out.scores["unrelated"] + 0.2
    assert out.extra["cos_query"]["restated"] > out.extra["cos_query"]["unrelated"]
    assert -1.0 <= out.scores["unrelated"] <= 1.0


def test_batching_gives_the_same_scores_as_one_by_one(judge: EmbeddingJudge, instances: list[Instance]) -> None:
    items = [(inst, inst.negative_ids[:6]) for inst in instances[:6]]
    batched = {inst.query_id: out for inst, out in judge.judge_many(items)}
    assert set(batched) == {inst.query_id for inst, _ in items}
    for inst, docids in items:
        single = judge.judge(inst, docids)
        assert single.docids == docids == batched[inst.query_id].docids
        for docid in docids:
            assert batched[inst.query_id].scores[docid] == pytest.approx(single.scores[docid], abs=1e-5)


def test_memo_reuses_vectors_across_chunks_without_changing_scores(instances: list[Instance]) -> None:
    items = [(inst, inst.negative_ids[:5]) for inst in instances[:4]]
    plain = EmbeddingJudge(batch_size=32, memo_size=0)
    remembered = EmbeddingJudge(batch_size=32, memo_size=1000)
    encoded: list[int] = []
    encode = remembered.encode
    remembered.encode = lambda texts: encoded.append(len(texts)) or encode(texts)  # type: ignore[method-assign]
    first = {inst.query_id: out for inst, out in remembered.judge_many(items)}
    again = {inst.query_id: out for inst, out in remembered.judge_many(items)}
    expected = {inst.query_id: out for inst, out in plain.judge_many(items)}
    assert len(encoded) == 1 and encoded[0] > 0  # the second pass found every text in the memo
    for qid, out in expected.items():
        for docid, score in out.scores.items():
            assert first[qid].scores[docid] == pytest.approx(score, abs=1e-5)
            assert again[qid].scores[docid] == pytest.approx(score, abs=1e-5)
    small = EmbeddingJudge(batch_size=32, memo_size=3)
    list(small.judge_many(items))
    assert len(small._memo) == 3  # bounded: least recently used texts are dropped
    plain.close()
    remembered.close()
    small.close()


def test_score_modes_and_config(instances: list[Instance], judge: EmbeddingJudge) -> None:
    inst = instances[2]
    ref = judge.judge(inst, inst.negative_ids[:4])
    mean_judge = EmbeddingJudge(score="mean")
    mean_judge._encoder = judge._encoder  # same model: reuse the loaded encoder
    mean = mean_judge.judge(inst, inst.negative_ids[:4])
    for docid in inst.negative_ids[:4]:
        assert ref.scores[docid] == pytest.approx(ref.extra["cos_reference"][docid])
        expected = (ref.extra["cos_reference"][docid] + ref.extra["cos_query"][docid]) / 2
        assert mean.scores[docid] == pytest.approx(expected, abs=1e-6)
    assert judge.config() == {
        "kind": "embedding",
        "model": "all-MiniLM-L6-v2",
        "score": "reference",
        "use_title": False,
    }
    assert mean_judge.config()["score"] == "mean"
    with pytest.raises(ConfigError):
        EmbeddingJudge(score="cosine")


def test_bad_items_fail_with_a_reason(judge: EmbeddingJudge, instances: list[Instance]) -> None:
    inst = instances[1]
    out = judge.judge(inst, ["not-a-negative"])
    assert out.status == "failed" and "not-a-negative" in out.reason
    no_positive = Instance("x", "query", [], inst.negatives[:2])
    assert judge.judge(no_positive, no_positive.negative_ids).status == "failed"
    empty = judge.judge(inst, [])
    assert empty.status == "ok" and empty.scores == {}


def test_auc_against_gpt4o_labels(
    judge: EmbeddingJudge, instances: list[Instance], rlhn_stage1: Path, rlhn_stage2: Path
) -> None:
    labels = labels_from_response_files([str(rlhn_stage1), str(rlhn_stage2)]).graded
    y, s = [], []
    for inst, out in judge.judge_many((inst, inst.negative_ids) for inst in instances):
        assert out.status == "ok"
        for docid, score in out.scores.items():
            y.append(labels[(inst.query_id, docid)] > 0)
            s.append(score)
    assert len(y) == 375 and sum(y) > 15
    # Measured: 0.76 on these 25 FiQA instances (0.80 on the 50-instance FiQA + MS MARCO sample).
    assert roc_auc_score(y, s) > 0.7


def test_onnx_and_torch_encoders_give_the_same_judgments(instances: list[Instance]) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    from sentence_transformers import SentenceTransformer

    from hardneg.retrieval.onnx import OnnxEncoder

    items = [(inst, inst.negative_ids[:8]) for inst in instances[:5]]
    on_torch = EmbeddingJudge(batch_size=32, encoder="torch")
    on_onnx = EmbeddingJudge(batch_size=32, encoder="onnx")
    # The encoder is how, not what: the judge's identity (its store key) does not change with it.
    assert on_torch.config() == on_onnx.config()
    by_torch = {inst.query_id: out for inst, out in on_torch.judge_many(items)}
    by_onnx = {inst.query_id: out for inst, out in on_onnx.judge_many(items)}
    assert isinstance(on_torch._encoder, SentenceTransformer) and isinstance(on_onnx._encoder, OnnxEncoder)
    for inst, docids in items:
        for docid in docids:
            onnx_out, torch_out = by_onnx[inst.query_id], by_torch[inst.query_id]
            assert onnx_out.scores[docid] == pytest.approx(torch_out.scores[docid], abs=1e-5)
            assert onnx_out.extra["cos_query"][docid] == pytest.approx(torch_out.extra["cos_query"][docid], abs=1e-5)
    with pytest.raises(ConfigError, match="encoder"):
        EmbeddingJudge(encoder="tensorflow")
