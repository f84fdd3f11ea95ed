# The engagement-streams image: `engage worker`, `engage ingest`, `engage db migrate`, ...
# Built by deploy/docker-compose.yml. Kafka and ClickHouse are external (KAFKA_BOOTSTRAP_SERVERS,
# CLICKHOUSE_DSN), so the `embedded` extra (chDB, the Tansu broker) is left out; `rocksdb` is in for
# ENGAGE_STATE_STORE=rocksdb://.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src

# Dependencies first, in their own layer: read from pyproject.toml alone, so a code change does not
# reinstall them (the rocksdb extra's included, the embedded extra's not).
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['rocksdb']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt

# Then the code, installed as a wheel would be (not editable): schemas/ and the cluster DDL are copied
# into the package by setup.py, so nothing is read from /src at run time.
COPY setup.py MANIFEST.in README.md LICENSE ./
COPY streams ./streams
COPY schemas ./schemas
COPY deploy/clickhouse/cluster ./deploy/clickhouse/cluster
RUN pip install --no-deps . && rm -rf /src/build

# A numeric user (Kubernetes' runAsNonRoot can check it) that owns only its data directory.
RUN groupadd --system --gid 10001 engage \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/engage --create-home engage
USER 10001:10001
WORKDIR /var/lib/engage
ENV ENGAGE_DATA_DIR=/var/lib/engage
EXPOSE 8080 9108

# A worker's /healthz fails when its event loop stops running; ingest's when it stops answering.
# start-period: a worker reads its state's changelogs before it serves traffic (minutes for large state).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=4 \
    CMD ["python", "-m", "streams.healthcheck"]

ENTRYPOINT ["engage"]
CMD ["--help"]
