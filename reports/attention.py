"""What needs attention at the end of the period, and what changed since the day before.

An observation is *known* when its status is ranked (healthy, degraded, unhealthy; `error`
bodies and failed polls say nothing about the number). A known observation is *in trouble*
when any of TROUBLES holds; otherwise it is *good*. A number needs attention when its newest
known observation before the end is in trouble: since its first troubled observation after its
last good one (or since its first one read, when no good one was read), ordered by its worst
trouble, then by how long.

The engine finds them (`sql/known_observations.sql`, `newest_known.sql`, `needs_attention.sql`,
`state_moves.sql`, with TROUBLES below as SQL); this module orders them and says what changed,
in words.
"""

from __future__ import annotations

import pandas as pd

from kapso_health.reports.engine import sql_literal as _sql
from kapso_health.tasks.vocabulary import (
    ASPECTS,
    BLOCKED,
    LIMITED,
    STATE_COLUMNS,
    TROUBLED_PHONE_STATUSES,
    UNHEALTHY,
    WORST_RATING,
    worse,
)

# (how it reads, when it holds as SQL over a `polls` row), worst first: the index is the severity.
TROUBLES: tuple[tuple[str, str], ...] = (
    ("down", f"status = {_sql(UNHEALTHY)}"),
    (f"messaging {BLOCKED}", f"can_send_message = {_sql(BLOCKED)}"),
    (
        "phone " + "/".join(sorted(TROUBLED_PHONE_STATUSES)),
        f"upper(phone_status) IN ({', '.join(map(_sql, sorted(TROUBLED_PHONE_STATUSES)))})",
    ),
    (f"rating {WORST_RATING}", f"quality_rating = {_sql(WORST_RATING)}"),
    (f"messaging {LIMITED}", f"can_send_message = {_sql(LIMITED)}"),
    ("webhook not verified", "passed_webhook_verified = false"),
)


def severity_sql() -> str:
    """SQL: the index of an observation's worst trouble; null when it has none."""
    cases = " ".join(f"WHEN {test} THEN {index}" for index, (_, test) in enumerate(TROUBLES))
    return f"CASE {cases} END"


def problems_sql() -> str:
    """SQL: every trouble of an observation, worst first, comma-separated ('' when none)."""
    each = ", ".join(f"CASE WHEN {test} THEN {_sql(name)} END" for name, test in TROUBLES)
    return f"concat_ws(', ', {each})"


ATTENTION_COLUMNS = [
    "config_id",
    "project",
    "severity",
    "problems",
    "since",
    "since_known",
    "seconds",
    "checked_at",
    "polled_at",
    *STATE_COLUMNS,
    "last_good_at",
    "last_good_status",
]
CHANGE_KINDS = ("new incident", "downgrade", "recovery", "upgrade")  # the order listed
CHANGE_COLUMNS = ["config_id", "project", "kind", "what"]


def worst_first(attention: pd.DataFrame) -> pd.DataFrame:
    """The numbers needing attention (`sql/needs_attention.sql`) in the order listed: worst
    trouble first, then longest, then by id."""
    if attention.empty:
        return pd.DataFrame(columns=ATTENTION_COLUMNS)
    ordered = attention.sort_values(["severity", "seconds", "config_id"], ascending=[1, 0, 1])
    return ordered[ATTENTION_COLUMNS].reset_index(drop=True)


def changes_since(moves: pd.DataFrame) -> pd.DataFrame:
    """What changed since the day before, from `sql/state_moves.sql` (per number whose
    states moved: `old_<column>` and `new_<column>` for each state column and `severity`): a
    new incident (good → in trouble), a recovery (the way back), else a downgrade or an
    upgrade of an aspect; `what` says which aspects, how."""
    rows = []
    columns = list(moves.columns)
    # each column as a list: an Arrow-backed column's own iteration is value by value, 10 x slower
    for row in zip(*(moves[c].tolist() for c in columns), strict=True):
        move = dict(zip(columns, row, strict=True))
        moved = [
            (aspect, direction, move[f"old_{column}"], move[f"new_{column}"])
            for aspect, (column, _) in ASPECTS.items()
            if (direction := worse(aspect, move[f"old_{column}"], move[f"new_{column}"]))
            is not None
        ]
        was, now_troubled = pd.notna(move["old_severity"]), pd.notna(move["new_severity"])
        if was != now_troubled:
            kind = "new incident" if now_troubled else "recovery"
        elif moved:
            kind = "downgrade" if any(direction for _, direction, _, _ in moved) else "upgrade"
        else:
            continue
        what = "; ".join(f"{aspect} {a} → {b}" for aspect, _, a, b in moved) or move["problems"]
        rows.append((move["config_id"], move["project"], kind, what))
    frame = pd.DataFrame(rows, columns=CHANGE_COLUMNS)
    order = frame["kind"].map(CHANGE_KINDS.index)
    return frame.assign(_order=order).sort_values(["_order", "config_id"]).drop(columns="_order")
