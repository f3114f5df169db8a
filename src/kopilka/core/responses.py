"""A JSON response rendered by orjson: the same bytes as Starlette's ``JSONResponse``
(UTF-8, compact) for the plain dicts, lists and strings the API answers with, in a
fraction of the time. Used where a response is on the hot path (a till's receipts)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
