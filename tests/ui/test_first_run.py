"""The terminal's first run with no options: an embedded host created in the data directory,
the fixture cards registered there under their own numbers (8110), activated where the
fixture is (A3/A4), with opening balances; no card image is rewritten. Then the main path
works and each fixture card behaves as its fixture says."""

from __future__ import annotations

from pathlib import Path

from terminal.cli.cmd_terminal import FIXTURE_CARDS, OPENING_BALANCE, build_stack
from terminal.ui.app import SscardApp
from terminal.ui.widgets.card_panel import CardPanel
from terminal.ui.widgets.pinpad import PinPad
from terminal.ui.widgets.slip import SlipPreview
from tests.ui.conftest import FIXTURE_PIN, FixedClock, type_text, wait_text, wait_until


async def test_first_run_issues_the_fixture_cards_and_sells(tmp_path: Path) -> None:
    from card.image import load_card_image
    from ledger import books
    from ledger.holders import person_by_certno
    from ledger.store.base import open_store

    data = tmp_path / "sscard"
    stack = build_stack(mode="pharmacy", data_dir=data, clock=FixedClock(), watch=False)
    try:
        assert stack.services.drawer is not None
        assert stack.services.notice == ""
        zhang = load_card_image(data / "cards" / "zhang-san.json").identity
        assert zhang["card_number"] == "J00000017"         # the fixture's own number
        for image in sorted(FIXTURE_CARDS.glob("*.json")):   # working copies as the fixtures
            assert (data / "cards" / image.name).read_bytes() == image.read_bytes()
        app = SscardApp(stack.services, mode="pharmacy", watch_cards=False)
        async with app.run_test(size=(100, 32)) as pilot:
            # li-si's ICBC card was never activated at the bank counter (rule A4)
            stack.services.drawer.insert("li-si")
            await pilot.press("f6")
            await wait_text(pilot, "not been activated", "bank's counter")
            # zhang-san's CCB card arrives activated (rule A3): the sale goes through
            stack.services.drawer.insert("zhang-san")
            await pilot.press("f6")
            await wait_until(pilot, lambda: app.screen.query_one(CardPanel).balance_fen
                             == OPENING_BALANCE, what="张三 and the opening balance")
            await pilot.press("f2")
            await type_text(pilot, "amxl")
            await wait_text(pilot, "阿莫西林胶囊")
            await pilot.press("enter")
            await pilot.press("f8")
            await wait_until(pilot, lambda: isinstance(app.screen, PinPad), what="PIN pad")
            await type_text(pilot, FIXTURE_PIN)
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, SlipPreview), what="slip")
            slip = await wait_text(pilot, "账户余额", "487.50")
            assert f"{zhang['card_number'][:3]}****{zhang['card_number'][-2:]}" in slip
    finally:
        stack.close()
    store = open_store(f"sqlite:///{data}/host.sqlite")
    try:
        psn_no = store.run(lambda tx: person_by_certno(tx, zhang["ssn"]).psn_no)
        assert store.run(lambda tx: books.balance(tx, books.medical(psn_no))) == \
            OPENING_BALANCE - 1250
        assert store.run(books.verify) == []
    finally:
        store.close()
