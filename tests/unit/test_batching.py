"""The micro-batcher, with a recording model (unit layer: no servers)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

from service.batching import MicroBatcher
from service.errors import Overloaded
from service.models.base import Prediction
from service.settings import BatchSettings
from tests.conftest import ROOT


class EchoModel:
    """Answers each instance with its own value; records every model call."""

    name, version = "echo", "v1"

    def __init__(self, delay: float = 0.0, fail_on=None):
        self.calls: list[list] = []
        self.delay, self.fail_on = delay, fail_on

    def predict(self, batch):
        self.calls.append(list(batch))
        if self.fail_on is not None and self.fail_on in batch:
            raise RuntimeError("model exploded")
        time.sleep(self.delay)
        return [Prediction(label=str(x), scores={str(x): 1.0}) for x in batch]


class Recorder:
    def __init__(self):
        self.batches, self.waits, self.rejections = [], [], 0

    def work(self, model, batch):
        """The lane's work here: one model call, its size recorded."""
        self.batches.append(len(batch))
        return model.predict(batch)

    def waited(self, model, seconds):
        self.waits.append(seconds)

    def rejected(self, model):
        self.rejections += 1


def batcher(**limits):
    recorder = Recorder()
    return MicroBatcher(lambda name: BatchSettings(**limits), recorder, recorder.work), recorder


def labels(predictions):
    return [p.label for p in predictions]


