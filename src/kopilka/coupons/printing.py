"""Codes as pictures: QR (segno) and Code 128 (python-barcode) in SVG and PNG, and print
sheets of many codes as PDF (reportlab) for flyers and receipts.

On the sheet both symbols are drawn as vector rectangles straight from the symbols' module
matrices, so they stay sharp at any printer resolution and scan from paper.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import segno
from barcode import Code128
from barcode.writer import ImageWriter, SVGWriter
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

QR_ERROR = "m"  # ~15 % of the symbol may be damaged (segno raises it when room is left)

# Fonts with Cyrillic, tried in order when ``KOPILKA_COUPON_PDF_FONT`` is not set; without
# any, the sheet falls back to Helvetica (Latin only).
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)


def qr_svg(text: str, scale: int = 4, border: int = 4) -> bytes:
    buf = io.BytesIO()
    segno.make(text, error=QR_ERROR, micro=False).save(
        buf, kind="svg", scale=scale, border=border, xmldecl=True
    )
    return buf.getvalue()


def qr_png(text: str, scale: int = 8, border: int = 4) -> bytes:
    buf = io.BytesIO()
    segno.make(text, error=QR_ERROR, micro=False).save(buf, kind="png", scale=scale, border=border)
    return buf.getvalue()


def _barcode_options(text_under: bool) -> dict[str, object]:
    return {
        "module_width": 0.3,  # mm
        "module_height": 15.0,  # mm
        "quiet_zone": 6.5,  # mm, at least 10 modules
        "write_text": text_under,
        "font_size": 10,
        "text_distance": 4.0,
    }


def barcode_svg(text: str, text_under: bool = True) -> bytes:
    buf = io.BytesIO()
    Code128(text, writer=SVGWriter()).write(buf, options=_barcode_options(text_under))
    return bytes(buf.getvalue())


def barcode_png(text: str, text_under: bool = True, dpi: int = 300) -> bytes:
    buf = io.BytesIO()
    Code128(text, writer=ImageWriter()).write(
        buf, options={**_barcode_options(text_under), "dpi": dpi}
    )
    return bytes(buf.getvalue())


# ---------------------------------------------------------------------------- PDF sheets


@dataclass(frozen=True)
class SheetItem:
    code: str
    caption: str = ""  # e.g. the reward ("−10 %") and the validity


_font_lock = threading.Lock()
_fonts: dict[str | None, str] = {}  # configured path (None: the defaults) → font name


def sheet_font(configured: str | None = None) -> str:
    """The name of a registered font that can write Cyrillic, or Helvetica."""
    with _font_lock:
        if configured in _fonts:
            return _fonts[configured]
        name = "Helvetica"
        for i, path in enumerate([configured] if configured else FONT_CANDIDATES):
            if path and Path(path).is_file():
                font = f"KopilkaSans{len(_fonts)}-{i}"
                try:
                    pdfmetrics.registerFont(TTFont(font, path))
                except Exception:  # noqa: S112 - a broken font file: try the next one
                    continue
                name = font
                break
        _fonts[configured] = name
        return name


def _fit(text: str, font: str, size: float, width: float) -> str:
    if pdfmetrics.stringWidth(text, font, size) <= width:
        return text
    while text and pdfmetrics.stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…"


def _draw_qr(c: canvas.Canvas, text: str, x: float, y: float, size: float) -> None:
    """The QR symbol with its 4-module quiet zone in a ``size`` square at (x, y) (bottom
    left), one black rectangle per run of dark modules in a row."""
    qr = segno.make(text, error=QR_ERROR, micro=False)
    matrix = qr.matrix
    n = len(matrix)
    module = size / (n + 8)
    # One path for the whole symbol: filled as a union, with no anti-aliasing seams
    # between neighbouring modules (which keep some decoders from reading the symbol).
    path = c.beginPath()
    for r, row in enumerate(matrix):
        top = y + size - (r + 4 + 1) * module
        col = 0
        while col < n:
            if row[col] & 1:
                start = col
                while col < n and row[col] & 1:
                    col += 1
                path.rect(x + (start + 4) * module, top, (col - start) * module, module)
            else:
                col += 1
    c.setFillColorRGB(0, 0, 0)
    c.drawPath(path, stroke=0, fill=1, fillMode=1)


def _draw_code128(
    c: canvas.Canvas, text: str, x: float, y: float, width: float, height: float
) -> None:
    """Code 128 bars filling ``width`` (quiet zones of 10 modules included)."""
    bars = Code128(text).build()[0]
    module = width / (len(bars) + 20)
    path = c.beginPath()
    col = 0
    while col < len(bars):
        if bars[col] == "1":
            start = col
            while col < len(bars) and bars[col] == "1":
                col += 1
            path.rect(x + (start + 10) * module, y, (col - start) * module, height)
        else:
            col += 1
    c.setFillColorRGB(0, 0, 0)
    c.drawPath(path, stroke=0, fill=1, fillMode=1)


@dataclass(frozen=True)
class Layout:
    """Where the cells of a sheet are, in PDF points from the bottom left of A4."""

    columns: int = 3
    rows: int = 7
    titled: bool = False
    margin: float = 28.0

    @property
    def per_page(self) -> int:
        return self.columns * self.rows

    @property
    def header(self) -> float:
        return 22.0 if self.titled else 0.0

    def cell(self, k: int) -> tuple[float, float, float, float]:
        """``(x, y, width, height)`` of the k-th cell of a page (row by row)."""
        page_w, page_h = A4
        w = (page_w - 2 * self.margin) / self.columns
        h = (page_h - 2 * self.margin - self.header) / self.rows
        col, row = k % self.columns, k // self.columns
        return self.margin + col * w, page_h - self.margin - self.header - (row + 1) * h, w, h


def sheet_pdf(
    items: Sequence[SheetItem],
    *,
    title: str = "",
    columns: int = 3,
    rows: int = 7,
    symbology: str = "qr",
    font: str | None = None,
) -> bytes:
    """An A4 PDF with ``columns`` × ``rows`` cells per page (see ``Layout``), one code per
    cell: its symbol, the code as text, and the caption. Cut lines are light grey."""
    font_name = sheet_font(font)
    layout = Layout(columns, rows, bool(title))
    page_w, page_h = A4
    margin = layout.margin
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=True)
    c.setTitle(title or "Coupons")
    c.setCreator("Kopilka")
    per_page = layout.per_page
    pages = max(1, -(-len(items) // per_page))
    for page in range(pages):
        if title:
            c.setFont(font_name, 11)
            c.setFillColorRGB(0, 0, 0)
            c.drawString(
                margin,
                page_h - margin - 12,
                _fit(title, font_name, 11, page_w - 2 * margin - 60),
            )
            c.drawRightString(page_w - margin, page_h - margin - 12, f"{page + 1}/{pages}")
        for k, item in enumerate(items[page * per_page : (page + 1) * per_page]):
            x0, y0, w, h = layout.cell(k)
            c.setStrokeColorRGB(0.8, 0.8, 0.8)
            c.setLineWidth(0.3)
            c.rect(x0, y0, w, h, 1, 0)
            _draw_cell(c, item, x0, y0, w, h, symbology, font_name)
        c.showPage()
    c.save()
    return buf.getvalue()


def _draw_cell(
    c: canvas.Canvas,
    item: SheetItem,
    x0: float,
    y0: float,
    w: float,
    h: float,
    symbology: str,
    font: str,
) -> None:
    pad = 4.0
    text_h = 24.0
    c.setFillColorRGB(0, 0, 0)
    inner_h = h - 2 * pad - text_h
    if symbology == "qr":
        size = min(inner_h, w - 2 * pad)
        _draw_qr(c, item.code, x0 + (w - size) / 2, y0 + pad + text_h, size)
    elif symbology == "code128":
        _draw_code128(c, item.code, x0 + pad, y0 + pad + text_h + 4, w - 2 * pad, inner_h - 8)
    else:  # both: the QR above, the bars below across the whole cell (they need width)
        bars_h = inner_h * 0.38
        size = min(inner_h - bars_h - 4, w - 2 * pad)
        _draw_qr(c, item.code, x0 + (w - size) / 2, y0 + pad + text_h + bars_h + 4, size)
        _draw_code128(c, item.code, x0 + pad, y0 + pad + text_h + 2, w - 2 * pad, bars_h)
    c.setFont(font, 9)
    c.drawCentredString(x0 + w / 2, y0 + pad + 13, _fit(item.code, font, 9, w - 2 * pad))
    if item.caption:
        c.setFont(font, 7)
        c.drawCentredString(x0 + w / 2, y0 + pad + 3, _fit(item.caption, font, 7, w - 2 * pad))
