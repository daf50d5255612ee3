"""Small real judges for the store-safety tests, named by dotted path (`support.call_log_judges:CountingJudge`),
so that `hardneg judge` subprocesses can load them with PYTHONPATH=<repo>/tests and nothing registered.

- `CountingJudge`: pointwise, a negative's score is its best word overlap with a positive (as
  `support.lexical_judges.LexicalJudge`); it sleeps `delay` seconds per instance, so that concurrent runners
  really overlap, and appends one line per call (`query_id<TAB>pid`) to the file `log`, so that a test counts
  the calls at the judge itself. The line is written when the call starts, as a paid API call is billed once
  sent: a runner killed mid-call has logged the call it was making.
- `UnreadableJudge`: listwise, renders a real template and answers text no verdict parser can read, so every
  call is a `parse_error` (what a confused model writes).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from hardneg.data.records import Instance
from hardneg.judging.base import Judge, JudgeOutput
from hardneg.judging.prompts.parse import verdict_output
from hardneg.judging.prompts.templates import load_template
from support.lexical_judges import overlap


def read_log(path: str | os.PathLike[str]) -> list[tuple[str, int]]:
    """The (query_id, pid) of each call a `CountingJudge` logged, in order ([] when it made none)."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = [line.rstrip("\n").split("\t") for line in handle if line.strip()]
    except FileNotFoundError:
        return []
    return [(qid, int(pid)) for qid, pid in lines]


class CountingJudge(Judge):
    """Pointwise lexical overlap, `delay` seconds per call, one log line per call (see the module docstring)."""

    kind: ClassVar[str] = "counting"

    def __init__(self, model: str = "overlap-v1", delay: float = 0.04, log: str | None = None) -> None:
        self.model = model
        self.delay = float(delay)
        self.log = log

    def config(self) -> dict[str, Any]:
        # what changes the answers only: the delay and the log file do not
        return {"kind": self.kind, "model": self.model}

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        if self.log:
            # one write of one short line to a file opened for appending: lines of concurrent processes never mix
            fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{instance.query_id}\t{os.getpid()}\n".encode())
            finally:
                os.close(fd)
        if self.delay:
            time.sleep(self.delay)
        scores = {d: max(overlap(instance.negative(d).text, p.text) for p in instance.positives) for d in docids}
        return JudgeOutput(docids=list(docids), scores=scores, latency_s=self.delay)


class UnreadableJudge(Judge):
    """Listwise: reads a real prompt, answers without any verdict block (every call a parse error)."""

    kind: ClassVar[str] = "unreadable"

    def __init__(self, template: str = "stage1") -> None:
        self.template = load_template(template)

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": "rambling-v1", "template": self.template.sha256}

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        prompt = self.template.render(instance, list(docids))
        text = "lorem ipsum Doc ]] none 42 <better the documents seem fine I think"
        return verdict_output(text, docids, "stop", tokens_in=len(prompt.split()), tokens_out=len(text.split()))