def in_threads(count, target):
    results, errors = [None] * count, [None] * count

    def run(i):
        try:
            results[i] = target(i)
        except Exception as exc:
            errors[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results, errors


def test_a_lone_request_runs_at_once_without_waiting_for_the_timer():
    batch, recorder = batcher(max_size=32, max_wait_ms=500)
    model = EchoModel()
    started = time.perf_counter()
    assert labels(batch.run(model, [1, 2])) == ["1", "2"]
    assert time.perf_counter() - started < 0.1, "the 500 ms timer must not apply"
    assert recorder.batches == [2]


def test_concurrent_requests_share_model_calls_and_each_get_their_own_answers():
    batch, recorder = batcher(max_size=64, max_wait_ms=20)
    model = EchoModel(delay=0.01)
    results, errors = in_threads(40, lambda i: batch.run(model, [i * 10, i * 10 + 1]))
    assert errors == [None] * 40
    for i, predictions in enumerate(results):
        assert labels(predictions) == [str(i * 10), str(i * 10 + 1)]
    assert len(model.calls) < 40, "some requests must have shared a model call"
    assert sum(recorder.batches) == 80
    assert max(recorder.batches) <= 64


def test_the_timer_gathers_requests_that_arrive_within_max_wait():
    batch, recorder = batcher(max_size=100, max_wait_ms=200)
    model = EchoModel(delay=0.05)
    # the first request occupies the loop; the next ones queue behind it and
    # arrive apart by less than max_wait, so they go together in one call
    first = threading.Thread(target=batch.run, args=(model, [0]))
    first.start()
    time.sleep(0.01)

    def later(i):
        time.sleep(0.005 * i)
        return batch.run(model, [i + 1])

    results, errors = in_threads(5, later)
    first.join(5)
    assert errors == [None] * 5
    assert [labels(r) for r in results] == [[str(i + 1)] for i in range(5)]
    assert recorder.batches == [1, 5]


def test_batches_never_exceed_max_size_and_big_requests_run_alone():
    batch, _ = batcher(max_size=4, max_wait_ms=50)
    model = EchoModel(delay=0.005)
    results, errors = in_threads(6, lambda i: batch.run(model, list(range(i * 10, i * 10 + 3))))
    assert errors == [None] * 6
    assert [labels(r) for r in results] == [[str(i * 10 + k) for k in range(3)] for i in range(6)]
    assert max(len(c) for c in model.calls) <= 4
    assert labels(batch.run(model, list(range(9)))) == [str(i) for i in range(9)]


def test_a_failing_batch_fails_only_its_own_requests():
    batch, _ = batcher(max_size=2, max_wait_ms=50)
    model = EchoModel(delay=0.02, fail_on=666)
    results, errors = in_threads(6, lambda i: batch.run(model, [666 if i == 0 else i]))
    failed = [i for i, e in enumerate(errors) if e is not None]
    assert 0 in failed
    assert all(isinstance(errors[i], RuntimeError) for i in failed)
    assert len(failed) <= 2, "only the batch holding the bad instance fails"
    for i, result in enumerate(results):
        if i not in failed:
            assert labels(result) == [str(i)]
    assert labels(batch.run(model, [7])) == ["7"], "the loop survives a failed batch"


def test_a_full_queue_sheds_load_with_503_and_retry_after():
    batch, recorder = batcher(max_size=1, max_wait_ms=0, queue_size=3)
    model = EchoModel(delay=0.2)
    results, errors = in_threads(8, lambda i: batch.run(model, [i]))
    shed = [e for e in errors if e is not None]
    assert shed, "some requests must be refused while the queue is full"
    assert all(isinstance(e, Overloaded) and e.status == 503 for e in shed)
    assert shed[0].headers["Retry-After"] == "1"
    assert recorder.rejections == len(shed)
    assert sum(r is not None for r in results) >= 3


# Scripts for a child Python: monkey-patching must not reach the test process.
UNDER_GEVENT = """
    from gevent import monkey
    monkey.patch_all()
    import gevent, time
    from service.batching import MicroBatcher
    from service.models.base import Prediction
    from service.settings import BatchSettings

    class Model:
        name, version, calls = "m", "v", []
        delay = 0.0
        def predict(self, batch):
            self.calls.append(len(batch))
            time.sleep(self.delay)  # patched: yields, as I/O would (a model's CPU work would not)
            return [Prediction(str(x), {str(x): 1.0}) for x in batch]

    class Quiet:
        def __getattr__(self, name):
            return lambda *a: None

    def predict(model, batch):
        return model.predict(batch)

    model = Model()

    def waiting_batcher(max_wait_ms):  # its lane and loop exist, the loop waits
        batcher = MicroBatcher(lambda n: BatchSettings(max_size=32, max_wait_ms=max_wait_ms),
                               Quiet(), predict)
        batcher.run(model, ["warm-up"])
        model.calls.clear()
        return batcher

    def after_a_turn(batcher, item):
        gevent.sleep(0)  # ready again only after the batching loop has woken up
        batcher.run(model, [item])
"""


def under_gevent(script: str) -> str:
    """What ``script`` prints, run by a child Python."""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


GREENLETS = textwrap.dedent(UNDER_GEVENT + """
    model.delay = 0.002
    batcher = MicroBatcher(lambda n: BatchSettings(max_size=32, max_wait_ms=2), Quiet(), predict)
    def ask(i):
        return [p.label for p in batcher.run(model, [f"{i}-a", f"{i}-b"])]
    jobs = [gevent.spawn(ask, i) for i in range(300)]
    gevent.joinall(jobs, timeout=20)
    wrong = [i for i, j in enumerate(jobs) if j.value != [f"{i}-a", f"{i}-b"]]
    print(len(wrong), len(model.calls), max(model.calls))
""")


def test_many_greenlets_each_get_exactly_their_own_answer():
    wrong, calls, biggest = map(int, under_gevent(GREENLETS).split())
    assert wrong == 0
    assert calls < 300, "greenlets must share model calls"
    assert biggest <= 32


def arrivals(max_wait_ms: float) -> str:
    """Requests "a" and "b" queued when the loop wakes, "turn" ready one turn of the
    worker's loop later, "later" after 50 ms (traffic that has not arrived yet)."""
    return textwrap.dedent(UNDER_GEVENT) + textwrap.dedent("""
        batcher = waiting_batcher(max_wait_ms=MAX_WAIT_MS)

        def after_a_while():
            gevent.sleep(0.05)
            batcher.run(model, ["later"])

        jobs = [gevent.spawn(batcher.run, model, [x]) for x in ("a", "b")]
        jobs += [gevent.spawn(after_a_turn, batcher, "turn"), gevent.spawn(after_a_while)]
        gevent.joinall(jobs, timeout=10)
        print(model.calls)
    """).replace("MAX_WAIT_MS", str(max_wait_ms))


def test_past_the_deadline_a_batch_takes_what_is_queued_without_yielding_to_the_hub():
    # Yielding to the hub (a blocking get, even with timeout 0) would let "turn" in,
    # but under load such a yield waits out every other ready connection of the worker.
    assert under_gevent(arrivals(max_wait_ms=0)) == "[2, 1, 1]"


def test_a_gevent_batch_runs_once_nothing_else_in_the_worker_is_ready():
    # "turn" joins "a" and "b" within the same turn of the loop. Then the loop is idle:
    # the batch runs rather than wait out its 500 ms timer, which "later" would join.
    assert under_gevent(arrivals(max_wait_ms=500)) == "[3, 1]"


BUSY_WORKER = textwrap.dedent(UNDER_GEVENT + """
    batcher = waiting_batcher(max_wait_ms=50)
    busy_until = time.perf_counter() + 1.0

    def busy():
        while time.perf_counter() < busy_until:
            gevent.sleep(0)  # always another greenlet ready: the loop is never idle

    def ask(x):
        batcher.run(model, [x])
        return time.perf_counter() < busy_until

    jobs = [gevent.spawn(busy), gevent.spawn(ask, "a"), gevent.spawn(ask, "b")]
    gevent.joinall(jobs, timeout=10)
    print(model.calls, jobs[1].value, jobs[2].value)
""")


def test_a_gevent_batch_in_a_busy_worker_runs_when_its_timer_ends():
    # The worker never goes idle while "busy" runs (1 s); the 50 ms timer ends the wait.
    assert under_gevent(BUSY_WORKER) == "[2] True True"
