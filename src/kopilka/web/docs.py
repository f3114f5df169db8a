"""The interactive API documentation (Swagger UI) at ``/api/v1/docs``, served whole by Kopilka.

Swagger UI's files come from the ``fastapi-offline`` package (installed with Kopilka from
PyPI) and are served under ``/api/v1/docs/static``, so the page works on a closed network
and loads nothing from a CDN. The page is FastAPI's own (``get_swagger_ui_html``); its one
inline script is allowed by its hash, not by ``'unsafe-inline'``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import re
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

from kopilka.core.auth import public
from kopilka.security.middleware import docs_csp

DOCS_URL = "/api/v1/docs"
STATIC_URL = f"{DOCS_URL}/static"
# Swagger UI's dist files (swagger-ui-bundle.js, swagger-ui.css) and FastAPI's favicon
SWAGGER_UI = Path(str(importlib.resources.files("fastapi_offline") / "static"))
# Swagger UI would otherwise ask validator.swagger.io about the document
PARAMETERS: dict[str, Any] = {"validatorUrl": None}

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


class DocsStatic(StaticFiles):
    """Swagger UI's files, revalidated by ETag (the API's ``no-store`` would make every
    visit download 1.7 MB again)."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def docs_page(openapi_url: str, title: str) -> tuple[str, str]:
    """The Swagger UI page for the document at ``openapi_url``, and its CSP: its own inline
    script allowed by hash, everything else from Kopilka only."""
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{title} API",
        swagger_js_url=f"{STATIC_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC_URL}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC_URL}/favicon.png",
        oauth2_redirect_url=None,  # API keys are bearer tokens: no OAuth2 flow to return to
        swagger_ui_parameters=PARAMETERS,
    )
    html = bytes(page.body).decode()
    hashes = [
        base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        for script in _INLINE_SCRIPT.findall(html)
    ]
    return html, docs_csp(hashes)


def mount(app: FastAPI) -> None:
    """Serve the docs page and Swagger UI's files (``app`` is built with ``docs_url=None``)."""
    html, csp = docs_page(str(app.openapi_url), app.title)

    @app.get(
        DOCS_URL,
        include_in_schema=False,
        dependencies=[Depends(public("the API's documentation, the same for everyone"))],
    )
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(html, headers={"Content-Security-Policy": csp})

    app.mount(STATIC_URL, DocsStatic(directory=SWAGGER_UI), name="docs-static")
