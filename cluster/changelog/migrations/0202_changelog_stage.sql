-- Parts of a record of several parts being published. They are written
-- here one at a time as the record is encoded, outside the fenced
-- transaction that publishes it (which must stay short: the lease's
-- renewal waits for it), and that transaction moves them into
-- changelog_part, so a record is visible whole or not at all. Rows left by
-- a publisher that died are deleted by the leader's compaction.
CREATE TABLE changelog_stage (
	id   bigint NOT NULL,
	part int NOT NULL,
	data bytea NOT NULL,
	at   timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (id, part)
);
