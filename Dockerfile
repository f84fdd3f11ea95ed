# The engagement-streams image: `engage worker`, `engage ingest`, `engage db migrate`, ...
# Built by deploy/docker-compose.yml. Kafka and ClickHouse are external (KAFKA_BOOTSTRAP_SERVERS,
# CLICKHOUSE_DSN), so the `embedded` extra (chDB, the Tansu broker) is left out; `rocksdb` is in for
# ENGAGE_STATE_STORE=rocksdb://.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first (cached until pyproject.toml changes), then the code.
COPY pyproject.toml README.md ./
COPY streams ./streams
# The package reads schemas/ beside itself (events/*.json, clickhouse/*.sql migrations), so the
# install is editable from /app rather than a copy into site-packages.
COPY schemas ./schemas
RUN pip install -e '.[rocksdb]' \
    && useradd --system --uid 10001 --home-dir /var/lib/engage --create-home engage

USER engage
ENV ENGAGE_DATA_DIR=/var/lib/engage
EXPOSE 8080 9108

# A worker's /healthz fails when its event loop stops running; ingest's when it stops answering.
# start-period: a worker reads its state's changelogs before it serves traffic (minutes for large state).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=4 \
    CMD ["python", "-m", "streams.healthcheck"]

ENTRYPOINT ["engage"]
CMD ["--help"]
