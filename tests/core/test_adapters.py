"""The adapters on their own: host errors as the port's errors, the catalogue, the timing
proxy, the card port's status-word mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from card.cos import VirtualCard
from card.image import read_document
from card.psam import VirtualPsam
from reader import facade
from reader.virtual import VirtualTransport
from terminal.core.adapters import LedgerHost, PolicyCatalogue, Timed, institution_name
from terminal.core.cardio import ReaderCard, parse_record, port_error, status_error
from terminal.core.checkout import Checkout, CheckoutState, run_checkout
from terminal.core.common import card_failure
from terminal.core.machine import FailureKind
from terminal.core.model import TerminalConfig
from terminal.core.ports import (
    CardBlocked,
    CardFault,
    CardKeyBlocked,
    CardNotGenuine,
    HostTimeout,
    HostUnreachable,
    PinLocked,
    PinWrong,
    TxKind,
    UnknownItem,
)
from tests.core.station import PINS, Station

AMOX = "XJ01CAA040A001010101445"


def test_catalogue_lookup_and_search() -> None:
    cat = PolicyCatalogue.load("370800")
    assert cat.lookup(AMOX).price_fen == 1250 and cat.lookup(AMOX).name == "阿莫西林胶囊"
    with pytest.raises(UnknownItem):
        cat.lookup("NOPE")
    assert [i.code for i in cat.search("AMXL")] == [AMOX]
    assert AMOX in [i.code for i in cat.search("阿莫西林")]
    assert cat.search("  ") == []
    assert institution_name("P37080000001") == "济宁市太白湖大药房"
    assert institution_name("X00000000000") == "X00000000000"


def test_timed_proxy_adds_up_per_label() -> None:
    ticks = iter([0.0, 0.5, 1.0, 3.0])
    totals: dict[str, float] = {}
    t = Timed([1, 2], "list", totals, clock=lambda: next(ticks))
    assert t.count(1) == 1 and t.index(2) == 1
    assert totals == {"list": 2.5}


@pytest.mark.parametrize("sw,kind", [(0x63C2, PinWrong), (0x63C0, PinLocked),
                                     (0x6983, PinLocked), (0x9303, CardBlocked),
                                     (0x6A81, CardBlocked), (0x6F00, CardFault)])
def test_status_words_map_to_port_errors(sw: int, kind: type) -> None:
    err = status_error(sw, "x")
    assert isinstance(err, kind)
    if isinstance(err, PinWrong):
        assert err.tries_left == 2
    if isinstance(err, CardFault):
        assert err.driver_code == -28416


def test_ef08_record_layout() -> None:
    raw = (bytes.fromhex("0007") + b"2" + bytes.fromhex("370800000001")
           + bytes.fromhex("20261128143005") + (0).to_bytes(4, "big")
           + (3060).to_bytes(4, "big") + (100).to_bytes(4, "big"))
    rec = parse_record(raw)
    assert (rec.sequence, rec.kind, rec.terminal) == (7, TxKind.SETTLEMENT, "370800000001")
    assert (rec.when.hour, rec.when.minute, rec.selfpay_fen, rec.fund_fen) == (14, 30, 3060, 100)


def test_lost_host_answers_map_to_port_errors(tmp_path: Path) -> None:
    st = Station.build(tmp_path, ("zhang-san",))
    try:
        host = st.host("P37080000001", flaky=True)
        lossy = st.flaky[-1]
        lossy.lose("1101", "before", "before", "before")
        with pytest.raises(HostUnreachable):  # a lookup changes nothing: no reversal
            host.call("1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": "J00000017",
                                        "card_sn": st.enrolled["zhang-san"].card_sn}})
        lossy.lose("2103", "after")
        with pytest.raises(HostTimeout) as exc:
            host.call("2103", {"data": {"setl_id": "S1", "mdtrt_id": "M1", "psn_no": "P"}})
        assert exc.value.reversed and "2601" in lossy.sent
        st.insert("zhang-san")
        lossy.lose("1101", "before", "before", "before")
        flow = run_checkout(Checkout(st.reader_card(), host, PolicyCatalogue.load(),
                                     TerminalConfig(institution_code="P37080000001")),
                            [(AMOX, 1)], lambda t: PINS["zhang-san"])
        assert flow.state is CheckoutState.FAILED and flow.failure is not None
        assert flow.failure.kind is FailureKind.HOST_UNREACHABLE
    finally:
        st.close()


def test_connect_to_a_dead_http_host_is_unreachable() -> None:
    with pytest.raises(HostUnreachable):
        LedgerHost.connect("http://127.0.0.1:9", institution_code="P37080000001", timeout=1)


FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cards"


def test_a_blocked_read_key_is_a_clear_failure() -> None:
    """spec/card.md §7: 6983 from EXTERNAL AUTHENTICATE is a blocked key, not a PIN lock."""
    err = port_error(facade.KeyBlocked("RKSSSE"))
    assert isinstance(err, CardKeyBlocked) and err.key == "RKSSSE"
    assert err.driver_code == -27011
    failure = card_failure(err, doing="reading the card")
    assert failure.kind is FailureKind.CARD_STATUS and failure.driver_code == -27011
    assert "read key RKSSSE is blocked" in failure.message
    assert "replacement card" in failure.message and "nothing was charged" in failure.message
    assert "PIN" not in failure.message
    # a refused cryptogram with tries left: the card and the PSAM disagree on the key
    assert isinstance(port_error(facade.KeyAuthFailed("RKSSSE", 0x63C1, 1)), CardNotGenuine)


def test_reading_a_card_with_a_blocked_read_key() -> None:
    doc = read_document(FIXTURES / "zhang-san.json")
    doc["counters"]["key_tries_left"] = {"RKSSSE": 0}
    psam = VirtualPsam.from_doc(read_document(FIXTURES / "psam-370800.json"))
    transport = VirtualTransport.with_cards(VirtualCard.from_doc(doc), psam)
    card = ReaderCard.in_reader(transport, "Virtual Card 0", transport.connect("Virtual PSAM 0"))
    with pytest.raises(CardKeyBlocked) as info:
        card.read_basics()
    assert "RKSSSE blocked" in info.value.message and info.value.driver_code == -27011
    card.close()
