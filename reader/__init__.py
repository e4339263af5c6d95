"""Reader drivers: carry APDUs to a card, whatever the card is.

Transports (PC/SC, serial, in-process virtual) implement :class:`reader.base.Transport` and
:class:`reader.base.Connection`; the T=0 rules of ``apdu.t0`` are applied once, in
:meth:`reader.base.Connection.transmit`, so every caller receives whole responses.
"""
