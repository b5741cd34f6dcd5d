"""The dashboards and recording rules, evaluated by the stack's real Prometheus.

One bounded mixed load (iris and sentiment, repeated and unique inputs, bad requests)
goes through NGINX. Then every query of every committed dashboard panel, with the
variables set to All and to one concrete value, and every recording rule are
evaluated through Prometheus' HTTP API: each must answer without error or warning and
with at least one finite sample. The numbers must also agree with the traffic: the
request counters exactly with the statuses the clients saw, the cache-hit counters
exactly with the ``X-Cache`` headers, and the request-rate panel integrated over time
with the number of requests sent, within 10% (rate() extrapolates each window by up to
one scrape interval, about 5% over a 20 s window).
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests
import yaml

from deploy.procs import ROOT, wait_until

DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULE_FILES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
# What Grafana's $__rate_interval becomes here: 20 scrapes at the fixture's 1 s.
RATE_WINDOW_SECONDS = 20
CLIENTS = 8
REQUEST_TIMEOUT = 10.0
RATE_PANEL_TOLERANCE = 0.10
MODELS = ("iris", "sentiment")
# A recording rule whose newest sample tells when the rules were last evaluated.
EVALUATION_PROBE = "job:slo_errors_per_request:ratio_rate5m"


# --- what the dashboards and rules hold -------------------------------------------------
def panel_queries() -> list[tuple[str, str]]:
    return [
        (f"{path.stem}: {panel['title']} [{target['refId']}]", target["expr"])
        for path in DASHBOARDS
        for panel in json.loads(path.read_text())["panels"]
        for target in panel.get("targets", [])
    ]


def recording_rules() -> list[dict]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    ]


def dashboard_variables() -> dict[str, tuple[str, str]]:
    """Query variables by name: (selector, label) from ``label_values(selector, label)``."""
    found = {}
    for path in DASHBOARDS:
        for variable in json.loads(path.read_text())["templating"]["list"]:
            if variable["type"] == "query":
                match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["definition"])
                assert match, variable["definition"]
                found[variable["name"]] = (match.group(1), match.group(2))
    return found


def substitute(expr: str, values: dict[str, str]) -> str:
    """Grafana's interpolation: regex values for the variables, the rate window."""
    expr = expr.replace("$__rate_interval", f"{RATE_WINDOW_SECONDS}s")
    for name, value in values.items():
        expr = expr.replace(f"${name}", value)
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def promql_regex_literal(value: str) -> str:
    """One concrete variable value as Grafana puts it into a regex matcher."""
    return re.escape(value).replace("\\", "\\\\")


# --- Prometheus' HTTP API --------------------------------------------------------------
class PrometheusAPI:
    def __init__(self, base_url: str, interval: float):
        self.base_url = base_url
        self.interval = interval  # scrape and rule evaluation, in seconds

    def _get(self, path: str, **params) -> dict:
        response = requests.get(f"{self.base_url}{path}", params=params, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", body
        assert not body.get("warnings"), body["warnings"]
        return body["data"]

    def instant(self, expr: str, at: float | None = None) -> list[dict]:
        params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
        return self._get("/api/v1/query", **params)["result"]

    def series_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        return self._get(
            "/api/v1/query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=step
        )["result"]

    def label_values(self, label: str, selector: str) -> list[str]:
        return self._get(f"/api/v1/label/{label}/values", **{"match[]": selector})

    def rule_groups(self) -> list[dict]:
        return self._get("/api/v1/rules")["groups"]

    def by(self, expr: str, label: str) -> dict[str, float]:
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.instant(expr)}

    def oldest_sample_time(self, expr: str) -> float:
        """The oldest timestamp among the newest samples of ``expr``'s series (0: none)."""
        result = self.instant(f"min(timestamp({expr}))")
        return float(result[0]["value"][1]) if result else 0.0

    def wait_until_scraped_and_evaluated_after(self, moment: float) -> float:
        """Until every replica was scraped, and the rules evaluated on that scrape, after
        ``moment``; returns the time of that evaluation.

        A rule evaluation that starts while a scrape is still being written does not see
        it, and with equal intervals that happens on every cycle when the phases line up:
        so wait for an evaluation a whole interval after the scrape.
        """
        wait_until(
            lambda: self.oldest_sample_time('up{job="infer"}') > moment,
            15,
            interval=0.2,
            what="a scrape of every replica",
        )
        settled = self.oldest_sample_time('up{job="infer"}') + self.interval
        wait_until(
            lambda: self.oldest_sample_time(EVALUATION_PROBE) > settled,
            15,
            interval=0.2,
            what="a rule evaluation an interval after the scrape",
        )
        return self.oldest_sample_time(EVALUATION_PROBE)


def finite_values(result: list[dict]) -> list[float]:
    return [float(r["value"][1]) for r in result if math.isfinite(float(r["value"][1]))]


# --- the load ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    model: str
    body: bytes
    kind: str  # hot, cold (cache hits, misses) or bad-json, bad-empty, bad-model


