"""The results store: one row per (sweep, scale, point), atomic upserts, exports."""

import csv
import sqlite3

import pyarrow.parquet as pq
import pytest

from factrecall.core.errors import ConfigError
from factrecall.experiments.store import Record, Store, export_csv, export_parquet, point_key


def _rec(point, status="done", reason=None, **metrics):
    return Record(
        "s", "quick", "exp", point, status, reason, metrics, {"jax": "x"}, "cpu", "h", "t0", "t1", 1.5
    )


def test_point_key_is_canonical():
    assert point_key({"b": 1, "a": [1, 2], "c": None}) == point_key({"a": [1, 2], "b": 1})


def test_rows_are_unique_and_failed_points_can_be_replaced(tmp_path):
    with Store(tmp_path / "r.db") as store:
        store.record(_rec({"d": 4, "seeds": [0, 1]}, status="failed", reason="TrainingError: diverged"))
        store.record(_rec({"d": 8, "seeds": [0]}, capacity=12.0))
        store.record(_rec({"seeds": [0, 1], "d": 4}, capacity=5.0))  # same point, keys in another order
        rows = store.rows()
        assert [(r["point"]["d"], r["status"], r["metrics"]) for r in rows] == [
            (4, "done", {"capacity": 5.0}),
            (8, "done", {"capacity": 12.0}),
        ]
        assert rows[0]["seeds"] == [0, 1] and rows[0]["versions"] == {"jax": "x"}
        assert store.statuses("s", "quick") == {
            point_key({"d": 4, "seeds": [0, 1]}): "done",
            '{"d":8,"seeds":[0]}': "done",
        }
        assert store.sweeps() == [("s", "quick", 2, 0)]
    mode = sqlite3.connect(tmp_path / "r.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_exports_hold_one_line_per_point(tmp_path):
    with Store(tmp_path / "r.db") as store:
        store.record(_rec({"d": 4}, capacity=5.0, per_seed=[5, 6], note=float("nan")))
        store.record(_rec({"d": 8}, status="failed", reason="boom"))
        csv_rows = list(csv.DictReader(open(export_csv(store, tmp_path / "r.csv"))))
        table = pq.read_table(export_parquet(store, tmp_path / "r.parquet")).to_pylist()
    assert [r["point.d"] for r in csv_rows] == ["4", "8"]
    assert csv_rows[0]["metrics.per_seed"] == "[5, 6]" and csv_rows[1]["reason"] == "boom"
    assert [r["point.d"] for r in table] == [4, 8]
    assert table[0]["metrics.capacity"] == 5.0 and table[1]["metrics.capacity"] is None
    assert table[0]["metrics.note"] == "nan"  # non-finite numbers are kept as text, not dropped


def test_not_a_store_is_a_config_error(tmp_path):
    path = tmp_path / "junk.db"
    path.write_text("this is not sqlite " * 100)
    with pytest.raises(ConfigError, match="not a factrecall results store"):
        Store(path)


def test_other_schema_version_is_refused(tmp_path):
    Store(tmp_path / "r.db").close()
    db = sqlite3.connect(tmp_path / "r.db")
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match="schema version 99"):
        Store(tmp_path / "r.db")
