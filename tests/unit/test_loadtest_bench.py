"""The benchmark's arithmetic and report, from hand-made samples (no servers)."""

from __future__ import annotations

import pytest

from bench import __main__ as bench_main
from bench import report
from bench.results import Spread, summarise, targets, to_baseline, to_ceiling
from bench.wrk import Sample, errors, parse


def sample(system, workload, c, rps, p99=10.0, errs=0, round_=1, cpu_ms=None) -> Sample:
    requests = int(rps * 5)
    cpu_ms = cpu_ms if cpu_ms is not None else (0.5 if system == "stack" else 2.0)
    return Sample(system, workload, c, round_, requests=requests, seconds=5.0, errors=errs,
                  p50_ms=p99 / 4, p99_ms=p99, cpu_seconds=cpu_ms * requests / 1000)  # fmt: skip


def test_the_bench_line_is_read_and_every_kind_of_error_counted():
    output = (
        "Running 5s test @ http://127.0.0.1:1\n"
        'BENCH {"requests":100,"duration_us":5000000,"connect_errors":1,"read_errors":2,'
        '"write_errors":3,"status_errors":4,"timeouts":5,"p50_us":1500,"p90_us":2000,'
        '"p99_us":9000,"max_us":12000,"mean_us":1600.0}\n'
    )
    numbers = parse(output)
    assert numbers["p99_us"] == 9000
    assert errors(numbers) == 15


