"""Only what ``pyproject.toml`` cannot say: the wheel carries ``schemas/`` and the cluster DDL in the package.

``schemas/`` stays at the top of the repository (the contract files everybody edits); a built wheel gets a
copy as ``streams/schemas/`` and ``streams/schemas/clickhouse-cluster/``, where
:func:`streams.events.schema_dir` looks first. An editable install reads the top-level directory itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithSchemas(build_py):  # type: ignore[misc]
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "streams" / "schemas"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(HERE / "schemas", target, dirs_exist_ok=True, ignore=ignore)
        shutil.copytree(
            HERE / "deploy" / "clickhouse" / "cluster", target / "clickhouse-cluster", dirs_exist_ok=True
        )


setup(cmdclass={"build_py": BuildPyWithSchemas})
