"""The contract every judge backend fulfils.

A judge looks at one instance and a list of its negatives (by docid) and returns a `JudgeOutput`.
Listwise judges (LLM verdicts) fill `better` / `worse`; pointwise judges (embedding, LLM P(yes))
fill `scores`, which the cascade turns into flags with per-stage thresholds.
A judge never raises for a bad model answer: it returns status `parse_error` or `failed` with a
reason, so that no instance is ever treated as clean because a call failed.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from hardneg.data.records import Instance

Status = Literal["ok", "parse_error", "failed"]


@dataclass(slots=True)
class JudgeOutput:
    """What one judge call (or merged calls) returns for one instance."""

    docids: list[str]  # the negatives judged, in prompt order
    status: Status = "ok"
    reason: str = ""  # why status is not ok
    better: list[str] | None = None  # listwise verdicts; None for score-only judges
    worse: list[str] | None = None
    scores: dict[str, float] | None = None  # pointwise scores per docid (higher = more likely relevant)
    raw_response: str | None = None
    finish_reason: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    template_hash: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def config_hash(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able configuration (keys sorted)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class Judge(ABC):
    """A backend that judges negatives of instances."""

    kind: ClassVar[str]  # "embedding", "llm-pointwise", "llm-listwise", "openai", ...

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Everything that changes the judge's answers (model, template hash, parameters).

        Its hash keys the judgment store: a changed config is judged again, an unchanged one is reused.
        """

    @property
    def model_name(self) -> str:
        return str(self.config().get("model", self.kind))

    @abstractmethod
    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        """Judge the given negatives (docids of `instance.negatives`) of one instance."""

    def judge_many(self, items: Iterable[tuple[Instance, Sequence[str]]]) -> Iterator[tuple[Instance, JudgeOutput]]:
        """Judge several instances; backends that batch (embeddings) or run concurrently override this.

        Yields results in any order, as each finishes, so the caller can store them one by one.
        """
        for instance, docids in items:
            yield instance, self.judge(instance, docids)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release models, sessions or servers."""


@dataclass(slots=True)
class FinalVerdict:
    """An instance's verdict after the cascade: that of the last stage that judged it."""

    query_id: str
    stage: int
    better: list[str]  # docids of negatives judged relevant and at least as good as the positive
    worse: list[str]  # docids of negatives judged relevant but weaker
    status: Status = "ok"  # not ok: the last stage failed; relabel must not treat the instance as clean
    reason: str = ""
