"""Stage verdicts: what a cascade derived from the records under its thresholds, fusion and routing.

One row per (query_id, stage, view_hash), where `view_hash` covers the call hash, the stage's post-processing
settings and the view of the stage above. Deriving costs nothing, so changing a threshold only rewrites this
table. A runner first writes a `pending` row for every instance a stage must still call the judge for, replaced by
the derived verdict as the answer arrives (`hardneg.judging.store.final` reads them).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator

from hardneg.judging.store.connection import StoreConnection, where
from hardneg.judging.store.schema import decode_row, dump_json
from hardneg.judging.verdicts import StageVerdict

# The status of a verdict row a runner writes before calling the judge: the stage has not judged the instance yet.
PENDING = "pending"

VERDICT_COLUMNS = (
    "query_id, stage, view_hash, config_hash, judge_name, docids, status, reason, better, worse, scores, "
    "raw_scores, routed, updated_at"
)
# JSON columns, and the type an empty one reads as (None: it stays None)
JSON_COLUMNS = {"docids": list, "better": list, "worse": list, "scores": None, "raw_scores": None, "routed": None}


def row_to_verdict(row: sqlite3.Row) -> StageVerdict:
    return decode_row(StageVerdict, row, JSON_COLUMNS)


class Verdicts(StoreConnection):
    """The store's verdicts table (see the module docstring)."""

    def put_verdicts(self, verdicts: Iterable[StageVerdict], *, delete: Iterable[tuple[str, int, str]] = ()) -> None:
        """Write derived verdicts (and drop stale ones: (query_id, stage, view_hash)) in one transaction.

        The flags of a verdict derived from a score record are also written to that record's better/worse, so
        that readers of raw records see the latest flags (a verdict judge's own lists are never touched).
        """
        now = time.time()
        with self._transaction() as conn:
            for qid, stage, view in delete:
                conn.execute(
                    "DELETE FROM verdicts WHERE query_id=? AND stage=? AND view_hash=?", (qid, int(stage), view)
                )
            for v in verdicts:
                v.updated_at = now
                conn.execute(
                    f"INSERT OR REPLACE INTO verdicts ({VERDICT_COLUMNS}) VALUES ({', '.join('?' * 14)})",
                    (
                        v.query_id,
                        int(v.stage),
                        v.view_hash,
                        v.config_hash,
                        v.judge_name,
                        dump_json(v.docids),
                        v.status,
                        v.reason,
                        dump_json(v.better),
                        dump_json(v.worse),
                        dump_json(v.scores),
                        dump_json(v.raw_scores),
                        dump_json(v.routed),
                        now,
                    ),
                )
                if v.status == "ok" and v.raw_scores is not None:
                    conn.execute(
                        "UPDATE judgments SET better=?, worse=? WHERE query_id=? AND stage=? AND config_hash=? "
                        "AND docset='' AND status='ok'",
                        (dump_json(v.better), dump_json(v.worse), v.query_id, int(v.stage), v.config_hash),
                    )

    def get_verdict(self, query_id: str, stage: int, view_hash: str) -> StageVerdict | None:
        """The stage's derived verdict of the instance under the view; None when there is none (or the stage has
        not judged it yet: a `pending` row)."""
        row = self._conn.execute(
            f"SELECT {VERDICT_COLUMNS} FROM verdicts WHERE query_id=? AND stage=? AND view_hash=? AND status!=?",
            (str(query_id), int(stage), view_hash, PENDING),
        ).fetchone()
        return None if row is None else row_to_verdict(row)

    def iter_verdicts(
        self, stage: int | None = None, view_hash: str | None = None, *, include_pending: bool = False
    ) -> Iterator[StageVerdict]:
        """Derived verdicts (`pending` rows, which carry none, only with `include_pending`)."""
        filters, args = where({"stage": None if stage is None else int(stage), "view_hash": view_hash})
        if not include_pending:
            filters, args = f" AND status!=?{filters}", [PENDING, *args]
        sql = f"SELECT {VERDICT_COLUMNS} FROM verdicts WHERE 1=1{filters} ORDER BY stage, query_id"
        return self._pages(sql, args, row_to_verdict)
