"""`newest_listings`: each number's newest listing, which the roll-ups and the names read."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from kapso_health.reports import engine
from kapso_health.tasks.schemas import TABLES


def listing(number: str, at: str | None, name: str) -> dict:
    return {
        "config_id": number,
        "listed_at": None if at is None else pd.Timestamp(at, tz="UTC"),
        "name": name,
    }


def newest(*listings: dict) -> dict[str, str]:
    frame = pd.DataFrame(list(listings))
    table = pa.Table.from_pandas(
        frame, schema=pa.schema([TABLES["numbers"].field(c) for c in frame])
    )
    found = engine.run("newest_listings", numbers=table)
    return dict(zip(found["config_id"], found["name"], strict=True))


def test_each_number_keeps_its_newest_listing_whatever_the_files_order() -> None:
    assert newest(
        listing("a", "2026-03-02 10:00", "renamed"),
        listing("a", "2026-03-01 10:00", "first"),
        listing("b", "2026-03-01 10:00", "only"),
        listing("a", "2026-03-01 23:00", "second"),
    ) == {"a": "renamed", "b": "only"}


def test_a_listing_without_a_time_counts_as_the_newest() -> None:
    assert newest(listing("a", "2026-03-02 10:00", "timed"), listing("a", None, "untimed")) == {
        "a": "untimed"
    }
