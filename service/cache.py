"""The response cache shared by every replica through Redis, failing open.

Each instance is cached on its own, under an explicit key::

    <prefix>:<model name>:<model version>:<sha256 of the canonical instance>

so a batch reuses every instance already answered, a new model version never sees
the old version's answers, and replicas agree on keys (no per-process ``hash()``).
Values are JSON, never pickles: whoever can write to Redis must not be able to run
code in the service.

In front of Redis each worker keeps a small LRU of recent answers (the local tier,
``cache_local_entries``). An answer never changes for a given key (the key names the
model version), so a local copy cannot be stale; the tier only saves the network round
trip for hot inputs. A worker's own answers and its Redis hits both land there.

Keys the local tier lacks are read from Redis a batch at a time: the micro-batcher
gathers them from concurrent requests and its resolver (``service/inference.py``)
sends one MGET for the batch (``start_read``), and may predict while Redis answers.
Writes leave the request path (``WriteBehind``): the answers of one batch reach Redis
in one script call (``ScriptedRedisCache``) just after their responses, so another
replica sees them a moment later, not before the client does.

A cache that fails never fails a request: Redis errors count as misses, and after
``cache_breaker_failures`` consecutive failures a circuit breaker skips Redis for
``cache_breaker_reset_seconds``, then lets one request try again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, Protocol, TypeVar

import orjson
from flask import Flask
from flask_caching import Cache
from flask_caching.backends import RedisCache
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from service.locks import section_lock
from service.models.base import Model, Prediction
from service.settings import Settings

log = logging.getLogger(__name__)


def instance_digest(instance: Any) -> str:
    """sha256 of the canonical JSON of an already canonical instance."""
    try:
        canonical = orjson.dumps(instance)
    except orjson.JSONEncodeError:  # a lone surrogate ("\ud800" in the request's JSON)
        canonical = json.dumps(instance, separators=(",", ":"), ensure_ascii=False,
                               allow_nan=False).encode("utf-8", "surrogatepass")
    return hashlib.sha256(canonical).hexdigest()


def cache_key(model: Model, instance: Any) -> str:
    """The key of one instance's answer (the backend adds the deployment prefix)."""
    return f"{model.name}:{model.version}:{instance_digest(instance)}"


class JsonSerializer:
    """Stores predictions as JSON; anything unreadable is a miss, never an error."""

    def dumps(self, value: Any, protocol: int | None = None) -> bytes:
        return orjson.dumps(value)

    def loads(self, value: bytes | None) -> Any:
        if value is None:
            return None
        try:
            return orjson.loads(value)
        except ValueError:
            return None


