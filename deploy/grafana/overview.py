"""The overview dashboard: traffic, errors, latency, models, cache, replicas and NGINX.

Metric names and labels are the ones docs/architecture.md fixes. Panels that read
recording rules (deploy/prometheus/rules) say so: those are summed over every
replica and do not follow the replica variable.
"""

from __future__ import annotations

from deploy.grafana.builder import Dashboard, Panel, Query, Row, Variable

APP = 'job="infer", instance=~"$replica"'
MODELS = f'{APP}, model=~"$model"'
WINDOW = "$__rate_interval"
SLO_P99_SECONDS = 0.1
ERROR_BUDGET = 0.001


def rate(metric: str, matchers: str = APP) -> str:
    return f"rate({metric}{{{matchers}}}[{WINDOW}])"


def quantile(q: float, metric: str, by: str = "", matchers: str = APP) -> str:
    labels = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({labels}) ({rate(metric + '_bucket', matchers)}))"


def zero_filled(expr: str, zeros: str) -> str:
    """``expr``, or 0 for every series of ``zeros`` where ``expr`` has none yet."""
    return f"({expr}) or ({zeros}) * 0"


def lookups(result: str = "") -> str:
    """Cache lookups a second per model, of one result or of all."""
    matchers = f'{MODELS}, result="{result}"' if result else MODELS
    return f"sum by (model) ({rate('cache_lookups_total', matchers)})"


def share(matchers: str, by: str = "") -> str:
    """The share of requests with ``matchers`` (e.g. a status class) among all requests."""
    grouping = f" by ({by})" if by else ""
    part = f"sum{grouping} ({rate('flask_http_request_total', f'{APP}, {matchers}')})"
    whole = f"sum{grouping} ({rate('flask_http_request_total')})"
    return f"({zero_filled(part, whole)}) / {whole}"


SERVICE_LEVEL = Row(
    "Service level (all replicas, from recording rules)",
    (
        Panel(
            "Error budget burn rate",
            "5xx ratio divided by the 0.1% error budget, per SLO window. 1 spends the budget "
            "in exactly 30 days; the fast-burn alert needs 14.4 over both 1h and 5m.",
            tuple(
                Query(f"job:slo_errors_per_request:ratio_rate{w} / {ERROR_BUDGET}", w)
                for w in ("5m", "30m", "1h", "6h")
            ),
            unit="short",
            threshold=14.4,
            worry=(
                "Above 1 the budget shrinks; above 14.4 on 1h and 5m together the fast-burn alert "
                "fires, above 6 on 6h and 30m the slow one."
            ),
        ),
        Panel(
            "Request latency against the 100 ms p99 SLO",
            "Quantiles over 5 minutes of the request-duration buckets summed over replicas.",
            tuple(
                Query(f"job:flask_http_request_duration_seconds:{q}_5m", q)
                for q in ("p50", "p95", "p99")
            ),
            unit="s",
            threshold=SLO_P99_SECONDS,
            worry="p99 above the red line (100 ms) for 10 minutes fires InferLatencyP99High.",
        ),
    ),
)