def test_output_without_the_bench_line_is_an_error():
    with pytest.raises(ValueError, match="no BENCH line"):
        parse("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_three_rounds_give_their_median_and_range():
    summaries = summarise(
        sample("stack", "mixed", 64, rps, p99=p99, errs=e, round_=r)
        for r, (rps, p99, e) in enumerate([(900, 30, 0), (1200, 20, 1), (1000, 50, 2)], 1)
    )
    summary = summaries[("stack", "mixed", 64)]
    assert summary.runs == 3
    assert summary.rps == Spread(1000, 900, 1200)
    assert summary.p99_ms == Spread(30, 20, 50)
    assert summary.errors == 3
    assert summary.cpu_ms == Spread(0.5, 0.5, 0.5)


def measured_run(iris_uncached_rps=3000, naive_rps=500, p99=40.0, errs_256=0):
    samples = []
    for c in (16, 64, 256):
        samples += [
            sample("stack", "healthz", c, 5000),
            sample("stack", "iris-uncached", c, iris_uncached_rps, p99=p99),
            sample("stack", "iris-cached", c, 4500),
            sample("stack", "sentiment-uncached", c, 2100, errs=errs_256 if c == 256 else 0),
            sample("naive", "iris-uncached", c, naive_rps),
            sample("naive", "iris-cached", c, naive_rps),
            sample("naive", "sentiment-uncached", c, 400),
        ]
    return summarise(samples)


def test_ratios_are_to_the_stack_ceiling_and_to_the_naive_run_of_the_same_workload():
    summaries = measured_run()
    assert to_ceiling(summaries, ("stack", "iris-uncached", 64)) == pytest.approx(0.6)
    assert to_baseline(summaries, ("stack", "iris-uncached", 64)) == pytest.approx(6.0)
    assert to_baseline(summaries, ("stack", "mixed", 64)) is None


def test_targets_met_when_the_numbers_are_good():
    verdicts = {t.goal.split(":")[0]: t.met for t in targets(measured_run())}
    assert all(verdicts.values()), verdicts


def test_each_missed_target_is_reported_as_missed():
    missed = {
        t.goal.split(" at")[0].split(":")[0]
        for t in targets(measured_run(iris_uncached_rps=2000, naive_rps=900, p99=80, errs_256=3))
        if t.met is False
    }
    assert missed == {"uncached iris", "p99", "zero errors", "every workload"}


def test_the_report_has_the_reference_table_targets_and_every_measurement():
    summaries = measured_run()
    text = report.render(summaries, {"machine": {"cores": "2"}}, ["- a note"])
    assert "| iris-uncached | 3,000 | 40.0 | 0.50 | 500 | 10.0 | 2.00 | 6.00x | 60.0% |" in text
    assert "| zero errors at c=256 | 0 errors | yes |" in text
    assert text.count("| stack | healthz |") == 3
    assert "| cores | `2` |" in text and "- a note" in text


def test_the_plots_are_written_as_png(tmp_path):
    written = report.plot(measured_run(), tmp_path)
    assert [p.name for p in written] == ["throughput.png", "p99.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in written)


def test_profile_samples_count_for_the_innermost_layer_they_touch():
    from bench.profile import summarise

    collapsed = "\n".join([
        "handle (gunicorn/workers/ggevent.py:1);view (flask/app.py:2);"
        "predict (sklearn/base.py:3);_is_type (inspect.py:4) 30",
        "handle (gunicorn/workers/ggevent.py:1);view (flask/app.py:2);"
        "get_many (redis/client.py:5) 10",
        "handle (gunicorn/workers/ggevent.py:1);send (gevent/_socketcommon.py:6) 10",
        "view (flask/app.py:2);_finish (service/request_log.py:7);emit (logging/__init__.py:8) 5",
    ])  # fmt: skip
    layers, leaves, total = summarise(collapsed)
    assert total == 55
    assert layers["request log: logging"] == 5
    assert layers["model: service/models, scikit-learn, numpy, scipy"] == 30
    assert layers["cache: Redis client, Flask-Caching"] == 10
    assert layers["Gunicorn / gevent (I/O, scheduling)"] == 10
    assert leaves.most_common(1) == [("_is_type (inspect.py:4)", 30)]


def test_the_stacks_own_metrics_give_batch_size_queue_wait_and_hit_ratio_of_a_run():
    from bench.stack_metrics import describe, parse

    before = parse(
        "# HELP model_batch_size_sum instances\n"
        'model_batch_size_sum{model="iris"} 10.0\n'
        'model_batch_size_count{model="iris"} 10.0\n'
        'model_queue_wait_seconds_sum{model="iris"} 0.5\n'
        'model_queue_wait_seconds_count{model="iris"} 10.0\n'
        'cache_lookups_total{model="iris",result="hit"} 5.0\n'
        'model_batch_size_bucket{model="iris",le="1.0"} 10.0\n'
    )
    after = parse(
        'model_batch_size_sum{model="iris"} 110.0\n'
        'model_batch_size_count{model="iris"} 30.0\n'
        'model_queue_wait_seconds_sum{model="iris"} 0.7\n'
        'model_queue_wait_seconds_count{model="iris"} 110.0\n'
        'cache_lookups_total{model="iris",result="hit"} 35.0\n'
        'cache_lookups_total{model="iris",result="miss"} 90.0\n'
        'batch_rejected_total{model="iris"} 2.0\n'
    )
    figures = describe(before, after)
    assert figures["iris batch size"] == pytest.approx(5.0)
    assert figures["iris queue wait ms"] == pytest.approx(2.0)
    assert figures["cache hit ratio"] == pytest.approx(0.25)
    assert figures["shed (503)"] == 2
    assert "sentiment batch size" not in figures


@pytest.mark.parametrize("option", [["--systems", "both"], ["--systems", "stack,nave"],
                                    ["--workloads", "healthz,iris"]])  # fmt: skip
def test_an_unknown_system_or_workload_is_refused_before_anything_starts(option, capsys,
                                                                         monkeypatch, tmp_path):
    monkeypatch.setattr(bench_main, "run", lambda args: pytest.fail("measured anyway"))
    with pytest.raises(SystemExit) as exit_:
        bench_main.main([*option, "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert not (tmp_path / "out").exists()
    assert f"{option[0]}: unknown" in capsys.readouterr().err
