"""Small real judges for cascade tests: lexical overlap with the reference, fast and deterministic.

Importing this module registers them as the backends `lexical`, `lexical-listwise` and `flaky`, so a cascade
config (or `hardneg judge --config` in-process) can name them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from hardneg.data.records import Instance
from hardneg.judging.base import Judge, JudgeOutput
from hardneg.judging.prompts.parse import verdict_output
from hardneg.judging.prompts.templates import load_template
from hardneg.judging.registry import register_backend

_WORD = re.compile(r"[a-z0-9]+")


def overlap(a: str, b: str) -> float:
    """Share of b's distinct words found in a (a crude relevance proxy)."""
    wa, wb = set(_WORD.findall(a.lower())), set(_WORD.findall(b.lower()))
    return len(wa & wb) / max(1, len(wb))


class LexicalJudge(Judge):
    """Pointwise: a negative's score is its best word overlap with a positive. Logs each call to `log`."""

    kind: ClassVar[str] = "lexical"

    def __init__(self, model: str = "overlap-v1", delay: float = 0.0, log: str | None = None) -> None:
        self.model = model
        self.delay = delay
        self.log = log

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model}

    def _log(self, instance: Instance) -> None:
        if self.log:
            with open(self.log, "a", encoding="utf-8") as handle:
                handle.write(instance.query_id + "\n")

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        self._log(instance)
        if self.delay:
            time.sleep(self.delay)
        scores = {d: max(overlap(instance.negative(d).text, p.text) for p in instance.positives) for d in docids}
        return JudgeOutput(docids=list(docids), scores=scores, latency_s=self.delay)


class LexicalListwiseJudge(Judge):
    """Listwise: renders a real template, writes a verdict text and parses it like an LLM answer."""

    kind: ClassVar[str] = "lexical-listwise"

    def __init__(self, threshold: float = 0.3, template: str = "stage1") -> None:
        self.threshold = threshold
        self.template = load_template(template)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": f"overlap>={self.threshold}", "template": self.template.sha256}

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        prompt = self.template.render(instance, docids)
        better, worse = [], []
        for i, d in enumerate(docids, start=1):
            s = max(overlap(instance.negative(d).text, p.text) for p in instance.positives)
            if s >= self.threshold + 0.2:
                better.append(f"Doc ({i})")
            elif s >= self.threshold:
                worse.append(f"Doc ({i})")
        text = (
            "<thinking>...</thinking>\n<verdict>\n"
            f"<better> [{', '.join(better)}] </better>,\n<worse> [{', '.join(worse)}] </worse>\n</verdict>"
        )
        return verdict_output(text, docids, "stop", tokens_in=len(prompt.split()), tokens_out=len(text.split()))


class FlakyJudge(LexicalJudge):
    """Fault injection: fails every call for the query ids in `fail_ids` (a real server cannot be made to)."""

    kind: ClassVar[str] = "flaky"

    def __init__(self, fail_ids: Sequence[str] = (), **kw: Any) -> None:
        super().__init__(**kw)
        self.fail_ids = set(fail_ids)
        self.calls = 0

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        self.calls += 1
        if instance.query_id in self.fail_ids:
            return JudgeOutput(docids=list(docids), status="failed", reason="HTTP 503 from the test")
        return super().judge(instance, docids)


register_backend("lexical", LexicalJudge)
register_backend("lexical-listwise", LexicalListwiseJudge)
register_backend("flaky", FlakyJudge)
