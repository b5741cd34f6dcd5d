"""Request ids and one structured JSON log line per request, written in bulk."""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from flask import Flask, Response, g, request

from service.flushing import drain, start_flusher
from service.paths import OPERATIONAL_PATHS

log = logging.getLogger("service.request")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_ENVIRON = "HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")  # WSGI's key
# Accept a caller's id only when it is short and plain, so logs cannot be forged.
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class JsonFormatter(logging.Formatter):
    """One JSON object per record; fields passed as ``extra={"fields": {...}}`` are merged.

    A record from ``RequestLines`` carries ``lines``, already made: those are written as
    they are, one per line. Lines are made cheaply: orjson encodes them (see ``render``),
    and the timestamp's date and time are formatted once per second (in UTC).
    """

    def __init__(self) -> None:
        super().__init__()
        self._stamps = _Stamps()

    def format(self, record: logging.LogRecord) -> str:
        lines = getattr(record, "lines", None)
        if lines is not None:
            return "\n".join(lines)
        entry = {
            "ts": self._stamps(int(record.created), int(record.msecs)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return render(entry)


_FALLBACK = json.JSONEncoder(default=str)


def render(entry: dict[str, Any]) -> str:
    """``entry`` as one line of JSON.

    orjson encodes it (for a cached prediction's line ~36,000 CPU instructions fewer than
    the standard encoder). What orjson refuses (a lone surrogate, an int past 64 bits)
    goes to the standard encoder, with non-ASCII escaped: a lone surrogate has no UTF-8
    form, so the file could not take it.
    """
    try:
        return orjson.dumps(entry, default=str).decode()
    except orjson.JSONEncodeError:
        return _FALLBACK.encode(entry)


class _Stamps:
    """ISO 8601 UTC timestamps to the millisecond; the date and time made once a second."""

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")  # one tuple: threads swap it whole

    def __call__(self, second: int, msecs: int) -> str:
        cached, text = self._second
        if cached != second:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)
        return f"{text}.{msecs:03d}Z"


class RequestLines:
    """A worker's request lines, handed to logging together, at most a second late.

    Logging a record costs ~75,000 CPU instructions in a gevent worker (counted under
    callgrind): making the ``LogRecord``, passing it down the logger tree, the handler's
    lock, formatting, and a ``write`` call per line. Every predict request writes one.
    Here a request's line is made at once (the same JSON a record would give) and
    queued; ``flush`` passes everything queued to the logger as one record, which the
    handlers write with one call. That happens when a line finds the last flush
    ``max_age_seconds`` old or ``max_lines`` lines queued, every ``max_age_seconds``
    from a flusher (``start_flusher``), and when the worker stops (``AppState.close``).
    As with NGINX's buffered access log, a worker killed outright loses the lines of
    its last second. Only the request lines wait: warnings and errors are logged at once.
    """

    def __init__(self, logger: logging.Logger, max_age_seconds: float = 1.0,
                 max_lines: int = 256, clock: Callable[[], float] = time.time):
        self.max_age_seconds = max_age_seconds
        self._logger = logger
        self._max_lines = max_lines
        self._clock = clock
        self._stamps = _Stamps()
        self._lines: deque[str] = deque()
        self._flushed_at = clock()

    def add(self, fields: dict[str, Any]) -> None:
        """Queue the line of a request that ended now, with ``fields``."""
        now = self._clock()
        second = int(now)
        self._lines.append(render({
            "ts": self._stamps(second, int((now - second) * 1000)), "level": "info",
            "logger": self._logger.name, "msg": "request", **fields}))
        if len(self._lines) >= self._max_lines or now - self._flushed_at >= self.max_age_seconds:
            self.flush()

    def flush(self) -> None:
        """Hand every queued line to the logger, in one record."""
        self._flushed_at = self._clock()
        lines = drain(self._lines)
        if lines:
            self._logger.info("%d request lines", len(lines), extra={"lines": lines})

    def start_flusher(self) -> None:
        start_flusher(self, self.max_age_seconds, "request-log-flusher")


class LineFileHandler(logging.handlers.WatchedFileHandler):
    """``WatchedFileHandler`` that looks for a rotated file once a second, not per line.

    The stock handler stats the path before every record, to reopen the file once
    ``logrotate`` moved it away. Measured in one worker process for a cached iris
    request: that stat was ~10 us of the ~40 us its log line cost. Here a rotation is
    seen within ``check_seconds``; the lines written meanwhile land at the end of the
    rotated file, so none is lost.
    """

    check_seconds = 1.0

    def __init__(self, *args, **kwargs):
        self._next_check = 0.0
        super().__init__(*args, **kwargs)

    def reopenIfNeeded(self) -> None:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self.check_seconds
            super().reopenIfNeeded()


def logging_config(level: str, log_file: Path | None = None) -> dict[str, Any]:
    """``logging.config.dictConfig`` input for a replica: JSON lines at ``level``.

    Without ``log_file`` every line goes to stdout. With it, every line goes to the file
    and only warnings and errors to stdout too: a launcher that relays its children's
    stdout line by line (honcho under ``make up``) then stays out of the request path.
    Gunicorn's access lines go where the others go; whether there are any is decided by
    the logger class in gunicorn_conf.py.
    """
    level = level.upper()
    handlers: dict[str, Any] = {
        "stdout": {"class": "logging.StreamHandler", "formatter": "json",
                   "stream": "ext://sys.stdout"},
    }
    if log_file is not None:
        handlers["stdout"]["level"] = "WARNING"
        handlers["file"] = {"class": "service.request_log.LineFileHandler",
                            "formatter": "json", "filename": str(log_file),
                            "encoding": "utf-8"}
    names = list(handlers)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": handlers,
        "root": {"level": level, "handlers": names},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": names, "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": names, "propagate": False},
        },
    }


def init_app(app: Flask) -> RequestLines:
    """Give every request an id (the caller's or a new one), echo it, log the request.

    Returns the worker's ``RequestLines``, for ``AppState.close`` to flush.
    """
    lines = RequestLines(log)
    lines.start_flusher()

    @app.before_request
    def _start() -> None:
        sent = request._get_current_object().environ.get(_REQUEST_ID_ENVIRON, "")
        ctx = g._get_current_object()
        ctx.request_id = sent if _VALID_ID.match(sent) else uuid.uuid4().hex
        ctx.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        req, ctx = request._get_current_object(), g._get_current_object()
        request_id = ctx.get("request_id") or uuid.uuid4().hex
        response.headers[REQUEST_ID_HEADER] = request_id
        quiet = req.path in OPERATIONAL_PATHS
        if not log.isEnabledFor(logging.DEBUG if quiet else logging.INFO):
            return response  # the line would be dropped: do not build it
        started = ctx.get("started")
        rule = req.url_rule
        fields = {
            "request_id": request_id,
            "method": req.method,
            "route": rule.rule if rule else None,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3) if started else None,
            **ctx.get("log_fields", {}),
        }
        if quiet:
            log.debug("request", extra={"fields": fields})  # probes: only when debugging
        else:
            lines.add(fields)
        return response

    return lines
