"""The sscard host: double-entry books, settlement policy, card lifecycle and an
NHSA-shaped service (spec/host.md, seed rules in seed/RULES.md).

Modules: :mod:`ledger.money` (integer fen), :mod:`ledger.policy` (area policy files and the
split), :mod:`ledger.books` (journal and accounts), :mod:`ledger.store` (SQLite,
PostgreSQL), :mod:`ledger.service` (the dispatcher, ``HostService.call``),
:mod:`ledger.settle`, :mod:`ledger.lifecycle`, :mod:`ledger.queries` (the transaction
codes), :mod:`ledger.bank` (ARQC), :mod:`ledger.http` (FastAPI server),
:mod:`ledger.client` (``HostClient`` for terminals), :mod:`ledger.populate`,
:mod:`ledger.report`. The host imports nothing of the card side.

Running on PostgreSQL-compatible distributed databases
-----------------------------------------------------
The PostgreSQL back end is written so the same SQL runs on CockroachDB and YugabyteDB:

* every key is chosen by the client (msgid-derived entry, settlement and stay ids; card
  numbers and PANs minted from hashes); no SERIAL, no sequence, no hot counter row;
* only per-person accounts (medical, bank, old card) keep a running balance, so no
  settlement updates a shared row (the pooled fund, clearing and cash accounts are sums of
  postings, indexed by account);
* no transaction reads a key it is about to insert: the msgid is claimed by a plain insert
  (no ``SELECT`` of a missing key, no ``ON CONFLICT`` probe, both of which take predicate
  locks on the hot end of the index under SERIALIZABLE), and the answer goes to its own
  append-only table; guarded balances are updated in place with room left for HOT updates
  (``fillfactor``), so concurrent settlements rarely conflict;
* every transaction is SERIALIZABLE and the whole transaction function is retried on
  SQLSTATE 40001 (serialization failure, which CockroachDB reports for any contention,
  including its ``RETRY_WRITE_TOO_OLD``/``RETRY_SERIALIZABLE`` restarts), 40P01 and a
  unique violation from a concurrent insert of the same msgid;
* statements use only portable SQL (``INSERT … ON CONFLICT … DO NOTHING/UPDATE``,
  ``COALESCE``, ``CASE``, scalar subqueries); ``COPY`` is used only by the bulk
  ``populate``; no server-side function holds business logic (the split stays in Python);
* few statements: the connection is in autocommit mode and each transaction sends its own
  ``BEGIN ISOLATION LEVEL SERIALIZABLE`` and ``COMMIT`` (extended query protocol, prepared
  statements). The msgid claim travels as a ``WITH`` part of the transaction's first
  query, and the writes deferred until the next query or the commit travel as one
  statement of data-modifying ``WITH`` parts whose row counts come back together; a run
  never modifies one table twice unless every part on it is a plain ``INSERT`` (so no row
  is changed twice in one statement — CockroachDB refuses exactly the other cases). The
  statements go through libpq's pipeline mode (standard extended-protocol messages sent
  before their ``Sync``): ``BEGIN`` travels with the first statement and ``COMMIT`` with
  the last writes, whose guarded balance updates then fail the statement itself (a cast
  of a marker text to an integer) when they change no row. A pharmacy settlement is two
  round trips: with many terminals the host is bound by CPU, and each statement and round
  trip costs the Python client more CPU than it costs time.

What those engines need beyond that:

* the append-only triggers of migration ``0001_books.postgres.sql`` use PL/pgSQL:
  YugabyteDB runs them unchanged; CockroachDB supports triggers only from v24.3 — on older
  versions drop that file and instead grant the host's role only ``SELECT, INSERT`` on
  ``entries`` and ``postings``;
* CockroachDB: ``COPY … FROM STDIN`` works, but ``populate`` batches should stay at
  ≤ 10 000 rows (``--batch``) to keep transactions small; set
  ``sql.defaults.default_int_size = 8`` or keep the BIGINT columns as declared;
* YugabyteDB: SERIALIZABLE is honoured as requested by the host (no server flag needed);
  its default hash-sharded primary keys suit these text keys;
* give the connection URL ``?schema=name`` to isolate several hosts in one database.
"""
