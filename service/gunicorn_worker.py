"""Gunicorn's gevent worker, stopping without waiting out idle keep-alive connections.

On SIGTERM the gevent worker closes its listeners and waits until it holds no
connection, for at most graceful_timeout (20 s). A keep-alive connection waiting for
its next request counts: its greenlet sits in ``AsyncWorker.handle`` until the
keepalive timeout (75 s, longer than NGINX's 60 s on purpose), and NGINX keeps up to
32 such connections per NGINX worker to every replica. So the worker waited out
graceful_timeout and was killed, and ``worker_exit`` (which flushes pending cache
writes) never ran. Measured with one idle connection and graceful_timeout 30 s: a stop
took 30.5 s (20.5 s at the default 20 s); with this worker 1.5-1.6 s, as long as a stop
with no connection at all (Gunicorn's run loop looks once a second).

This worker ends those waits as soon as it stops, the way their own keepalive timeout
would have: the connection closes without an answer. A connection whose next request
is already arriving is left alone: it is served, then closed, as every connection is
once the worker stops. A connection accepted in the moment before the listeners close
gets its request read if it has arrived, and is closed otherwise.

NGINX may send a request on an upstream connection in the instant this worker closes
it (or connect just then). NGINX sees an error before any answer byte and retries on
another replica: ``proxy_next_upstream error timeout ...`` in deploy/nginx/nginx.conf.j2,
for POST too (``non_idempotent``) on the predict location, the only one clients POST
to. tests/e2e/test_stack.py stops a replica under traffic and checks every answer.

Selected by ``worker_class`` in service/gunicorn_conf.py.
"""

from __future__ import annotations

import contextlib
import select

import gevent
from gevent import monkey
from gunicorn.workers.ggevent import GeventWorker

# The unpatched poll: asked with a zero timeout from the hub, it must not yield.
_poll = monkey.get_original("select", "poll")
# How often a stopping worker looks again for connections that are still idle: one
# that was skipped because bytes were arriving, and that then had no whole request.
IDLE_CHECK_SECONDS = 0.1


class DrainingGeventWorker(GeventWorker):
    """``GeventWorker`` whose stop closes the connections idle between requests."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[gevent.Greenlet, object] = {}  # connection greenlet -> socket
        self._idle: dict[gevent.Greenlet, gevent.Timeout] = {}  # ... -> its keepalive wait
        self._closer: gevent.Greenlet | None = None

    def handle(self, listener, client, addr):
        current = gevent.getcurrent()
        self._clients[current] = client
        try:
            super().handle(listener, client, addr)
        finally:
            del self._clients[current]

    def timeout_ctx(self):
        """The wait for a connection's next request: registered while it lasts; none once
        stopping (a request already received, pipelined or not, is still read)."""
        if not self.alive:
            return gevent.Timeout(0, False)
        return self._idle_wait()

    @contextlib.contextmanager
    def _idle_wait(self):
        current = gevent.getcurrent()
        wait = gevent.Timeout(self.cfg.keepalive, False)
        self._idle[current] = wait
        try:
            with wait:  # swallows ``wait`` whether its timer or _end_idle_waits throws it
                yield
        finally:
            del self._idle[current]

    def handle_exit(self, sig, frame):
        """SIGTERM, directly or through the config's ``draining_exit``: stop, and close
        the idle connections. A signal handler: it only schedules the work.

        SIGQUIT and SIGINT (``handle_quit``) exit within 0.1 s, closing every connection
        with the process; nothing to do there.
        """
        super().handle_exit(sig, frame)
        if self._closer is None:
            self._closer = gevent.spawn(self._close_idle_connections)

    def _close_idle_connections(self):
        loop = gevent.get_hub().loop
        while self._idle:  # no wait is registered once stopping (timeout_ctx)
            ended: list[gevent.Greenlet] = []
            loop.run_callback(self._end_idle_waits, ended)
            gevent.sleep(0)  # resumes after that callback: callbacks run in order
            if ended:  # logged here: the hub must not block on a log handler's lock
                self.log.info("Stopping: closed %d idle keep-alive connection(s)", len(ended))
            gevent.sleep(IDLE_CHECK_SECONDS)

    def _end_idle_waits(self, ended: list[gevent.Greenlet]):
        """Throw each idle connection's own keepalive timeout into it. Run by the hub, so
        no connection moves between a check and its throw (``gevent.kill`` does not check
        at the throw, and could hit one that has just begun a request)."""
        for greenlet, wait in list(self._idle.items()):
            if self._idle.get(greenlet) is wait and not _readable(self._clients[greenlet]):
                greenlet.throw(wait)
                ended.append(greenlet)


def _readable(sock) -> bool:
    """Bytes (or the peer's close) wait on ``sock``: its greenlet will wake by itself."""
    poller = _poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))
