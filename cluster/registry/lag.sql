-- The replica's own measure of how stale its cache may be, in ms, as of its
-- heartbeat (the change log's Lag: zero while it is known to be at the
-- head, otherwise the time since it last was); null from a release that
-- does not report it, whose lag the status derives from positions.
ALTER TABLE cluster_replica ADD COLUMN IF NOT EXISTS lag_ms bigint;
