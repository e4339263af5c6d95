"""Known-answer tests for card.crypto: published block-cipher vectors and the §8 constructions."""

from __future__ import annotations

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from card import crypto, keys
from card.crypto import ALG_3DES, ALG_SM4

h = bytes.fromhex


# -- published vectors -----------------------------------------------------------------------

def test_sm4_gbt32907_example() -> None:
    k = h("0123456789ABCDEFFEDCBA9876543210")
    assert crypto.encrypt(k, k, ALG_SM4) == h("681EDF34D206965E86B3E94F536E4246")
    assert crypto.decrypt(k, h("681EDF34D206965E86B3E94F536E4246"), ALG_SM4) == k


def test_tdea_sp800_67_example() -> None:
    key = h("0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123")
    ct = crypto.encrypt(key, b"The qufck brown fox jump", ALG_3DES)
    assert ct == h("A826FD8CE53B855FCCE21C8112256FE668D5C05DD9B6B900")


def test_des_vectors_single_length_key() -> None:
    # SP 800-20 variable plaintext KAT, first entry; and the classic DES worked example
    assert crypto.encrypt(h("0101010101010101"), h("8000000000000000"), ALG_3DES) == h(
        "95F8A5E5DD31D900")
    assert crypto.encrypt(h("133457799BBCDFF1"), h("0123456789ABCDEF"), ALG_3DES) == h(
        "85E813540F0AB405")


# -- spec/card.md §8 constructions: fixed vectors -------------------------------------------

K = h("404142434445464748494A4B4C4D4E4F")
F3 = h("8660370800000001")
VECTORS = {
    ALG_3DES: dict(
        div=("AE44B6E45F7679735D5C9CA92B7165F7", "A9863B464804E87BF4BD23F1AD2BDAF0",
             "0CC0DBCF3F06F2FC815527A702A044A4"),
        session="B359793D80B917B2", mac="207489EB", mac16key="933FC85A",
        auth="771C016A6520FC13", pinblock="05199DEE819544E4",
        root_irk="9852E45748915FD87E2F67B5659843AE"),
    ALG_SM4: dict(
        div=("B24CB99D0FAE9A2F4D8311D0976FCE61", "53BDFD784A46D4E1D8FD90EC2B6B8DE8",
             "618338862CAF17883438DB06CE8FBCAD"),
        session="C75FA6392762FECC4F7AF81F93A7090B", mac="B72A3EC8", mac16key="4230CA05",
        auth="013963B0DEE6DC88", pinblock="245208F0F8123CDFA0119D97A2418FC2",
        root_irk="AB50FE4F820038170B03078496E8E86C"),
}


def test_factors() -> None:
    assert crypto.level1_factor("370800") == b"37" + h("303030307368")
    assert crypto.level2_factor("370800") == b"370800" + h("7378")
    hist = h("00814A444686603708000001AC")
    assert crypto.level3_factor(hist) == h("86603708000001AC")


@pytest.mark.parametrize("alg", [ALG_3DES, ALG_SM4])
def test_section8_known_answers(alg: int) -> None:
    v = VECTORS[alg]
    k1 = crypto.diversify(K, crypto.level1_factor("370800"), alg)
    k2 = crypto.diversify(k1, crypto.level2_factor("370800"), alg)
    k3 = crypto.diversify(k2, F3, alg)
    assert (k1.hex().upper(), k2.hex().upper(), k3.hex().upper()) == v["div"]
    s = crypto.session_key(k3, h("1122334455667788"), alg)
    assert s.hex().upper() == v["session"]
    assert crypto.mac(s, h("8424000004"), alg).hex().upper() == v["mac"]
    assert crypto.mac(k3, h("04DC0928091E") + b"A" * 30, alg).hex().upper() == v["mac16key"]
    assert crypto.auth_data(s, h("0102030405060708"), alg).hex().upper() == v["auth"]
    assert crypto.pin_block_encipher(s, "123456", alg).hex().upper() == v["pinblock"]
    assert keys.test_root_key("IRK", alg).hex().upper() == v["root_irk"]


# -- the constructions recomputed independently with raw primitives ------------------------

