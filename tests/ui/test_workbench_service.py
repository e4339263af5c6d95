"""The workbench service's pure parts: command parsing, TLV decoding, trace folding."""

from __future__ import annotations

import pytest

from apdu import commands as cmds
from terminal.core.workbench import (
    CARD_TREE,
    WorkbenchError,
    decode_tlv,
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


@pytest.mark.parametrize(("typed", "secret"), [
    ("00 20 00 00 03 12 34 56", True),    # VERIFY with a PIN
    ("80 5E 01 00 07 123456FF654321", True),  # CHANGE PIN
    ("00A404000F7378312E73682EC9E7BBE1B1A3D5CF", False),  # SELECT SSSE
    ("not hex", False),
])
def test_secret_commands_are_recognised(typed: str, secret: bool) -> None:
    from terminal.core.workbench import carries_secret

    assert carries_secret(typed) is secret
