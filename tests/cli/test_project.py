"""tinyaya.toml: every mistake is named with its key and line."""
from pathlib import Path

import pytest

from tinyaya.cli.errors import CliError
from tinyaya.cli.project import load_project


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "tinyaya.toml"
    p.write_text(text)
    return p


def test_valid_project(tmp_path: Path) -> None:
    p = write(tmp_path, 'object = "x.o"\nworkload = "mixed"\n[attach]\nkind = "kprobe"\ntarget = "sys_enter"\n'
                        '[maps.SYSCALL_LIST]\nsyscall_keys = true\nsort = "value"\ntop = 5\n')
    data = load_project(p)
    assert data["object"] == str(tmp_path / "x.o")
    assert data["attach"]["target"] == "sys_enter"
    assert data["maps"]["SYSCALL_LIST"]["top"] == 5


@pytest.mark.parametrize("text,needle", [
    ('object = "x.o"\nbogus = 1\n', ":2: bogus: unknown key"),
    ('object = "x.o"\n[attach]\nkind = "uprobe2"\n', ":3: attach.kind"),
    ('object = "x.o"\n[maps.M]\ntop = "ten"\n', ":3: maps.M.top: expected a int"),
    ('object = "x.o"\n[maps.M]\nkey = "u128"\n', ":3: maps.M.key"),
    ('workload = "mixed"\n', "object: missing"),
    ('object = \n', "tinyaya.toml"),
])
def test_mistakes_name_key_and_line(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(CliError) as e:
        load_project(write(tmp_path, text))
    assert needle in e.value.message
    assert e.value.code == 2
