-- zonedist schema, version 2: releases of versions held by the sanity limits.
--
-- A version that removes more delegations than limits.hold-removed-* allow,
-- or changes more apex RRsets than limits.hold-apex-changes, is not
-- published: zonedistd logs an ALARM and keeps the change rows queued
-- (DESIGN.md decision 8).  An operator who has looked at it releases it with
-- `zonedistd --config FILE --release ZONE --by NAME`, which inserts a row
-- here; the next batch of that zone that would be held is published instead,
-- and records in the same transaction which version used the release.
CREATE TABLE zonedist.release (
    id           bigserial   PRIMARY KEY,
    zone         text        NOT NULL,
    released_by  text        NOT NULL,
    released_at  timestamptz NOT NULL DEFAULT now(),
    used_at      timestamptz,
    used_version bigint
);
CREATE INDEX release_open_idx ON zonedist.release (zone) WHERE used_at IS NULL;