def iris_instance(rng: random.Random) -> list[float]:
    return [
        round(rng.uniform(4.3, 7.9), 2),
        round(rng.uniform(2.0, 4.4), 2),
        round(rng.uniform(1.0, 6.9), 2),
        round(rng.uniform(0.1, 2.5), 2),
    ]


def planned_calls(seed: int = 7) -> list[Call]:
    """220 requests: repeated (cache hits) and unique inputs for both models, and bad ones."""
    rng = random.Random(seed)
    hot_iris = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 2.8, 4.3, 1.3]]
    hot_texts = ["great service, I love it", "terrible, it broke after a day"]

    def body(instance) -> bytes:
        return json.dumps({"instances": [instance]}).encode()

    calls = [Call("iris", body(hot_iris[i % 3]), "hot") for i in range(60)]
    calls += [Call("iris", body(iris_instance(rng)), "cold") for _ in range(50)]
    calls += [Call("sentiment", body(hot_texts[i % 2]), "hot") for i in range(40)]
    calls += [
        Call("sentiment", body(f"order {rng.randrange(10**9)} arrived, it is okay"), "cold")
        for _ in range(40)
    ]
    calls += [Call("iris", b'{"instances": [1, 2', "bad-json") for _ in range(10)]
    calls += [
        Call("sentiment", json.dumps({"instances": []}).encode(), "bad-empty") for _ in range(10)
    ]
    calls += [Call("no-such-model", body([1, 2, 3, 4]), "bad-model") for _ in range(10)]
    rng.shuffle(calls)
    return calls


@dataclass(frozen=True)
class Answer:
    model: str
    status: int
    cache: str | None


def send(base_url: str, calls: list[Call], clients: int = CLIENTS) -> list[Answer]:
    local = threading.local()

    def one(call: Call) -> Answer:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        response = local.session.post(
            f"{base_url}/v1/models/{call.model}/predict",
            data=call.body,
            headers={"Content-Type": "application/json"},
            timeout=REQUEST_TIMEOUT,
        )
        return Answer(call.model, response.status_code, response.headers.get("X-Cache"))

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, calls))


def warm_up_calls() -> list[Call]:
    """One call of each kind, so every series the load touches exists before it starts.

    rate() cannot count the first value of a series that appears mid-window; in steady
    state every series exists, and the warm-up recreates that.
    """
    first: dict[tuple[str, str], Call] = {}
    for call in planned_calls(seed=11):
        first.setdefault((call.model, call.kind), call)
    return list(first.values())


@dataclass
class Observation:
    answers: list[Answer]
    before: dict[str, dict[str, float]]
    after: dict[str, dict[str, float]]
    load_start: float
    load_end: float
    evaluated_at: float
    replicas: list[str]


SNAPSHOTS = {
    "status": ('sum by (status) (flask_http_request_total{job="infer"})', "status"),
    "hits": ('sum by (model) (cache_lookups_total{job="infer", result="hit"})', "model"),
    "misses": ('sum by (model) (cache_lookups_total{job="infer", result="miss"})', "model"),
}


def snapshot(prometheus: PrometheusAPI) -> dict[str, dict[str, float]]:
    return {name: prometheus.by(expr, label) for name, (expr, label) in SNAPSHOTS.items()}


@pytest.fixture(scope="module")
def prometheus(stack) -> PrometheusAPI:
    interval = stack.config.scrape_interval
    assert interval.endswith("s") and interval[:-1].isdigit(), interval
    return PrometheusAPI(stack.prometheus_url, float(interval[:-1]))


@pytest.fixture(scope="module")
def observed(stack, prometheus) -> Observation:
    """The bounded load, with the counters read before and after it."""
    stack.ensure_replicas()
    stack.wait_for_targets_up()
    for replica in stack.replica_urls:
        assert all(a.status < 500 for a in send(replica, warm_up_calls() * 2, clients=1))
    # Let the warm-up leave the rate window, so the window sees the load alone.
    time.sleep(RATE_WINDOW_SECONDS + 1)
    prometheus.wait_until_scraped_and_evaluated_after(time.time())
    before = snapshot(prometheus)

    load_start = time.time()
    answers = send(stack.nginx_url, planned_calls())
    load_end = time.time()
    evaluated_at = prometheus.wait_until_scraped_and_evaluated_after(load_end)
    after = snapshot(prometheus)
    # The rate windows must slide past the whole load before the panel is integrated.
    time.sleep(max(0.0, load_end + RATE_WINDOW_SECONDS + 2 - time.time()))
    return Observation(
        answers, before, after, load_start, load_end, evaluated_at, list(stack.replica_addresses)
    )


def delta(observed: Observation, name: str) -> dict[str, int]:
    keys = set(observed.before[name]) | set(observed.after[name])
    changes = {k: observed.after[name].get(k, 0) - observed.before[name].get(k, 0) for k in keys}
    return {k: round(v) for k, v in changes.items() if round(v)}


# --- the tests ---------------------------------------------------------------------------
def test_the_load_gets_answers_and_some_are_client_errors(observed):
    statuses = Counter(a.status for a in observed.answers)
    assert statuses[200] == 190, statuses
    assert sum(n for s, n in statuses.items() if 400 <= s < 500) == 30, statuses


