# syntax=docker/dockerfile:1
# One image for every app replica: compose (app1..appN) and Kubernetes run it as is.
#   docker build -t infer-stack .
# Stages: deps (runtime packages only) -> train (adds the training extras, trains
# the models) -> runtime (deps + code + trained models, non-root).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies before code: this layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps))" \
 && pip install -r /tmp/requirements.txt

FROM deps AS train
RUN python -c "import tomllib; extra = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['train']; open('/tmp/train.txt', 'w').write('\n'.join(extra))" \
 && pip install -r /tmp/train.txt
COPY service/ ./service/
# Models are trained at build time, so a container starts ready and every replica
# serves the same artifacts.
RUN INFER_MODELS_DIR=/src/models python -m service.train

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    INFER_HOST=0.0.0.0 \
    INFER_PORT=8000 \
    INFER_MODELS_DIR=/app/models \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=deps /opt/venv /opt/venv
COPY --chown=app:app service/ ./service/
COPY --from=train --chown=app:app /src/models ./models/
USER 10001:10001
EXPOSE 8000
# Liveness only: readiness (/readyz) is checked by compose's healthcheck and k8s probes.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/healthz' % os.environ['INFER_PORT']; sys.exit(urllib.request.urlopen(url, timeout=2).status != 200)"]
# gunicorn_conf.py reads INFER_* and wipes PROMETHEUS_MULTIPROC_DIR at start.
CMD ["gunicorn", "-c", "service/gunicorn_conf.py", "service:create_app()"]
