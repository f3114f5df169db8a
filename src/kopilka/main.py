"""The application factory: ``uvicorn --factory kopilka.main:create_app``."""

from __future__ import annotations

from fastapi import FastAPI

from kopilka import __version__, wiring
from kopilka.core.config import get_settings
from kopilka.core.errors import document_problems, install_error_handlers
from kopilka.core.logging import RequestIdMiddleware, configure_logging
from kopilka.security.middleware import install as install_security
from kopilka.worker.loop import lifespan


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    app = FastAPI(
        title="Kopilka",
        version=__version__,
        description="Self-hosted loyalty platform API. Amounts are decimal strings.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # kopilka.web.docs serves Swagger UI itself, not from a CDN
        redoc_url=None,
        lifespan=lifespan,  # a worker in-process on SQLite (docs/events.md)
    )
    install_error_handlers(app)
    wiring.wire()
    wiring.install(app)
    install_security(app)
    app.add_middleware(RequestIdMiddleware)
    document_problems(app)
    return app
