"""The index's queries use its secondary indexes (a schema change that makes SQLite scan the
chain's whole history instead fails here, not in a benchmark)."""

from __future__ import annotations

import sqlite3

import pytest

from agentwallet.audit.schema import EVENT_COLUMNS, SCHEMA


@pytest.mark.parametrize(
    ("where", "params", "index"),
    [
        ("agent IN (?,?)", ("a", "b"), "events_agent"),
        ("agent = ?", ("a",), "events_agent"),
        ("request_id = ?", (3,), "events_request"),
        ("recipient = ?", ("r",), "events_recipient"),
        ("name IN (?)", ("PaymentExecuted",), "events_name"),
        ("block_number >= ?", (5,), "events_vault"),
    ],
)
def test_queries_search_the_matching_index(
    where: str, params: tuple[object, ...], index: str
) -> None:
    db = sqlite3.connect(":memory:")
    db.executescript(SCHEMA)
    plan = " ".join(
        r[3]
        for r in db.execute(
            f"EXPLAIN QUERY PLAN SELECT {EVENT_COLUMNS} FROM events "
            f"WHERE chain_id = ? AND vault IN (?) AND {where}",
            (1, "v", *params),
        )
    )
    assert f"USING INDEX {index} " in plan, plan
