-- SQLite: rebuild entries, postings and settlements as WITHOUT ROWID tables (the
-- "make other kinds of table schema changes" procedure of the SQLite ALTER TABLE page;
-- the store runs this script with foreign keys off and checks them before committing).
DROP TRIGGER entries_no_update;
DROP TRIGGER entries_no_delete;
DROP TRIGGER postings_no_update;
DROP TRIGGER postings_no_delete;

CREATE TABLE entries_v2 (
    entry_id       TEXT PRIMARY KEY,
    msgid          TEXT NOT NULL,
    kind           TEXT NOT NULL,
    day            TEXT NOT NULL,
    fixmedins_code TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    ref_entry_id   TEXT,
    memo           TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO entries_v2 SELECT entry_id, msgid, kind, day, fixmedins_code, created_at,
    ref_entry_id, memo FROM entries;

CREATE TABLE postings_v2 (
    entry_id   TEXT NOT NULL REFERENCES entries (entry_id),
    seq        INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    amount     BIGINT NOT NULL,
    PRIMARY KEY (entry_id, seq)
) WITHOUT ROWID;
INSERT INTO postings_v2 SELECT entry_id, seq, account_id, amount FROM postings;

CREATE TABLE settlements_v2 (
    setl_id           TEXT PRIMARY KEY,
    mdtrt_id          TEXT NOT NULL,
    psn_no            TEXT NOT NULL,
    card_no           TEXT NOT NULL,
    fixmedins_code    TEXT NOT NULL,
    med_type          TEXT NOT NULL,
    insutype          TEXT NOT NULL,
    setl_year         INTEGER NOT NULL,
    day               TEXT NOT NULL,
    state             TEXT NOT NULL,
    medfee_sumamt     BIGINT NOT NULL,
    act_pay_dedc      BIGINT NOT NULL,
    hifp_pay          BIGINT NOT NULL,
    acct_pay          BIGINT NOT NULL,
    psn_cash_pay      BIGINT NOT NULL,
    cash_src          TEXT NOT NULL,
    entry_id          TEXT NOT NULL,
    msgid             TEXT NOT NULL,
    cancel_entry_id   TEXT,
    setlinfo          TEXT NOT NULL,
    created_at        TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO settlements_v2 SELECT setl_id, mdtrt_id, psn_no, card_no, fixmedins_code,
    med_type, insutype, setl_year, day, state, medfee_sumamt, act_pay_dedc, hifp_pay,
    acct_pay, psn_cash_pay, cash_src, entry_id, msgid, cancel_entry_id, setlinfo, created_at
    FROM settlements;

DROP TABLE postings;
DROP TABLE entries;
DROP TABLE settlements;
ALTER TABLE entries_v2 RENAME TO entries;
ALTER TABLE postings_v2 RENAME TO postings;
ALTER TABLE settlements_v2 RENAME TO settlements;

CREATE INDEX entries_day ON entries (day, fixmedins_code);
CREATE INDEX postings_account ON postings (account_id);
CREATE INDEX settlements_psn ON settlements (psn_no, setl_year);
CREATE INDEX settlements_inst_day ON settlements (fixmedins_code, day);

CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'journal is append-only: post an opposite entry instead'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'journal is append-only: post an opposite entry instead'); END;
CREATE TRIGGER postings_no_update BEFORE UPDATE ON postings
BEGIN SELECT RAISE(ABORT, 'journal is append-only: post an opposite entry instead'); END;
CREATE TRIGGER postings_no_delete BEFORE DELETE ON postings
BEGIN SELECT RAISE(ABORT, 'journal is append-only: post an opposite entry instead'); END;
