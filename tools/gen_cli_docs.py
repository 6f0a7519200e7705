"""Generate docs/cli.md from the click commands, so the CLI reference can't drift from --help.

    python tools/gen_cli_docs.py > docs/cli.md     (tests/cli/test_docs.py checks it is current)
"""
from __future__ import annotations

import click


def render() -> str:
    from tinyaya.cli.main import cli

    out = ["# tinyaya command-line reference", "",
           "Generated from the commands' own `--help` by `tools/gen_cli_docs.py`; do not edit by hand.", ""]

    def walk(cmd: click.Command, path: list[str]) -> None:
        ctx = click.Context(cmd, info_name=" ".join(path))
        out.append(f"## `{' '.join(path)}`")
        out.append("")
        out.append("```")
        out.append(cmd.get_help(ctx).replace(" \n", "\n").rstrip())
        out.append("```")
        out.append("")
        if isinstance(cmd, click.Group):
            for name in sorted(cmd.list_commands(ctx)):
                sub = cmd.get_command(ctx, name)
                if sub is not None:
                    walk(sub, [*path, name])

    walk(cli, ["tinyaya"])
    return "\n".join(out)


if __name__ == "__main__":
    print(render())