def test_dashboard_variables_list_the_stack_replicas_and_models(observed, prometheus):
    variables = dashboard_variables()
    assert set(variables) == {"replica", "model"}
    selector, label = variables["replica"]
    assert sorted(prometheus.label_values(label, selector)) == sorted(observed.replicas)
    selector, label = variables["model"]
    assert set(prometheus.label_values(label, selector)) >= set(MODELS)


@pytest.mark.parametrize("choice", ["all", "one"])
@pytest.mark.parametrize(("panel", "expr"), panel_queries(), ids=[p for p, _ in panel_queries()])
def test_panel_query_returns_finite_data_without_errors(observed, prometheus, panel, expr, choice):
    values = {"replica": ".*", "model": ".*"}
    if choice == "one":
        values = {"replica": promql_regex_literal(observed.replicas[0]), "model": "sentiment"}
    result = prometheus.instant(substitute(expr, values), at=observed.evaluated_at)
    assert finite_values(result), f"{panel} with {values} returned {result}"


@pytest.mark.parametrize("rule", recording_rules(), ids=lambda rule: rule["record"])
def test_recording_rule_is_evaluated_by_prometheus_and_returns_data(observed, prometheus, rule):
    recorded = prometheus.instant(rule["record"], at=observed.evaluated_at)
    assert finite_values(recorded), f"{rule['record']} has no finite sample: {recorded}"
    # The expression itself, evaluated by the API at the same instant, yields every
    # series the rule recorded (and may already see a newer scrape than the rule did).
    direct = prometheus.instant(rule["expr"], at=observed.evaluated_at)
    labels = [{k: v for k, v in r["metric"].items() if k != "__name__"} for r in recorded]
    assert all(label_set in [r["metric"] for r in direct] for label_set in labels)


def test_every_rule_group_is_loaded_and_evaluates_without_errors(observed, prometheus):
    groups = prometheus.rule_groups()
    loaded = {g["name"] for g in groups}
    expected = {
        g["name"] for path in RULE_FILES for g in yaml.safe_load(path.read_text())["groups"]
    }
    assert loaded == expected
    broken = [
        (r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"
    ]
    assert broken == []


def test_no_alert_fires_on_the_healthy_stack(observed, prometheus):
    firing = prometheus.instant('ALERTS{alertstate="firing"}')
    assert firing == [], [r["metric"] for r in firing]


def test_request_counters_agree_exactly_with_the_statuses_clients_got(observed):
    sent = Counter(str(a.status) for a in observed.answers)
    assert delta(observed, "status") == dict(sent)


def test_cache_counters_agree_exactly_with_the_x_cache_headers(observed):
    for result, name in (("hit", "hits"), ("miss", "misses")):
        seen = Counter(a.model for a in observed.answers if a.status == 200 and a.cache == result)
        assert delta(observed, name) == dict(seen), result
    assert all(delta(observed, "hits").get(model, 0) > 0 for model in MODELS)


def test_request_rate_panel_integrated_over_the_load_equals_the_requests_sent(observed, prometheus):
    (expr,) = [e for p, e in panel_queries() if "Request rate by route and status" in p]
    step = 1.0
    series = prometheus.series_range(
        f"sum({substitute(expr, {'replica': '.*', 'model': '.*'})})",
        observed.load_start - step,
        observed.load_end + RATE_WINDOW_SECONDS + 1,
        step,
    )
    integral = sum(float(v) * step for s in series for _, v in s["values"])
    sent = len(observed.answers)
    assert abs(integral - sent) <= RATE_PANEL_TOLERANCE * sent, (integral, sent)


def test_traffic_balance_panel_shares_sum_to_one_and_every_replica_serves(observed, prometheus):
    (expr,) = [e for p, e in panel_queries() if "Traffic balance across replicas" in p]
    shares = {
        r["metric"]["instance"]: float(r["value"][1])
        for r in prometheus.instant(
            substitute(expr, {"replica": ".*", "model": ".*"}), at=observed.evaluated_at
        )
    }
    assert set(shares) == set(observed.replicas)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-6)
    assert min(shares.values()) > 0.2, shares


def test_a_killed_replica_puts_its_down_alert_in_pending_and_a_restart_clears_it(
    observed, stack, prometheus
):
    """InferReplicaDown against real `up` series: the right instance, and only it.

    Its `for: 1m` is proven by promtool; here the alert goes pending within seconds
    of the kill and clears once the replica is back.
    """
    victim = stack.replica_addresses[1]
    replica_down = 'ALERTS{alertname="InferReplicaDown"}'
    stack.kill_replica(1)
    try:
        pending = wait_until(
            lambda: prometheus.instant(replica_down), 15, interval=0.2, what="a pending alert"
        )
        assert [r["metric"]["instance"] for r in pending] == [victim]
        assert pending[0]["metric"]["alertstate"] == "pending"
        assert pending[0]["metric"]["severity"] == "warning"
        assert prometheus.instant('ALERTS{alertname="InferAllReplicasDown"}') == []
    finally:
        stack.ensure_replicas()
    wait_until(lambda: prometheus.instant(replica_down) == [], 15, what="the alert to clear")
