"""The docs harness itself can fail: it refuses unmarked blocks and bad markers, catches verbs, options, configs,
scripts and programs that do not exist, runs blocks for real, and reports a type error."""

from __future__ import annotations

from pathlib import Path

import pytest

from docs import harness


def _page(tmp_path: Path, text: str) -> list[harness.Block]:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return harness.page_blocks(page)


# -- markers ------------------------------------------------------------------------------------------------------


def test_markers_parse_into_what_the_harness_does() -> None:
    assert harness.parse_marker("run") == harness.Marker("run")
    assert harness.parse_marker("run limit=4 continue sample-train:train.jsonl.gz") == harness.Marker(
        "run", limit=4, cont=True, given=(("sample-train", "train.jsonl.gz"),)
    )
    assert harness.parse_marker("check gpu,api long").tags == ("gpu", "api", "long")
    assert harness.parse_marker("run shared").shared


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "starts with run or check"), ("skip", "starts with run or check"), ("check", "needs one or more"),
     ("check laptop", "needs one or more"), ("run fast", "unknown word"), ("run minilm:/abs", "relative")],
)  # fmt: skip
def test_bad_markers_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        harness.parse_marker(text)


def test_a_block_takes_the_marker_on_the_line_before_it_and_an_unmarked_one_fails(tmp_path: Path) -> None:
    blocks = _page(
        tmp_path,
        "text\n\n<!-- docs-test: run -->\n\n```bash\necho hi\n```\n\n"
        "```python\nprint(1)\n```\n\n<!-- docs-test: check long -->\n```yaml\na: 1\n```\n\n"
        "- item\n\n  <!-- docs-test: check gpu -->\n  ```sh\n  nvidia-smi\n  ```\n",
    )
    assert [(b.index, b.lang, b.marker_text) for b in blocks] == [
        (1, "bash", "run"), (2, "python", None), (3, "yaml", "check long"), (4, "sh", "check gpu"),
    ]  # fmt: skip
    assert blocks[3].text == "nvidia-smi\n"  # the list item's indent is taken off
    with pytest.raises(ValueError, match="without a marker"):
        _ = blocks[1].marker
    assert [b.tested for b in blocks] == [True, True, False, True]


def test_the_docs_define_the_config_files_their_commands_use() -> None:
    files = harness.named_files()
    assert {"gpu-cascade.yaml", "cascade.yaml"} <= set(files)
    assert files["gpu-cascade.yaml"].startswith("# gpu-cascade.yaml")


# -- shell parsing and the CLI check ------------------------------------------------------------------------------


def test_shell_lines_split_into_simple_commands() -> None:
    commands = harness.simple_commands(
        'A=1 hardneg x --target "p>=0.7" > out.json 2> err.txt && echo ok | tee log # a comment'
    )
    assert [c.argv for c in commands] == [["hardneg", "x", "--target", "p>=0.7"], ["echo", "ok"], ["tee", "log"]]
    assert commands[0].stdout_to == "out.json"
    lines = harness.logical_lines("# only a comment\nhardneg a \\\n    --b c\n\n$ not console\n")
    assert lines == ["hardneg a      --b c", "$ not console"]
    assert harness.logical_lines("$ hardneg stats x\noutput line\n$ echo y\n", "console") == [
        "hardneg stats x", "echo y",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["hardneg", "mine", "data", "-o", "o.jsonl", "--bogus", "1"], "No such option: --bogus"),
        (["hardneg", "mine", "data", "-o"], "requires an argument"),
        (["hardneg", "nosuch", "x"], "no verb 'nosuch'"),
        (["hardneg", "train", "nosuch"], "no verb 'nosuch'"),
        (["hardneg", "train", "reranker", "t.jsonl", "-o", "m", "listwise"], "unexpected extra argument"),
    ],
)
def test_the_cli_check_names_what_does_not_exist(argv: list[str], problem: str) -> None:
    problems = harness.check_hardneg(harness.Command(argv), {})
    assert any(problem in p for p in problems), problems


def test_a_real_command_passes_the_cli_check() -> None:
    argv = ["hardneg", "--quiet", "train", "retriever", "t.jsonl", "-o", "m", "--negatives", "7", "--lora"]
    assert harness.check_hardneg(harness.Command(argv), {}) == []
    parsed = harness.parse_hardneg(argv)
    assert parsed.path == ["train", "retriever"] and "--max-steps" in parsed.option_names()


def test_configs_must_load(tmp_path: Path) -> None:
    block = _page(
        tmp_path,
        "<!-- docs-test: check api -->\n```bash\n"
        "hardneg judge t.jsonl --config paper-api --store s.db\n"
        "hardneg configs show local-llm > mine.yaml\nhardneg judge t.jsonl --config mine.yaml --store s.db\n"
        "hardneg judge t.jsonl --config gpu-cascade.yaml --store s.db\n"
        "hardneg judge t.jsonl --config examples/judge-embedding.yaml --store s.db\n"
        "hardneg judge t.jsonl --config nosuch-name --store s.db\n"
        "hardneg judge t.jsonl --config other.yaml --store s.db\n```\n",
    )[0]
    problems = harness.check(block)
    assert len(problems) == 2, problems
    assert "--config nosuch-name" in problems[0] and "--config other.yaml: not a repository file" in problems[1]


