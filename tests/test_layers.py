"""The layers of pyproject.toml [tool.importlinter]: no module imports one above it; light modules stay light."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.project_copy import REPO

ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}  # this checkout's sources, whatever the venv installed


def test_no_module_imports_a_layer_above_it() -> None:
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_params_and_name_lists_load_without_torch_numpy_or_bpy() -> None:
    code = (
        "import sys; import miad.config, miad.catalog, miad.method_catalog, miad.executors.config; "
        "miad.config.load_params(); print(sorted({'torch', 'numpy', 'bpy'} & set(sys.modules)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
