"""The contract every judge backend fulfils.

A judge looks at one instance and a list of its negatives (by docid) and returns a `JudgeOutput`
(`hardneg.judging.verdicts`).
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
from typing import Any, ClassVar

from hardneg.data.records import Instance
from hardneg.errors import HardnegError
from hardneg.judging.verdicts import JudgeOutput


class JudgeStopped(HardnegError):
    """A judge that cannot go on (the server refused the credentials): the run stops after the first such call
    instead of failing every instance. `report` carries what the run did until then, when a runner raised it."""

    def __init__(self, message: str, *, report: Any = None) -> None:
        super().__init__(message)
        self.report = report


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
