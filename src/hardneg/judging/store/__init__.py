"""The judgment store: paid judge calls and the verdicts derived from them, in one SQLite file.

A judgment bought once is never bought again. The file holds:

- `judgments`: one row per judge call identity, with the call's raw output; a score judge's record grows when
  routing asks for more negatives (`records`, `scores`).
- `verdicts`: what a cascade derived from those records under its thresholds, fusion and routing; deriving costs
  nothing, so changing a threshold only rewrites this table. A stage's `pending` rows keep a run killed (or stopped
  by a budget) at any stage from giving final verdicts (`verdicts`, `final`: `PartialCascade`).
- `claims`: the calls being made now, so that several runners on one store never pay for a call twice (`claims`).

SQLite in WAL mode gives what a long, paid judging run needs: every `put` is one committed transaction, so
`kill -9` at any moment loses at most the calls in flight and never leaves half a record; re-running skips
what is already judged (resume); readers (reports, `relabel`) can read while writers judge. A store is checked
when it is opened (`schema`). A full disk is `StoreFull`; the store holds back a reserve beside its file so that
a runner can still write the answers it has when the disk fills (`space`).

Modules: `schema` (the file: tables, checks on opening), `connection` (writing in transactions, reading in
pages), `space` (a full disk, the reserve), `claims`, `records`, `scores`, `verdicts`, `final`. `JudgmentStore`
is all of them in one object.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from hardneg.judging.store.claims import DEFAULT_LEASE_S, CallKey, ClaimKeeper, Claims, new_owner, owner_alive
from hardneg.judging.store.final import FinalReading, FinalVerdicts, PartialCascade
from hardneg.judging.store.records import DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_TIMEOUTS, docids_key
from hardneg.judging.store.schema import READ_ONLY_FS, SCHEMA_VERSION, SQLITE_MAGIC
from hardneg.judging.store.scores import ScoreMerge
from hardneg.judging.store.space import RESERVE_BYTES, StoreFull
from hardneg.judging.store.verdicts import PENDING
from hardneg.judging.verdicts import FinalVerdict, JudgeOutput, Judgment, StageVerdict

__all__ = [
    "DEFAULT_LEASE_S",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_TIMEOUTS",
    "PENDING",
    "READ_ONLY_FS",
    "RESERVE_BYTES",
    "SCHEMA_VERSION",
    "SQLITE_MAGIC",
    "CallKey",
    "ClaimKeeper",
    "FinalVerdict",
    "FinalVerdicts",
    "JudgeOutput",
    "Judgment",
    "JudgmentStore",
    "PartialCascade",
    "StageVerdict",
    "StoreFull",
    "docids_key",
    "new_owner",
    "open_store",
    "owner_alive",
]


class JudgmentStore(Claims, ScoreMerge, FinalReading):
    """SQLite (WAL) store of judgments; safe for one writer process at a time plus any number of readers.

    `JudgmentStore(path)` opens (or creates) a store for writing, `readonly=True` for reading only; ``":memory:"``
    keeps nothing. `reserve`: bytes held back beside the file of a store opened for writing, freed when its disk
    fills so that the answers in hand can still be written (0 keeps none).
    """

    def __enter__(self) -> JudgmentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def open_store(store: JudgmentStore | str | Path, *, readonly: bool = False) -> Iterator[JudgmentStore]:
    """A store given as an open `JudgmentStore` (left open) or a path (opened here, closed after)."""
    if isinstance(store, JudgmentStore):
        yield store
        return
    with JudgmentStore(store, readonly=readonly) as opened:
        yield opened
