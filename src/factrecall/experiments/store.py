"""The results store: one SQLite file (WAL) holding every point of every sweep and figure.

A row is keyed by (sweep, scale, point_key), where ``point_key`` is the point's canonical JSON (sorted keys,
``None`` values dropped), so a resumed sweep never duplicates a point. Each row holds the resolved point, the
seeds, the package versions, the device, the metrics (the run's JSON record), the status (``done``, or
``failed`` with the reason) and the timings. Only the coordinating process writes, one transaction per point,
so a kill -9 loses at most the point being computed.

Paper: SPEC §8 (scale-out: the same sweep in-process, in processes or on Ray, one store).
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any, NamedTuple

from factrecall.core.errors import ConfigError, check
from factrecall.core.io import atomic_file, atomic_write, csv_text

SCHEMA_VERSION = 1
STATUSES = ("done", "failed")
COLUMNS = (
    "id",
    "sweep",
    "scale",
    "experiment",
    "point_key",
    "status",
    "reason",
    "point",
    "seeds",
    "metrics",
    "versions",
    "device",
    "host",
    "started_utc",
    "finished_utc",
    "seconds",
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sweep TEXT NOT NULL,
    scale TEXT NOT NULL,
    experiment TEXT NOT NULL,
    point_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    reason TEXT,
    point TEXT NOT NULL,
    seeds TEXT NOT NULL,
    metrics TEXT NOT NULL,
    versions TEXT NOT NULL,
    device TEXT NOT NULL,
    host TEXT NOT NULL,
    started_utc TEXT NOT NULL,
    finished_utc TEXT NOT NULL,
    seconds REAL NOT NULL,
    UNIQUE (sweep, scale, point_key)
);
"""
_JSON = ("point", "seeds", "metrics", "versions")


class Record(NamedTuple):
    """One finished point, as the coordinating process writes it."""

    sweep: str
    scale: str
    experiment: str
    point: dict[str, Any]
    status: str
    reason: str | None
    metrics: dict[str, Any]
    versions: dict[str, Any]
    device: str
    host: str
    started_utc: str
    finished_utc: str
    seconds: float


# fields added to a point model after stores were written with it, each at the default that does what the
# point did before the field existed: there the key leaves it out, so a resumed sweep finds an older store's
# points (a sweep's points are keyed resolved, every field written out)
ADDED_DEFAULTS: dict[str, Any] = {"early_stops": True}


def point_key(point: dict[str, Any]) -> str:
    """Canonical JSON of a point: sorted keys, no spaces, ``None`` values dropped (TOML has no null), and
    the fields of :data:`ADDED_DEFAULTS` dropped at their defaults.

    >>> point_key({"m": None, "d": 8, "seeds": [0, 1], "early_stops": True})
    '{"d":8,"seeds":[0,1]}'
    >>> point_key({"d": 8, "early_stops": False})
    '{"d":8,"early_stops":false}'
    """
    kept = {
        k: v
        for k, v in point.items()
        if v is not None and not (k in ADDED_DEFAULTS and v == ADDED_DEFAULTS[k])
    }
    return json.dumps(kept, sort_keys=True, separators=(",", ":"))


def _seeds(point: dict[str, Any]) -> list[Any]:
    if "seeds" in point:
        return list(point["seeds"])
    return [point["seed"]] if "seed" in point else []


