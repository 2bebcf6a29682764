"""`resyn report --html`: a report as one self-contained page (inline SVG charts from matplotlib,
nothing fetched) whose environments link to the viewer."""

from __future__ import annotations

import html
import io
import re
from statistics import median

from resyn.contract import CHECK_NAMES
from resyn.evals.report import CorpusReport, attempt_rows, cost_text, scope_line

_ID = re.compile(r"\b[0-9a-f]{12}\b")  # an environment id, as reasons name them


def _svg(figure: object) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(figure)  # type: ignore[arg-type]
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # drop the XML prologue and doctype: inline SVG needs neither
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.DOTALL)  # RDF credits and a date


def _charts(report: CorpusReport) -> dict[str, str]:
    """The figures by section: the diversity histogram and the difficulty profile (the funnel is
    its table's bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable
    plt.rcParams["svg.hashsalt"] = "resyn"  # the same report gives the same page
    charts = {}
    if report.diversity is not None:
        figure, axes = plt.subplots(figsize=(7, 3))
        axes.hist(list(report.diversity.nearest.values()), bins=20, range=(0, 1))
        axes.axvline(report.diversity.threshold, linestyle="--", color="grey")
        axes.set_xlabel("cosine to the nearest other accepted environment")
        axes.set_ylabel("environments")
        charts["diversity"] = _svg(figure)
    levels = list(report.difficulty)
    if any(accepted is not None for accepted, _, _ in report.difficulty.values()):
        figure, axes = plt.subplots(figsize=(7, 3))
        for column, label in ((0, "accepted"), (1, "all probed")):
            values = [report.difficulty[level][column] for level in levels]
            axes.plot(levels, [v if v is not None else float("nan") for v in values], marker="o", label=label)
        axes.set_xticks(levels)
        axes.set_ylim(0, 1)
        axes.set_xlabel("difficulty")
        axes.set_ylabel("mean probe pass rate")
        axes.legend()
        charts["difficulty"] = _svg(figure)
    return charts


class _Cell(str):
    """Table cell text that is HTML already (a link, a bar), not to be escaped again."""


def _table(headers: list[str], rows: list[list[object]]) -> str:
    def cell(value: object) -> str:
        return value if isinstance(value, _Cell) else html.escape(str(value))

    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(value)}</td>" for value in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _link(viewer: str, environment_id: str, text: str | None = None) -> _Cell:
    href = html.escape(f"{viewer.rstrip('/')}/environments/{environment_id}")
    return _Cell(f'<a href="{href}">{html.escape(text or environment_id)}</a>')


def _linked_ids(viewer: str, text: str) -> _Cell:
    """The text with every environment id in it a link to its page."""
    parts = _ID.split(text)
    ids = _ID.findall(text)
    linked = [html.escape(parts[0])]
    for environment_id, after in zip(ids, parts[1:], strict=True):
        linked += [_link(viewer, environment_id), html.escape(after)]
    return _Cell("".join(linked))


def render_html(
    report: CorpusReport, title: str = "resyn library report", viewer: str = "http://127.0.0.1:8765"
) -> str:
    """One self-contained HTML page: tables and inline SVG charts, no scripts, nothing fetched.
    Each environment it names links to its page in the viewer at `viewer` (`resyn ui`)."""
    charts = _charts(report)
    started = max((stage.count for stage in report.funnel), default=0)
    funnel = [
        [
            stage.name,
            stage.count,
            _Cell(f'<meter min="0" max="{max(started, 1)}" value="{stage.count}"></meter>'),
            ", ".join(f"{status} {n}" for status, n in stage.lost.items()),
        ]
        for stage in report.funnel
    ]
    checks = [
        [name, report.final_failed_checks.get(name, 0), report.attempt_failed_checks.get(name, 0)]
        for name in CHECK_NAMES
        if name in report.final_failed_checks or name in report.attempt_failed_checks
    ]
    verdicts = [
        [
            status,
            count,
            _linked_ids(viewer, report.reasons.get(status, "")),
            _link(viewer, report.examples[status]) if status in report.examples else "",
        ]
        for status, count in report.statuses.items()
    ]
    tokens = [[name, f"{value:,.0f}"] for name, value in report.tokens.items()] + [
        ["cost (USD)", cost_text(report)]
    ]
    sections = [
        "<section><h2>Funnel</h2>",
        _table(["stage", "environments", "", "lost here"], funnel),
        "</section><section><h2>Verdicts</h2>",
        _table(["status", "environments", "example reason", "its environment"], verdicts),
        "</section><section><h2>Failed checks</h2>",
        _table(
            ["check", "syntheses whose final report failed it", "validations (all attempts) failing it"],
            checks,
        ),
        _table(["attempts", ""], [list(row) for row in attempt_rows(report)]),
        "</section><section><h2>Difficulty profile</h2>",
        _table(
            ["level", "accepted: mean pass rate", "all probed: mean pass rate", "accepted environments"],
            [[level, _rate(a), _rate(p), n] for level, (a, p, n) in report.difficulty.items()],
        ),
        _figure(charts.get("difficulty")),
        "</section><section><h2>Tokens</h2>",
        _table(["tokens", ""], tokens),
        "</section>",
    ]
    if report.diversity is not None:
        diversity = report.diversity
        nearest = list(diversity.nearest.values())
        clusters = [
            [
                len(cluster),
                _Cell(", ".join(_link(viewer, diversity.ids.get(name, name), name) for name in cluster)),
            ]
            for cluster in diversity.clusters
        ]
        sections += [
            "<section><h2>Diversity</h2>",
            _table(
                ["nearest-neighbour cosine", ""],
                [
                    ["min", f"{min(nearest):.3f}"],
                    ["median", f"{median(nearest):.3f}"],
                    ["max", f"{max(nearest):.3f}"],
                ],
            ),
            _figure(charts.get("diversity")),
            f"<p>clusters at cosine ≥ {diversity.threshold}: {len(diversity.clusters)} "
            f"(and {diversity.singletons} environments alone)</p>",
            _table(["cluster size", "environments"], clusters),
            "</section>",
        ]
    style = (
        "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}"
        "main{display:grid;grid-template-columns:repeat(auto-fit,minmax(36rem,1fr));gap:0 3rem}"
        "table{border-collapse:collapse;margin:.8rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;"
        "text-align:left;vertical-align:top}th{background:#f3f3f3}meter{width:16rem}"
        "figure{margin:1rem 0}svg{max-width:100%;height:auto}"
    )
    summary = f"{sum(report.statuses.values())} finished syntheses, {report.funnel[-1].count} accepted."
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(scope_line(report))}</p><p>{summary}</p>"
        f"<main>{''.join(sections)}</main></body></html>\n"
    )


def _figure(svg: str | None) -> str:
    return f"<figure>{svg}</figure>" if svg else ""
