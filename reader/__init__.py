"""Reader drivers: carry APDUs to a card, whatever the card is (DESIGN.md; spec/pcsc-lab.md).

Transports implement :class:`reader.base.Transport` / :class:`reader.base.Connection`; the
T=0 rules of ``apdu.t0`` are applied once, in :meth:`reader.base.Connection.transmit`, so
every caller receives whole responses. Errors derive from :class:`reader.errors.ReaderError`
and carry the national driver code (spec/card.md §10).

- :mod:`reader.pcsc` — PC/SC through pyscard (real readers, every reader pcscd knows);
- :mod:`reader.virtual` — in-process readers holding card objects (user card + PSAM slots);
- :mod:`reader.serial` — serial (Phoenix-style) readers; :mod:`reader.serial_device` serves a
  card on a serial line;
- :mod:`reader.vpcd` — serves a card object to pcscd's vpcd driver, so every PC/SC program
  sees it;
- :mod:`reader.monitor` — insert/remove events in a background thread that survives pcscd
  restarts;
- :mod:`reader.trace` — APDU traces (documented text format, secrets masked), replayed as a
  test fixture or as a simulated card;
- :mod:`reader.facade` — the driver façade pharmacy software calls (``iReadCardBas`` …);
- :mod:`reader.echo` — the minimal echo card, the latency baseline.
"""
