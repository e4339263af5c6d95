"""Storage back ends for the books: SQLite (default) and PostgreSQL (psycopg 3).

One URL selects the back end (:func:`open_store`): ``sqlite:///path/to/host.db`` or
``postgresql://user@host:5432/db``. Both run the same DML (``?`` placeholders, translated
for psycopg); the DDL of each migration has a portable part and a small per-dialect part
(triggers).
"""

from __future__ import annotations

from ledger.store.base import Store, Tx, open_store

__all__ = ["Store", "Tx", "open_store"]
