"""What the entry points load: native extensions that crash when loaded in the wrong order
(every entry point that pulls in usearch must survive loading onnxruntime afterwards, see
``app/retrieval.py``), and the API's start-up, which leaves out the libraries of batch jobs and
reports (scipy, pandas: memory and start-up time in every worker)."""

from __future__ import annotations

import subprocess
import sys

import pytest

FIRST_IMPORTS = ("app.retrieval", "app.training.two_stage", "app.serving.model.two_stage")


@pytest.mark.parametrize("module", FIRST_IMPORTS)
def test_onnxruntime_loads_after_a_module_that_uses_usearch(module: str) -> None:
    code = (
        f"import {module}\n"
        "import numpy as np, onnxruntime, usearch.index\n"
        "index = usearch.index.Index(ndim=4, metric='cos')\n"
        "index.add(np.arange(3, dtype=np.uint64), np.eye(3, 4, dtype=np.float32))\n"
        "print(onnxruntime.get_device(), len(index))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.split() == ["CPU", "3"]


def _loaded_after(code: str) -> list[str]:
    """Which of scipy and pandas are in ``sys.modules`` after ``code`` runs in a new process."""
    check = f"{code}\nimport sys\nprint(*(m for m in ('scipy', 'pandas') if m in sys.modules))\n"
    done = subprocess.run(
        [sys.executable, "-c", check],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout.split()


def test_building_the_api_app_loads_neither_scipy_nor_pandas() -> None:
    """Up to the lifespan: the worker's start-up then opens Feast, whose own import loads
    pandas and whose file offline store's configuration loads dask, and with it scipy."""
    code = "import app.cli\nfrom app.api.main import create_app\ncreate_app()"
    assert _loaded_after(code) == []
