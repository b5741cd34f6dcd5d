"""One worker's app driven in-process, for ``bench/instructions.py`` to count under callgrind.

    python bench/inprocess.py CODE_ROOT SHIM REQUESTS_JSON

Builds the app of the checkout at CODE_ROOT from the ``INFER_*`` environment with that
checkout's own worker settings: it runs its ``service/gunicorn_conf.py`` first, as
Gunicorn's ``-c`` does (gevent patched, BLAS at one thread, logging as a worker has
it), so a change there is counted too. Metrics are in multiprocess mode when
``PROMETHEUS_MULTIPROC_DIR`` is set. It answers the warm-up requests, freezes the heap
as ``post_worker_init`` does, and then answers the rest from ``CONCURRENCY`` greenlets
with callgrind counting: ``SHIM`` turns the count on and off. No server: the WSGI app
is called directly, so Gunicorn, NGINX and the kernel are not in the count.
"""

from gevent import monkey

monkey.patch_all()

import ctypes  # noqa: E402 - after patching, on purpose
import gc  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging.config  # noqa: E402
import runpy  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
from gevent.pool import Pool  # noqa: E402

# Greenlets sending at once: a replica's worker holds ~32 of NGINX's connections at c=64.
CONCURRENCY = 32


def environ(method: str, path: str, body: bytes, number: int) -> dict:
    """A WSGI environ like Gunicorn's for one request from NGINX, with the headers that
    deploy/nginx/nginx.conf.j2 sets (a request id among them)."""
    env = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8080",
        "HTTP_X_REQUEST_ID": f"{number:032x}", "HTTP_X_REAL_IP": "127.0.0.1",
        "HTTP_X_FORWARDED_FOR": "127.0.0.1", "HTTP_X_FORWARDED_PROTO": "http",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0), "wsgi.multithread": False, "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if body:
        env.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(body)))
    return env


def answer(app, number: int, method: str, path: str, body: str) -> None:
    """One request through the app; anything but a 200 stops the count."""
    status: list[str] = []
    env = environ(method, path, body.encode(), number)
    b"".join(app(env, lambda s, h, e=None: status.append(s)))
    if not status[0].startswith("200"):
        raise RuntimeError(f"{method} {path} answered {status[0]}")
    gevent.sleep(0)  # as the worker's post_request hook does


def main(argv: list[str]) -> None:
    code_root, shim, requests_file = argv
    sys.path.insert(0, code_root)
    # by path, before the service package, as Gunicorn's -c loads it
    worker_conf = runpy.run_path(str(Path(code_root) / "service" / "gunicorn_conf.py"))
    logging.config.dictConfig(worker_conf["logconfig_dict"])
    from service import create_app

    app = create_app()
    plan = json.loads(Path(requests_file).read_text())
    for number, request in enumerate(plan["warm"]):
        answer(app, number, *request)
    gc.collect()
    gc.freeze()
    count = ctypes.CDLL(shim)
    pool = Pool(CONCURRENCY)
    count.bench_count_start()
    for number, request in enumerate(plan["measured"], start=len(plan["warm"])):
        pool.spawn(answer, app, number, *request)
    pool.join(raise_error=True)
    count.bench_count_stop()
    app.extensions["infer"].close()  # as Gunicorn's worker_exit: queued request lines too


if __name__ == "__main__":
    main(sys.argv[1:])
