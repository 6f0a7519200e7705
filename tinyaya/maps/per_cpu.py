"""``PerCpuValues``: one value per possible CPU, as aya's ``PerCpuValues<T>``.

In user buffers the kernel lays per-CPU values out one per possible CPU, each
padded to 8 bytes (``round_up(value_size, 8)``; kernel ``bpf_percpu_hash_copy``
and ``bpf_percpu_array_copy``).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, overload

from .base import round_up
from .codec import Codec

__all__ = ["PerCpuValues", "encode_per_cpu", "decode_per_cpu"]


class PerCpuValues(Sequence[Any]):
    """An immutable list of per-CPU values; index i is possible CPU i."""

    def __init__(self, values: Iterable[Any]) -> None:
        self._values = list(values)

    @overload
    def __getitem__(self, i: int) -> Any: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Any]: ...

    def __getitem__(self, i: int | slice) -> Any:
        return self._values[i]

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PerCpuValues):
            return self._values == other._values
        if isinstance(other, list | tuple):
            return self._values == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._values))

    def __repr__(self) -> str:
        return f"PerCpuValues({self._values!r})"


def encode_per_cpu(codec: Codec, values: Sequence[Any], ncpus: int) -> bytes:
    if len(values) != ncpus:
        raise ValueError(f"expected one value per possible CPU ({ncpus}), got {len(values)}")
    stride = round_up(codec.size, 8)
    return b"".join(codec.encode(v).ljust(stride, b"\0") for v in values)


def decode_per_cpu(codec: Codec, raw: bytes, ncpus: int) -> PerCpuValues:
    stride = round_up(codec.size, 8)
    return PerCpuValues(codec.decode(raw[i * stride:i * stride + codec.size]) for i in range(ncpus))
