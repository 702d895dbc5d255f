# syntax=docker/dockerfile:1
# Runtime image: serving dependencies only (no training extras), non-root, with a healthcheck.
# Build:  docker build -t recserve .
# Run:    docker run -p 8000:8000 -v recserve-home:/var/lib/recserve recserve
#         (the volume must hold a model built by `recserve build`; `--target trainer` builds one)

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    RECSERVE_HOME=/var/lib/recserve
WORKDIR /srv/recserve

FROM base AS deps
COPY pyproject.toml README.md ./
COPY app ./app
COPY feature_repo ./feature_repo
COPY loadtests ./loadtests
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --upgrade pip \
    && /opt/venv/bin/pip install .

FROM deps AS trainer
RUN /opt/venv/bin/pip install ".[train]"
ENV PATH=/opt/venv/bin:$PATH
ENTRYPOINT ["recserve"]
CMD ["demo", "--host", "0.0.0.0"]

FROM base AS runtime
RUN useradd --system --uid 10001 --home-dir /var/lib/recserve recserve \
    && mkdir -p /var/lib/recserve && chown recserve /var/lib/recserve
COPY --from=deps /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH RECSERVE_API__HOST=0.0.0.0 RECSERVE_API__WORKERS=2
USER recserve
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=2s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=1).status != 200)"
ENTRYPOINT ["recserve"]
CMD ["serve"]
