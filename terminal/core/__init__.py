"""The transaction core: what happens at the counter, without any UI toolkit.

Flows (each an explicit state machine, :mod:`terminal.core.machine`):

- :class:`~terminal.core.checkout.Checkout` — pharmacy sale (seed U1, U4, U5, C2, C3);
  :class:`~terminal.core.checkout.CancelSale` — cancel (2103) of a finished sale;
- :class:`~terminal.core.admission.Admission` — hospital admission (U2, 2401);
- :class:`~terminal.core.discharge.Discharge` — discharge settlement (U3, 2301–2304, 2402);
- :mod:`terminal.core.counter` — service-counter operations (C3, A3–A5, L1, L2, M2).

They talk to the card, the host and the catalogue only through the ports of
:mod:`terminal.core.ports`; the steps they share (read the card, the person lookup, the bank
authorisation, the reversal of an unanswered request, the slip) are those of
:class:`~terminal.core.common.CardFlow`. The adapters: :mod:`terminal.core.cardio` (the card
port over reader connections and the driver façade, with the PSAM), :mod:`terminal.core.adapters`
(the host port over ``ledger.client.HostClient``, the catalogue from the area policy,
:func:`~terminal.core.adapters.open_card` for a reader name, the timing proxy).
:mod:`terminal.core.slip` renders the slip (58 mm / 80 mm, CJK-aware).

The step API (for the Textual UI and for scripts)
-------------------------------------------------
A flow object holds its ``state`` (an ``Enum``) and moves only along its ``TRANSITIONS``.

``flow.subscribe(observer)``
    ``observer(event)`` is called on every transition with a
    :class:`~terminal.core.machine.FlowEvent` (``previous``, ``state``, ``message`` for the
    screen, ``data``; never a PIN). Returns an unsubscribe function.
``flow.awaiting``
    ``None`` when the current state is *automatic*; otherwise an
    :class:`~terminal.core.machine.Awaiting` naming the input it waits for (``CART``,
    ``PIN``, ``CARD_BACK``, ``RECOVERY``, ``CONFIRM``, ``DATA``).
``flow.step()``
    Runs the one piece of card or host I/O of an automatic state and returns the new
    state. It may block (card I/O, host round trip): a UI runs it in a worker thread, one
    step at a time, and renders each state from the events.
``flow.run_until_input()``
    Steps until the flow waits for an input or is ``finished``.
Input methods
    Named per flow (checkout: ``add_item``, ``set_qty``, ``set_payment``, ``confirm_cart``,
    ``cancel``, ``enter_pin``, ``cancel_pin``, ``pin_timeout``, ``pay_cash_instead``,
    ``card_returned``, ``void``, ``confirm_without_record``, ``retry_reversal``; admission:
    ``confirm``/``reject``; discharge: ``choose_payment``, ``enter_pin``…,
    ``card_returned``, ``confirm_without_record``; counter: ``provide_id``,
    ``enter_pins``). Each is valid only in its states and raises
    :class:`~terminal.core.machine.FlowStateError` otherwise (a programming error, not a
    user error). They are quick except ``enter_pin``, ``enter_pins`` and ``card_returned``,
    which talk to the card: run those in the worker too.
``Checkout.preview(pay=None, lines=None)``
    The live trial in CART: the host's 2101 split of the cart as it stands (or of the
    ``lines`` snapshot) for ``pay``, without leaving CART, touching the flow or announcing
    an event (a trial moves nothing). It blocks on the host: call it from a worker, as often
    as the cart changes; it raises the host port's errors (nothing to undo).
The PIN states
    ``enter_pin``/``cancel_pin``/``pin_timeout`` serve every state awaiting
    ``Awaiting.PIN``: the PIN state, and ``BANK_PIN`` (checkout and discharge) where a
    separate-PIN card's bank application wants its own PIN (spec/card.md §1); the event of
    ``BANK_PIN`` carries ``pin="bank"`` and ``tries_left`` so a UI labels the prompt "bank
    PIN". A shared-PIN card is never asked twice.
Issuer authentication
    After a settlement with a bank part (checkout 2102, discharge 2304) the automatic state
    ``COMPLETE`` hands the host's ARPC to the card (second GENERATE AC, spec/card.md §11);
    a missing ARPC, a card that refuses or declines it, or a card pulled first gets the
    settlement reversed (checkout ``REVERSE``, discharge ``UNDO``; 2601) and the flow ends
    in ``FAILED`` with nothing charged.
Card pulled after the settlement
    ``CARD_PULLED`` (``Awaiting.CARD_BACK``, checkout and discharge): the settlement stands
    at the host without its card record; ``card_returned`` (the same card, then the PIN
    again) finishes it, ``confirm_without_record`` keeps it (the slip says so); a checkout
    may also ``void`` it when the card surely carries no record.
``flow.finished`` / ``flow.failure`` / ``flow.result``
    A finished flow is in a terminal state; ``failure`` (a
    :class:`~terminal.core.machine.Failure`: kind, one-line message saying what happened
    and what to do, driver code, whether money moved) explains any stop, ``result`` holds
    the :class:`~terminal.core.model.SaleResult` (slip data) of a completed sale.

No step lets a card or host exception escape: every failure is a transition. PINs are
passed straight to the card port and never stored, logged or put in an event. Observers
run in the thread that made the transition (the UI's worker): a Textual screen hands the
event to its own thread (``App.call_from_thread`` / ``post_message``). A flow object is
not meant to be driven from two threads at once.

Scripted drivers (CLI, benchmark): :func:`~terminal.core.checkout.run_checkout`,
:func:`~terminal.core.admission.run_admission`, :func:`~terminal.core.discharge.run_discharge`.

Typical UI loop (in a worker)::

    flow = Checkout(card, host, catalogue, config)
    flow.subscribe(post_message_to_screen)
    flow.run_until_input()            # READ_CARD, IDENTIFY → CART
    flow.add_item(code, qty); flow.confirm_cart()
    flow.run_until_input()            # TRIAL → PIN
    flow.enter_pin(pin)               # PIN (wrong: stays in PIN with tries left)
    flow.run_until_input()            # [BANK_AUTH] → BANK_PIN (separate bank PIN) or …
    flow.enter_pin(bank_pin)          # … only when the event said pin="bank"
    flow.run_until_input()            # SETTLE [COMPLETE] RECORD SLIP → DONE
"""
