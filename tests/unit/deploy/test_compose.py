"""deploy/docker-compose.yml and the Dockerfile, checked without Docker (which does not run here).

The compose file must parse, reference only files that exist, configure our services only with
variables ``streams.settings`` declares (and values it accepts), and agree with the Prometheus,
Alertmanager and Grafana configs about service names and ports.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import shlex
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from streams.settings import ENV_VARS, Settings
from tests.tools import DEPLOY, ROOT

COMPOSE_PATH = DEPLOY / "docker-compose.yml"
KNOWN = {var.name for var in ENV_VARS}
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_]\w*)(?::?-([^}]*))?\}")


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_PATH.read_text())
    return data


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _ours() -> dict[str, dict[str, Any]]:
    """Services running our image (built from the project's Dockerfile)."""
    return {
        name: svc
        for name, svc in _services().items()
        if "build" in svc or "engagement-streams" in svc.get("image", "")
    }


def _env(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment, with `${VAR:-default}` interpolated to its default."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {key: _INTERPOLATION.sub(lambda m: m.group(2) or "", str(value)) for key, value in raw.items()}


def test_parses_with_the_expected_services() -> None:
    assert set(_services()) >= {
        "kafka",
        "clickhouse",
        "worker",
        "ingest",
        "prometheus",
        "alertmanager",
        "grafana",
    }
    assert _services()["kafka"]["image"].startswith("apache/kafka:")
    assert _env(_services()["kafka"])["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert _services()["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert set(_ours()) >= {"worker", "ingest", "migrate"}


def test_every_referenced_file_exists() -> None:
    checked = 0
    for name, svc in _services().items():
        build = svc.get("build")
        if build:
            context = DEPLOY / (build if isinstance(build, str) else build["context"])
            assert context.is_dir(), f"{name}: build context {context}"
            dockerfile = context / (
                build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
            )
            assert dockerfile.is_file(), f"{name}: {dockerfile}"
            checked += 1
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name}: mounts missing {source}"
                checked += 1
            else:
                assert source in (_compose().get("volumes") or {}), f"{name}: undeclared volume {source}"
    assert checked >= 6


@pytest.mark.parametrize("service", sorted(_ours()))
def test_our_services_use_only_declared_settings(service: str) -> None:
    env = _env(_ours()[service])
    assert env, f"{service} sets no environment"
    unknown = set(env) - KNOWN
    assert not unknown, f"{service}: not in streams.settings.ENV_VARS: {sorted(unknown)}"
    settings = Settings.from_env(env)  # every value parses and validates
    assert not settings.embedded_kafka, f"{service} would start the embedded broker"


def test_the_dockerfile_env_is_declared_too() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    keys = set()
    for line in re.findall(r"^ENV\s+(.+?)(?<!\\)$", dockerfile.replace("\\\n", " "), flags=re.M):
        keys |= {part.split("=")[0] for part in shlex.split(line)}
    assert keys
    assert {k for k in keys if not k.startswith(("PYTHON", "PIP_"))} <= KNOWN


def test_workers_scale_and_share_the_clickhouse_and_kafka_of_the_stack() -> None:
    worker = _services()["worker"]
    # `--scale worker=N` needs no fixed container name and no host port per container.
    assert "container_name" not in worker
    assert "ports" not in worker
    env = _env(worker)
    assert env["KAFKA_BOOTSTRAP_SERVERS"].split(":")[0] == "kafka"
    dsn = urlsplit(env["CLICKHOUSE_DSN"])
    assert dsn.hostname == "clickhouse" and dsn.port == 8123
    ch_env = _env(_services()["clickhouse"])
    assert dsn.path.strip("/") == ch_env["CLICKHOUSE_DB"]
    assert dsn.username == ch_env["CLICKHOUSE_USER"] and dsn.password == ch_env["CLICKHOUSE_PASSWORD"]
    assert env["ENGAGE_WORKER_METRICS_HOST"] == "0.0.0.0", "Prometheus scrapes from another container"


def test_migrations_run_before_the_workers_start() -> None:
    services = _services()
    assert services["migrate"]["command"] == ["db", "migrate"]
    assert services["worker"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert Settings.from_env(_env(services["worker"])).migrate_on_start is False


def test_prometheus_scrapes_the_services_on_their_ports() -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    services = _services()
    for job, service, port_var in (
        ("engage-worker", "worker", "ENGAGE_WORKER_METRICS_PORT"),
        ("engage-ingest", "ingest", "ENGAGE_INGEST_METRICS_PORT"),
    ):
        (sd,) = jobs[job]["dns_sd_configs"]
        assert sd["names"] == [service]
        assert sd["port"] == Settings.from_env(_env(services[service])).__getattribute__(
            "worker_metrics_port" if service == "worker" else "ingest_metrics_port"
        ), port_var
    ingest = Settings.from_env(_env(services["ingest"]))
    assert ingest.ingest_host == "0.0.0.0" and ingest.ingest_metrics_host == "0.0.0.0"
    # /metrics is on its own port, never the public webhook port (issue 18).
    assert ingest.ingest_metrics_port != ingest.ingest_port
    (am,) = prom["alerting"]["alertmanagers"]
    (target,) = am["static_configs"][0]["targets"]
    assert target.split(":")[0] in services
    mounted = {v.split(":")[1] for v in services["prometheus"]["volumes"] if v.startswith("./")}
    assert "/etc/prometheus/rules" in mounted and "/etc/prometheus/prometheus.yml" in mounted


def test_alertmanager_and_workers_agree_on_the_webhook_receiver() -> None:
    services = _services()
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            url = urlsplit(hook["url"])
            assert url.hostname in services, hook["url"]
            assert str(url.port) == _env(services[url.hostname])["HTTP_PORT"]
    am_url = urlsplit(_env(services["worker"])["ENGAGE_ALERTMANAGER_URL"])
    assert am_url.hostname == "alertmanager" and am_url.port == 9093


def test_grafana_has_the_clickhouse_plugin_and_reaches_both_datasources() -> None:
    services = _services()
    env = _env(services["grafana"])
    assert "grafana-clickhouse-datasource" in env["GF_INSTALL_PLUGINS"].split(",")
    sources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/datasources.yml").read_text())
    for ds in sources["datasources"]:
        host = urlsplit(ds["url"]).hostname if "url" in ds else ds["jsonData"]["host"]
        assert host in services, ds["name"]
    # The datasource's password variable is set in the Grafana container.
    (ch,) = [ds for ds in sources["datasources"] if ds["type"] == "grafana-clickhouse-datasource"]
    assert ch["secureJsonData"]["password"].lstrip("$").strip("{}") in env
    assert ch["jsonData"]["defaultDatabase"] == _env(services["clickhouse"])["CLICKHOUSE_DB"]


@pytest.mark.parametrize("service", sorted(_ours()))
def test_commands_exist_in_the_cli(service: str) -> None:
    command = _ours()[service]["command"]
    module = f"streams.commands.{command[0]}"
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"`engage {command[0]}` is another issue's command ({module} not merged in this branch)")
    from streams.cli import COMMANDS, build_parser

    assert command[0] in COMMANDS
    args = build_parser().parse_args(command)
    assert callable(args.func)


def test_dockerfile_installs_the_project_without_the_embedded_extra() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, flags=re.M)
    # Dependencies in their own layer (from pyproject.toml: the rocksdb extra's, not the embedded one's), then
    # the project itself, not editable (the wheel layout: schemas inside the package).
    deps = re.search(r"^RUN python -c .*?pip install -r [^\n]*", text, flags=re.M | re.S)
    assert deps and "'rocksdb'" in deps.group(0) and "embedded" not in deps.group(0)
    assert text.index("COPY pyproject.toml") < deps.start() < text.index("COPY streams")
    assert re.search(r"^RUN pip install --no-deps \.", text, flags=re.M), "install the project, not editable"
    assert "pip install -e" not in text
    assert re.search(r"^HEALTHCHECK ", text, flags=re.M)
    assert re.search(r'^ENTRYPOINT \["engage"\]', text, flags=re.M)
    assert re.search(r"^USER [1-9]\d*(:[1-9]\d*)?$", text, flags=re.M), "run as a numeric non-root user"


def test_dockerfile_copies_what_the_package_reads_and_dockerignore_keeps_it() -> None:
    text = (ROOT / "Dockerfile").read_text()
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = []
    for line in re.findall(r"^COPY\s+(.+)$", text, flags=re.M):
        *srcs, _dest = line.split()
        sources += srcs
    # schemas/ (event schema, ClickHouse migrations) and the cluster DDL are copied into the package by
    # setup.py when it is installed.
    assert {"pyproject.toml", "setup.py", "README.md", "streams", "schemas"} <= set(sources)
    assert "deploy/clickhouse/cluster" in sources

    def excluded(path: str) -> bool:  # Docker's rule: the last pattern that matches decides; ! re-includes
        verdict = False
        for pattern in ignored:
            negated = pattern.startswith("!")
            if fnmatch.fnmatch(path, pattern.lstrip("!")):
                verdict = not negated
        return verdict

    for src in sources:
        assert (ROOT / src).exists(), src
        assert not excluded(src), f"{src} is .dockerignored"
    assert excluded("streams/bench") and excluded("tests") and excluded("deploy/grafana")


def test_workers_and_the_image_check_health_on_healthz() -> None:
    worker = _services()["worker"]
    port = _env(worker)["ENGAGE_WORKER_METRICS_PORT"]
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(worker["healthcheck"]["test"])
    assert "start_period" in worker["healthcheck"], "recovery must not count as unhealthy"
    ingest = _services()["ingest"]
    assert "/healthz" in " ".join(ingest["healthcheck"]["test"])
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^HEALTHCHECK .*\n?.*streams\.healthcheck", dockerfile, flags=re.M)
