-- One row per replica, written by its own heartbeat. seen is the database
-- clock's, so "gone" does not depend on the replicas' clocks; position is
-- the last change-log record in the replica's cache and position_at that
-- record's time (null before the first).
CREATE TABLE cluster_replica (
	name        text        PRIMARY KEY,
	holder      text        NOT NULL,
	admin_url   text        NOT NULL DEFAULT '',
	version     text        NOT NULL DEFAULT '',
	started     timestamptz NOT NULL,
	seen        timestamptz NOT NULL,
	position    bigint      NOT NULL DEFAULT 0,
	position_at timestamptz,
	leader      boolean     NOT NULL DEFAULT false
);
