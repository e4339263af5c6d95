"""The workbench service's pure parts: command parsing, TLV decoding, trace folding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu import commands as cmds
from terminal.core.workbench import (
    CARD_TREE,
    TraceLine,
    Workbench,
    WorkbenchError,
    decode_tlv,
    group_exchanges,
    node_path,
    parse_command,
)

SSSE_NAME = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")


def test_parse_command_accepts_spaced_hex() -> None:
    cmd = parse_command("00 A4 02 00 02 EF:05")
    assert (cmd.ins, cmd.p1, cmd.data) == (0xA4, 0x02, b"\xef\x05")


@pytest.mark.parametrize(("typed", "needle"), [
    ("", "empty command"),
    ("00 A4 0Z", "not hex"),
    ("00A4", "malformed"),
])
def test_parse_command_says_what_is_wrong(typed: str, needle: str) -> None:
    with pytest.raises(WorkbenchError, match=needle):
        parse_command(typed)


def test_fci_decodes_as_a_ber_tree() -> None:
    """spec/card.md §3: the SSSE FCI 6F{84 DF-name, A5{88 01 1E, 9F0C 03 86 01 01}}."""
    fci = (bytes.fromhex("6F1C840F") + SSSE_NAME
           + bytes.fromhex("A50988011E9F0C03860101"))
    tree = decode_tlv(fci)
    assert len(tree) == 1 and tree[0].tag == 0x6F
    df_name, prop = tree[0].children
    assert df_name.tag == 0x84 and df_name.value == SSSE_NAME
    assert "社会保障" in df_name.label
    assert [c.tag for c in prop.children] == [0x88, 0x9F0C]


def test_card_records_decode_as_simple_tlv() -> None:
    """spec/card.md §4: records are tag(1) len(1) value; 0x09 = name in GBK."""
    name = "张三".encode("gbk").ljust(30, b"\x00")
    tree = decode_tlv(bytes([0x09, len(name)]) + name)
    assert [(n.tag, n.value) for n in tree] == [(0x09, name)]
    assert '"张三"' in tree[0].label


def test_node_paths_follow_the_card_tree() -> None:
    path = node_path(["SSSE", "DF04", "EF05"])
    assert [n.name for n in path] == ["MF", "SSSE", "DF04", "EF05"]
    assert path[-1].tags == (0x81, 0x84, 0x8C, 0x8B, 0x8F)
    assert CARD_TREE.select == cmds.select_mf()
    with pytest.raises(WorkbenchError):
        node_path(["SSSE", "EF99"])


def _t0_trace(command: bytes, whole: bytes, chunk: int) -> list[TraceLine]:
    """The TPDUs a T=0 link carries for ``command`` answering ``whole`` (61xx chain)."""
    lines = [TraceLine(0.0, "r", ">>", command)]
    data, sw = whole[:-2], whole[-2:]
    if not data:
        lines.append(TraceLine(0.0, "r", "<<", sw))
        return lines
    lines.append(TraceLine(0.0, "r", "<<", bytes([0x61, min(chunk, len(data)) & 0xFF])))
    while data:
        part, data = data[:chunk], data[chunk:]
        lines.append(TraceLine(0.0, "r", ">>", cmds.get_response(len(part)).to_bytes()))
        tail = bytes([0x61, min(chunk, len(data)) & 0xFF]) if data else sw
        lines.append(TraceLine(0.0, "r", "<<", part + tail))
    return lines


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.binary(min_size=1, max_size=40), st.binary(max_size=300),
                  st.sampled_from([b"\x90\x00", b"\x6a\x82", b"\x62\x83"]),
                  st.integers(min_value=1, max_value=255)),
        min_size=1, max_size=5,
    )
)
def test_group_exchanges_folds_get_response_chains(
    exchanges: list[tuple[bytes, bytes, bytes, int]],
) -> None:
    """ISO 7816-3 §10.3.5: 61xx + GET RESPONSE folds back into one whole answer."""
    trace: list[TraceLine] = []
    expected = []
    for data, answer, sw, chunk in exchanges:
        command = bytes([0x00, 0xDA, 0x01, 0x02, len(data)]) + data
        whole = (answer if sw == b"\x90\x00" else b"") + sw
        trace += _t0_trace(command, whole, chunk)
        expected.append((command, whole))
    folded = [(c.to_bytes(), r) for c, r in group_exchanges(trace)]
    assert folded == expected


def test_group_exchanges_folds_a_wrong_le_resend() -> None:
    read = cmds.read_record_by_tag(0x09, le=0)
    resend = read.with_le(0x20)
    trace = [
        TraceLine(0.0, "r", ">>", read.to_bytes()), TraceLine(0.0, "r", "<<", b"\x6c\x20"),
        TraceLine(0.0, "r", ">>", resend.to_bytes()),
        TraceLine(0.0, "r", "<<", bytes(32) + b"\x90\x00"),
    ]
    assert [(c.to_bytes(), r) for c, r in group_exchanges(trace)] == [
        (read.to_bytes(), bytes(32) + b"\x90\x00")]


def test_trace_lines_round_trip_and_bad_files_are_refused(tmp_path: Path) -> None:
    line = TraceLine(1700000000.25, "Virtual 0", "<<", b"\x90\x00", "ok")
    assert TraceLine.from_json(json.loads(json.dumps(line.to_json()))) == line
    assert "90 00" in line.render()
    good = tmp_path / "t.jsonl"
    good.write_text(json.dumps(line.to_json()) + "\n", encoding="utf-8")
    assert Workbench.load_trace(good) == [line]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(WorkbenchError, match="bad.jsonl:1"):
        Workbench.load_trace(bad)
    with pytest.raises(WorkbenchError, match="cannot read trace"):
        Workbench.load_trace(tmp_path / "missing.jsonl")
