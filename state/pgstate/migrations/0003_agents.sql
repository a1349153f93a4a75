-- Sync agents (package state's Agents). Enrollment tokens are kept by the
-- hash of the token, never in clear; a token is redeemed by one UPDATE of
-- its row, in the transaction that inserts the agent it enrolls, so one
-- token enrolls one agent whichever replica serves it.
CREATE TABLE agent_token (
	hash      text PRIMARY KEY,
	connector text NOT NULL,
	created   timestamptz NOT NULL,
	expires   timestamptz NOT NULL,
	used      timestamptz,
	used_by   text NOT NULL DEFAULT ''
);

-- Enrolled agents, pinned by the SHA-256 fingerprint of their client
-- certificate; revoked is set once and never cleared.
CREATE TABLE agent (
	id          text PRIMARY KEY,
	connector   text NOT NULL,
	name        text NOT NULL,
	fingerprint text NOT NULL UNIQUE,
	serial      text NOT NULL,
	enrolled    timestamptz NOT NULL,
	revoked     timestamptz
);
