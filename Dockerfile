# polylab headless runner: `polylab run` with /health and /metrics on $POLYLAB_HTTP_PORT.
# Two stages: the builder turns polylab and its pinned dependencies into wheels; the runtime
# stage installs only those wheels (no compiler, no pip cache) and runs as a non-root user.

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY polylab ./polylab
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    POLYLAB_HTTP_HOST=0.0.0.0 \
    POLYLAB_HTTP_PORT=8080 \
    DRY_RUN=true
RUN groupadd --system --gid 10001 polylab \
    && useradd --system --uid 10001 --gid polylab --home-dir /app --shell /usr/sbin/nologin polylab
COPY --from=builder /wheels /wheels
RUN pip install --no-index --find-links=/wheels polylab && rm -rf /wheels
WORKDIR /app
# runs/ holds the default SQLite ledger and run folders when DATABASE_URL is not set
RUN mkdir -p /app/runs && chown -R polylab:polylab /app
USER polylab:polylab
EXPOSE 8080
# slim has no curl: the probe is stdlib Python (exit 0 on 200 from /health, 1 otherwise)
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "polylab.ops.probe"]
ENTRYPOINT ["polylab", "run"]
