"""The programme's brand applied to the app: colours with readable contrast, the home
screen icons and the web app manifest.

Icons are drawn at run time with Pillow in the programme's primary colour (a card with a
coin), so a retailer's colour reaches the home screen without committing image files
for every programme; they are cached per colour and size.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw

from kopilka.spec.program import BrandingSpec

ICON_SIZES = (192, 512)
DARK_INK = "#111418"
WHITE = "#ffffff"


def _rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def luminance(color: str) -> float:
    """Relative luminance (WCAG 2.x)."""

    def channel(v: int) -> float:
        s = v / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = _rgb(color)
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def ink_on(background: str) -> str:
    """White or near-black, whichever reads better on ``background``."""
    return WHITE if contrast(background, WHITE) >= contrast(background, DARK_INK) else DARK_INK


def readable_on_white(color: str, minimum: float = 4.5) -> str:
    """``color``, darkened just enough to reach ``minimum`` contrast on white (text and
    links in the brand's colour stay legible, WCAG AA)."""
    r, g, b = _rgb(color)
    for step in range(0, 101):
        f = 1 - step / 100
        candidate = _hex((round(r * f), round(g * f), round(b * f)))
        if contrast(candidate, WHITE) >= minimum:
            return candidate
    return DARK_INK  # pragma: no cover - black always reaches it


def theme_css(branding: BrandingSpec) -> str:
    primary = branding.primary_color.lower()
    return (
        ":root{"
        f"--brand:{primary};"
        f"--on-brand:{ink_on(primary)};"
        f"--brand-text:{readable_on_white(primary)};"
        "}\n"
    )


@lru_cache(maxsize=32)
def icon_png(color: str, size: int, maskable: bool) -> bytes:
    """A square PNG icon: a card with a coin on the brand colour. A maskable icon fills
    the square and keeps its drawing inside the central safe zone (80 % circle); the
    plain one is a rounded square on transparency."""
    scale = 4  # drawn large and scaled down for smooth edges
    s = size * scale
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    bg = (*_rgb(color), 255)
    ink = (*_rgb(ink_on(color)), 255)
    if maskable:
        draw.rectangle((0, 0, s, s), fill=bg)
        inner = 0.52  # the drawing's width as a share of the icon, inside the safe zone
    else:
        draw.rounded_rectangle((0, 0, s - 1, s - 1), radius=int(s * 0.22), fill=bg)
        inner = 0.64
    w = s * inner
    h = w * 0.63
    x0, y0 = (s - w) / 2, (s - h) / 2
    stroke = max(scale, int(s * 0.035))
    draw.rounded_rectangle(
        (x0, y0, x0 + w, y0 + h), radius=int(h * 0.16), outline=ink, width=stroke
    )
    stripe_y = y0 + h * 0.28
    draw.rectangle((x0, stripe_y, x0 + w, stripe_y + h * 0.13), fill=ink)
    r = h * 0.2
    cx, cy = x0 + w * 0.74, y0 + h * 0.68
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=ink)
    draw.ellipse((cx - r * 0.55, cy - r * 0.55, cx + r * 0.55, cy + r * 0.55), fill=bg)
    out = io.BytesIO()
    img.resize((size, size), Image.Resampling.LANCZOS).save(out, format="PNG", optimize=True)
    return out.getvalue()


ICONS: dict[str, tuple[int, bool]] = {
    "icon-192.png": (192, False),
    "icon-512.png": (512, False),
    "maskable-192.png": (192, True),
    "maskable-512.png": (512, True),
    "apple-touch-icon.png": (180, True),
}


def manifest(name: str, branding: BrandingSpec, lang: str, version: str) -> dict[str, Any]:
    """The web app manifest (installable: name, icons 192/512 incl. maskable, standalone,
    start URL and scope under /app/)."""
    app_name = branding.app_name or name
    icons: list[dict[str, Any]] = [
        {
            "src": f"/app/icons/{file}?v={version}",
            "sizes": f"{size}x{size}",
            "type": "image/png",
            "purpose": "maskable" if masked else "any",
        }
        for file, (size, masked) in ICONS.items()
        if size in ICON_SIZES
    ]
    return {
        "id": "/app/",
        "name": app_name,
        "short_name": app_name if len(app_name) <= 12 else app_name[:12].rstrip(),
        "description": "Loyalty card, balance and history"
        if lang == "en"
        else "Карта, баланс и история покупок",
        "lang": lang,
        "start_url": "/app/",
        "scope": "/app/",
        "display": "standalone",
        "orientation": "portrait",
        "theme_color": branding.primary_color,
        "background_color": "#ffffff",
        "icons": icons,
    }
