"""Server-rendered SVG charts (no JavaScript needed to see them; ``charts.js`` adds
tooltips and series toggles). Pure functions: data in, markup out.

Colours come from CSS classes (``s0`` … ``s5``), not inline styles, so the console works
under a strict Content-Security-Policy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

from markupsafe import Markup

W, H = 720, 260
PAD_L, PAD_R, PAD_T, PAD_B = 64, 16, 12, 34

Number = Decimal | int | float | None
Fmt = Callable[[Decimal], str]


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[Number]


def _num(v: Number) -> float | None:
    return None if v is None else float(v)


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least ``top``."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [step * i for i in range(math.ceil(top / step) + 1)]


def _axis(ticks: list[float], fmt: Fmt, y: Callable[[float], float]) -> list[str]:
    out = []
    for t in ticks:
        yy = y(t)
        out.append(
            f'<line class="grid" x1="{PAD_L}" x2="{W - PAD_R}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
            f'<text class="tick" x="{PAD_L - 6}" y="{yy + 4:.1f}" text-anchor="end">'
            f"{escape(fmt(Decimal(str(round(t, 6)))))}</text>"
        )
    return out


def _x_labels(labels: Sequence[str], x: Callable[[int], float]) -> list[str]:
    n = len(labels)
    every = max(1, math.ceil(n / 8))
    return [
        f'<text class="tick" x="{x(i):.1f}" y="{H - PAD_B + 16}" text-anchor="middle">'
        f"{escape(labels[i])}</text>"
        for i in range(0, n, every)
    ]


def _frame(testid: str, title: str, body: list[str], kind: str) -> Markup:
    return Markup(  # noqa: S704 - every value inside is escaped above
        f'<svg class="chart {kind}" data-testid="chart-{escape(testid)}" '
        f'viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
        f'preserveAspectRatio="xMidYMid meet"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def line_chart(
    testid: str, title: str, labels: Sequence[str], series: Sequence[Series], fmt: Fmt
) -> Markup:
    """One line per series over the labels (periods)."""
    values = [v for s in series for v in (_num(x) for x in s.values) if v is not None]
    top = max([0.0, *values])
    bottom = min([0.0, *values])
    ticks = nice_ticks(top - bottom) if bottom < 0 else nice_ticks(top)
    if bottom < 0:
        ticks = [bottom + t for t in ticks]
    lo, hi = min(ticks), max(ticks) or 1.0
    n = max(1, len(labels) - 1)

    def x(i: int) -> float:
        return PAD_L + (W - PAD_L - PAD_R) * (i / n if len(labels) > 1 else 0.5)

    def y(v: float) -> float:
        return PAD_T + (H - PAD_T - PAD_B) * (1 - (v - lo) / ((hi - lo) or 1.0))

    body = _axis(ticks, fmt, y) + _x_labels(labels, x)
    for k, s in enumerate(series):
        pts = [(i, _num(v)) for i, v in enumerate(s.values)]
        path = " ".join(
            f"{'M' if j == 0 else 'L'}{x(i):.1f},{y(v):.1f}"
            for j, (i, v) in enumerate((i, v) for i, v in pts if v is not None)
        )
        body.append(f'<g class="series s{k % 6}" data-series="{escape(s.name)}">')
        if path:
            body.append(f'<path class="line" d="{path}"/>')
        for i, v in pts:
            if v is None:
                continue
            tip = f"{s.name} · {labels[i]}: {fmt(Decimal(str(s.values[i])))}"
            body.append(
                f'<circle class="dot" cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" '
                f'data-tip="{escape(tip)}"><title>{escape(tip)}</title></circle>'
            )
        body.append("</g>")
    return _frame(testid, title, body, "line-chart")


def bar_chart(
    testid: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    fmt: Fmt,
    stacked: bool = False,
) -> Markup:
    """Bars per label: side by side, or stacked."""
    if stacked:
        totals = [
            sum((_num(s.values[i]) or 0.0) for s in series if (_num(s.values[i]) or 0) > 0)
            for i in range(len(labels))
        ]
        top = max([0.0, *totals])
    else:
        top = max([0.0, *[_num(v) or 0.0 for s in series for v in s.values]])
    ticks = nice_ticks(top)
    hi = max(ticks) or 1.0
    n = max(1, len(labels))
    slot = (W - PAD_L - PAD_R) / n
    groups = 1 if stacked else max(1, len(series))
    bw = max(1.0, slot * 0.8 / groups)

    def y(v: float) -> float:
        return PAD_T + (H - PAD_T - PAD_B) * (1 - v / hi)

    def cx(i: int) -> float:
        return PAD_L + slot * (i + 0.5)

    body = _axis(ticks, fmt, y) + _x_labels(labels, cx)
    base = [0.0] * len(labels)
    for k, s in enumerate(series):
        body.append(f'<g class="series s{k % 6}" data-series="{escape(s.name)}">')
        for i, raw in enumerate(s.values):
            v = max(0.0, _num(raw) or 0.0)
            if stacked:
                x0 = cx(i) - slot * 0.4
                y1 = y(base[i] + v)
                height = y(base[i]) - y1
                base[i] += v
            else:
                x0 = cx(i) - slot * 0.4 + k * bw
                y1 = y(v)
                height = y(0) - y1
            tip = f"{s.name} · {labels[i]}: {fmt(Decimal(str(raw if raw is not None else 0)))}"
            body.append(
                f'<rect class="bar" x="{x0:.1f}" y="{y1:.1f}" width="{bw:.1f}" '
                f'height="{max(0.0, height):.1f}" data-tip="{escape(tip)}">'
                f"<title>{escape(tip)}</title></rect>"
            )
        body.append("</g>")
    return _frame(testid, title, body, "bar-chart")


def heatmap(
    testid: str,
    title: str,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    cells: Sequence[Sequence[Decimal | None]],
    fmt: Fmt,
) -> Markup:
    """A grid of shares 0 … 1 (cohort retention): darker is higher."""
    rows, cols = max(1, len(row_labels)), max(1, len(col_labels))
    cw = (W - PAD_L - PAD_R) / cols
    ch = min(28.0, (H - PAD_T - PAD_B) / rows)
    height = PAD_T + ch * rows + PAD_B
    body = []
    for j, label in enumerate(col_labels):
        body.append(
            f'<text class="tick" x="{PAD_L + cw * (j + 0.5):.1f}" y="{PAD_T + ch * rows + 16:.1f}"'
            f' text-anchor="middle">{escape(label)}</text>'
        )
    for i, label in enumerate(row_labels):
        yy = PAD_T + ch * i
        body.append(
            f'<text class="tick" x="{PAD_L - 6}" y="{yy + ch / 2 + 4:.1f}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        for j, v in enumerate(cells[i] if i < len(cells) else []):
            if v is None:
                continue
            level = min(9, int(float(v) * 10))
            tip = f"{label} +{col_labels[j]}: {fmt(v)}"
            body.append(
                f'<g><rect class="cell h{level}" x="{PAD_L + cw * j:.1f}" y="{yy:.1f}" '
                f'width="{cw - 1:.1f}" height="{ch - 1:.1f}" data-tip="{escape(tip)}">'
                f"<title>{escape(tip)}</title></rect>"
                f'<text class="cell-label{" light" if level >= 5 else ""}" '
                f'x="{PAD_L + cw * (j + 0.5):.1f}" y="{yy + ch / 2 + 4:.1f}" '
                f'text-anchor="middle">{escape(fmt(v))}</text></g>'
            )
    return Markup(  # noqa: S704 - every value inside is escaped above
        f'<svg class="chart heatmap" data-testid="chart-{escape(testid)}" '
        f'viewBox="0 0 {W} {height:.0f}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def interval_chart(
    testid: str,
    title: str,
    estimate: Decimal | None,
    low: Decimal | None,
    high: Decimal | None,
    fmt: Fmt,
) -> Markup:
    """One estimate with its confidence interval on a horizontal axis through zero."""
    if estimate is None:
        return _frame(testid, title, [], "interval-chart")
    lo = float(low if low is not None else estimate)
    hi = float(high if high is not None else estimate)
    span_lo, span_hi = min(lo, 0.0), max(hi, 0.0)
    pad = (span_hi - span_lo) * 0.1 or 1.0
    span_lo, span_hi = span_lo - pad, span_hi + pad
    h = 90

    def x(v: float) -> float:
        return PAD_L + (W - PAD_L - PAD_R) * (v - span_lo) / (span_hi - span_lo)

    mid = 40
    tip = f"{fmt(estimate)} [{fmt(Decimal(str(lo)))} … {fmt(Decimal(str(hi)))}]"
    body = [
        f'<line class="zero" x1="{x(0):.1f}" x2="{x(0):.1f}" y1="10" y2="{h - 20}"/>',
        f'<text class="tick" x="{x(0):.1f}" y="{h - 6}" text-anchor="middle">0</text>',
        f'<line class="ci" x1="{x(lo):.1f}" x2="{x(hi):.1f}" y1="{mid}" y2="{mid}"/>',
        f'<line class="ci" x1="{x(lo):.1f}" x2="{x(lo):.1f}" y1="{mid - 8}" y2="{mid + 8}"/>',
        f'<line class="ci" x1="{x(hi):.1f}" x2="{x(hi):.1f}" y1="{mid - 8}" y2="{mid + 8}"/>',
        f'<circle class="estimate" cx="{x(float(estimate)):.1f}" cy="{mid}" r="6" '
        f'data-tip="{escape(tip)}"><title>{escape(tip)}</title></circle>',
        f'<text class="tick" x="{x(lo):.1f}" y="{mid + 24}" text-anchor="middle">'
        f"{escape(fmt(Decimal(str(lo))))}</text>",
        f'<text class="tick" x="{x(hi):.1f}" y="{mid + 24}" text-anchor="middle">'
        f"{escape(fmt(Decimal(str(hi))))}</text>",
    ]
    return Markup(  # noqa: S704 - every value inside is escaped above
        f'<svg class="chart interval-chart" data-testid="chart-{escape(testid)}" '
        f'viewBox="0 0 {W} {h}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def diverging_bars(
    testid: str,
    title: str,
    labels: Sequence[str],
    values: Sequence[Number],
    fmt: Fmt,
) -> Markup:
    """One horizontal bar per label from a zero line: right for positive values, left for
    negative ones (campaign lift). A label without a value gets no bar and a dash."""
    nums = [_num(v) for v in values]
    known = [v for v in nums if v is not None]
    lo, hi = min([0.0, *known]), max([0.0, *known])
    pad = (hi - lo) * 0.1 or 1.0
    lo, hi = (lo - pad if lo < 0 else 0.0), hi + pad
    row = 26
    left = 160
    height = PAD_T + row * max(1, len(labels)) + 20

    def x(v: float) -> float:
        return left + (W - left - PAD_R) * (v - lo) / ((hi - lo) or 1.0)

    body = [
        f'<line class="zero" x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{PAD_T}" y2="{height - 16}"/>',
        f'<text class="tick" x="{x(0):.1f}" y="{height - 4}" text-anchor="middle">'
        f"{escape(fmt(Decimal(0)))}</text>",
    ]
    body.append(f'<g class="series s0" data-series="{escape(title)}">')
    for i, (label, raw) in enumerate(zip(labels, values, strict=True)):
        yy = PAD_T + row * i
        body.append(
            f'<text class="tick" x="{left - 8}" y="{yy + row / 2 + 4:.1f}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        v = _num(raw)
        if v is None:
            body.append(
                f'<text class="tick" x="{x(0) + 6:.1f}" y="{yy + row / 2 + 4:.1f}">—</text>'
            )
            continue
        shown = fmt(Decimal(str(raw)))
        tip = f"{label}: {shown}"
        x0, x1 = sorted((x(0), x(v)))
        body.append(
            f'<rect class="bar{" negative" if v < 0 else ""}" x="{x0:.1f}" y="{yy + 4:.1f}" '
            f'width="{max(1.0, x1 - x0):.1f}" height="{row - 8}" data-tip="{escape(tip)}">'
            f"<title>{escape(tip)}</title></rect>"
        )
        anchor, tx = ("start", x1 + 4) if v >= 0 else ("end", x0 - 4)
        body.append(
            f'<text class="tick" x="{tx:.1f}" y="{yy + row / 2 + 4:.1f}" '
            f'text-anchor="{anchor}">{escape(shown)}</text>'
        )
    body.append("</g>")
    return Markup(  # noqa: S704 - every value inside is escaped above
        f'<svg class="chart diverging-chart" data-testid="chart-{escape(testid)}" '
        f'viewBox="0 0 {W} {height:.0f}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )
