-- PostgreSQL: the journal is append-only. (CockroachDB before v24.3 has no triggers: there,
-- grant the host's role INSERT and SELECT only on entries and postings.)
CREATE FUNCTION sscard_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'journal is append-only: post an opposite entry instead'
        USING ERRCODE = 'raise_exception';
END;
$$;
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION sscard_append_only();
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION sscard_append_only();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION sscard_append_only();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION sscard_append_only();

-- Room for HOT updates of balances and ATCs: no new index entry, no predicate-lock
-- conflict with other settlements reading the same index page.
ALTER TABLE accounts SET (fillfactor = 70);
ALTER TABLE cards SET (fillfactor = 90);
