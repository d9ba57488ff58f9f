"""The report page: self-contained, every chart drawn from the tables, text escaped."""

from __future__ import annotations

from html.parser import HTMLParser

import pandas as pd
import pytest

from kapso_health.reports import html
from kapso_health.reports.html import LISTING_ROWS, RATING_COLOURS, _listing, render_report
from kapso_health.reports.timeline import Policy


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Collector:
    collector = Collector()
    collector.feed(page)
    return collector


def test_page_is_self_contained_with_one_inline_script_and_no_remote_resource(
    tables: dict[str, pd.DataFrame],
) -> None:
    text = render_report("Report", tables)
    page = parse(text)
    assert not [t for t, _ in page.tags if t in ("link", "img", "iframe")]
    assert not [a for _, a in page.tags for v in a.values() if v and "://" in v]
    scripts = [a for t, a in page.tags if t == "script"]
    assert scripts == [{}]  # inline, no src
    script = text.split("<script>", 1)[1].split("</script>", 1)[0]
    assert not any(word in script for word in ("://", "fetch", "XMLHttpRequest", "import"))


def test_heatmaps_have_a_cell_per_number_and_day_coloured_from_the_tables(
    tables: dict[str, pd.DataFrame],
) -> None:
    text = render_report("Report", tables)
    page = parse(text)
    cells = [a for t, a in page.tags if t == "rect" and a.get("class") == "cell"]
    assert len(cells) == 2 * 2 * 2  # two heatmaps, two numbers, two days
    assert "Both heatmaps" not in text  # every number drawn: no note
    fills = [c["fill"] for c in cells]
    red, green = "#d0393e", "#2e9d52"  # 0% and 100% available
    # rows: "bad<script>", "good"; columns: day 1, day 2
    assert fills[:4] == [red, green, green, green]
    assert fills[4:] == [
        RATING_COLOURS["RED"],
        RATING_COLOURS["RED"],
        RATING_COLOURS["GREEN"],
        RATING_COLOURS["GREEN"],
    ]


def test_trend_has_a_point_per_day_and_worst_number_comes_first(
    tables: dict[str, pd.DataFrame],
) -> None:
    page = parse(render_report("Report", tables))
    assert len([t for t, _ in page.tags if t == "circle"]) == 2
    text = " ".join(page.text).split("Worst numbers", 1)[1]
    assert text.index("bad<script>") < text.index("good")  # escaped, and listed worst first
    downgrade = (
        "<tr><td>2026-03-01 10:15</td><td>bad&lt;script&gt;</td><td>quality_rating</td>"
        "<td>GREEN</td><td>RED</td></tr>"
    )
    assert render_report("Report", tables).count(downgrade) == 1  # the downgrade is listed


def test_beyond_the_heatmap_rows_the_heatmaps_draw_the_least_available_numbers(
    tables: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(html, "HEATMAP_ROWS", 1)
    text = render_report("Report", tables)
    cells = [a for t, a in parse(text).tags if t == "rect" and a.get("class") == "cell"]
    assert len(cells) == 2 * 1 * 2  # two heatmaps, the one number drawn, two days
    # the number down on day 1 ("bad<script>"), not the one up on both days
    assert [c["fill"] for c in cells] == ["#d0393e", "#2e9d52", *[RATING_COLOURS["RED"]] * 2]
    assert "the 1 numbers of 2 with the lowest availability" in text


def test_text_from_the_data_is_escaped(tables: dict[str, pd.DataFrame]) -> None:
    assert "bad<script>" not in render_report("Report", tables)


def test_a_long_listing_shows_its_first_rows_and_says_where_the_rest_are() -> None:
    at = pd.date_range("2026-03-01", periods=LISTING_ROWS + 5, freq="min", tz="UTC")
    frame = pd.DataFrame({"at": at, "config_id": [f"n{i}" for i in range(len(at))]})
    page = _listing(frame, ["at", "config_id"], "reports/incidents")
    assert f"The first {LISTING_ROWS:,} of {LISTING_ROWS + 5:,}" in page
    assert "reports/incidents" in page
    assert page.count("<tr>") == LISTING_ROWS + 1  # with the header row
    assert f">n{LISTING_ROWS - 1}<" in page and f">n{LISTING_ROWS}<" not in page
    short = _listing(frame.head(3), ["at", "config_id"], "reports/incidents")
    assert short.count("<tr>") == 4 and "The first" not in short


def test_the_page_states_how_long_an_observation_held(tables: dict[str, pd.DataFrame]) -> None:
    page = render_report("Report", tables, Policy(max_gap=None).gap_rule())
    assert "at most each number&#x27;s own cadence: 1.5 x its time-weighted median interval" in page
    assert page.index("id=max-gap") < page.index("class=figures")  # near the top
    assert "id=max-gap" not in render_report("Report", tables)


def test_two_projects_get_a_section_and_the_project_beside_each_number(
    two_projects: dict[str, pd.DataFrame],
) -> None:
    page = render_report("Report", two_projects)
    assert page.index("id=projects") < page.index("id=trend")  # near the top
    # by hand: alpha ("good") up 10:00-10:30 both days; beta ("bad") down 10:00-10:45 on day 1
    # (one incident into day 2, one downgrade), up 10:00-10:30 on day 2
    assert (
        "<tr><td>alpha</td><td>1</td><td class=n>100.0%</td><td class=n>2.1%</td><td>0</td>"
        "<td class=n>0.0</td><td>0</td></tr>"
    ) in page
    assert (
        "<tr><td>beta</td><td>1</td><td class=n>50.0%</td><td class=n>2.6%</td><td>2</td>"
        "<td class=n>0.8</td><td>1</td></tr>"
    ) in page
    assert "<tr><td>beta</td><td>bad&lt;script&gt;</td><td class=n>50.0%</td>" in page  # worst
    assert "<td>2026-03-01 10:15</td><td>beta</td><td>bad&lt;script&gt;</td>" in page  # downgrade
    assert page.count(">beta · bad&lt;script&gt;<title>") == 2  # a row label in both heatmaps


def test_with_one_project_the_page_has_no_project_section_or_column(
    tables: dict[str, pd.DataFrame],
) -> None:
    page = render_report("Report", tables)
    assert set(tables["availability_daily"]["project"]) == {"default"}
    assert "id=projects" not in page and "<th>project</th>" not in page and " · " not in page
