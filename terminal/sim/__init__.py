"""Proof under load and faults: the power-cut campaign, the bank test, the city simulator.

- :mod:`terminal.sim.powercut`: VERIFY / CHANGE PIN / PIN RELOAD runs on a card image file
  with power cut at a random checkpoint (spec/card.md §7): never an extra PIN guess, never
  a corrupted image.
- :mod:`terminal.sim.hostproc`: start, kill (SIGKILL) and restart ``sscard host serve`` and a
  private PostgreSQL cluster.
- :mod:`terminal.sim.banktest`: Jepsen-style bank test against ``sscard host serve`` with a
  nemesis, a recorded history and a checker of the books (spec/host.md §4).
- :mod:`terminal.sim.city`: ``sscard simulate``, a day of the seed city's pharmacies and
  hospitals (seed rule C6).

This package may import ``ledger``, ``card``, ``reader`` and ``terminal.core``; nothing
imports it but the CLI, the benchmarks and the tests.
"""
