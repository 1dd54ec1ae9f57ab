"""The period report as one self-contained, printable HTML file with charts.

Charts are drawn with matplotlib as SVG, inlined in the page (text kept as
text, so it can be read, searched and printed sharply); the page is filled
in by a Jinja2 template that escapes every value. Nothing is fetched from
the network when the file is opened. Both libraries are the optional extra
``timebank[charts]``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import date
from importlib import resources
from typing import Any

from timebank.domain.errors import ChartsUnavailable
from timebank.readmodel.report import Report, hours
from timebank.readmodel.words import REPORT_WORDS

__all__ = ["render_html"]


#: The headline figures, in the order the page shows them (each labelled by
#: its ``figure_NAME`` word).
_FIGURES = (
    "hours_exchanged", "exchanges", "transactions", "individual_members", "organisations",
    "new_members", "active_members", "inactive_members", "donated_to_pot_hours",
    "pot_funded_hours", "pot_balance_hours", "connections", "new_connections",
    "members_with_one_connection",
)  # fmt: skip
_BAR, _LINE, _MUTED = "#1d70b8", "#d4351c", "#505a5f"
#: New members' bars: a solid grey of 4.6:1 against the white page (WCAG's
#: 3:1 for the parts of a chart; the half-transparent dark grey was 2.3:1).
_SECOND_BAR = "#6f777b"


def render_html(
    report: Report,
    *,
    bank_name: str,
    version: str,
    made_on: date,
    words: Mapping[str, str] = REPORT_WORDS,
) -> str:
    """The report as an HTML page (a string), in the language of ``words``
    (checked by :func:`~timebank.readmodel.words.check_words`)."""
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
        {"name": name, "label": words[f"figure_{name}"], "value": data[name],
         "text": _figure_text(data[name])}
        for name in _FIGURES
    ]  # fmt: skip
    # matplotlib reads text between two $ as mathematics (TeX): a word of a
    # translation is drawn as written, its $ a dollar sign
    drawn = {key: text.replace("$", r"\$") for key, text in words.items()}
    with mpl.rc_context(
        {"svg.fonttype": "none", "font.family": "sans-serif", "font.size": 10,
         "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "timebank"}
    ):  # fmt: skip
        charts = {
            "by_month": _svg(_by_month(report, drawn), "chart-by-month"),
            "by_category": _svg(_by_category(report, drawn), "chart-by-category"),
            "members": _svg(_members(report, drawn), "chart-members"),
        }
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = environment.from_string(
        resources.files("timebank.readmodel").joinpath("templates/report.html.j2").read_text()
    )

    def day(on: date) -> str:
        return words["date"].format(day=on.day, month=words[f"month_{on.month}"], year=on.year)

    start, end = day(report.start), day(report.end)
    return template.render(
        w=words,
        title=words["title"].format(bank=bank_name, start=start, end=end),
        period=words["period_rollup" if report.rollup else "period"].format(start=start, end=end),
        footnote=words["footnote"].format(banks=", ".join(report.banks), end=end),
        made_by=words["made_by"].format(version=version, made_on=day(made_on)),
        bank_name=bank_name,
        report=report,
        figures=figures,
        charts={k: Markup(v) for k, v in charts.items()},  # noqa: S704 - SVG matplotlib wrote, its text XML-escaped
        hours=lambda minutes: f"{hours(minutes):,}",
        version=version,
    )


def _figure_text(value: Any) -> str:
    return f"{value:,}"


def _figure(height: float = 3.2) -> Any:
    from matplotlib.figure import Figure  # noqa: PLC0415 - see render_html

    return Figure(figsize=(8.5, height), layout="constrained")


def _hours(minutes: int) -> float:
    """Hours for drawing (from the exact 2-decimal figure; never summed)."""
    return float(hours(minutes))


def _by_month(report: Report, words: Mapping[str, str]) -> Any:
    fig = _figure()
    ax = fig.add_subplot()
    months = [m.month for m in report.by_month]
    ax.bar(months, [_hours(m.exchanged_minutes) for m in report.by_month], color=_BAR,
           label=words["legend_hours"])  # fmt: skip
    ax.set_ylabel(words["axis_hours_exchanged"])
    _from_zero(ax, [_hours(m.exchanged_minutes) for m in report.by_month])
    exchanges = ax.twinx()
    exchanges.plot(months, [m.exchanges for m in report.by_month], color=_LINE, marker="o",
                   label=words["legend_exchanges"])  # fmt: skip
    exchanges.set_ylabel(words["axis_exchanges"])
    _from_zero(exchanges, [m.exchanges for m in report.by_month], whole=True)
    exchanges.spines["right"].set_visible(True)
    _thin_labels(ax, months)
    fig.legend(loc="outside upper right", ncols=2, frameon=False)
    return fig


def _by_category(report: Report, words: Mapping[str, str]) -> Any:
    rows = list(report.by_category)[:12][::-1]
    fig = _figure(max(2.0, 0.35 * len(rows) + 0.8))
    ax = fig.add_subplot()
    names = [c.category or words["no_category"] for c in rows]
    ax.barh(names, [_hours(c.exchanged_minutes) for c in rows], color=_BAR)
    ax.set_xlabel(words["axis_hours_exchanged"])
    if not rows:  # no axes to read: only the words
        ax.set_axis_off()
        ax.text(0.5, 0.5, words["chart_no_exchanges"], ha="center", transform=ax.transAxes,
                color=_MUTED)  # fmt: skip
    return fig


def _members(report: Report, words: Mapping[str, str]) -> Any:
    fig = _figure(2.8)
    ax = fig.add_subplot()
    months = [m.month for m in report.by_month]
    ax.plot(months, [m.members for m in report.by_month], color=_BAR, marker="o",
            label=words["legend_members"])  # fmt: skip
    ax.bar(months, [m.new_members for m in report.by_month], color=_SECOND_BAR,
           label=words["legend_new_members"])  # fmt: skip
    ax.set_ylabel(words["axis_members"])
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
