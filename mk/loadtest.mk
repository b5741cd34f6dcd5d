# Load tests and the benchmark (docs/performance.md).
#   make loadtest                       short headless Locust run against a running stack
#   make loadtest LOADTEST_ARGS="--load-shape step -u 60 -t 2m"
#   make loadtest-distributed           the same with one master and two workers
#   make bench                          wrk benchmark: stack vs naive baseline -> bench/REPORT.md
#   make bench-profile                  py-spy on one replica under wrk load -> bench/PROFILE.md
#   make bench-instructions             CPU instructions per request, counted by callgrind
#   make bench-instructions BENCH_INSTRUCTIONS_ARGS="--against ../base"   beside another checkout

LOADTEST_HOST ?= http://127.0.0.1:$(or $(INFER_NGINX_PORT),8080)
LOADTEST_ARGS ?=
LOADTEST_WORKERS ?= 2
BENCH_ARGS ?=
BENCH_PROFILE_ARGS ?=
BENCH_INSTRUCTIONS_ARGS ?=

.PHONY: loadtest loadtest-distributed bench bench-profile bench-instructions

loadtest: setup
	$(PY) -m locust --config loadtest/locust.conf -H $(LOADTEST_HOST) $(LOADTEST_ARGS)

loadtest-distributed: setup
	$(PY) -m loadtest.distributed --workers $(LOADTEST_WORKERS) -- \
		--config loadtest/locust.conf -H $(LOADTEST_HOST) $(LOADTEST_ARGS)

bench: setup models
	INFER_MODELS_DIR=$(abspath $(MODELS_DIR)) $(PY) -m bench $(BENCH_ARGS)

bench-profile: setup models
	INFER_MODELS_DIR=$(abspath $(MODELS_DIR)) $(PY) -m bench.profile $(BENCH_PROFILE_ARGS)

bench-instructions: setup models
	INFER_MODELS_DIR=$(abspath $(MODELS_DIR)) $(PY) -m bench.instructions $(BENCH_INSTRUCTIONS_ARGS)
