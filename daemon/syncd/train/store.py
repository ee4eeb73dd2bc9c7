"""Run records and the outputs already fetched, in the state database's own connection.

Owns two tables next to the mirror's index and the snapshot history (same file, same
lock, same crash-safety): ``train_runs`` (one row per run: its project and state as
columns, the whole ``RunRecord`` as JSON, so fields can be added without a migration)
and ``train_outputs`` (run, output name → size fetched, so a restart never fetches a file
twice).  Run ids are ``r<seq>`` with an AUTOINCREMENT sequence: never reused, even after
a row is gone, so a run id names one run for good.

Every change is one read-modify-write transaction (``BEGIN IMMEDIATE``), so the daemon's
follower and a CLI (``syncd runs stop``) never overwrite each other's fields, and a run
that has ended is never moved back to an active state.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from ..db.statedb import StateDB
from .model import ACTIVE, ENDED, OUTPUTS_PENDING, RunRecord, TrainError

SCHEMA = """
CREATE TABLE IF NOT EXISTS train_runs(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    state TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS train_runs_by_project ON train_runs(project, seq);
CREATE TABLE IF NOT EXISTS train_outputs(
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY(seq, name)
) WITHOUT ROWID;
"""

_RUN_ID = re.compile(r"r?(\d+)")


def parse_run_id(text: str) -> int:
    """``r12`` (or ``12``) → 12; a TrainError for anything else."""
    match = _RUN_ID.fullmatch(text.strip())
    if match is None:
        raise TrainError(f"{text!r} is not a run id", "run ids look like r12 (see `syncd runs`)")
    return int(match.group(1))


class RunStore:
    """The run tables of one state database (every project's runs)."""

    def __init__(self, db: StateDB) -> None:
        self.db = db
        with db.transaction() as c:
            for statement in (s.strip() for s in SCHEMA.split(";")):
                if statement:
                    c.execute(statement)

    # --- runs ----------------------------------------------------------------------------

    def create(self, record: RunRecord, folder: Callable[[str], str]) -> RunRecord:
        """Insert ``record`` under a new sequence number; ``folder(run_id)`` names its folder."""
        with self.db.transaction() as c:
            cur = c.execute(
                "INSERT INTO train_runs(project, state, data) VALUES(?, ?, '{}')",
                (record.project, record.state),
            )
            seq = int(cur.lastrowid or 0)
            made = record.replace(seq=seq, folder=folder(f"r{seq}"))
            c.execute(
                "UPDATE train_runs SET data = ? WHERE seq = ?", (json.dumps(made.to_json()), seq)
            )
        return made

    def get(self, seq: int) -> RunRecord | None:
        with self.db.transaction(write=False) as c:
            row = c.execute("SELECT data FROM train_runs WHERE seq = ?", (seq,)).fetchone()
        return RunRecord.from_json(json.loads(row[0])) if row else None

    def find(self, run_id: str) -> RunRecord:
        record = self.get(parse_run_id(run_id))
        if record is None:
            raise TrainError(f"there is no run {run_id}", "`syncd runs` lists them")
        return record

    def update(self, seq: int, **changes: Any) -> RunRecord:
        """Change some fields. Once a run has ended, an update that sets a state again keeps
        the ending (state, reason, time, outputs)."""
        with self.db.transaction() as c:
            row = c.execute("SELECT data FROM train_runs WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                raise TrainError(f"there is no run r{seq}")
            current = RunRecord.from_json(json.loads(row[0]))
            if current.state in ENDED and "state" in changes:
                # How a run ended is written once: a late poll (or a second ending) never
                # undoes `syncd runs stop` or rewrites its reason.
                for key in ("state", "failure", "finished_at", "outputs"):
                    changes.pop(key, None)
            made = current.replace(**changes)
            c.execute(
                "UPDATE train_runs SET state = ?, data = ? WHERE seq = ?",
                (made.state, json.dumps(made.to_json()), seq),
            )
        return made

    def runs(self, project: str | None = None, limit: int | None = None) -> list[RunRecord]:
        """Newest first."""
        sql = "SELECT data FROM train_runs"
        args: tuple[Any, ...] = ()
        if project is not None:
            sql, args = sql + " WHERE project = ?", (project,)
        sql += " ORDER BY seq DESC" + (f" LIMIT {int(limit)}" if limit else "")
        with self.db.transaction(write=False) as c:
            rows = c.execute(sql, args).fetchall()
        return [RunRecord.from_json(json.loads(r[0])) for r in rows]

    def needing_work(self, project: str) -> list[RunRecord]:
        """Runs to follow or whose outputs are still to fetch, oldest first."""
        marks = ", ".join("?" * len(ACTIVE))
        with self.db.transaction(write=False) as c:
            rows = c.execute(
                f"SELECT data FROM train_runs WHERE project = ? AND (state IN ({marks}) "
                "OR json_extract(data, '$.outputs') = ?) ORDER BY seq",
                (project, *ACTIVE, OUTPUTS_PENDING),
            ).fetchall()
        return [RunRecord.from_json(json.loads(r[0])) for r in rows]

    def kernels_to_tidy(self, project: str, keep: int) -> list[RunRecord]:
        """Ended runs, outputs home, whose kernel is still on Kaggle, past the newest ``keep``."""
        done = [
            r
            for r in self.runs(project)
            if r.state in ENDED and r.outputs != OUTPUTS_PENDING and r.version is not None
        ]
        return [r for r in done[keep:] if not r.kernel_deleted]

    # --- outputs -------------------------------------------------------------------------

    def fetched(self, seq: int) -> dict[str, int]:
        """Output name → size, for the files of run ``seq`` already brought home."""
        with self.db.transaction(write=False) as c:
            rows = c.execute("SELECT name, size FROM train_outputs WHERE seq = ?", (seq,))
            return {name: size for name, size in rows.fetchall()}

    def mark_fetched(self, seq: int, name: str, size: int) -> None:
        with self.db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO train_outputs VALUES(?, ?, ?)", (seq, name, size))
