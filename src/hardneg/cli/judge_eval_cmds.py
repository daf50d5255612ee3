"""Measuring judges against people: `testbed` (instances with known false negatives) and `judge-eval`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer
from rich.table import Table

from hardneg.analysis.external import parse_external
from hardneg.analysis.judge_eval import JudgeEvalReport, check_plotting, evaluate_judges, plot_precision_recall
from hardneg.analysis.report import build_report
from hardneg.analysis.testbed import (
    TRAIN_FILE,
    build_testbed,
    card_markdown,
    check_testbed_folder,
    load_testbed,
    select_testbed,
    write_testbed,
)
from hardneg.cli import options as opt
from hardneg.cli.common import app, console, err_console, handle_errors, print_json, print_table, progress, stage_bars
from hardneg.data.atomic import check_target
from hardneg.data.io import write_instances
from hardneg.errors import ConfigError


@app.command()
@handle_errors
def testbed(
    beir_dir: Path = typer.Argument(..., help="BEIR folder with graded qrels (e.g. ../shared/data/noveleval)."),
    output: Path = opt.output("Testbed folder to write (an existing one only with --overwrite)."),
    split: str = opt.library(build_testbed, "split", "--split", help="qrels split."),
    min_grade: int | None = typer.Option(
        None, "--min-grade", help="Grade that counts as relevant (default: the top grade but one)."
    ),
    negatives: int = opt.library(build_testbed, "negatives", "--negatives", "-n", help="Negatives per query."),
    method: str = opt.library(
        build_testbed, "method", "--method", help="bm25, dense or hybrid: how negatives are ranked."
    ),
    pool: str = opt.library(build_testbed, "pool", "--pool", help="judged (the query's judged passages) or corpus."),
    seed: int = opt.library(
        build_testbed, "seed", "--seed", help="Seed of the positive drawn per query, and of --sample."
    ),
    limit: int | None = opt.limit("Build from the first N queries with a relevant passage (query-id order)."),
    sample: int | None = opt.sample("Build from a random N of the queries with a relevant passage (see --seed)."),
    overwrite: bool = opt.overwrite(
        "Replace an existing testbed folder hardneg wrote (never a folder of other files)."
    ),
    as_json: bool = opt.as_json("Print the card as one JSON object."),
) -> None:
    """Turn a collection with graded qrels into training instances whose false negatives are known."""
    check_testbed_folder(output, overwrite=overwrite, param="output")
    built = build_testbed(
        beir_dir, split=split, min_grade=min_grade, negatives=negatives, method=method,  # type: ignore[arg-type]
        pool=pool, seed=seed, limit=limit, sample=sample,  # type: ignore[arg-type]
    )  # fmt: skip
    write_testbed(built, output, overwrite=overwrite)
    if as_json:
        print_json({"output": str(output), **built.card})
        return
    console.print(card_markdown(built.card), markup=False, highlight=False)
    console.print(f"testbed -> {output} (train.jsonl, qrels/qrels.tsv, card.json)", markup=False, highlight=False)


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _eval_table(title: str, stages: list, *, costs: bool = True) -> Table:
    table = Table(title=title)
    columns = ("judge", "stage", "pairs", "flagged", "P", "R", "F1", "kappa", "ROC-AUC", "PR-AUC", "s/1k", "tok/1k")
    for column in columns:
        table.add_column(column, justify="left" if column in ("judge", "stage") else "right")
    for s in stages:
        m = s.metrics
        per = s.per_1000()
        external = s.stage == "external" or not costs
        cov = s.coverage or {}
        pairs = f"{cov['found']}/{cov['pairs']}" if cov.get("missing") else str(cov.get("found", m.pairs if m else 0))
        table.add_row(
            f"{s.config} ({s.name})" if s.stage == "external" else s.config,
            "file" if s.stage == "external" else f"{s.stage}: {s.name}" if s.stage != "final" else "final", pairs,
            "-" if m is None else str(m.flagged), *(_num(None if m is None else getattr(m, k)) for k in
            ("precision", "recall", "f1", "kappa")), _num(s.roc_auc), _num(s.pr_auc),
            "-" if external else f"{per['seconds']:.1f}", "-" if external else f"{per['tokens']:.0f}",
        )  # fmt: skip
    return table


def _print_eval(report: JudgeEvalReport) -> None:
    card = report.testbed
    title = (
        f"{card.get('dataset')}: {card.get('negatives_judged')} judged negatives, "
        f"{card.get('false_negatives')} false negatives (base rate {card.get('base_rate', 0):.2f})"
    )
    print_table(_eval_table(title, report.stages))
    for s in report.stages:
        cov = s.coverage or {}
        if s.stage == "external" and cov.get("missing"):
            console.print(
                f"{s.config}: {s.source} lacks {cov['missing']} of the {cov['pairs']} testbed pairs; its figures are "
                f"on the {cov['found']} it covers",
                markup=False,
                highlight=False,
            )
    if report.shared is not None:
        sh = report.shared
        routed = f"; routed stages left out: {', '.join(sh['left_out_routed'])}" if sh["left_out_routed"] else ""
        title = (
            f"on the {sh['pairs']} of {sh['of']} pairs every judge covers ({sh['false_negatives']} false "
            f"negatives{routed})"
        )
        print_table(_eval_table(title, report.shared_stages, costs=False))
    if report.target is None and any(s.backend == "run" for s in report.stages):
        console.print(
            'run files give scores, not flags: add --target "precision>=0.7" (or "recall>=0.9") for the cut that '
            "meets it and its held-out precision, recall and kappa",
            markup=False,
            highlight=False,
        )
    for s in report.stages:
        if not s.cut:
            continue
        if not s.cut["reachable"]:
            console.print(f"{s.label}: {s.cut['target']} is not reached on the tuning half", markup=False)
            continue
        held = s.cut["held_out"]
        console.print(
            f"{s.label}: {s.cut['target']} -> raw score >= {s.cut['threshold']:.4f} "
            f"(chosen on {s.cut['tune']['queries']} queries); on the other {held['queries']}: precision "
            f"{held['precision']:.3f}, recall {held['recall']:.3f}, kappa {_num(held['kappa'])}",
            markup=False,
            highlight=False,
        )
    for s in report.stages:
        left = {k: v for k, v in s.left_out.items() if v and k != "unlabelled"}  # unlabelled: pairs nobody graded
        if left:
            counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in left.items())
            console.print(f"{s.label}: left out of the scores: {counts}", markup=False, highlight=False)
    for name, run in report.runs.items():
        console.print(f"{name}: {run['calls_now']} judge calls made now, {run['reused']} reused", highlight=False)


@app.command("judge-eval")
@handle_errors
def judge_eval(
    testbed_dir: Path = typer.Argument(..., help="A testbed folder (`hardneg testbed`)."),
    configs: list[Path] = typer.Option(
        [], "--config", help="Cascade YAML or a shipped config's name (`hardneg configs`); repeat to compare several."
    ),
    external: list[str] = typer.Option(
        [],
        "--external",
        help="NAME=FILE: published judgments scored beside the cascades on the same pairs, a TREC qrels file "
        "(qid 0 docid grade) or run file (qid Q0 docid rank score tag); repeatable.",
    ),
    min_grade: int | None = typer.Option(
        None, "--min-grade", help="An --external qrels grade >= this is a flag (default: the testbed's min grade)."
    ),
    store: Path | None = typer.Option(
        None,
        "--store",
        help="Judgment store: calls already in it are reused (default with --config: TESTBED.judgments.sqlite "
        "beside the testbed folder; none is needed for --external alone).",
    ),
    target: str | None = typer.Option(
        None, "--target", help='A cut to find on score stages: "precision>=0.7" or "recall>=0.9".'
    ),
    tags: str = opt.library(
        evaluate_judges, "tags", "--tags", help="Which verdict lists count as flags: better | both."
    ),
    holdout: float = opt.library(
        evaluate_judges, "holdout", "--holdout", help="Share of queries the cut is measured on."
    ),
    seed: int = opt.library(
        evaluate_judges, "seed", "--seed", help="Seed of the query split for --target, and of --sample."
    ),
    limit: int | None = opt.limit("Measure on the testbed's first N queries only."),
    sample: int | None = opt.sample("Measure on a random N of the testbed's queries (seeded by --seed)."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a precision/recall plot (PNG)."),
    html: Path | None = typer.Option(
        None, "--html", help="Write an HTML page: the table, the plot, and flagged / close pairs with human grades."
    ),
    as_json: bool = opt.as_json("Print one JSON object."),
) -> None:
    """Run cascades on a testbed (reusing every stored call) and measure them, and any published judgments, against
    the human labels."""
    specs = dict(parse_external(spec) for spec in external)  # a malformed NAME=FILE stops here
    if len(specs) != len(external):
        raise ConfigError("each --external needs its own NAME", param="external")
    if not configs and not specs:
        raise ConfigError("name a cascade (--config) or published judgments (--external NAME=FILE)", param="configs")
    if configs and store is None:
        base = testbed_dir if testbed_dir.name else testbed_dir.resolve()  # "." has no name
        store = base.with_name(base.name + ".judgments.sqlite")
    for path, param in ((plot, "plot"), (html, "html")):
        if path is not None:  # before any judging: a page or plot that cannot be written is known now
            check_target(path, folder=False, param=param)
    if plot is not None or html is not None:
        check_plotting(param="plot" if plot is not None else "html")
    loaded = select_testbed(load_testbed(testbed_dir), limit=limit, sample=sample, seed=seed)
    if loaded.card.get("card_mismatch"):
        stale = ", ".join(f"{k} {v['card']} -> {v['data']}" for k, v in loaded.card["card_mismatch"].items())
        err_console.print(
            f"warning: {testbed_dir}/card.json does not match its files (edited by hand?); using the counts of the "
            f"data: {stale}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    with progress() as bar:
        report = evaluate_judges(
            loaded, list(configs), store, external=specs, min_grade=min_grade, target=target, tags=tags,
            holdout=holdout, seed=seed, progress=stage_bars(bar, "judging: {}"),
        )  # fmt: skip
    if plot is not None:
        plot_precision_recall(report, plot)
    if html is not None:
        with tempfile.TemporaryDirectory() as tmp:
            instances = testbed_dir / TRAIN_FILE
            if loaded.card.get("selection"):  # the page shows the pairs of the queries measured, no others
                instances = Path(tmp) / TRAIN_FILE
                write_instances(instances, loaded.instances)
            build_report(
                store, html, instances=instances, grades=dict(loaded.grades), judge_eval=report,
                title=f"hardneg judge-eval: {loaded.card.get('dataset')}",
            )  # fmt: skip
    if as_json:
        paths = {"plot": str(plot) if plot else None, "html": str(html) if html else None}
        print_json({**paths, "store": str(store) if store else None, **report.to_dict()})
        return
    _print_eval(report)
    chosen = report.testbed.get("selection")
    if chosen:
        how = f"the first {chosen['used']}" if chosen["limit"] is not None else f"a random {chosen['used']}"
        console.print(f"measured on {how} of the testbed's {chosen['total']} queries", highlight=False)
    for name, path in (("store", store), ("plot", plot), ("page", html)):
        if path is not None:
            console.print(f"{name} -> {path}")
