"""The tinyaya command line (click + rich)."""
from __future__ import annotations


def main() -> None:
    from .main import cli

    cli()
