-- The change log: every commit of the leader's cache, in sequence order.
-- A record is the cache's encoding, zstd-compressed and split in parts so
-- that no value grows past a few MB; size is the compressed total.
CREATE TABLE changelog (
	seq       bigint PRIMARY KEY,
	connector text NOT NULL,
	base      boolean NOT NULL,
	epoch     bigint NOT NULL,
	at        timestamptz NOT NULL,
	parts     int NOT NULL,
	size      bigint NOT NULL
);
CREATE INDEX changelog_connector ON changelog (connector, base, seq);

CREATE TABLE changelog_part (
	seq  bigint NOT NULL REFERENCES changelog (seq) ON DELETE CASCADE,
	part int NOT NULL,
	data bytea NOT NULL,
	PRIMARY KEY (seq, part)
);

-- The last sequence number given out and its record's time: kept when the
-- records are pruned, so numbers are never reused.
CREATE TABLE changelog_head (
	id  int PRIMARY KEY CHECK (id = 1),
	seq bigint NOT NULL,
	at  timestamptz NOT NULL
);
INSERT INTO changelog_head (id, seq, at) VALUES (1, 0, to_timestamp(0));
