"""Flask's JSON answers written by orjson.

``jsonify`` and views that return a dict go through ``app.json``. The standard
library's encoder took ~30,000 CPU instructions for a small answer (counted with
``make bench-instructions``: healthz 563k -> 534k instructions a request with this
provider); orjson takes a fraction of that. Bodies read the same to any JSON parser:
compact, keys in insertion order, non-ASCII text as UTF-8 instead of ``\\u`` escapes.
(A datetime would come out as ISO 8601, orjson's form, not Flask's HTTP date; no
answer of this API holds one.)
Anything orjson refuses (a lone surrogate, an int past 64 bits) is written by the
standard provider, so no answer fails for the encoder's sake.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response
from flask.json.provider import DefaultJSONProvider


class OrjsonProvider(DefaultJSONProvider):
    """``DefaultJSONProvider`` that writes compact JSON with orjson."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if not kwargs:  # options are the standard encoder's: let it take them
            try:
                return orjson.dumps(obj, default=self.default).decode()
            except orjson.JSONEncodeError:
                pass
        return super().dumps(obj, **kwargs)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        pretty = self.compact is False or (self.compact is None and self._app.debug)
        if pretty or (args and kwargs):  # the standard provider indents, or raises
            return super().response(*args, **kwargs)
        obj = args[0] if len(args) == 1 else (args or kwargs or None)
        try:
            body = orjson.dumps(obj, default=self.default, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError:
            return super().response(*args, **kwargs)
        return self._app.response_class(body, mimetype=self.mimetype)
