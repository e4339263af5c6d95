"""Hypothesis state machine of the PIN: verify, change, unblock, reload, reset, power cut.

Invariants (spec/card.md §7, seed rule C3):
* never more than ``pin_max_tries`` wrong PIN comparisons between two legitimate resets of
  the counter (durable tries + wrong comparisons since the last reset ≤ max);
* the durable counter only goes up after a correct PIN, a change with the correct old PIN,
  or an issuer command (unblock/reload) carrying a valid MAC.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from apdu import codec
from card.cos import VirtualCard
from card.errors import PowerCut
from card.image import CardImage
from tests.card.helpers import Terminal, make_issued, make_psam, tx

PINS = st.sampled_from(["123456", "654321", "111111", "2468", "99999999"])
CUTS = st.one_of(st.none(), st.sampled_from([
    "pin.before_decrement", "commit.before", "commit.write", "commit.after",
    "pin.decremented", "pin.compared", "pin.restored", "command.done",
]))
_BASE = {m: make_issued(pin_max_tries=m).doc for m in (3, 6)}


class PinMachine(RuleBasedStateMachine):
    @initialize(max_tries=st.sampled_from([3, 6]))
    def setup(self, max_tries: int) -> None:
        self.max = max_tries
        self.card = VirtualCard.from_doc(_BASE[max_tries])
        self.term = Terminal(self.card, make_psam())
        self.pin = "123456"
        self.wrong_since_reset = 0
        self.last_durable = max_tries

    # -- helpers ----------------------------------------------------------------------------
    def durable(self) -> CardImage:
        return CardImage.from_doc(self.card.store.load())

    def send(self, command: bytes, cut: str | None) -> int | None:
        """Transmit; with ``cut`` arm a power cut. Returns the SW, or None after a cut."""
        start = len(self.card.faults.hits)
        if cut is not None:
            self.card.faults.power_cut_at(cut)
        try:
            sw = tx(self.card, command)[1]
        except PowerCut:
            sw = None
            self.card.power_on()
        self.card.faults.clear()
        self._compared = "pin.compared" in self.card.faults.hits[start:]
        return sw

    def account(self, legit_reset_possible: bool, candidate_wrong: bool) -> None:
        d = self.durable().pins["ssse"].tries_left
        if candidate_wrong and self._compared:
            self.wrong_since_reset += 1
        if d > self.last_durable or (d == self.max and legit_reset_possible
                                     and self.last_durable == self.max):
            assert legit_reset_possible, "the counter went up without a legitimate reason"
            self.wrong_since_reset = 0
        self.last_durable = d
        # a PIN change may have been cut: learn the PIN the card really holds
        rec = self.durable().pins["ssse"]
        for p in ("123456", "654321", "111111", "2468", "99999999"):
            if rec.matches(p):
                self.pin = p

    # -- rules ------------------------------------------------------------------------------
    @rule(candidate=PINS, cut=CUTS)
    def verify(self, candidate: str, cut: str | None) -> None:
        before = self.durable().pins["ssse"].tries_left
        sw = self.send(b"\x00\x20\x00\x00" + bytes([len(codec.pin_encode(candidate))])
                       + codec.pin_encode(candidate), cut)
        right = candidate == self.pin
        if sw is not None:
            if before == 0:
                assert sw == 0x6983
            elif right:
                assert sw == 0x9000
            else:
                assert sw == 0x63C0 | (before - 1)
        self.account(legit_reset_possible=right, candidate_wrong=not right)

    @rule(old=PINS, new=PINS, cut=CUTS)
    def change(self, old: str, new: str, cut: str | None) -> None:
        data = codec.pin_encode(old) + b"\xff" + codec.pin_encode(new)
        right = old == self.pin
        sw = self.send(b"\x80\x5e\x01\x00" + bytes([len(data)]) + data, cut)
        if sw is not None and self.last_durable > 0:
            assert (sw == 0x9000) == right
        self.account(legit_reset_possible=right, candidate_wrong=not right)

    @rule()
    def unblock(self) -> None:
        assert self.term.unblock_pin() == 0x9000
        self._compared = False
        self.account(legit_reset_possible=True, candidate_wrong=False)

    @rule(new=PINS)
    def reload(self, new: str) -> None:
        assert self.term.reload_pin(new) == 0x9000
        self._compared = False
        self.pin = new
        self.account(legit_reset_possible=True, candidate_wrong=False)

    @rule(mac=st.binary(min_size=4, max_size=4))
    def forged_unblock(self, mac: bytes) -> None:
        tx(self.card, "0084000008")
        assert tx(self.card, b"\x84\x24\x00\x00\x04" + mac)[1] in (0x9302, 0x9000)
        self._compared = False
        # a random MAC is right with probability 2^-32: treat success as a test failure
        self.account(legit_reset_possible=False, candidate_wrong=False)

    @rule()
    def reset(self) -> None:
        self.card.reset()
        assert tx(self.card, "00200000")[1] in (0x63C0 | self.last_durable, 0x6983)

    @invariant()
    def never_an_extra_guess(self) -> None:
        if not hasattr(self, "card"):
            return
        d = self.durable().pins["ssse"].tries_left
        assert 0 <= d <= self.max
        assert self.wrong_since_reset <= self.max
        assert d + self.wrong_since_reset <= self.max


PinMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=25,
                                        deadline=None)
TestPinMachine = PinMachine.TestCase
