"""Fixtures of the differential tests: ``kernels`` is a ``Pair`` of a fresh SimKernel and the real kernel.

Tests using it are marked ``linux`` and skip with the reason where bpf() is
not permitted. ``TINYAYA_FUZZ_EXAMPLES`` sets the example count of the
hypothesis tests (default 40; ``diffharness.FUZZ_EXAMPLES``).
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from diffharness import FUZZ_EXAMPLES, Pair  # noqa: E402

__all__ = ["FUZZ_EXAMPLES", "Pair"]  # FUZZ_EXAMPLES: prefer importing it from diffharness


def _linux_or_skip() -> object:
    try:
        from tinyaya.linux import LinuxKernel, linux_bpf_available
    except ImportError as e:  # pragma: no cover
        pytest.skip(f"tinyaya.linux is not available: {e}")
    ok, reason = linux_bpf_available()
    if not ok:
        pytest.skip(reason)
    return LinuxKernel()


def _engines() -> list[str]:
    from tinyaya.sim_kernel.vm.compiled.engine import ENGINES, native_available

    return [e for e in ENGINES if e != "native" or native_available()]


@pytest.fixture(scope="module", params=_engines())
def sim_engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """The engine every SimKernel the module makes runs its programs with (``TINYAYA_ENGINE``): the
    modules that compare program runs with Linux use it, so each comparison runs under every engine."""
    old = os.environ.get("TINYAYA_ENGINE")
    os.environ["TINYAYA_ENGINE"] = request.param
    try:
        yield request.param
    finally:
        if old is None:
            os.environ.pop("TINYAYA_ENGINE", None)
        else:
            os.environ["TINYAYA_ENGINE"] = old


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.linux)


@pytest.fixture
def kernels(tmp_path: Path) -> Iterator[Pair]:
    from tinyaya.sim_kernel import SimKernel

    linux = _linux_or_skip()
    made: list[SimKernel] = []

    def factory() -> SimKernel:
        k = SimKernel(bpffs_root=tmp_path / "bpffs")
        made.append(k)
        return k

    yield Pair(factory, linux)
    for k in made:
        k.shutdown()
