"""judge-eval: metrics equal a hand computation; stored calls are reused, so a second evaluation makes none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hardneg.analysis.judge_eval import Target, binary_metrics, choose_cut, evaluate_judges, ranking_metrics
from hardneg.analysis.testbed import build_testbed, write_testbed
from hardneg.cli import app
from hardneg.data.beir import BeirData
from hardneg.data.io import read_instances
from hardneg.data.sample import sample_false_negatives, sample_train_path
from hardneg.errors import ConfigError


def graded_sample() -> BeirData:
    """The shipped sample as a densely graded collection: positives 2, its known false negatives 1, the other
    negatives 0 (judged not relevant)."""
    corpus, queries, qrels = {}, {}, {}
    known = sample_false_negatives()
    for inst in read_instances(sample_train_path()):
        queries[inst.query_id] = inst.query
        qrels[inst.query_id] = {p.docid: 2 for p in inst.positives}
        for p in inst.negatives:
            qrels[inst.query_id][p.docid] = 1 if p.docid in known.get(inst.query_id, []) else 0
        for p in (*inst.positives, *inst.negatives):
            corpus[p.docid] = p
    return BeirData(corpus, queries, qrels)


def hostile(data: BeirData) -> BeirData:
    """Every passage text wrapped in markup, to see that the HTML page escapes what it shows."""
    for passage in data.corpus.values():
        passage.text = f"<i>{passage.text}</i>"
    return data


def test_binary_metrics_by_hand() -> None:
    labels = [1, 1, 1, 0, 0, 0, 0, 0]
    predicted = [1, 1, 0, 1, 0, 0, 0, 0]
    m = binary_metrics(labels, predicted)
    # tp 2, fp 1, fn 1, tn 4: precision 2/3, recall 2/3; accuracy 6/8 against chance (3*3 + 5*5)/64 = 34/64
    assert (m.pairs, m.relevant, m.flagged) == (8, 3, 3)
    assert m.precision == pytest.approx(2 / 3) and m.recall == pytest.approx(2 / 3) and m.f1 == pytest.approx(2 / 3)
    assert m.kappa == pytest.approx((6 / 8 - 34 / 64) / (1 - 34 / 64))
    assert binary_metrics([0, 0], [0, 0]).kappa is None  # undefined without both classes


def test_ranking_metrics_by_hand() -> None:
    # positives score 0.9 and 0.4, negatives 0.5 and 0.1: 3 of the 4 (pos, neg) pairs are ordered right
    roc, ap = ranking_metrics([1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1])
    assert roc == pytest.approx(0.75)
    assert ap == pytest.approx((1 / 1 + 2 / 3) / 2)  # precision at each relevant hit, averaged
    assert ranking_metrics([0, 0], [0.1, 0.2]) == (None, None)


def test_targets_and_cuts() -> None:
    assert str(Target.parse("precision>=0.7")) == "precision>=0.7" and Target.parse(" recall >= 0.9 ").value == 0.9
    with pytest.raises(ConfigError) as raised:
        Target.parse("kappa>=0.5")
    assert raised.value.param == "target"
    # two queries x 4 pairs; scores separate the labels perfectly at 0.5
    labels = {(q, d): int(d < "c") for q in ("q1", "q2") for d in "abcd"}
    scores = {(q, d): (0.9 if d < "c" else 0.2) for q in ("q1", "q2") for d in "abcd"}
    cut = choose_cut(scores, labels, Target("precision", 0.9))
    assert cut["reachable"] and cut["threshold"] == 0.9
    assert cut["held_out"]["precision"] == 1.0 and cut["held_out"]["recall"] == 1.0
    assert not choose_cut(scores, {p: 0 for p in labels}, Target("recall", 0.5))["reachable"]


@pytest.mark.slow
def test_judge_eval_on_a_sample_testbed_reuses_every_call(tmp_path: Path) -> None:
    testbed = build_testbed(hostile(graded_sample()), negatives=6, name="sample")
    assert 0 < testbed.card["false_negatives"] < testbed.card["negatives_judged"]
    folder = write_testbed(testbed, tmp_path / "tb")
    config = tmp_path / "cos.yaml"
    config.write_text(
        yaml.safe_dump({"name": "cos", "stages": [{"name": "c", "backend": "embedding", "t_better": 0.6}]})
    )
    store = tmp_path / "j.sqlite"
    first = evaluate_judges(testbed, [config], store, target="precision>=0.5")
    assert first.runs["cos"]["calls_now"] == len(testbed.instances)
    stage, final = first.stages
    labels = testbed.labels()
    assert stage.metrics.pairs == final.metrics.pairs == len(labels)
    assert stage.metrics.relevant == sum(labels.values()) and stage.roc_auc is not None
    assert final.metrics.flagged == stage.metrics.flagged  # one stage: the final verdict is its verdict
    args = ["--quiet", "judge-eval", str(folder), "--config", str(config), "--store", str(store), "--json"]
    args += ["--plot", str(tmp_path / "pr.png"), "--html", str(tmp_path / "page.html")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout)
    assert again["runs"]["cos"]["calls_now"] == 0  # every call came from the store
    assert again["stages"][0]["metrics"] == {k: v for k, v in stage.to_dict()["metrics"].items()}
    assert (tmp_path / "pr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "page.html").read_text()
    assert "Judges against people" in page and "Flagged pairs" in page and "Unflagged but close" in page
    assert "<i>" not in page and "&lt;i&gt;" in page  # every text escaped
    assert "human grade" in page


LEXICAL = {"name": "lex", "stages": [{"name": "lex", "backend": "lexical", "t_better": 0.3, "t_worse": 0.2}]}


def test_judge_eval_counts_what_it_measures_limit_and_stale_cards(tmp_path: Path) -> None:
    import support.lexical_judges  # noqa: F401 (registers the `lexical` backend)

    testbed = build_testbed(graded_sample(), negatives=6, name="sample")
    store = tmp_path / "j.sqlite"
    whole = evaluate_judges(testbed, [LEXICAL], store)
    few = evaluate_judges(testbed, [LEXICAL], store, limit=5)
    assert few.testbed["queries"] == 5 and few.testbed["selection"]["total"] == len(testbed.instances)
    first5 = {i.query_id for i in testbed.instances[:5]}
    pairs = sum(1 for (q, _d) in testbed.labels() if q in first5)
    assert few.stages[0].metrics.pairs == few.stages[-1].metrics.pairs == pairs  # no other query's verdicts
    assert few.runs["lex"]["calls_now"] == 0 and whole.stages[0].metrics.pairs == len(testbed.labels())

    folder = write_testbed(testbed, tmp_path / "tb")
    config = tmp_path / "lex.yaml"
    config.write_text(yaml.safe_dump(LEXICAL))
    lines = (folder / "train.jsonl").read_text().splitlines(keepends=True)
    (folder / "train.jsonl").write_text("".join(lines[:6]))  # cut by hand: card.json is stale
    args = ["judge-eval", str(folder), "--config", str(config), "--store", str(store)]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)["testbed"]
    assert card["queries"] == 6 and card["card_mismatch"]["queries"] == {"card": len(lines), "data": 6}
    six = {i.query_id for i in testbed.instances[:6]}
    fn = sum(y for (q, _d), y in testbed.labels().items() if q in six)
    assert card["false_negatives"] == fn
    text = CliRunner().invoke(app, [*args, "--limit", "2"])
    assert text.exit_code == 0 and "does not match its files" in text.stderr
    assert "measured on the first 2 of the testbed's 6 queries" in text.stdout


def _external_files(testbed, folder: Path) -> tuple[Path, Path]:
    """A qrels file agreeing with people on every pair but the first query's (left out), and a run file whose
    score is the human grade plus a small per-docid offset."""
    pairs = sorted(testbed.grades)
    first = pairs[0][0]
    qrels = folder / "people.qrels"
    qrels.write_text("".join(f"{q} 0 {d} {g}\n" for (q, d), g in testbed.grades.items() if q != first))
    run = folder / "grades.run"
    rows = [
        f"{q} Q0 {d} {i + 1} {g + (i % 7) / 10} test\n" for i, ((q, d), g) in enumerate(sorted(testbed.grades.items()))
    ]
    run.write_text("".join(rows))
    return qrels, run


def test_judge_eval_page_leads_with_people_and_shows_externals(tmp_path: Path) -> None:
    import support.lexical_judges  # noqa: F401 (registers the `lexical` backend)

    testbed = build_testbed(graded_sample(), negatives=6, name="sample")
    folder = write_testbed(testbed, tmp_path / "tb")
    qrels, run = _external_files(testbed, tmp_path)
    config = tmp_path / "lex.yaml"
    config.write_text(yaml.safe_dump(LEXICAL))
    page = tmp_path / "page.html"
    args = ["judge-eval", str(folder), "--config", str(config), "--store", str(tmp_path / "j.sqlite")]
    args += ["--external", f"people={qrels}", "--external", f"grades={run}", "--target", "precision>=0.5"]
    result = CliRunner().invoke(app, [*args, "--html", str(page), "--plot", str(tmp_path / "pr.png"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    people = next(s for s in report["stages"] if s["config"] == "people")
    labels = testbed.labels()
    lacking = sum(1 for (q, _d) in labels if q == sorted(testbed.grades)[0][0])
    assert people["coverage"]["missing"] == lacking > 0 and people["coverage"]["found"] == len(labels) - lacking
    assert people["metrics"]["precision"] == 1.0 and people["metrics"]["kappa"] == 1.0  # the people's own grades
    assert report["shared"]["pairs"] == len(labels) - lacking
    grades = next(s for s in report["stages"] if s["config"] == "grades")
    assert grades["cut"]["reachable"] and grades["metrics"] is None
    html = page.read_text()
    sections = [html.index(f"<h2>{name}</h2>") for name in ("Judges against people", "Pairs to look at")]
    assert sections == sorted(sections) and sections[0] < html.index("<h2>Cascade funnel</h2>")
    assert "Tokens and cost" not in html and "fewer than two listwise stages" not in html  # nothing to show
    assert "The cut meeting precision&gt;=0.5" in html and "held-out precision" in html
    cut = grades["cut"]
    assert f"score &gt;= {cut['threshold']:.4f}" in html and f"{cut['held_out']['precision']:.3f}" in html
    assert "On the pairs every judge covers" in html and f"lacks {lacking} of the {len(labels)}" in html
    text = CliRunner().invoke(app, args)
    words = " ".join(text.stdout.split())
    assert text.exit_code == 0 and f"lacks {lacking} of the {len(labels)} testbed pairs" in words
    assert "pairs every judge covers" in words


def test_judge_eval_with_external_judgments_only_needs_no_store(tmp_path: Path) -> None:
    testbed = build_testbed(graded_sample(), negatives=6, name="sample")
    folder = write_testbed(testbed, tmp_path / "tb")
    _qrels, run = _external_files(testbed, tmp_path)
    page = tmp_path / "page.html"
    args = ["judge-eval", str(folder), "--external", f"grades={run}", "--html", str(page), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["store"] is None and not list(tmp_path.glob("*.sqlite"))
    assert "Judges against people" in page.read_text() and "no judgment store" in page.read_text()


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("x={d}/three.txt", "{d}/three.txt:2: -: expected 4 columns"),
        ("x={d}/missing.txt", "{d}/missing.txt: -: no such file"),
        ("x", "--external: expected NAME=FILE"),
    ],
)
def test_bad_external_files_exit_2_naming_file_and_line(tmp_path: Path, spec: str, says: str) -> None:
    folder = write_testbed(build_testbed(graded_sample(), negatives=6, name="sample"), tmp_path / "tb")
    (tmp_path / "three.txt").write_text("# a comment\nq1 0 d1\n")
    result = CliRunner().invoke(app, ["judge-eval", str(folder), "--external", spec.format(d=tmp_path)])
    assert result.exit_code == 2 and says.format(d=tmp_path) in " ".join(result.output.split())


@pytest.mark.parametrize("holdout", [0.0, 1.0, 1.5])
def test_a_bad_holdout_is_refused_before_any_judging(tmp_path: Path, holdout: float) -> None:
    testbed = build_testbed(graded_sample(), negatives=3, name="sample")
    store = tmp_path / "j.sqlite"
    with pytest.raises(ConfigError) as err:
        evaluate_judges(testbed, ["default"], store, holdout=holdout)
    assert err.value.param == "holdout" and not store.exists()
