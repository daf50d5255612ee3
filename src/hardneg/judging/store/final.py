"""Final verdicts: per instance, the verdict of the last stage of the current cascade run that judged it.

The store remembers the cascade run whose verdicts are read by default (`set_current_run`). An instance a stage of
that run has not judged yet although it must (`pending`: a run killed, or stopped by a budget, at any stage) has
no final verdict, so a partial run's final verdicts are refused (`PartialCascade`) instead of being read from an
earlier stage, unless partial verdicts are allowed.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hardneg.errors import HardnegError
from hardneg.judging.store.schema import load_json
from hardneg.judging.store.verdicts import PENDING, Verdicts
from hardneg.judging.verdicts import FinalVerdict, Status

_CURRENT_RUN = "current_run"


class PartialCascade(HardnegError):
    """Final verdicts asked of a cascade run that has not judged everything it must (killed, or stopped by a
    budget, at any stage): `pending` maps each such query_id to the stage that has not judged it yet, `final`
    counts the instances that do have a final verdict (None: not counted)."""

    def __init__(self, path: Path | str, pending: Mapping[str, int], *, final: int | None = None) -> None:
        self.pending = dict(pending)
        self.final = final
        counts = Counter(self.pending.values())
        self.stage = min(counts)
        parts = ", ".join(f"{n} instance(s) routed to stage {k}" for k, n in sorted(counts.items()))
        summary = f"{parts} {'is' if len(self.pending) == 1 else 'are'} not judged yet"
        if final is not None:
            summary = f"unfinished cascade run: {final} instance(s) have a final verdict; {summary}"
        self.summary = summary
        super().__init__(f"{path}: {self.summary}: resume the judge run, or allow partial verdicts (allow_partial)")


class FinalVerdicts(dict[str, FinalVerdict]):
    """Final verdicts by query_id; `pending` (query_id -> stage) lists the instances left out because a stage
    has not judged them yet (only ever non-empty when partial verdicts were allowed)."""

    def __init__(
        self, verdicts: Mapping[str, FinalVerdict] | None = None, pending: Mapping[str, int] | None = None
    ) -> None:
        super().__init__(verdicts or {})
        self.pending: dict[str, int] = dict(pending or {})


def final_verdict(
    query_id: str, stage: int, status: Status, reason: str, better: list[str] | None, worse: list[str] | None
) -> FinalVerdict:
    """A failed or unparsed verdict lists no documents: its status alone keeps relabelling off the instance."""
    ok = status == "ok"
    return FinalVerdict(query_id, stage, (better or []) if ok else [], (worse or []) if ok else [], status, reason)


class FinalReading(Verdicts):
    """The current cascade run, what it has left pending, and its final verdicts (see the module docstring)."""

    def set_current_run(self, run: Mapping[str, Any]) -> None:
        """Record the cascade run whose verdicts `final_verdicts()` returns by default.

        `run`: {"name": ..., "views": {stage: view_hash}, "calls": {stage: config_hash}}.
        """
        self._write(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            (_CURRENT_RUN, json.dumps({**run, "at": time.time()}, default=str)),
        )

    def current_run(self) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (_CURRENT_RUN,)).fetchone()
        if row is None:
            return None
        run = json.loads(row[0])
        for key in ("views", "calls"):
            run[key] = {int(k): v for k, v in (run.get(key) or {}).items()}
        run.setdefault("stages", max(run["views"], default=0))
        return run

    def pending(self, stages: Mapping[int, str] | None = None) -> dict[str, int]:
        """query_id -> the first stage that has not judged it yet although it must (a run killed, or stopped by a
        budget, at any stage): a stage's `pending` rows (instances it had still to call the judge for), and the
        instances a stage routed on that the next stage has not judged.

        `stages` as in `final_verdicts`; without it, the current run's stages (all of its cascade, also those it
        has not started; likewise when `stages` are exactly the current run's views, as a judge report's
        `stage_hashes` are). Stores of imported verdicts (no cascade run) have nothing pending.
        """
        run = self.current_run()
        if stages:
            views = {int(k): self._resolve_view(int(k), h) for k, h in stages.items()}
            total = max(views, default=0)
            if run is not None and views == {k: run["views"].get(k) for k in views} and set(views) == set(run["views"]):
                total = max(total, int(run["stages"]))
        else:
            if run is None:
                return {}
            views = dict(run["views"])
            total = int(run["stages"])
        out: dict[str, int] = {}
        for k in sorted(views):
            if views[k] is None:
                continue
            rows = self._conn.execute(
                "SELECT query_id FROM verdicts WHERE stage=? AND view_hash=? AND status=?", (k, views[k], PENDING)
            )
            for (query_id,) in rows:
                out.setdefault(query_id, k)
            if k >= total:
                continue
            routed = {
                v.query_id for v in self.iter_verdicts(stage=k, view_hash=views[k]) if v.status == "ok" and v.routed
            }
            below = views.get(k + 1)
            judged = (
                {v.query_id for v in self.iter_verdicts(stage=k + 1, view_hash=below, include_pending=True)}
                if below
                else set()
            )
            for query_id in routed - judged:
                out.setdefault(query_id, k + 1)
        return out

    def _resolve_view(self, stage: int, chash: str) -> str | None:
        """The view to read for {stage: hash}: the hash itself when it names a view, else (a call hash) the
        current run's view of that call, else its most recently derived view; None when never derived."""
        found = self._conn.execute(
            "SELECT 1 FROM verdicts WHERE stage=? AND view_hash=? LIMIT 1", (int(stage), chash)
        ).fetchone()
        if found is not None:
            return chash
        run = self.current_run()
        if run and run["calls"].get(stage) == chash and run["views"].get(stage):
            return str(run["views"][stage])
        row = self._conn.execute(
            "SELECT view_hash FROM verdicts WHERE stage=? AND config_hash=? ORDER BY updated_at DESC LIMIT 1",
            (int(stage), chash),
        ).fetchone()
        return None if row is None else str(row[0])

    def final_verdicts(self, stages: Mapping[int, str] | None = None, *, allow_partial: bool = False) -> FinalVerdicts:
        """Per query_id the verdict of the highest stage that judged it.

        `stages` ({stage: hash}) restricts to those stages: a view hash (`CascadeReport.stage_hashes`) reads the
        verdicts that cascade derived; a call hash (`stage_summary()["config_hash"]`) reads the current run's (or
        else the latest) derivation from those records, or the records' own verdicts when no cascade derived any
        (imports). Without `stages`: the verdicts of the latest completed cascade run, plus records no cascade
        derived (imports, direct `put`s); within a stage the most recently updated wins. Score records no cascade
        derived carry no verdict and are left out.
        A last stage that failed (or could not be parsed) gives a FinalVerdict with that status, so relabelling
        never treats the instance as clean.

        An instance a stage of the run has not judged yet although it must (`pending`: the run was killed or
        stopped by a budget, at any stage) has no final verdict: by default this raises `PartialCascade` with the
        counts; with `allow_partial` those instances are left out (relabelling then passes them unchanged and
        counts them), never given an earlier stage's verdict. The result's `pending` lists them.
        """
        pending = self.pending(stages)
        rows: list[tuple[int, float, FinalVerdict]] = []
        raw_where: list[str] = []
        raw_args: list[Any] = []
        if stages:
            for stage, chash in stages.items():
                view = self._resolve_view(int(stage), chash)
                if view is not None:
                    rows.extend(self._view_rows(int(stage), view))
                else:
                    raw_where.append("(stage=? AND config_hash=?)")
                    raw_args.extend([int(stage), chash])
        else:
            run = self.current_run()
            for stage, view in (run["views"] if run else {}).items():
                rows.extend(self._view_rows(stage, view))
            # the current run's own calls are read through its views only (never raw: a record whose verdict the
            # run has not derived yet is not final)
            own = "".join(" AND NOT (stage=? AND config_hash=?)" for _ in (run["calls"] if run else {}))
            raw_args.extend(v for k, h in (run["calls"] if run else {}).items() for v in (int(k), h))
            raw_where.append(
                "(NOT EXISTS (SELECT 1 FROM verdicts v WHERE v.stage=judgments.stage "
                f"AND v.config_hash=judgments.config_hash){own})"
            )
        if raw_where:
            sql = (
                "SELECT query_id, stage, status, reason, better, worse, updated_at FROM judgments WHERE ("
                + " OR ".join(raw_where)
                + ") AND NOT (status='ok' AND better IS NULL AND worse IS NULL)"
            )
            for row in self._conn.execute(sql, raw_args):
                verdict = final_verdict(
                    row["query_id"], row["stage"], row["status"], row["reason"],
                    load_json(row["better"]), load_json(row["worse"]),
                )  # fmt: skip
                rows.append((row["stage"], row["updated_at"], verdict))
        verdicts = FinalVerdicts(pending=pending)
        # ascending (stage, time): a later row replaces an earlier one
        for _, _, verdict in sorted(rows, key=lambda r: (r[0], r[1])):
            if verdict.query_id not in pending:
                verdicts[verdict.query_id] = verdict
        if pending and not allow_partial:
            raise PartialCascade(self.path, pending, final=len(verdicts))
        return verdicts

    def _view_rows(self, stage: int, view: str) -> Iterator[tuple[int, float, FinalVerdict]]:
        for v in self.iter_verdicts(stage=stage, view_hash=view):
            yield v.stage, v.updated_at, final_verdict(v.query_id, v.stage, v.status, v.reason, v.better, v.worse)
