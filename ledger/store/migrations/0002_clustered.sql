-- sscard host schema, version 2: physical layout only, no change to any table's columns.
-- On SQLite the journal, its postings and the settlements are stored clustered by their
-- primary key (WITHOUT ROWID, see 0002_clustered.sqlite.sql): one B-tree fewer to write
-- per table and per commit. PostgreSQL and the PostgreSQL-compatible engines need nothing.
SELECT 1;
