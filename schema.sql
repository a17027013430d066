-- hit-counter tables for Oracle Database 23ai (23.4 or later, for IF NOT EXISTS).
--
-- Safe to run again and again: tables and indexes are created only when missing, the
-- single totals row is seeded only when absent, and table comments are overwritten.
-- Run it as the application user, or as an administrator whose CURRENT_SCHEMA is the
-- application user (deploy/initdb/10-hit-counter-schema.sh does that). The app runs it
-- itself at start when ORACLE_APPLY_SCHEMA=true.
--
-- Format rules, because the app splits this file into statements itself and SQL*Plus
-- runs it too: comments only on lines of their own, each statement ends with ';' at the
-- end of a line, no blank lines inside a statement, no ';' or '&' inside quoted text.

-- One row per visitor (the id in their signed cookie): their own hit count and when
-- they were first and last seen, in seconds since the Unix epoch.
CREATE TABLE IF NOT EXISTS visitors (
    id         VARCHAR2(32 BYTE) NOT NULL,
    hits       NUMBER(19)        NOT NULL,
    first_seen NUMBER(19)        NOT NULL,
    last_seen  NUMBER(19)        NOT NULL,
    CONSTRAINT visitors_pk PRIMARY KEY (id)
);

COMMENT ON TABLE visitors IS
    'hit-counter: one row per visitor cookie, with its hit count and first and last hit (Unix seconds)';

-- "Active visitors" counts the rows with a recent last_seen: an index range scan, so
-- its cost follows the number of active visitors, not of all visitors ever.
CREATE INDEX IF NOT EXISTS visitors_by_last_seen ON visitors (last_seen);

-- The room's running totals, kept in the same transaction as every hit so that reading
-- them never scans the visitors. Exactly one row, id 1.
CREATE TABLE IF NOT EXISTS totals (
    id       NUMBER(1)  NOT NULL,
    hits     NUMBER(19) NOT NULL,
    visitors NUMBER(19) NOT NULL,
    CONSTRAINT totals_pk PRIMARY KEY (id),
    CONSTRAINT totals_single_row CHECK (id = 1)
);

COMMENT ON TABLE totals IS
    'hit-counter: the single row (id 1) of total hits and distinct visitors';

MERGE INTO totals t
    USING (SELECT 1 AS id FROM dual) seed
    ON (t.id = seed.id)
    WHEN NOT MATCHED THEN INSERT (id, hits, visitors) VALUES (1, 0, 0);

-- Hits per minute, keyed by the minute's start in Unix seconds. Index-organized: every
-- access is by that key, so the rows live in the primary key index itself.
CREATE TABLE IF NOT EXISTS hits_per_minute (
    minute_start NUMBER(19) NOT NULL,
    hits         NUMBER(19) NOT NULL,
    CONSTRAINT hits_per_minute_pk PRIMARY KEY (minute_start)
) ORGANIZATION INDEX;

COMMENT ON TABLE hits_per_minute IS
    'hit-counter: hits counted per minute, keyed by the minute start (Unix seconds)';

-- Secrets every instance must share, such as the key that signs visitor cookies. It is
-- written once by whichever instance starts first and only read afterwards.
CREATE TABLE IF NOT EXISTS app_secrets (
    name   VARCHAR2(64 CHAR) NOT NULL,
    secret RAW(2000)         NOT NULL,
    CONSTRAINT app_secrets_pk PRIMARY KEY (name)
);

COMMENT ON TABLE app_secrets IS
    'hit-counter: shared secrets by name, such as the visitor cookie signing key';

COMMIT;