class ScriptedRedisCache(RedisCache):
    """Flask-Caching's Redis backend, writing a batch of answers with one command.

    The stock ``set_many`` queues a ``SET`` per key on a pipeline, and redis-py packs
    each command and parses each reply in Python. Here one Lua call sets every key of
    the batch with its expiry: one command to pack, one reply to read. ``init_cache``
    selects it by ``CACHE_TYPE``. The script is sent once per connection pool and
    reloaded by redis-py if the server has lost it (a restart, ``SCRIPT FLUSH``).
    """

    _SET_ALL = """
        local ttl = tonumber(ARGV[1])
        for i, key in ipairs(KEYS) do
            if ttl > 0 then
                redis.call('SET', key, ARGV[i + 1], 'EX', ttl)
            else  -- Flask-Caching's -1: no expiry
                redis.call('SET', key, ARGV[i + 1])
            end
        end
        return #KEYS
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._set_all = self._write_client.register_script(self._SET_ALL)

    def start_get_many(self, *keys: str) -> Callable[[], list[Any]]:
        """Send one MGET for ``keys`` now; the call returned reads its answer.

        Whatever the caller does in between (a model call) overlaps Redis's round trip.
        The connection stays out of the pool until its answer is read, and one that
        fails on the way is closed, so no later command can read this one's answer.
        """
        pool = self._read_client.connection_pool
        connection = pool.get_connection()
        prefix = self._get_prefix()
        try:
            connection.send_command("MGET", *[prefix + key for key in keys])
        except BaseException:
            connection.disconnect()
            pool.release(connection)
            raise

        def finish() -> list[Any]:
            try:
                values = connection.read_response()
            except BaseException:
                connection.disconnect()
                raise
            finally:
                pool.release(connection)
            loads = self.serializer.loads
            return [loads(value) for value in values]

        return finish

    def set_many(self, mapping: dict[str, Any], timeout: int | None = None) -> list[Any]:
        if not mapping:
            return []
        prefix = self._get_prefix()
        dumps = self.serializer.dumps
        self._set_all(keys=[prefix + key for key in mapping],
                      args=[self._normalize_timeout(timeout), *map(dumps, mapping.values())])
        return list(mapping)


class CircuitBreaker:
    """Closed until ``failures`` in a row; then open for ``reset_seconds``; then one try."""

    def __init__(self, failures: int, reset_seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        self._threshold = failures
        self._reset = reset_seconds
        self._clock = clock
        self._failures = 0
        self._open_until = 0.0
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._failures >= self._threshold and self._clock() < self._open_until

    def allow(self) -> bool:
        with self._lock:
            if self._failures < self._threshold:
                return True
            if self._clock() < self._open_until:
                return False
            # half-open: let this caller try, and keep the others out meanwhile
            self._open_until = self._clock() + self._reset
            return True

    def success(self) -> None:
        with self._lock:
            if self._failures >= self._threshold:
                log.info("cache circuit closed: Redis answers again")
            self._failures = 0

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._failures == self._threshold:
                log.warning("cache circuit open: skipping Redis for %.1f s", self._reset)
            if self._failures >= self._threshold:
                self._open_until = self._clock() + self._reset


_Value = TypeVar("_Value")


class LocalTier(Generic[_Value]):
    """A bounded, per-worker LRU of answers with an expiry; ``entries=0`` keeps nothing."""

    def __init__(self, entries: int, ttl_seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        self._entries = entries
        self._ttl = ttl_seconds
        self._clock = clock
        self._items: OrderedDict[Hashable, tuple[float, _Value]] = OrderedDict()
        self._lock = section_lock()  # around dict operations and a clock read

    def get(self, key: Hashable) -> _Value | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[0] <= self._clock():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return item[1]

    def put(self, key: Hashable, value: _Value) -> None:
        if not self._entries:
            return
        with self._lock:
            self._items[key] = (self._clock() + self._ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self._entries:
                self._items.popitem(last=False)


class WriteBehind:
    """Redis writes of one worker, coalesced and off the request path.

    ``put`` hands entries over and returns at once; one loop per worker process (a
    greenlet under gevent, a thread in tests) writes everything pending in a single
    call. The requests answered by one batch then cost one round trip, and
    none of them waits for it. Another replica sees a new answer a moment (one loop
    turn) after this one has sent it. At most ``max_pending`` entries wait; beyond
    that new ones are dropped, which a cache may do.
    """

    def __init__(self, write: Callable[[dict[str, Any]], None], max_pending: int,
                 on_drop: Callable[[int], None] = lambda count: None):
        self._write = write
        self._max_pending = max_pending
        self._on_drop = on_drop
        self._pending: dict[str, Any] = {}
        self._lock = section_lock()  # dict updates, Event.set/clear
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._pid = 0

    def put(self, mapping: dict[str, Any]) -> None:
        with self._lock:
            if len(self._pending) + len(mapping) > self._max_pending:
                self._on_drop(len(mapping))
                return
            self._pending.update(mapping)
            self._idle.clear()
            pid = os.getpid()
            first, self._pid = self._pid != pid, pid  # first use in this (forked) process
        if first:  # outside the lock: start() waits for the thread, a greenlet switch
            threading.Thread(target=self._loop, name="cache-writer", daemon=True).start()
        self._wake.set()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until nothing is pending or being written."""
        return self._idle.wait(timeout)

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                batch, self._pending = self._pending, {}
            if batch:
                try:
                    self._write(batch)
                except Exception:  # the loop must outlive any one write
                    log.exception("cache write failed")
            with self._lock:
                if not self._pending:
                    self._idle.set()


