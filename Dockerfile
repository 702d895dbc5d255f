# syntax=docker/dockerfile:1
# Two images from one file (docker-compose.yml builds both):
#   runtime (default): serving dependencies only (no training extras), non-root, healthcheck.
#     docker build -t recserve .
#     docker run -p 8000:8000 -e RECSERVE_API__WORKERS=4 -v recserve-home:/var/lib/recserve recserve
#     (the volume must hold a model built by `recserve build`, e.g. by the trainer image)
#   trainer: adds the training extras; runs `build`, `segment`, `consume` and the scheduler loop.
#     docker build --target trainer -t recserve-trainer .

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 RECSERVE_HOME=/var/lib/recserve
WORKDIR /srv/recserve
# One unprivileged user, numeric ids so volumes and Kubernetes securityContext agree on them.
RUN groupadd --system --gid 10001 recserve \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/recserve recserve \
    && mkdir -p /var/lib/recserve && chown 10001:10001 /var/lib/recserve

# Build stage: the virtualenv with the serving install, the NATS client for that event-log
# backend and psycopg for PostgreSQL as the database of record; nothing of the build toolchain
# reaches the runtime image.
FROM base AS deps
COPY pyproject.toml README.md ./
COPY app ./app
COPY feature_repo ./feature_repo
COPY loadtests ./loadtests
RUN python -m venv /opt/venv && /opt/venv/bin/pip install ".[nats,postgres]"

FROM deps AS trainer
RUN /opt/venv/bin/pip install ".[train]"
COPY deploy/scheduler.sh /usr/local/bin/recserve-scheduler
ENV PATH=/opt/venv/bin:$PATH
USER 10001:10001
ENTRYPOINT ["recserve"]
CMD ["demo", "--host", "0.0.0.0"]

FROM base AS runtime
COPY --from=deps /opt/venv /opt/venv
# RECSERVE_API__WORKERS: uvicorn worker processes (about one per core; see docs/operations.md).
ENV PATH=/opt/venv/bin:$PATH RECSERVE_API__HOST=0.0.0.0 RECSERVE_API__WORKERS=2
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=2s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=1).status != 200)"]
ENTRYPOINT ["recserve"]
CMD ["serve"]
