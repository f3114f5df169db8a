"""Codes drawn as SVG on the server: the static card number as an EAN-13 barcode, and the
invite link as a QR code.

``python-barcode`` supplies the EAN-13 encoding (the bar pattern, with guard bars); the
SVG is drawn here with plain ``rect`` elements and presentation attributes only, so the
page's Content-Security-Policy (no inline styles) is kept. ``segno`` draws the QR code
the same way (paths with presentation attributes). The rotating card code's QR code is
drawn on the phone instead (``static/qr.js``): it changes offline every 30 seconds.
"""

from __future__ import annotations

import barcode
import segno
from markupsafe import Markup, escape

MODULE = 2  # SVG units per bar module
HEIGHT = 60
QUIET = 11  # modules of white either side (EAN-13 asks for 11 on the left, 7 on the right)


def ean13_pattern(number: str) -> str:
    """The EAN-13 bar pattern (95 modules, ``1`` = bar) of a 13-digit card number."""
    if len(number) != 13 or not number.isdigit():
        raise ValueError("an EAN-13 card number has 13 digits")
    code = barcode.get_barcode_class("ean13")(number[:12])
    if code.get_fullcode() != number:
        raise ValueError("the card number's check digit is wrong")
    pattern: str = code.build()[0]
    return pattern


def ean13_svg(number: str, label: str) -> Markup:
    """An accessible inline SVG of the barcode (``role="img"`` with ``label``)."""
    pattern = ean13_pattern(number)
    width = (len(pattern) + 2 * QUIET) * MODULE
    rects = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "1":
            j = i
            while j < len(pattern) and pattern[j] == "1":
                j += 1
            x = (QUIET + i) * MODULE
            rects.append(f'<rect x="{x}" y="0" width="{(j - i) * MODULE}" height="{HEIGHT}"/>')
            i = j
        else:
            i += 1
    # Built from digits, numbers and the escaped label only.
    return Markup(  # noqa: S704
        f'<svg class="barcode" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {HEIGHT}" '
        f'role="img" aria-label="{escape(label)}" preserveAspectRatio="none">'
        f'<rect x="0" y="0" width="{width}" height="{HEIGHT}" fill="#fff"/>'
        f'<g fill="#000">{"".join(rects)}</g></svg>'
    )


def qr_svg(text: str, label: str) -> Markup:
    """An accessible QR code (level M) of ``text``: an SVG that scales to its box, white
    quiet zone included, in an element with ``role="img"`` and ``label``."""
    svg = segno.make(text, error="m").svg_inline(
        scale=1, omitsize=True, svgclass="qr-code", lineclass=None, light="#fff", dark="#000"
    )
    # segno's own SVG (paths with presentation attributes) and the escaped label only.
    return Markup(  # noqa: S704
        f'<div class="qr-box" role="img" aria-label="{escape(label)}">{svg}</div>'
    )
