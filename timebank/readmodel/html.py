"""The period report as one self-contained, printable HTML file with charts.

Charts are drawn with matplotlib as SVG, inlined in the page (text kept as
text, so it can be read, searched and printed sharply); the page is filled
in by a Jinja2 template that escapes every value. Nothing is fetched from
the network when the file is opened. Both libraries are the optional extra
``timebank[charts]``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date
from importlib import resources
from typing import Any

from timebank.domain.errors import ChartsUnavailable
from timebank.readmodel.report import NO_AREA, NO_CATEGORY, Report, hours

__all__ = ["render_html"]


_LABELS = (
    ("hours_exchanged", "hours exchanged"),
    ("exchanges", "exchanges"),
    ("transactions", "transactions"),
    ("individual_members", "individual members"),
    ("organisations", "organisations"),
    ("new_members", "new members"),
    ("active_members", "active members"),
    ("inactive_members", "inactive for 90 days"),
    ("donated_to_pot_hours", "hours donated to the pot"),
    ("pot_funded_hours", "hours paid for by the pot"),
    ("pot_balance_hours", "hours left in the pot"),
    ("connections", "connections"),
    ("new_connections", "new connections"),
    ("members_with_one_connection", "members with one connection"),
)
_BAR, _LINE, _MUTED = "#1d70b8", "#d4351c", "#505a5f"
#: New members' bars: a solid grey of 4.6:1 against the white page (WCAG's
#: 3:1 for the parts of a chart; the half-transparent dark grey was 2.3:1).
_SECOND_BAR = "#6f777b"


def render_html(report: Report, *, bank_name: str, version: str, made_on: date) -> str:
    """The report as an HTML page (a string)."""
    try:
        import jinja2  # noqa: PLC0415 - the optional extra timebank[charts]
        import matplotlib as mpl  # noqa: PLC0415
        from markupsafe import Markup  # noqa: PLC0415 - comes with jinja2
    except ImportError as e:
        raise ChartsUnavailable(
            f"the HTML report needs {e.name}: pip install 'timebank[charts]'"
        ) from None
    data = report.to_dict()
    figures = [
        {"name": name, "label": label, "value": data[name], "text": _figure_text(data[name])}
        for name, label in _LABELS
    ]
    with mpl.rc_context(
        {"svg.fonttype": "none", "font.family": "sans-serif", "font.size": 10,
         "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "timebank"}
    ):  # fmt: skip
        charts = {
            "by_month": _svg(_by_month(report), "chart-by-month"),
            "by_category": _svg(_by_category(report), "chart-by-category"),
            "members": _svg(_members(report), "chart-members"),
        }
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = environment.from_string(
        resources.files("timebank.readmodel").joinpath("templates/report.html.j2").read_text()
    )
    return template.render(
        title=f"{bank_name}: time bank report {report.start} to {report.end}",
        bank_name=bank_name,
        report=report,
        figures=figures,
        charts={k: Markup(v) for k, v in charts.items()},  # noqa: S704 - SVG matplotlib wrote, its text XML-escaped
        hours=lambda minutes: f"{hours(minutes):,}",
        version=version,
        made_on=made_on.isoformat(),
        no_category=NO_CATEGORY,
        no_area=NO_AREA,
    )


def _figure_text(value: Any) -> str:
    return f"{value:,}"


def _figure(height: float = 3.2) -> Any:
    from matplotlib.figure import Figure  # noqa: PLC0415 - see render_html

    return Figure(figsize=(8.5, height), layout="constrained")


def _hours(minutes: int) -> float:
    """Hours for drawing (from the exact 2-decimal figure; never summed)."""
    return float(hours(minutes))


def _by_month(report: Report) -> Any:
    fig = _figure()
    ax = fig.add_subplot()
    months = [m.month for m in report.by_month]
    ax.bar(months, [_hours(m.exchanged_minutes) for m in report.by_month], color=_BAR,
           label="hours")  # fmt: skip
    ax.set_ylabel("hours exchanged")
    _from_zero(ax, [_hours(m.exchanged_minutes) for m in report.by_month])
    exchanges = ax.twinx()
    exchanges.plot(months, [m.exchanges for m in report.by_month], color=_LINE, marker="o",
                   label="exchanges")  # fmt: skip
    exchanges.set_ylabel("exchanges")
    _from_zero(exchanges, [m.exchanges for m in report.by_month], whole=True)
    exchanges.spines["right"].set_visible(True)
    _thin_labels(ax, months)
    fig.legend(loc="outside upper right", ncols=2, frameon=False)
    return fig


def _by_category(report: Report) -> Any:
    rows = list(report.by_category)[:12][::-1]
    fig = _figure(max(2.0, 0.35 * len(rows) + 0.8))
    ax = fig.add_subplot()
    names = [c.category or NO_CATEGORY for c in rows]
    ax.barh(names, [_hours(c.exchanged_minutes) for c in rows], color=_BAR)
    ax.set_xlabel("hours exchanged")
    if not rows:  # no axes to read: only the words
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no exchanges in this period", ha="center", transform=ax.transAxes,
                color=_MUTED)  # fmt: skip
    return fig


def _members(report: Report) -> Any:
    fig = _figure(2.8)
    ax = fig.add_subplot()
    months = [m.month for m in report.by_month]
    ax.plot(months, [m.members for m in report.by_month], color=_BAR, marker="o",
            label="members")  # fmt: skip
    ax.bar(months, [m.new_members for m in report.by_month], color=_SECOND_BAR,
           label="new members")  # fmt: skip
    ax.set_ylabel("members")
    counts = [n for m in report.by_month for n in (m.members, m.new_members)]
    _from_zero(ax, counts, whole=True)
    _thin_labels(ax, months)
    fig.legend(loc="outside upper right", ncols=2, frameon=False)
    return fig


def _from_zero(ax: Any, values: Sequence[float], *, whole: bool = False) -> None:
    """A count or hours axis from 0 up (never below: with nothing to draw,
    matplotlib centres 0 and labels -0.04 hours), ticked in whole numbers
    when it counts things."""
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415 - see render_html

    ax.set_ylim(0, max(values, default=0) * 1.08 or 1)
    if whole:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _thin_labels(ax: Any, months: list[str]) -> None:
    """At most about 24 month labels, so that they stay readable."""
    step = max(1, len(months) // 24 + (1 if len(months) % 24 else 0))
    ax.set_xticks(range(0, len(months), step), months[::step], rotation=45, ha="right")


def _svg(fig: Any, chart: str) -> str:
    """The chart as an inline SVG that assistive technology reads as one
    image: named by its caption, described by the note that says which
    table holds its figures (``CHART-caption``, ``CHART-note`` in the page),
    rather than as a scatter of tick labels."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    svg = text[text.index("<svg") + len("<svg") :]
    return f'<svg role="img" aria-labelledby="{chart}-caption" aria-describedby="{chart}-note"{svg}'
