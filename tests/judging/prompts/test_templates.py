"""Templates: golden renderings, placeholders, hashing, loading by name or path, chunking."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from hardneg.data.records import Instance, Passage
from hardneg.errors import ConfigError
from hardneg.judging.prompts.templates import SHIPPED_TEMPLATES, chunk_docids, load_template

GOLDEN = Path(__file__).parent / "golden"


def fixed_instance() -> Instance:
    return Instance(
        query_id="q1",
        query="  How long do I keep tax records?  ",
        positives=[
            Passage("p1", "Keep records for three years after filing.", title="IRS title is not sent"),
            Passage("p2", "Seven years if you claim a bad-debt loss."),
        ],
        negatives=[
            Passage("n1", "Shred old bank statements {query} safely."),
            Passage("n2", "Records of property: keep until the period of limitations expires."),
            Passage("n3", "How to file an extension."),
        ],
        subset="fiqa",
    )


@pytest.mark.parametrize("name", sorted(SHIPPED_TEMPLATES))
def test_shipped_template_matches_golden(name: str) -> None:
    template = load_template(name)
    rendered = template.render(fixed_instance(), ["n2", "n1", "n3"])
    golden = GOLDEN / f"{name}.txt"
    if os.environ.get("HARDNEG_UPDATE_GOLDEN"):
        golden.write_text(rendered, encoding="utf-8")
    assert rendered == golden.read_text(encoding="utf-8")
    assert template.sha256 == hashlib.sha256(template.text.encode()).hexdigest()


@pytest.mark.parametrize("name", sorted(SHIPPED_TEMPLATES))
def test_rendering_structure(name: str) -> None:
    rendered = load_template(name).render(fixed_instance(), ["n2", "n1"])
    # numbered in the order given, passage text containing a placeholder is not expanded
    assert rendered.index("Doc (1): Records of property") < rendered.index("Doc (2): Shred old bank statements")
    assert "Shred old bank statements {query} safely." in rendered
    assert "Doc (3)" not in rendered and "How to file an extension" not in rendered
    assert "How long do I keep tax records?" in rendered and "  How long" not in rendered
    assert "Reference (1): Keep records" in rendered and "Reference (2): Seven years" in rendered
    assert "IRS title is not sent" not in rendered
    assert "{documents}" not in rendered and "{positives}" not in rendered
    for tag in ("<verdict>", "<better>", "<worse>", "</verdict>"):
        assert tag in rendered


def test_single_positive_is_not_numbered() -> None:
    inst = fixed_instance()
    inst.positives = inst.positives[:1]
    rendered = load_template("stage2").render(inst, ["n1"])
    assert "Reference (1)" not in rendered and "Keep records for three years" in rendered


def test_templates_differ_and_hashes_are_distinct() -> None:
    hashes = {load_template(n).sha256 for n in SHIPPED_TEMPLATES}
    assert len(hashes) == len(SHIPPED_TEMPLATES)
    assert "<thinking>" not in load_template("compact").text
    assert "<thinking>" in load_template("stage1").text


def test_custom_template_file(tmp_path: Path) -> None:
    path = tmp_path / "figure6.txt"
    path.write_text('Q={query}\nGT={positives}\n{documents}\nJSON example: {"a": []}\n', encoding="utf-8")
    template = load_template(str(path))
    assert template.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    rendered = template.render(fixed_instance(), ["n3"])
    assert rendered.startswith("Q=How long do I keep tax records?\nGT=Reference (1)")
    assert 'Doc (1): How to file an extension.\nJSON example: {"a": []}' in rendered
    # a changed byte is a different template
    path.write_text(path.read_text() + " ", encoding="utf-8")
    assert load_template(str(path)).sha256 != template.sha256


def test_unknown_template_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown template 'stage3'"):
        load_template("stage3")
    bad = tmp_path / "bad.txt"
    bad.write_text("no placeholders here", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\{query\}, \{documents\}"):
        load_template(str(bad))


def test_render_unknown_docid_raises() -> None:
    with pytest.raises(KeyError, match="nope"):
        load_template("compact").render(fixed_instance(), ["nope"])


def test_chunk_docids() -> None:
    ids = [f"d{i}" for i in range(60)]
    chunks = chunk_docids(ids, 25)
    assert [len(c) for c in chunks] == [25, 25, 10]
    assert [d for c in chunks for d in c] == ids
    assert chunk_docids([], 25) == []
    with pytest.raises(ValueError):
        chunk_docids(ids, 0)


def test_permuted_orders_are_seeded_and_start_with_the_given_order() -> None:
    from hardneg.judging.prompts.templates import permuted

    docids = [f"d{i}" for i in range(8)]
    orders = permuted(docids, 3, key="q1:0")
    assert orders[0] == docids and len(orders) == 3
    assert all(sorted(o) == sorted(docids) for o in orders) and orders[1] != docids
    assert permuted(docids, 3, key="q1:0") == orders  # the same key, the same orders
    assert permuted(docids, 3, key="q2:0")[1] != orders[1]  # seeded per query, not by position in the file
    assert permuted(docids, 1, key="x") == [docids]
