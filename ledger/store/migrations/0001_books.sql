-- sscard host schema, version 1: the books, the card lifecycle, idempotency.
-- Portable DDL: runs unchanged on SQLite, PostgreSQL, CockroachDB and YugabyteDB.
-- /*sqlite: WITHOUT ROWID*/ becomes WITHOUT ROWID on SQLite (rows clustered by their
-- primary key: one B-tree descent per lookup) and stays a comment elsewhere.
-- Keys are chosen by the client (msgid-derived); no sequence, no SERIAL.

CREATE TABLE schema_version (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) /*sqlite: WITHOUT ROWID*/;

CREATE TABLE policies (
    admdvs    TEXT PRIMARY KEY,
    version   TEXT NOT NULL,
    body      TEXT NOT NULL
) /*sqlite: WITHOUT ROWID*/;

CREATE TABLE institutions (
    fixmedins_code TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    admdvs         TEXT NOT NULL,
    designated     INTEGER NOT NULL,
    bank           TEXT NOT NULL
) /*sqlite: WITHOUT ROWID*/;

-- Every account of the books. Only constrained accounts (personal medical, bank, old
-- medical card) carry a running balance; the others (pooled fund, clearing, cash drawers,
-- fee income, contributions, deposits) are summed from postings, so no settlement ever
-- updates a shared hot row.
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    owner      TEXT NOT NULL,
    balance    BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT balance_never_negative
        CHECK (kind NOT IN ('medical', 'bank', 'oldmed') OR balance >= 0)
) /*sqlite: WITHOUT ROWID*/;

-- The journal: append-only (triggers in the dialect file refuse UPDATE and DELETE).
CREATE TABLE entries (
    entry_id       TEXT PRIMARY KEY,
    msgid          TEXT NOT NULL,
    kind           TEXT NOT NULL,
    day            TEXT NOT NULL,
    fixmedins_code TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    ref_entry_id   TEXT,
    memo           TEXT NOT NULL
);
CREATE INDEX entries_day ON entries (day, fixmedins_code);

CREATE TABLE postings (
    entry_id   TEXT NOT NULL REFERENCES entries (entry_id),
    seq        INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    amount     BIGINT NOT NULL,
    PRIMARY KEY (entry_id, seq)
);
CREATE INDEX postings_account ON postings (account_id);

-- Idempotency: one row per applied msgid (claimed by a plain insert at the start of the
-- transaction), and its first answer (inserted at the end). Neither is ever updated, so
-- no transaction reads the hot end of the msgid index (SERIALIZABLE stays conflict-free).
CREATE TABLE requests (
    msgid          TEXT PRIMARY KEY,
    infno          TEXT NOT NULL,
    digest         TEXT NOT NULL,
    status         TEXT NOT NULL,
    fixmedins_code TEXT NOT NULL,
    created_at     TEXT NOT NULL
) /*sqlite: WITHOUT ROWID*/;

CREATE TABLE answers (
    msgid    TEXT PRIMARY KEY,
    response TEXT NOT NULL
);

CREATE TABLE reversals (
    omsgid     TEXT PRIMARY KEY,
    msgid      TEXT NOT NULL,
    oinfno     TEXT NOT NULL,
    entry_id   TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE persons (
    psn_no         TEXT PRIMARY KEY,
    certno         TEXT NOT NULL UNIQUE,
    psn_name       TEXT NOT NULL,
    gend           TEXT NOT NULL,
    naty           TEXT NOT NULL,
    brdy           TEXT NOT NULL,
    insutype       TEXT NOT NULL,
    psn_type       TEXT NOT NULL,
    psn_insu_stas  TEXT NOT NULL,
    insuplc_admdvs TEXT NOT NULL,
    emp_name       TEXT NOT NULL,
    created_at     TEXT NOT NULL
) /*sqlite: WITHOUT ROWID*/;

CREATE TABLE cards (
    card_no    TEXT PRIMARY KEY,
    card_sn    TEXT NOT NULL UNIQUE,
    psn_no     TEXT NOT NULL,
    pan        TEXT NOT NULL UNIQUE,
    pan_seq    INTEGER NOT NULL,
    bank       TEXT NOT NULL,
    state      TEXT NOT NULL,
    generation TEXT NOT NULL,
    alg        INTEGER NOT NULL,
    issued_at  TEXT NOT NULL,
    state_at   TEXT NOT NULL,
    atc_last   INTEGER NOT NULL,
    activated_at TEXT NOT NULL,
    replaces   TEXT NOT NULL
) /*sqlite: WITHOUT ROWID*/;
CREATE INDEX cards_psn ON cards (psn_no);

CREATE TABLE card_events (
    event_id TEXT PRIMARY KEY,
    card_no  TEXT NOT NULL,
    msgid    TEXT NOT NULL,
    kind     TEXT NOT NULL,
    at       TEXT NOT NULL,
    detail   TEXT NOT NULL
);
CREATE INDEX card_events_card ON card_events (card_no);

CREATE TABLE old_cards (
    old_card_no TEXT PRIMARY KEY,
    psn_no      TEXT NOT NULL,
    state       TEXT NOT NULL,
    state_at    TEXT NOT NULL
) /*sqlite: WITHOUT ROWID*/;
CREATE INDEX old_cards_psn ON old_cards (psn_no);

CREATE TABLE settlements (
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
    setlinfo          TEXT NOT NULL,     -- '' (the answer is kept in requests)
    created_at        TEXT NOT NULL
);
CREATE INDEX settlements_psn ON settlements (psn_no, setl_year);
CREATE INDEX settlements_inst_day ON settlements (fixmedins_code, day);

CREATE TABLE admissions (
    mdtrt_id       TEXT PRIMARY KEY,
    psn_no         TEXT NOT NULL,
    card_no        TEXT NOT NULL,
    fixmedins_code TEXT NOT NULL,
    insutype       TEXT NOT NULL,
    med_type       TEXT NOT NULL,
    state          TEXT NOT NULL,
    begntime       TEXT NOT NULL,
    endtime        TEXT NOT NULL,
    detail         TEXT NOT NULL,
    setl_id        TEXT NOT NULL
);
CREATE INDEX admissions_psn ON admissions (psn_no);

CREATE TABLE fee_details (
    mdtrt_id      TEXT NOT NULL,
    feedetl_sn    TEXT NOT NULL,
    med_list_codg TEXT NOT NULL,
    qty           BIGINT NOT NULL,
    pric          BIGINT NOT NULL,
    amount        BIGINT NOT NULL,
    state         TEXT NOT NULL,
    msgid         TEXT NOT NULL,
    PRIMARY KEY (mdtrt_id, feedetl_sn)
);

CREATE TABLE signins (
    sign_no        TEXT PRIMARY KEY,
    paasid         TEXT NOT NULL,
    fixmedins_code TEXT NOT NULL,
    opter          TEXT NOT NULL,
    signed_in_at   TEXT NOT NULL,
    signed_out_at  TEXT NOT NULL
) /*sqlite: WITHOUT ROWID*/;

CREATE TABLE nonces (
    paasid TEXT NOT NULL,
    nonce  TEXT NOT NULL,
    ts     BIGINT NOT NULL,
    PRIMARY KEY (paasid, nonce)
);

CREATE TABLE reconciliations (
    msgid          TEXT PRIMARY KEY,
    fixmedins_code TEXT NOT NULL,
    day            TEXT NOT NULL,
    kind           TEXT NOT NULL,
    result         TEXT NOT NULL,
    detail         TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE INDEX reconciliations_day ON reconciliations (day, fixmedins_code);
