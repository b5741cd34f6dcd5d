"""The replica's log file: one JSON line per record, on disk at once; a file rotated away
is followed by a new one at the same path within the handler's check interval, and no
line is lost meanwhile. Request lines are queued and reach it together, at most a
second late, still one JSON object a line."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from deploy.procs import wait_until
from service.request_log import JsonFormatter, LineFileHandler, RequestLines, logging_config


@pytest.fixture
def file_log(tmp_path):
    path = tmp_path / "app.log"
    handler = LineFileHandler(str(path), encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger(f"test.request_log.{tmp_path.name}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        yield log, path
    finally:
        log.removeHandler(handler)
        handler.close()


def lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_record_is_one_json_line_on_disk_before_the_next(file_log):
    log, path = file_log
    log.info("request", extra={"fields": {"status": 200, "route": "/v1/ü"}})
    assert [(e["msg"], e["status"], e["route"]) for e in lines(path)] == [
        ("request", 200, "/v1/ü")]  # read while the handler still holds the file open
    log.warning("second")
    assert [e["level"] for e in lines(path)] == ["info", "warning"]


def test_a_file_rotated_away_is_followed_by_a_new_one_at_the_path(file_log):
    log, path = file_log
    handler = log.handlers[0]
    handler.check_seconds = 0.2
    log.info("before")
    rotated = path.with_suffix(".log.1")
    path.rename(rotated)
    log.info("meanwhile")  # within the interval: still the rotated file
    time.sleep(0.25)
    log.info("after")
    assert [e["msg"] for e in lines(rotated)] == ["before", "meanwhile"]
    assert [e["msg"] for e in lines(path)] == ["after"]


def test_a_closed_handler_reopens_its_file_for_a_late_record(file_log):
    log, path = file_log
    log.handlers[0].close()  # as at interpreter exit, before a last record
    log.info("late")
    assert [e["msg"] for e in lines(path)] == ["late"]


def test_the_replica_config_writes_its_file_with_this_handler(tmp_path):
    config = logging_config("info", tmp_path / "app.log")
    assert config["handlers"]["file"]["class"] == "service.request_log.LineFileHandler"
    assert config["handlers"]["stdout"]["level"] == "WARNING"


@pytest.fixture
def local_time_not_utc(monkeypatch):
    monkeypatch.setenv("TZ", "IST-5:30")  # POSIX form, UTC+05:30: needs no tz database
    time.tzset()
    yield  # pytest runs what follows whether the test passed or failed
    monkeypatch.undo()  # before tzset, so the real zone is read back
    time.tzset()


def test_timestamps_are_utc_to_the_millisecond_whatever_order_records_come_in(
        local_time_not_utc):
    formatter = JsonFormatter()

    def stamp(created):
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
        record.created, record.msecs = created, (created % 1) * 1000
        return json.loads(formatter.format(record))["ts"]

    # the date and time are kept for a second; a late record from an earlier second
    # (another thread's) must not get the newer one's
    assert [stamp(t) for t in (1700000000.5, 1700000000.25, 1700000001.0, 1700000000.999,
                               1700003600.5)] == [
        "2023-11-14T22:13:20.500Z", "2023-11-14T22:13:20.250Z", "2023-11-14T22:13:21.000Z",
        "2023-11-14T22:13:20.999Z", "2023-11-14T23:13:20.500Z"]


def test_a_line_keeps_every_value_and_reaches_the_file_when_orjson_refuses_it(file_log):
    log, path = file_log
    fields = {"route": "/v1/models/<name>/predict", "status": 200, "duration_ms": 0.125,
              "model": "sentiment", "note": "héllo 🚗", "path": Path("/x")}
    log.info("request", extra={"fields": fields})
    # a lone surrogate (sent as "\ud800" in a JSON body) has no UTF-8 form: orjson refuses
    # it, and the file's UTF-8 encoding would refuse it too unless it is escaped
    log.info("request", extra={"fields": {"text": "\ud800", "big": 2**70}})
    log.info("request", extra={"fields": {"text": "two\nlines"}})
    first, refused, two_lines = lines(path)
    assert first["msg"] == "request" and first["level"] == "info"
    assert {key: first[key] for key in fields} == {**fields, "path": "/x"}  # str() of others
    assert (refused["text"], refused["big"]) == ("\ud800", 2**70)
    assert two_lines["text"] == "two\nlines"


class Clock:
    def __init__(self, now: float = 1700000000.25):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def request_lines(file_log):
    """``RequestLines`` on the file logger, with a clock the test moves."""
    log, path = file_log
    clock = Clock()
    return RequestLines(log, max_age_seconds=1.0, max_lines=3, clock=clock), clock, path


def test_request_lines_wait_then_reach_the_file_together_as_one_line_each(request_lines):
    lines_, clock, path = request_lines
    lines_.add({"request_id": "a", "status": 200, "route": "/v1/ü"})
    clock.now += 0.5
    lines_.add({"request_id": "b", "status": 422})
    assert lines(path) == [], "queued, not written yet"
    lines_.flush()
    first, second = lines(path)
    assert first == {"ts": "2023-11-14T22:13:20.250Z", "level": "info",
                     "logger": lines_._logger.name, "msg": "request",
                     "request_id": "a", "status": 200, "route": "/v1/ü"}
    assert (second["ts"], second["request_id"], second["status"]) == (
        "2023-11-14T22:13:20.750Z", "b", 422)
    lines_.flush()
    assert len(lines(path)) == 2, "nothing is written twice"


def test_a_line_that_finds_the_last_flush_old_or_the_queue_full_flushes(request_lines):
    lines_, clock, path = request_lines
    lines_.add({"n": 1})
    clock.now += 1.0  # max_age_seconds since the last flush
    lines_.add({"n": 2})
    assert [e["n"] for e in lines(path)] == [1, 2]
    for n in (3, 4):
        lines_.add({"n": n})
    assert len(lines(path)) == 2
    lines_.add({"n": 5})  # the third queued line: max_lines
    assert [e["n"] for e in lines(path)] == [1, 2, 3, 4, 5]


def test_the_flusher_writes_the_lines_of_an_idle_worker(file_log):
    log, path = file_log
    lines_ = RequestLines(log, max_age_seconds=0.05)
    lines_.start_flusher()
    lines_.add({"request_id": "idle"})
    wait_until(lambda: lines(path), timeout=5, what="the flusher to write the line")
    assert [e["request_id"] for e in lines(path)] == ["idle"]


def test_a_request_line_keeps_what_orjson_refuses(request_lines):
    lines_, _, path = request_lines
    lines_.add({"text": "\ud800", "big": 2**70, "path": Path("/x")})
    lines_.flush()
    (line,) = lines(path)
    assert (line["text"], line["big"], line["path"]) == ("\ud800", 2**70, "/x")


def test_request_lines_are_dropped_by_a_handler_for_warnings_only(tmp_path):
    log = logging.getLogger(f"test.request_log.warn.{tmp_path.name}")
    log.propagate = False
    log.setLevel(logging.INFO)
    path = tmp_path / "warnings.log"
    handler = LineFileHandler(str(path), encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.WARNING)
    log.addHandler(handler)
    try:
        lines_ = RequestLines(log)
        lines_.add({"request_id": "quiet"})
        lines_.flush()
        log.warning("loud")
        assert [e["msg"] for e in lines(path)] == ["loud"]
    finally:
        log.removeHandler(handler)
        handler.close()
