-- The IDs of the sync agents connected to each replica, as of its
-- heartbeat (null from a release that does not report them): the Agents
-- page of any replica shows every replica an agent is connected to.
ALTER TABLE cluster_replica ADD COLUMN IF NOT EXISTS agents text[];
