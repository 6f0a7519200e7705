"""Fixtures of the tracing tests; the helpers they share live in tracing_helpers.py."""
from __future__ import annotations

from typing import Any

import pytest
from tracing_helpers import sim_kernel


@pytest.fixture
def kernel() -> Any:
    k = sim_kernel()
    yield k
    k.shutdown()
