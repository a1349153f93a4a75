-- The log's identity: a cache stores it with its position, so that a
-- position is never read against another history (a database restored
-- from a backup, or replaced), which would skip its records as applied.
ALTER TABLE changelog_head ADD COLUMN log_id text;
UPDATE changelog_head SET log_id = gen_random_uuid()::text;
ALTER TABLE changelog_head ALTER COLUMN log_id SET NOT NULL;
