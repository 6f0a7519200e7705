"""Showing maps to people: syscall names, rich tables for the live view, plain text for pipes."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .mapfmt import Entry, as_int


def syscall_name(nr: int) -> str:
    try:
        from ..sim_kernel.tracing.syscall_table import SYSCALL_NAMES
    except ImportError:  # pragma: no cover - the table ships with the package
        return str(nr)
    name = SYSCALL_NAMES.get(nr) if isinstance(SYSCALL_NAMES, dict) else None
    return name or f"syscall_{nr}"


def is_syscall_counter(name: str, key_size: int, value_size: int, display: dict[str, Any] | None = None) -> bool:
    """A map shows syscall names when configured so, or when it is named like one (SYSCALL_*, *syscall*)."""
    if display and "syscall_keys" in display:
        return bool(display["syscall_keys"])
    return key_size in (4, 8) and value_size in (4, 8) and "syscall" in name.lower()


def sorted_counts(entries: Iterable[Entry], sort: str = "key", top: int | None = None) -> list[tuple[int, int]]:
    rows: list[tuple[int, int]] = []
    for e in entries:
        k = as_int(e.key)
        vals = [as_int(v) for v in e.values]
        if k is None or any(v is None for v in vals):
            continue
        rows.append((k, sum(v for v in vals if v is not None)))
    if sort == "value":
        rows.sort(key=lambda kv: (-kv[1], kv[0]))
    else:
        rows.sort()
    return rows[:top] if top else rows


def seed_format(map_name: str, rows: list[tuple[int, int]]) -> list[str]:
    """The seed example's output: the map between separator lines, ``syscall: N, count: M`` per entry."""
    out = [f"------------{map_name}----------------"]
    out += [f"syscall: {k}, count: {v}" for k, v in rows]
    out.append("----------------------------------------")
    return out


def counts_table(map_name: str, rows: list[tuple[int, int]], with_names: bool, max_rows: int | None = None) -> Any:
    """A table of counts; with ``max_rows``, only the busiest rows (the view must fit the terminal)."""
    from rich.table import Table

    hidden = 0
    if max_rows is not None and len(rows) > max_rows:
        keep = max(1, max_rows)
        busiest = sorted(rows, key=lambda kv: (-kv[1], kv[0]))[:keep]
        hidden = len(rows) - len(busiest)
        order = {kv: i for i, kv in enumerate(rows)}
        rows = sorted(busiest, key=lambda kv: order[kv])
    caption = f"… {hidden} more rows" if hidden else None
    table = Table(title=map_name, title_justify="left", expand=False, caption=caption, caption_justify="left")
    table.add_column("key" if not with_names else "syscall", justify="right")
    if with_names:
        table.add_column("name")
    table.add_column("count", justify="right")
    for k, v in rows:
        if with_names:
            table.add_row(str(k), syscall_name(k), str(v))
        else:
            table.add_row(str(k), str(v))
    return table