TRAFFIC = Row(
    "Traffic",
    (
        Panel(
            "Request rate by route and status",
            "Requests a second answered by the replicas, per Flask endpoint and status "
            "(probes and /metrics excluded).",
            (
                Query(
                    f"sum by (endpoint, status) "
                    f"({rate('flask_http_request_duration_seconds_count')})",
                    "{{endpoint}} {{status}}",
                ),
            ),
            unit="reqps",
            worry=(
                "A new 5xx series, a 4xx series growing faster than its 2xx, or a sudden drop to "
                "zero."
            ),
        ),
        Panel(
            "Error ratio (5xx and 4xx)",
            "Share of requests answered with a server error (5xx) and with a client error "
            "(4xx), separately.",
            (Query(share('status=~"5.."'), "5xx"), Query(share('status=~"4.."'), "4xx")),
            unit="percentunit",
            worry=(
                "Any sustained 5xx above 0.1% (the SLO budget). A 4xx jump means clients send bad "
                "input or an API change broke them."
            ),
        ),
        Panel(
            "Request latency p50, p95, p99",
            "From the request-duration buckets summed over the selected replicas, then the "
            "quantile (never an average of per-replica quantiles).",
            tuple(
                Query(quantile(q, "flask_http_request_duration_seconds"), f"p{round(q * 100)}")
                for q in (0.5, 0.95, 0.99)
            ),
            unit="s",
            threshold=SLO_P99_SECONDS,
            worry=(
                "p99 near or above 100 ms; p50 rising too means every request is slower, not just "
                "a tail."
            ),
        ),
        Panel(
            "Traffic balance across replicas",
            "Each replica's share of the requests; NGINX's least_conn should keep them close.",
            (
                Query(
                    f"sum by (instance) ({rate('flask_http_request_total')}) / on () group_left "
                    f"sum({rate('flask_http_request_total')})",
                    "{{instance}}",
                ),
            ),
            unit="percentunit",
            stacked=True,
            max_value=1,
            worry=(
                "One replica far from 1/N of the traffic: it is failing, slow, or NGINX marked it "
                "down."
            ),
        ),
        Panel(
            "Replicas up",
            "Replicas whose /metrics Prometheus scraped at the last attempt, of those configured.",
            (Query('sum(up{job="infer"})', "up"), Query('count(up{job="infer"})', "configured")),
            kind="stat",
            width=6,
            worry=(
                "up below configured: a replica is down (InferReplicaDown); 0: "
                "InferAllReplicasDown."
            ),
        ),
        Panel(
            "Requests in flight per replica",
            "Requests being handled right now, summed over each replica's workers.",
            (Query(f"sum by (instance) (http_requests_in_flight{{{APP}}})", "{{instance}}"),),
            width=18,
            worry=(
                "A replica whose in-flight count climbs and stays high while the others do not: "
                "stuck or saturated."
            ),
        ),
    ),
)

MODELS_ROW = Row(
    "Models",
    (
        Panel(
            "Inference latency per model",
            "Duration of one model call (one batch), p50 and p99.",
            (
                Query(quantile(0.5, "model_inference_seconds", "model", MODELS), "{{model}} p50"),
                Query(quantile(0.99, "model_inference_seconds", "model", MODELS), "{{model}} p99"),
            ),
            unit="s",
            worry=(
                "p99 rising without more traffic: the model or its batches got slower (a new "
                "version?)."
            ),
        ),
        Panel(
            "Batch size per model",
            "Instances per model call: the mean, and the p95 from the buckets.",
            (
                Query(
                    f"sum by (model) ({rate('model_batch_size_sum', MODELS)}) / "
                    f"sum by (model) ({rate('model_batch_size_count', MODELS)})",
                    "{{model}} mean",
                ),
                Query(quantile(0.95, "model_batch_size", "model", MODELS), "{{model}} p95"),
            ),
            unit="short",
            worry=(
                "Batches near the configured maximum for long stretches: the model is the "
                "bottleneck, add capacity."
            ),
        ),
        Panel(
            "Queue wait per model",
            "Time a request waited for its batch to run, p99.",
            (Query(quantile(0.99, "model_queue_wait_seconds", "model", MODELS), "{{model}} p99"),),
            unit="s",
            worry=(
                "Queue wait approaching the latency SLO: requests wait for batches longer than "
                "they compute."
            ),
        ),
        Panel(
            "Predicted label mix (1h share, all replicas)",
            "Each label's share of its model's predictions over the last hour, from the "
            "recording rule the label-mix alert compares with yesterday.",
            (
                Query(
                    'job_model_label:model_predictions:share1h{model=~"$model"}',
                    "{{model}} {{label}}",
                ),
            ),
            unit="percentunit",
            stacked=True,
            worry=(
                "A band widening or vanishing against yesterday: input drift or a model change "
                "(InferLabelMixShift)."
            ),
        ),
        Panel(
            "Requests shed per model",
            "Requests answered 503 because the model's batch queue was full.",
            (
                Query(
                    zero_filled(
                        f"sum by (model) ({rate('batch_rejected_total', MODELS)})",
                        f"sum by (model) ({rate('model_inference_seconds_count', MODELS)})",
                    ),
                    "{{model}}",
                ),
            ),
            unit="reqps",
            worry=(
                "Anything above zero: a batch queue was full and clients got 503 with Retry-After."
            ),
        ),
        Panel(
            "Loaded model versions",
            "One entry per model version loaded by some replica.",
            (Query(f"max by (model, version) (model_info{{{MODELS}}})", "{{model}} {{version}}"),),
            kind="stat",
            worry="Replicas serving different versions of one model outside a planned rollout.",
        ),
    ),
)

