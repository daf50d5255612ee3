"""The shipped sample: present, valid, and consistent between train.jsonl, the BEIR folder and the
false-negative list."""

from __future__ import annotations

from hardneg.data.beir import iter_corpus, load_beir, load_queries
from hardneg.data.io import read_instances, validate_file
from hardneg.data.sample import sample_beir_dir, sample_false_negatives, sample_train_path


def test_train_is_valid_and_shaped_as_documented() -> None:
    assert validate_file(sample_train_path()) == []
    instances = list(read_instances(sample_train_path()))
    assert len(instances) == 24
    assert {i.subset for i in instances} == {"cooking", "finance"}
    for inst in instances:
        assert 1 <= len(inst.positives) <= 2
        assert 6 <= len(inst.negatives) <= 10


def test_false_negatives_are_negatives_of_their_query() -> None:
    false_negatives = sample_false_negatives()
    assert len(false_negatives) >= 4
    by_id = {i.query_id: i for i in read_instances(sample_train_path())}
    for qid, docids in false_negatives.items():
        assert set(docids) <= set(by_id[qid].negative_ids)


def test_beir_folder_matches_train() -> None:
    folder = sample_beir_dir()
    corpus = {p.docid: p for p in iter_corpus(folder)}
    assert len(corpus) == 80
    train = load_beir(folder, "train")
    test = load_beir(folder, "test")
    assert len(load_queries(folder)) == 32
    assert len(train.queries) == 24 and len(test.queries) == 8
    assert not set(train.queries) & set(test.queries)
    for inst in read_instances(sample_train_path()):
        assert train.queries[inst.query_id] == inst.query
        assert set(train.qrels[inst.query_id]) == set(inst.positive_ids)
        for passage in (*inst.positives, *inst.negatives):
            assert corpus[passage.docid].text == passage.text
            assert corpus[passage.docid].title == passage.title
    for qrels in test.qrels.values():
        assert set(qrels) <= set(corpus)