def _clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become strings (SQLite JSON and Parquet stay valid)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class Store:
    """A results store on disk; use as a context manager. Opening creates the file and its tables.

    Raises:
        ConfigError: the file exists but is not a factrecall store of this schema version.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            with self._transaction():
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        self.db.execute(stmt)
                self.db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{self.path} is not a factrecall results store ({exc})") from exc
        version = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        check(
            version == str(SCHEMA_VERSION),
            f"{self.path} has store schema version {version}; this factrecall reads version "
            f"{SCHEMA_VERSION}. Export it with the factrecall that wrote it, or use another --store",
        )

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed into the main file)."""
        self.db.close()

    def _transaction(self) -> Any:
        db = self.db

        class _Tx:
            def __enter__(self) -> None:
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, kind: object, *rest: object) -> None:
                db.execute("COMMIT" if kind is None else "ROLLBACK")

        return _Tx()

    def record(self, rec: Record) -> None:
        """Write one point atomically; a point already there (a failed one being retried) is replaced."""
        check(rec.status in STATUSES, f"status must be one of {STATUSES}, got {rec.status!r}")
        values = (
            rec.sweep,
            rec.scale,
            rec.experiment,
            point_key(rec.point),
            rec.status,
            rec.reason,
            json.dumps(_clean(rec.point)),
            json.dumps(_clean(_seeds(rec.point))),
            json.dumps(_clean(rec.metrics), default=str),
            json.dumps(rec.versions),
            rec.device,
            rec.host,
            rec.started_utc,
            rec.finished_utc,
            rec.seconds,
        )
        with self._transaction():
            self.db.execute(
                f"INSERT INTO results ({', '.join(COLUMNS[1:])}) VALUES ({', '.join('?' * 15)}) "
                "ON CONFLICT (sweep, scale, point_key) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[3:] if c != "point_key"),
                values,
            )

    def statuses(self, sweep: str, scale: str) -> dict[str, str]:
        """point_key → status of every point of (sweep, scale) already stored."""
        cur = self.db.execute(
            "SELECT point_key, status FROM results WHERE sweep = ? AND scale = ?", (sweep, scale)
        )
        return dict(cur.fetchall())

    def rows(
        self, sweep: str | None = None, scale: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """Stored rows (JSON columns decoded), in the order they were first written."""
        where, args = [], []
        for col, val in (("sweep", sweep), ("scale", scale), ("status", status)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        sql = f"SELECT {', '.join(COLUMNS)} FROM results"
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        return [self._decode(r) for r in self.db.execute(sql, args)]

    @staticmethod
    def _decode(row: tuple[Any, ...]) -> dict[str, Any]:
        out = dict(zip(COLUMNS, row, strict=True))
        for col in _JSON:
            out[col] = json.loads(out[col])
        return out

    def sweeps(self) -> list[tuple[str, str, int, int]]:
        """(sweep, scale, points done, points failed) for every sweep in the store."""
        cur = self.db.execute(
            "SELECT sweep, scale, SUM(status = 'done'), SUM(status = 'failed') FROM results "
            "GROUP BY sweep, scale ORDER BY MIN(id)"
        )
        return [(s, sc, int(d), int(f)) for s, sc, d, f in cur.fetchall()]


# ------------------------------------------------------------------------------------------------ export


def flat(row: dict[str, Any]) -> dict[str, Any]:
    """One flat record of a stored row: its columns, then ``point.<key>`` and ``metrics.<key>``."""
    out = {k: row[k] for k in COLUMNS if k not in _JSON}
    out["versions"] = json.dumps(row["versions"], sort_keys=True)
    out["seeds"] = json.dumps(row["seeds"])
    for prefix in ("point", "metrics"):
        for k, v in row[prefix].items():
            out[f"{prefix}.{k}"] = json.dumps(v) if isinstance(v, list | dict) else v
    return out


def _columns(records: list[dict[str, Any]]) -> list[str]:
    cols: dict[str, None] = {}
    for r in records:
        cols.update(dict.fromkeys(r))
    return list(cols)


def _rows_of(store: Store, sweep: str | None) -> list[dict[str, Any]]:
    rows = store.rows(sweep=sweep)
    check(bool(rows), f"no results{f' for sweep {sweep!r}' if sweep else ''} in {store.path}")
    return [flat(r) for r in rows]


def export_csv(store: Store, path: Path, sweep: str | None = None) -> Path:
    """Every stored row (or one sweep's) as CSV, one line per point; lists and tables as JSON."""
    atomic_write(path, csv_text(_rows_of(store, sweep), skip=()))
    return path


def _arrow_column(values: list[Any]) -> list[Any]:
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {int} or kinds <= {float, int} or kinds <= {bool} or kinds <= {str}:
        return [float(v) if kinds == {float, int} and v is not None else v for v in values]
    return [None if v is None else json.dumps(v) if not isinstance(v, str) else v for v in values]


def export_parquet(store: Store, path: Path, sweep: str | None = None) -> Path:
    """Every stored row (or one sweep's) as Parquet; a column of mixed types is stored as strings."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = _rows_of(store, sweep)
    table = pa.table({c: _arrow_column([r.get(c) for r in records]) for c in _columns(records)})
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp)
    return path