CACHE = Row(
    "Cache",
    (
        Panel(
            "Cache hit ratio per model",
            "Hits among all lookups; errors count as lookups the cache did not serve.",
            (Query(f"({zero_filled(lookups('hit'), lookups())}) / {lookups()}", "{{model}}"),),
            unit="percentunit",
            max_value=1,
            width=8,
            worry=(
                "A sudden fall that does not recover: Redis lost its data, a version change, or "
                "new unique traffic."
            ),
        ),
        Panel(
            "Cache lookups by result",
            "Lookups a second per model, result (hit, miss, error) and tier: a worker's own "
            "memory (local) or the shared Redis.",
            (
                Query(
                    f"sum by (model, result, tier) ({rate('cache_lookups_total', MODELS)})",
                    "{{model}} {{result}} ({{tier}})",
                ),
            ),
            unit="ops",
            stacked=True,
            width=8,
            worry=(
                "An error band appearing; misses growing while hits fall; Redis hits "
                "outgrowing local ones (hot inputs no longer fit INFER_CACHE_LOCAL_ENTRIES)."
            ),
        ),
        Panel(
            "Cache errors and dropped writes",
            "Lookups that failed (Redis unreachable or timing out; the service fails open), "
            "and answers not written to Redis because a worker's write queue was full.",
            (
                Query(zero_filled(lookups("error"), lookups()), "{{model}} lookup errors"),
                Query(f"sum ({rate('cache_writes_dropped_total')})", "writes dropped"),
            ),
            unit="ops",
            width=8,
            worry=(
                "Anything sustained above zero: Redis is unreachable or timing out "
                "(InferCacheErrors), or cannot keep up with writes (InferCacheWritesDropped)."
            ),
        ),
    ),
)

NGINX = Row(
    "NGINX",
    (
        Panel(
            "NGINX connections",
            "Client connections by state, from stub_status through the exporter.",
            tuple(
                Query(f'sum(nginx_connections_{state}{{job="nginx"}})', state)
                for state in ("active", "reading", "writing", "waiting")
            ),
            worry=(
                "Active connections climbing with waiting flat: requests pile up in front of the "
                "replicas."
            ),
        ),
        Panel(
            "Requests through NGINX and answered by the replicas",
            "NGINX counts every request it handles (probes and errors it answers itself "
            "included); the replicas count the ones that reached Flask.",
            (
                Query(f'sum(rate(nginx_http_requests_total{{job="nginx"}}[{WINDOW}]))', "nginx"),
                Query(
                    f'sum(rate(nginx_connections_accepted{{job="nginx"}}[{WINDOW}]))',
                    "nginx connections accepted",
                ),
                Query(f"sum({rate('flask_http_request_total')})", "replicas"),
            ),
            unit="reqps",
            worry="NGINX far above the replicas: NGINX answers itself (413, 429, 502).",
        ),
    ),
)

OVERVIEW = Dashboard(
    uid="infer-overview",
    title="Inference service: overview",
    description="Traffic, errors, latency, models, cache and replicas of the inference stack "
    "(docs/monitoring.md describes every panel).",
    rows=[SERVICE_LEVEL, TRAFFIC, MODELS_ROW, CACHE, NGINX],
    variables=[
        Variable("replica", "Replica", 'up{job="infer"}', "instance"),
        Variable("model", "Model", 'model_info{job="infer"}', "model"),
    ],
)
