from __future__ import annotations

import pytest

from app.data.types import Dataset
from tests.features.factories import make_dataset


@pytest.fixture
def dataset() -> Dataset:
    return make_dataset()
