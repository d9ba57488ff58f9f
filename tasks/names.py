"""How a person knows a number: its business name and display phone number (and its customer),
with the id beside them; the id alone when nothing else is known. The page, the artifacts, the
audit and the alert events all name numbers through here.

Names come from the number's newest observation (`verified_name`, `display_phone_number` of the
`polls` table), else from its newest listing (the `numbers` table: `verified_name`, `name`,
`display_name`, `display_phone_number`); the customer only from the listing.
"""

from __future__ import annotations

import pandas as pd

NAME_COLUMNS = ["name", "display_phone_number", "customer_id"]
POLL_NAME_COLUMNS = ["verified_name", "display_phone_number"]  # in `polls`


def label(
    config_id: object,
    name: object = None,
    phone: object = None,
    customer: object = None,
) -> str:
    """ "Acme Corp · +1 555-123-4567 · customer c-9 (65f4...)", or the id alone."""
    known = [str(value) for value in (name, phone) if _given(value)]
    if _given(customer):
        known.append(f"customer {customer}")
    return f"{' · '.join(known)} ({config_id})" if known else str(config_id)


def _given(value: object) -> bool:
    return value is not None and not pd.isna(value) and str(value).strip() != ""


def observed_names(polls: pd.DataFrame) -> pd.DataFrame:
    """Per number (index `config_id`), the newest known `verified_name` and
    `display_phone_number` among `polls` (a missing value in a newer poll does not hide an older
    one)."""
    present = [c for c in POLL_NAME_COLUMNS if c in polls]
    if polls.empty or not present:
        return pd.DataFrame(columns=POLL_NAME_COLUMNS, index=pd.Index([], name="config_id"))
    ordered = polls.sort_values("polled_at", kind="stable")
    found = ordered.groupby(ordered["config_id"].astype("string"))[present].last()
    return found.reindex(columns=POLL_NAME_COLUMNS)


def number_names(
    ids: pd.Series | list[str], observed: pd.DataFrame, listed: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per id: `config_id, name, display_phone_number, customer_id, label`.
    `observed` is `observed_names(...)`; `listed` the `numbers` table (any rows, any age)."""
    unique = pd.Series(ids, dtype="string").drop_duplicates().reset_index(drop=True)
    frame = pd.DataFrame({"config_id": unique})
    seen = observed.reindex(frame["config_id"])
    attributes = _listed(listed).reindex(frame["config_id"])
    frame["name"] = _first(seen["verified_name"], *(attributes[c] for c in LISTED_NAMES))
    frame["display_phone_number"] = _first(
        seen["display_phone_number"], attributes["display_phone_number"]
    )
    frame["customer_id"] = attributes["customer_id"].to_numpy()
    shown = ("config_id", "name", "display_phone_number", "customer_id")
    # each column as a list: an Arrow-backed column's own iteration is value by value, 10 x slower
    frame["label"] = [label(*row) for row in zip(*(frame[c].tolist() for c in shown), strict=True)]
    return frame


LISTED_NAMES = ("verified_name", "name", "display_name")
LISTED_COLUMNS = [*LISTED_NAMES, "display_phone_number", "customer_id"]


def _listed(listed: pd.DataFrame | None) -> pd.DataFrame:
    """The newest listing of each number, indexed by `config_id`."""
    if listed is None or listed.empty:
        return pd.DataFrame(columns=LISTED_COLUMNS, index=pd.Index([], name="config_id"))
    newest = listed.sort_values("listed_at", kind="stable").drop_duplicates(
        "config_id", keep="last"
    )
    return newest.set_index(newest["config_id"].astype("string")).reindex(columns=LISTED_COLUMNS)


def _first(*candidates: pd.Series) -> pd.Series:
    """Element-wise the first non-empty value of the candidates (all aligned on one index)."""
    result = pd.Series([pd.NA] * len(candidates[0]), dtype="string")
    for candidate in candidates:
        values = pd.Series(candidate.to_numpy(), dtype="string").str.strip().replace("", pd.NA)
        result = result.fillna(values)
    return result