def test_scripts_targets_and_programs_must_exist(tmp_path: Path) -> None:
    block = _page(
        tmp_path,
        "<!-- docs-test: check long -->\n```bash\n"
        "python bench/judges.py --markdown --judges embedding\npython bench/judges.py --bogus\n"
        "python bench/nosuch.py\nmake demo\nmake nosuch\nexport X=1\nnosuch-program --help\n```\n",
    )[0]
    assert harness.check(block) == [
        "python bench/judges.py: no option '--bogus' (its --help)",
        "python bench/nosuch.py: no such file in the repository",
        "make nosuch: no such target in the Makefile",
        "nosuch-program: not a program on PATH (nor a shell builtin)",
    ]


def test_inline_commands_are_found_in_prose_and_checked(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Run `hardneg mine DIR -o out.jsonl --limit N` or `hardneg --quiet VERB ...`; `hardneg mine --backend` is\n"
        "an option; `hardneg mine DIR --nosuch` is not; `python bench/mine.py --index-recall`; `ls -l`.\n"
        "```bash\nhardneg ignored --in-blocks\n```\n",
        encoding="utf-8",
    )
    spans = harness.inline_commands(page)
    assert spans == ["hardneg mine DIR -o out.jsonl --limit N", "hardneg mine --backend", "hardneg mine DIR --nosuch",
                     "python bench/mine.py --index-recall"]  # fmt: skip
    assert [bool(harness.check_inline(s)) for s in spans] == [False, False, True, False]


def test_limit_goes_after_the_verbs_that_take_it() -> None:
    text = (
        "hardneg mine data -o a.jsonl\nhardneg --quiet clean a.jsonl -o b.jsonl --limit 2\n"
        "hardneg train retriever b.jsonl -o m\nhardneg testbed data -o tb\n"
    )
    limited, count = harness.with_limit(text, 4)
    assert count == 2
    assert limited.splitlines() == [
        "hardneg mine --limit 4 data -o a.jsonl", "hardneg --quiet clean a.jsonl -o b.jsonl --limit 2",
        "hardneg train retriever b.jsonl -o m", "hardneg testbed --limit 4 data -o tb",
    ]  # fmt: skip


# -- running ------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_block_fails_on_an_error_or_a_missing_output_and_continue_shares_a_namespace(tmp_path: Path) -> None:
    blocks = _page(
        tmp_path,
        "<!-- docs-test: run -->\n```bash\nls bench examples\nfalse\n```\n"
        "<!-- docs-test: run sample-train:t.jsonl -->\n```bash\nhardneg stats t.jsonl > stats.txt\n"
        "echo made > a.txt\n```\n"
        "<!-- docs-test: run -->\n```bash\ntrue  # hardneg convert t.jsonl -o b.jsonl names an output\n"
        "hardneg --help > /dev/null\n```\n"
        "<!-- docs-test: run -->\n```python\nx = 41\n```\n"
        "<!-- docs-test: run continue -->\n```python\nprint(x + 1)\n```\n",
    )
    runner = harness.Runner(tmp_path / "runs")
    (tmp_path / "runs").mkdir()
    with pytest.raises(AssertionError, match="exit 1"):
        runner.run(blocks[0])
    ran = runner.run(blocks[1])
    assert "24" in (ran.workdir / "stats.txt").read_text() and (ran.workdir / "a.txt").is_file()
    assert runner.run(blocks[1]) is ran  # once per session
    runner.run(blocks[2])  # an output named in a comment is not an output
    assert runner.run(blocks[4]).stdout == "42\n"
    missing = _page(tmp_path, "<!-- docs-test: run -->\n```bash\nhardneg --help > /dev/null  # -o x\n"
                    "true hardneg -o never.jsonl\n```\n")  # fmt: skip
    assert harness.outputs(missing[0]) == []
    unwritten = _page(tmp_path, "<!-- docs-test: run -->\n```bash\nhardneg --version || hardneg x -o no.jsonl\n```\n")
    with pytest.raises(AssertionError, match="did not write"):
        runner.run(unwritten[0])


@pytest.mark.slow
def test_a_type_error_in_a_python_check_block_is_reported(tmp_path: Path) -> None:
    blocks = _page(
        tmp_path,
        "<!-- docs-test: check gpu -->\n```python\nimport hardneg\n\nresult = hardneg.evaluate('bm25', 'data')\n"
        "ndcg: str = result.metrics['ndcg@10']\n```\n"
        "<!-- docs-test: check gpu -->\n```python\nimport hardneg\n\n"
        "print(hardneg.evaluate('bm25', 'd').metrics)\n```\n",
    )
    report = harness.type_check(blocks)
    assert len(report[blocks[0].id]) == 1 and "Incompatible types" in report[blocks[0].id][0], report
    assert report[blocks[1].id] == []


# -- the suite's layout ---------------------------------------------------------------------------------------------


def test_the_docs_tests_share_one_worker(request: pytest.FixtureRequest) -> None:
    """Under `make test` (pytest-xdist, `--dist loadgroup`) the docs tests carry the `docs` group (tests/conftest.py),
    so a block shown both in the README and on a site page runs once; a pytest that xdist cannot group with (9.2,
    pytest-dev/pytest-xdist#1386) drops the group silently and the suite runs such blocks twice."""
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not under pytest-xdist --dist loadgroup")
    assert request.node.nodeid.endswith("@docs"), request.node.nodeid
