"""Gunicorn process settings and hooks, every value from the settings object.

Run a replica with::

    PROMETHEUS_MULTIPROC_DIR=run/metrics/8001 INFER_PORT=8001 \\
        gunicorn -c service/gunicorn_conf.py "service:create_app()"

This file holds binding, workers, timeouts, logging and hooks: no business logic.
"""

# Monkey-patching comes first, before anything imports ssl, socket or redis. The
# gevent worker patches again in each child, but by then the master (this config,
# gunicorn itself) has imported ssl and socket unpatched, which gevent warns about
# and which can leave the master's copies blocking. Patching here, at the top of
# the config, makes master and workers see one patched world. (gevent's own docs
# and gunicorn issue #1566 describe the early-patch requirement.)
from gevent import monkey

monkey.patch_all()

import gc  # noqa: E402 - after patching, on purpose
import logging  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
from pathlib import Path  # noqa: E402

# BLAS and OpenMP pools do not survive fork and would fight gevent for the two cores:
# one thread each. Set before numpy loads: the service package below imports it here,
# in the master, and the workers inherit it as loaded (read after it, the variables
# were ignored: threadpoolctl showed OpenBLAS and OpenMP at 2 threads in a worker).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import gevent  # noqa: E402
from gunicorn.glogging import Logger  # noqa: E402

from service import request_log, whole_response  # noqa: E402
from service.settings import Settings  # noqa: E402

# Headers leave with the first body bytes, so a replica killed mid-answer leaves
# nothing half-sent that NGINX could not retry elsewhere (see whole_response.py).
whole_response.install()

_settings = Settings()

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
# Gunicorn's gevent worker, but a stop closes idle keep-alive connections at once instead
# of waiting out graceful_timeout for them and being killed (see the module).
worker_class = "service.gunicorn_worker.DrainingGeventWorker"
# Not a load-shedding knob. NGINX keeps idle upstream connections open (keepalive), and
# each holds one of these slots; with a small cap (32 was tried) a new NGINX connection
# waited in the kernel's accept queue until some pooled one closed: p99 of 0.6-1.3 s at
# c=64 with one worker per replica. Overload is shed by the micro-batcher's bounded
# queue instead (503 + Retry-After), which answers at once.
worker_connections = _settings.worker_connections
timeout = _settings.timeout
graceful_timeout = _settings.graceful_timeout
# Longer than NGINX's upstream keepalive_timeout (60 s): NGINX must close an idle
# connection before Gunicorn does, or it reuses a closed one and answers 502.
keepalive = _settings.keepalive
# Models load after fork, in each worker, by the app factory: no model (and no BLAS
# or OpenMP pool) ever lives in the master, so nothing forked can hang; loading both
# models and checking their lean scorers takes ~0.24 s (~0.07 s without the check).
preload_app = False
loglevel = _settings.log_level
errorlog = "-"
# The app logs one JSON line per request (with model, cache and request id); Gunicorn's
# access log repeats it in Gunicorn's words only when asked: _AccessLogWhenAsked below
# decides, alone. No `accesslog` setting: with logconfig_dict, Gunicorn logs access lines
# whatever `accesslog` says, and dictConfig replaces the handler it would add (removing
# it changed nothing in tests/integration/test_access_log.py).
access_log_format = (
    '{"ts":"%(t)s","remote":"%(h)s","method":"%(m)s","path":"%(U)s","status":%(s)s,'
    '"bytes":%(B)s,"duration_us":%(D)s,"request_id":"%({x-request-id}o)s",'
    '"user_agent":"%(a)s"}'
)


class _AccessLogWhenAsked(Logger):
    """Writes Gunicorn's access line only with ``INFER_GUNICORN_ACCESS_LOG``.

    Gunicorn builds every request's access-log fields whenever logconfig_dict is set
    (2-3 % of a worker's busy time under py-spy); unasked, this skips them, line and all.
    """

    def access(self, resp, req, environ, request_time):
        if _settings.gunicorn_access_log:
            super().access(resp, req, environ, request_time)


logger_class = _AccessLogWhenAsked
# Several replicas share a host (and Kubernetes' root filesystem is read-only): no
# per-user control socket in $HOME.
control_socket_disable = True
# The JSON lines show no thread, process or multiprocessing name, nor the calling file
# and line. Not collecting the names saves ~6 us per log line in a new greenlet (every
# request is one: naming its "thread" builds a dummy thread object), not looking up the
# caller ~1 us more (Python's logging HOWTO, "Optimization", names these switches).
logging.logThreads = False
logging.logProcesses = False
logging.logMultiprocessing = False
logging._srcfile = None
logconfig_dict = request_log.logging_config(_settings.log_level, _settings.log_file)


def on_starting(server):
    """Wipe the metrics directory: samples of a previous run's workers must not count."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        if _settings.metrics_enabled:
            raise RuntimeError("set PROMETHEUS_MULTIPROC_DIR before starting Gunicorn")
        return
    shutil.rmtree(directory, ignore_errors=True)
    Path(directory).mkdir(parents=True, exist_ok=True)


def post_worker_init(worker):
    """Freeze the loaded app out of the garbage collector; on SIGTERM, stop being ready."""
    # The app, its models and libraries are ~145,000 tracked objects that live as long as
    # the worker. A full (generation 2) collection walks all of them: measured under
    # load, 3 collections per worker in a short benchmark, each stalling every in-flight
    # request of the worker for up to 230 ms (one cause of run-to-run swings in p99).
    # Frozen, they are never walked again; the worst full collection measured 7 ms.
    gc.collect()
    gc.freeze()
    stop = worker.handle_exit  # DrainingGeventWorker's: it also closes idle connections

    def draining_exit(sig, frame):
        state = _app_state(worker)
        if state is not None:
            state.draining = True
        stop(sig, frame)

    signal.signal(signal.SIGTERM, draining_exit)


def post_request(worker, req, environ, resp):
    """Let every other ready connection of this worker go before this one's next request.

    A gevent socket read that finds data waiting returns without yielding. A client (or
    NGINX on a keep-alive upstream connection) that sends its next request while this
    worker finishes the last one is then served again at once, ahead of connections that
    were ready earlier: one worker served some connections back to back and starved
    others. Measured with wrk at c=32 straight to one replica: /healthz p50 9 ms, p99
    87-171 ms; with this yield p99 9-13 ms at the same throughput. Through NGINX at c=64,
    cached iris p99 62-99 ms became 33-36 ms.
    """
    gevent.sleep(0)


def worker_exit(server, worker):
    """Gathered metric updates are written, and pending cache writes get a short,
    bounded chance to reach Redis (AppState.close).

    Gunicorn calls this in the worker process, in the ``finally`` around the worker's run
    loop (``Arbiter.spawn_worker``): the gevent hub still runs, so the cache's writer
    greenlet can finish. A worker the master kills never gets here: one still serving a
    request at graceful_timeout. Idle keep-alive connections no longer hold a worker that
    long (service/gunicorn_worker.py): a stop takes ~1.6 s with or without them. The master
    calls this too, for a worker already gone (``Arbiter.kill_worker``): no app there,
    nothing to do.
    """
    state = _app_state(worker)
    if state is not None:
        state.close()


def _app_state(worker):
    """This worker's ``AppState``, or None where no app was loaded."""
    return getattr(getattr(worker, "wsgi", None), "extensions", {}).get("infer")


def child_exit(server, worker):
    """A dead worker's live gauges must stop counting."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

        GunicornInternalPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)
