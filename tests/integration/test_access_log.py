"""Gunicorn's own JSON access line, on a real replica: written only when asked.

A gevent worker writes a request's access line before it reads the next request on the
same connection, so once the app has logged a second request on one keep-alive
connection, the first request's access line is either in the output or never will be:
no sleeping to prove an absence.
"""

from __future__ import annotations

import json

import requests

from deploy.procs import wait_until


def _log_lines(server) -> list[dict]:
    return [json.loads(line) for line in server.log_path.read_text().splitlines()
            if line.startswith("{")]


def _access_lines(server) -> list[dict]:
    """Gunicorn's access lines: its ``access_log_format`` JSON inside our JSON line."""
    return [json.loads(line["msg"]) for line in _log_lines(server)
            if line["logger"] == "gunicorn.access"]


def _two_requests_on_one_connection(url, server, request_id) -> None:
    """Send ``request_id``, then one more on the same connection, and wait until the app
    has logged the second one (so the first one's access line had its chance)."""
    with requests.Session() as session:
        for suffix in ("", "-next"):
            response = session.get(f"{url}/v1/models", timeout=10,
                                   headers={"X-Request-ID": request_id + suffix})
            assert response.status_code == 200, response.text
    wait_until(lambda: any(line.get("request_id") == f"{request_id}-next"
                           for line in _log_lines(server)),
               timeout=10, what="the app's line for the second request")


def test_with_the_gunicorn_access_log_asked_for_each_request_has_a_json_access_line(
        start_replica):
    url, server = start_replica(None, INFER_GUNICORN_ACCESS_LOG="true")
    _two_requests_on_one_connection(url, server, "access-on-1")
    mine = [line for line in _access_lines(server) if line["request_id"] == "access-on-1"]
    assert len(mine) == 1, server.log_tail()
    assert (mine[0]["method"], mine[0]["path"], mine[0]["status"]) == ("GET", "/v1/models", 200)


def test_by_default_gunicorn_writes_no_access_line(start_replica):
    url, server = start_replica(None)
    _two_requests_on_one_connection(url, server, "access-off-1")
    assert _access_lines(server) == [], server.log_tail()
    app_lines = [line for line in _log_lines(server) if line.get("request_id") == "access-off-1"]
    assert len(app_lines) == 1, "the app's own line still logs the request"
