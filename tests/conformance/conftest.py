"""Put ``tests/`` on sys.path so the shared ``conformance_data`` helper imports as a top-level module."""
import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
