"""Put tests/ and tests/vm on sys.path for the shared strategies (randprog, vmdiff, conformance_data)."""
import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
for p in (str(_TESTS), str(_TESTS / "vm")):
    if p not in sys.path:
        sys.path.insert(0, p)
