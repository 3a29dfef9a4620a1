-- zonedist schema, version 3: integrity-check results.
--
-- zonedist-check (--store, and always in --watch mode when it knows the
-- database) writes one row per secondary per check: what the secondary
-- serves compared with the serial zonedistd published under the same number
-- (docs/INTEGRITY.md).  The status page and `zonedistctl status` read the
-- newest row per (zone, secondary).  Rows older than the checker's
-- --keep-days are deleted by the checker.
CREATE TABLE zonedist.check_result (
    id              bigserial   PRIMARY KEY,
    checked_at      timestamptz NOT NULL DEFAULT now(),
    zone            text        NOT NULL,
    secondary       text        NOT NULL,
    state           text        NOT NULL
                    CHECK (state IN ('in_sync', 'lagging', 'diverged', 'unreachable', 'error')),
    severity        smallint    NOT NULL CHECK (severity BETWEEN 0 AND 2), -- 0 ok, 1 warning, 2 critical
    serial          bigint,     -- the serial the secondary serves (NULL: unknown)
    latest_serial   bigint,     -- the serial zonedistd published at the time
    versions_behind bigint,
    elapsed_ms      integer     NOT NULL,
    message         text        NOT NULL,
    report          jsonb       NOT NULL
);
CREATE INDEX check_result_latest_idx ON zonedist.check_result (zone, secondary, checked_at DESC);
CREATE INDEX check_result_checked_at_idx ON zonedist.check_result (checked_at);
