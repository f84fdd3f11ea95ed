"""The built wheel installs and works without the checkout: a user's ``pip install engagement-streams``.

Builds the wheel, installs it (not editable, with the ``embedded`` extra) into a fresh virtual environment,
and from a directory outside the checkout runs ``engage --help``, decodes every schema example with the
installed package (its schemas are inside it: ``streams/schemas``) and runs a short ``engage demo``.

Before: the wheel had no ``schemas/``, so ``import streams.events`` raised FileNotFoundError; and it shipped
``streams/bench``. Slow (a venv and its dependencies from the package index): about a minute or two.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHECK = r"""
import sys
from pathlib import Path

import fastjsonschema
import orjson

import streams
from streams.errors import InvalidEvent
from streams.events import cluster_migrations_dir, decode_object, load_schema, schema_dir

checkout = Path(sys.argv[1])
assert checkout not in Path(streams.__file__).resolve().parents, streams.__file__
assert schema_dir() == Path(streams.__file__).resolve().parent / "schemas", schema_dir()
assert sorted(p.name for p in (schema_dir() / "clickhouse").glob("*.sql")), "no migrations"
assert sorted(p.name for p in cluster_migrations_dir().glob("*.sql")), "no cluster DDL"
schemas = {"alerts": "engagement_alert.v1.json", "flags": "engagement_flag.v1.json",
           "account_hours": "account_hours.v1.json", "dead_letters": "dead_letter.v1.json"}
checked = 0
for path in sorted((schema_dir() / "events" / "examples").rglob("*.json")):
    doc = orjson.loads(path.read_bytes())
    valid = path.parent.name == "valid"
    kind = path.parent.parent.name
    if kind in schemas:
        schema = {**load_schema(schemas[kind]), "$schema": "http://json-schema.org/draft-07/schema#"}
        try:
            fastjsonschema.compile(schema, formats={"date-time": lambda s: True})(doc)
            accepted = True
        except fastjsonschema.JsonSchemaException:
            accepted = False
    else:
        try:
            decode_object(doc)
            accepted = True
        except InvalidEvent:
            accepted = False
    assert accepted is valid, path
    checked += 1
print(f"checked {checked} examples")
"""


@pytest.mark.timeout(900)
def test_the_wheel_installs_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("engagement_streams-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "streams/schemas/events/interaction.v1.json" in names
    assert not [n for n in names if n.startswith("streams/bench/")], "benchmarks are not shipped"
    assert any(n.endswith("licenses/LICENSE") or n.endswith("/LICENSE") for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{wheel}[embedded]"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGAGE_", "CLICKHOUSE_", "KAFKA_"))}
    env.pop("PYTHONPATH", None)
    engage = str(venv / "bin" / "engage")
    help_run = subprocess.run(
        [engage, "--help"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60
    )
    assert help_run.returncode == 0, help_run.stderr
    assert "demo" in help_run.stdout and "worker" in help_run.stdout

    check = subprocess.run(
        [str(python), "-c", CHECK, str(ROOT)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr[-3000:]
    assert "checked" in check.stdout

    demo_env = {
        **env,
        "ENGAGE_DATA_DIR": str(elsewhere / "data"),
        "ENGAGE_INGEST_PORT": "0",
        "ENGAGE_WORKER_METRICS_PORT": "0",
    }
    demo = subprocess.run(
        [engage, "demo", "--duration", "10", "--plain"],
        cwd=elsewhere,
        env=demo_env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output[-3000:]
    assert "demo stopped after" in output
