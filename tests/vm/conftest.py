"""Put this directory on sys.path for ``vmfakes`` (the fake kernel, maps and helpers of the VM tests)."""
import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from vmfakes import FakeKernel  # noqa: E402


@pytest.fixture
def kernel() -> FakeKernel:
    return FakeKernel()
