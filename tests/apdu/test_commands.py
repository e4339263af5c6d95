"""Command builders (spec/card.md §5, §6, §9, §11), naming and secret masking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu import ApduError, CommandApdu, tlv
from apdu import commands as c

M4 = bytes.fromhex("11223344")
B8 = bytes(range(8))
TERM = bytes.fromhex("410100813475")


@pytest.mark.parametrize(
    ("cmd", "expected", "name"),
    [
        (c.select_mf(), "00A40000023F00", "SELECT"),
        (c.select_fid(0xDF04), "00A4000002DF04", "SELECT"),
        (c.select_ef(0xEF05), "00A4020002EF05", "SELECT"),
        (c.select_ssse(), "00A404000F7378312E73682EC9E7BBE1B1A3D5CF00", "SELECT"),
        (c.select_name(c.PSE_NAME), "00A404000E315041592E5359532E444446303100", "SELECT"),
        (c.select_df("df04"), "00A4040006D1560000050300", "SELECT"),
        (c.read_binary(), "00B0000000", "READ BINARY"),
        (c.read_binary(0x123, 16), "00B0012310", "READ BINARY"),
        (c.read_binary(4, 6, sfi=0x16), "00B0960406", "READ BINARY"),
        (c.read_record_by_tag(0x07), "00B2070000", "READ RECORD"),
        (c.read_record_by_tag(0x01, sfi=5, le=18), "00B2012812", "READ RECORD"),
        (c.read_record_by_number(1, sfi=2), "00B2011400", "READ RECORD"),
        (c.update_binary(0x10, b"\xaa"), "00D6001001AA", "UPDATE BINARY"),
        (c.update_binary(0, b"\xaa", mac=M4), "04D6000005AA11223344", "UPDATE BINARY"),
        (c.update_record(0x07, b"\x07\x01A", mac=M4), "04DC0700070701411122 3344",
         "UPDATE RECORD"),
        (c.update_record(3, b"\x01", sfi=8, by_number=True), "00DC03440101", "UPDATE RECORD"),
        (c.verify("123456"), "0020000003123456", "VERIFY"),
        (c.verify("12345"), "002000000312345F", "VERIFY"),
        (c.verify(None), "00200000", "VERIFY"),
        (c.change_pin("123456", "654321"), "805E010007123456FF654321", "CHANGE PIN"),
        (c.pin_unblock(M4), "842400000411223344", "PIN UNBLOCK"),
        (c.pin_reload(B8, M4), "842400010C000102030405060711223344", "PIN RELOAD"),
        (c.pin_reload(bytes(16), M4), "8424000114" + "00" * 16 + "11223344", "PIN RELOAD"),
        (c.get_challenge(4), "0084000004", "GET CHALLENGE"),
        (c.get_challenge(16), "0084000010", "GET CHALLENGE"),
        (c.internal_authenticate(B8, B8), "0088000010" + B8.hex() * 2 + "08",
         "INTERNAL AUTHENTICATE"),
        (c.internal_authenticate(B8, B8, key_version=1), "0088000011" + B8.hex() * 2 + "0108",
         "INTERNAL AUTHENTICATE"),
        (c.external_authenticate(c.KID_RKSSSE, B8, B8), "008200 0A10" + B8.hex() * 2,
         "EXTERNAL AUTHENTICATE"),
        (c.get_response(0x1E), "00C000001E", "GET RESPONSE"),
        (c.get_response(0), "00C0000000", "GET RESPONSE"),
        (c.application_block(M4), "841E00010411223344", "APPLICATION BLOCK"),
        (c.card_block(M4), "841600000411223344", "CARD BLOCK"),
        (c.get_balance(), "B026000104", "GET BALANCE"),
        (c.get_balance(c.ANNUAL_POOLED), "B026000304", "GET BALANCE"),
        (c.initialize_for_load(1, 10000, TERM), "B02800010B010000271041010081347500",
         "INITIALIZE FOR LOAD"),
        (c.credit_for_load(bytes.fromhex("20261128130509"), M4),
         "B02A00000B2026112813050911223344 04", "CREDIT FOR LOAD"),
        (c.initialize_for_purchase(1, 100, 200, 300, TERM),
         "B0280101130100000064000000C80000012C41010081347500", "INITIALIZE FOR PURCHASE"),
        (c.debit_for_purchase(bytes(4), bytes.fromhex("20261128130509"), M4),
         "B02C01000F000000002026112813050911223344 08", "DEBIT FOR PURCHASE"),
        (c.get_transaction_proof(0x02, 7), "B02E0002020007 08", "GET TRANSACTION PROOF"),
        (c.psam_select_terminal_file(), "00A4020002EF16", "SELECT"),
        (c.psam_read_terminal_number(), "00B0000006", "READ BINARY"),
        (c.delivery_session_key(0x27, 0x01, B8, bytes(4)),
         "BFDE27010C" + B8.hex() + "00000000", "DELIVERY SESSION KEY"),
        (c.cipher_data(c.CIPHER_ENCRYPT, B8), "80FA000008" + B8.hex() + "00", "CIPHER DATA"),
        (c.cipher_data(c.CIPHER_MAC_FIRST, B8), "80FA070008" + B8.hex(), "CIPHER DATA"),
        (c.init_sam_for_purchase(bytes(4)), "807001000400000000 08", "INIT SAM FOR PURCHASE"),
        (c.credit_sam_for_purchase(M4), "807200000411223344", "CREDIT SAM FOR PURCHASE"),
        (c.get_processing_options(), "80A80000028300 00", "GET PROCESSING OPTIONS"),
        (c.get_processing_options(b"\x01\x56"), "80A8000004830201 5600",
         "GET PROCESSING OPTIONS"),
        (c.generate_ac(c.AC_ARQC, b"\x00" * 3), "80AE800003000000 00", "GENERATE AC"),
        (c.get_data(0x9F36), "80CA9F3600", "GET DATA"),
    ],
)
def test_builders_known_bytes(cmd: CommandApdu, expected: str, name: str) -> None:
    raw = bytes.fromhex(expected)
    assert cmd.to_bytes() == raw
    assert CommandApdu.from_bytes(raw) == cmd
    assert c.command_name(cmd) == name
    assert c.command_name(raw) == name


def test_constants() -> None:
    assert c.SSSE_DF_NAME.hex().upper() == "7378312E73682EC9E7BBE1B1A3D5CF"
    assert bytes.fromhex("A000000333010101") == c.PBOC_DEBIT_AID
    assert [a.hex().upper() for a in c.DF_AIDS.values()] == [
        "D15600000500", "D15600000501", "D15600000502", "D15600000503", "D15600000504"]
    assert c.PPSE_NAME == b"2PAY.SYS.DDF01"


@pytest.mark.parametrize("build", [
    lambda: c.select_fid(0x10000),
    lambda: c.select_name(b""),
    lambda: c.select_df("DF09"),
    lambda: c.read_binary(0x8000),
    lambda: c.read_binary(256, sfi=1),
    lambda: c.read_binary(0, sfi=31),
    lambda: c.read_record_by_number(0),
    lambda: c.read_record_by_tag(0x100),
    lambda: c.update_binary(0, b""),
    lambda: c.update_record(1, b"\x01", mac=b"\x01"),
    lambda: c.verify("12a4"),
    lambda: c.pin_reload(bytes(12), M4),
    lambda: c.get_challenge(5),
    lambda: c.internal_authenticate(bytes(7), B8),
    lambda: c.external_authenticate(0x0A, B8, bytes(9)),
    lambda: c.get_balance(4),
    lambda: c.initialize_for_load(1, -1, TERM),
    lambda: c.initialize_for_purchase(1, 0, 0, 2**32, TERM),
    lambda: c.cipher_data(0x02, B8),
    lambda: c.get_transaction_proof(1, 70000),
    lambda: c.generate_ac(0x80, b""),
    lambda: c.get_data(0x10000),
    lambda: c.get_response(257),
])
def test_builders_reject_bad_arguments(build: object) -> None:
    with pytest.raises(ApduError):
        build()  # type: ignore[operator]


def test_mac_input_counts_the_mac() -> None:
    cmd = c.update_binary(0, b"\xaa\xbb")
    assert c.mac_input(cmd).hex().upper() == "00D6000006AABB"
    assert c.mac_input(c.pin_unblock_template()).hex().upper() == "8424000004"


def test_gpo_uses_tag_83_template() -> None:
    cmd = c.get_processing_options(bytes.fromhex("000000001000"))
    assert tlv.find(cmd.data, 0x83) == tlv.Tlv(0x83, bytes.fromhex("000000001000"))


@pytest.mark.parametrize(("hexstr", "name"), [
    ("00EE0000", "INS EE"),
    ("00700000", "MANAGE CHANNEL"),
    ("00240001", "CHANGE REFERENCE DATA"),
    ("00", "MALFORMED"),
    ("B0EE0000", "INS EE"),
])
def test_command_name_fallbacks(hexstr: str, name: str) -> None:
    assert c.command_name(bytes.fromhex(hexstr)) == name


@given(st.text(alphabet="0123456789", min_size=1, max_size=12),
       st.text(alphabet="0123456789", min_size=1, max_size=12))
def test_mask_secrets_hides_pins(old: str, new: str) -> None:
    for cmd in (c.verify(old), c.change_pin(old, new), c.pin_reload(bytes.fromhex("AB") * 8, M4)):
        raw = cmd.to_bytes()
        assert c.is_secret_bearing(raw) and c.is_secret_bearing(cmd)
        masked = c.mask_secrets(raw)
        assert len(masked) == len(raw)
        assert masked[:5] == raw[:5]
        assert masked[5:] == bytes(len(raw) - 5)
        assert c.mask_secrets(cmd) == masked


def test_mask_leaves_other_commands_alone() -> None:
    for cmd in (c.select_ssse(), c.read_record_by_tag(8), c.pin_unblock(M4), c.verify(None)):
        assert c.mask_secrets(cmd) == cmd.to_bytes()
    assert not c.is_secret_bearing(c.select_ssse())
    assert not c.is_secret_bearing(b"\x00")
    # unparsable VERIFY bytes: everything after the header is blanked
    assert c.mask_secrets(bytes.fromhex("002000000512")) == bytes.fromhex("002000000000")


def test_psam_cipher_encrypt_is_masked_as_secret() -> None:
    """The PIN block a terminal sends the PSAM for a reload must never reach a trace."""
    from apdu.commands import cipher_data, is_secret_bearing, mask_secrets

    cmd = cipher_data(0x00, bytes.fromhex("06123456800000"))
    assert is_secret_bearing(cmd)
    assert bytes.fromhex("123456") not in mask_secrets(cmd)
    assert not is_secret_bearing(cipher_data(0x05, bytes(8)))
