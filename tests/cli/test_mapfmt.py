"""bpftool-shaped map output."""
from tinyaya.cli.mapfmt import Entry, entries_json, entry_text, map_type_name


def test_hash_entry_json_has_hex_bytes_and_formatted_ints() -> None:
    e = Entry(bytes([1, 0, 0, 0]), [bytes([2, 0, 0, 0])])
    [j] = entries_json([e], percpu=False)
    assert j == {"key": ["0x01", "0x00", "0x00", "0x00"], "value": ["0x02", "0x00", "0x00", "0x00"],
                 "formatted": {"key": 1, "value": 2}}


def test_odd_sizes_have_no_formatted() -> None:
    [j] = entries_json([Entry(b"\x01\x02\x03", [b"\x00" * 12])], percpu=False)
    assert "formatted" not in j
    assert j["key"] == ["0x01", "0x02", "0x03"]


def test_percpu_values_are_per_cpu() -> None:
    e = Entry(b"\x00\x00\x00\x00", [b"\x05\x00\x00\x00\x00\x00\x00\x00", b"\x07\x00\x00\x00\x00\x00\x00\x00"])
    [j] = entries_json([e], percpu=True)
    assert [v["cpu"] for v in j["values"]] == [0, 1]
    assert j["formatted"] == {"key": 0, "values": [{"cpu": 0, "value": 5}, {"cpu": 1, "value": 7}]}
    assert "value (CPU 01): 07 00" in entry_text(e, percpu=True)


def test_map_type_names_follow_bpftool() -> None:
    assert map_type_name(1) == "hash"
    assert map_type_name(6) == "percpu_array"
    assert map_type_name(999) == "type 999"