class ResponseCache:
    """Per-instance prediction cache: the worker's local tier, then Redis (Flask-Caching).

    Callers compute the keys once (``keys``), look in the local tier (``get_local``),
    read what it lacks from Redis (``start_read``) and hand new answers to ``set_many``.
    Lookups are counted per instance and tier: ``hit`` on ``local`` or ``redis``;
    ``miss`` and ``error`` on ``redis``, the last tier asked.
    """

    def __init__(self, backend: Any, breaker: CircuitBreaker, ttl_seconds: int,
                 on_lookup: Callable[[str, str, str, int], None] = lambda *args: None,
                 local: LocalTier[Prediction] | None = None, write_queue: int = 10_000,
                 on_write_dropped: Callable[[int], None] = lambda count: None):
        self._backend = backend
        self._breaker = breaker
        self._ttl = ttl_seconds
        self._on_lookup = on_lookup
        self._local = local if local is not None else LocalTier(0, 0)
        self._writer = WriteBehind(self._write, write_queue, on_write_dropped)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every answer handed to ``set_many`` so far has been written."""
        return self._writer.flush(timeout)

    def keys(self, model: Model, instances: Sequence[Any]) -> list[str]:
        return [cache_key(model, instance) for instance in instances]

    def get_local(self, model: Model, keys: Sequence[str]) -> list[Prediction | None]:
        """The worker's own answers to ``keys``; None where it has none."""
        found = [self._local.get(key) for key in keys]
        hits = sum(prediction is not None for prediction in found)
        if hits:
            self._on_lookup(model.name, "hit", "local", hits)
        return found

    def start_read(self, model: Model, keys: Sequence[str]
                   ) -> Callable[[], list[Prediction | None]]:
        """Send one MGET for ``keys`` now; the call returned waits for Redis's answers:
        None for a miss, and for every key when Redis fails or the breaker is open.
        Hits are kept in the local tier. Call it once, also when the work in between
        failed: until then the read holds a Redis connection."""
        finish = self._send_read(keys)
        return lambda: self._answers(model, keys, finish)

    def _send_read(self, keys: Sequence[str]) -> Callable[[], list[Any]] | None:
        """The MGET on its way; None when Redis failed or the breaker kept it from being asked."""
        if not self._breaker.allow():
            return None
        try:
            return self._backend.start_get_many(*keys)
        except (RedisError, OSError) as exc:
            self._failed("read", exc)
            return None

    def _answers(self, model: Model, keys: Sequence[str],
                 finish: Callable[[], list[Any]] | None) -> list[Prediction | None]:
        values = None
        if finish is not None:
            try:
                values = finish()
            except (RedisError, OSError) as exc:
                self._failed("read", exc)
            else:
                self._breaker.success()
        if values is None:
            self._on_lookup(model.name, "error", "redis", len(keys))
            return [None] * len(keys)
        found: list[Prediction | None] = []
        hits = 0
        for key, value in zip(keys, values, strict=True):
            prediction = _prediction(value)
            if prediction is not None:
                self._local.put(key, prediction)
                hits += 1
            found.append(prediction)
        self._on_lookup(model.name, "hit", "redis", hits)
        self._on_lookup(model.name, "miss", "redis", len(keys) - hits)
        return found

    def set_many(self, items: Sequence[tuple[str, Prediction]]) -> None:
        for key, prediction in items:
            self._local.put(key, prediction)
        if items:
            self._writer.put({key: prediction.as_dict() for key, prediction in items})

    def _write(self, mapping: dict[str, Any]) -> None:
        """One Redis write (one script call) of everything pending (the writer's loop calls it)."""
        if not self._breaker.allow():
            return
        try:
            self._backend.set_many(mapping, timeout=self._ttl)
        except (RedisError, OSError) as exc:
            self._failed("write", exc)
            return
        self._breaker.success()

    def _failed(self, what: str, exc: Exception) -> None:
        self._breaker.failure()
        log.warning("cache %s failed (the request is not affected): %s", what, exc)


def _prediction(value: Any) -> Prediction | None:
    if not isinstance(value, dict):
        return None
    label, scores = value.get("label"), value.get("scores")
    if not isinstance(label, str) or not isinstance(scores, dict):
        return None
    return Prediction(label=label, scores=scores)


class CacheMetrics(Protocol):
    """What the cache reports; ``service.metrics.Metrics`` provides these."""

    def cache_lookup(self, model: str, result: str, tier: str, count: int) -> None: ...

    def cache_write_dropped(self, count: int) -> None: ...


def init_cache(app: Flask, settings: Settings, metrics: CacheMetrics) -> ResponseCache | None:
    """Bind Flask-Caching's Redis backend to ``app``; None when no Redis is configured."""
    if not settings.redis_url:
        return None
    cache = Cache(app, config={
        "CACHE_TYPE": f"{ScriptedRedisCache.__module__}.{ScriptedRedisCache.__name__}",
        "CACHE_REDIS_URL": settings.redis_url,
        "CACHE_KEY_PREFIX": f"{settings.cache_prefix}:",
        "CACHE_DEFAULT_TIMEOUT": settings.cache_ttl_seconds,
        "CACHE_OPTIONS": {
            "socket_timeout": settings.cache_socket_timeout,
            "socket_connect_timeout": settings.cache_connect_timeout,
            # no retries: a failure goes to the breaker, not into a slower request
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
        },
    })
    backend = cache.cache
    backend.serializer = JsonSerializer()
    breaker = CircuitBreaker(settings.cache_breaker_failures,
                             settings.cache_breaker_reset_seconds)
    local = LocalTier(settings.cache_local_entries, settings.local_ttl_seconds)
    return ResponseCache(backend, breaker, settings.cache_ttl_seconds, metrics.cache_lookup,
                         local, on_write_dropped=metrics.cache_write_dropped)
