-- zonedist schema, version 6: an operator's report that a key is
-- compromised (issue 7, docs/KEYS.md).  zonedistd then replaces the key as
-- fast as caches allow, starting at that time; the column keeps the report
-- across restarts.
ALTER TABLE zonedist.key ADD COLUMN compromised timestamptz;
