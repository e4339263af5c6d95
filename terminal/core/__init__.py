"""The transaction core: what happens at the counter, without any UI toolkit.

Flows (each an explicit state machine, :mod:`terminal.core.machine`):

- :class:`~terminal.core.checkout.Checkout` — pharmacy sale (seed U1, U4, U5, C2, C3);
  :class:`~terminal.core.checkout.CancelSale` — cancel (2103) of a finished sale;
- :class:`~terminal.core.admission.Admission` — hospital admission (U2, 2401);
- :class:`~terminal.core.discharge.Discharge` — discharge settlement (U3, 2301–2304, 2402);
- :mod:`terminal.core.counter` — service-counter operations (C3, A3–A5, L1, L2, M2).

They talk to the card, the host and the catalogue only through the ports of
:mod:`terminal.core.ports`; :mod:`terminal.core.adapters` implements them over the reader
driver façade and the ledger client. :mod:`terminal.core.slip` renders the slip.

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
    Named per flow (``add_item``, ``confirm_cart``, ``enter_pin``, ``cancel_pin``,
    ``pin_timeout``, ``card_returned``, ``void``, ``pay_cash_instead``, ``confirm``…); each
    is valid only in its states and raises :class:`~terminal.core.machine.FlowStateError`
    otherwise (a programming error, not a user error). They are quick except
    ``enter_pin``/``card_returned``, which talk to the card.
``flow.finished`` / ``flow.failure`` / ``flow.result``
    A finished flow is in a terminal state; ``failure`` (a
    :class:`~terminal.core.machine.Failure`: kind, one-line message saying what happened
    and what to do, driver code, whether money moved) explains any stop, ``result`` holds
    the :class:`~terminal.core.model.SaleResult` (slip data) of a completed sale.

No step lets a card or host exception escape: every failure is a transition. PINs are
passed straight to the card port and never stored, logged or put in an event.

Typical UI loop (in a worker)::

    flow = Checkout(card, host, catalogue, config)
    flow.subscribe(post_message_to_screen)
    flow.run_until_input()            # READ_CARD, IDENTIFY → CART
    flow.add_item(code, qty); flow.confirm_cart()
    flow.run_until_input()            # TRIAL → PIN
    flow.enter_pin(pin)               # PIN (wrong: stays in PIN with tries left)
    flow.run_until_input()            # [BANK_AUTH] SETTLE RECORD SLIP → DONE
"""