def _raw_3des(key: bytes, block: bytes) -> bytes:
    full = key * 3 if len(key) == 8 else key + key[:8]
    e = Cipher(TripleDES(full), modes.ECB()).encryptor()
    return e.update(block) + e.finalize()


def _raw_sm4(key: bytes, block: bytes) -> bytes:
    e = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    return e.update(block) + e.finalize()


def test_diversify_matches_the_spec_formula() -> None:
    f = h("0011223344556677")
    nf = bytes(b ^ 0xFF for b in f)
    assert crypto.diversify(K, f, ALG_3DES) == _raw_3des(K, f) + _raw_3des(K, nf)
    assert crypto.diversify(K, f, ALG_SM4) == _raw_sm4(K, f + nf)


def test_mac_and_auth_data_match_the_spec_formula() -> None:
    data = h("84240000") + b"\x04"
    # 3DES session key (8 bytes): single DES CBC, pad 80, left 4 bytes
    s8 = h("0123456789ABCDEF")
    last = _raw_3des(s8, data + h("800000"))
    assert crypto.mac(s8, data, ALG_3DES) == last[:4]
    # SM4: XOR of the four 4-byte pieces of the last block
    s16 = h("00112233445566778899AABBCCDDEEFF")
    block = _raw_sm4(s16, data + h("80") + bytes(10))
    folded = bytes(a ^ b ^ c ^ d for a, b, c, d in zip(
        block[0:4], block[4:8], block[8:12], block[12:16], strict=True))
    assert crypto.mac(s16, data, ALG_SM4) == folded
    orig = h("A1A2A3A4A5A6A7A8")
    full = _raw_sm4(s16, orig + bytes(8))
    assert crypto.auth_data(s16, orig, ALG_SM4) == bytes(
        a ^ b for a, b in zip(full[:8], full[8:], strict=True))
    assert crypto.auth_data(s8, orig, ALG_3DES) == _raw_3des(s8, orig)


def test_session_key_pads_short_input() -> None:
    k = K
    assert crypto.session_key(k, h("01020304"), ALG_3DES) == _raw_3des(k, h("0102030400000000"))
    assert crypto.session_key(k, h("0102030405060708"), ALG_SM4) == _raw_sm4(
        k, h("0102030405060708") + bytes(8))


@given(pin=st.text("0123456789", min_size=4, max_size=12),
       key=st.binary(min_size=16, max_size=16), alg=st.sampled_from([ALG_3DES, ALG_SM4]))
def test_pin_block_round_trip(pin: str, key: bytes, alg: int) -> None:
    s = crypto.session_key(key, b"\x01" * 8, alg)
    block = crypto.pin_block_encipher(s, pin, alg)
    assert len(block) == crypto.block_size(alg)
    assert crypto.pin_block_decipher(s, block, alg) == pin


def test_pin_block_with_a_wrong_key_is_refused() -> None:
    s = crypto.session_key(K, b"\x01" * 8, ALG_SM4)
    block = crypto.pin_block_encipher(s, "123456", ALG_SM4)
    other = crypto.session_key(K, b"\x02" * 8, ALG_SM4)
    with pytest.raises(crypto.CryptoError):
        crypto.pin_block_decipher(other, block, ALG_SM4)


def test_length_errors() -> None:
    with pytest.raises(crypto.CryptoError):
        crypto.diversify(K, b"short", ALG_SM4)
    with pytest.raises(crypto.CryptoError):
        crypto.encrypt(K, b"123", ALG_3DES)
    with pytest.raises(crypto.CryptoError):
        crypto.block_size(0x02)
    with pytest.raises(crypto.CryptoError):
        crypto.level1_factor("37080")


def test_card_keys_follow_the_three_levels() -> None:
    hist = h("00814A444686603708000001AC")
    for alg in (ALG_3DES, ALG_SM4):
        expected = crypto.diversify_levels(
            keys.test_root_key("IRK", alg),
            [crypto.level1_factor("370800"), crypto.level2_factor("370800"), hist[5:13]], alg)
        assert keys.card_key("IRK", alg, "370800", hist) == expected
