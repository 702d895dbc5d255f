"""Native extensions that crash when loaded in the wrong order: every entry point that pulls
in usearch must survive loading onnxruntime afterwards (see ``app/retrieval.py``)."""

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
