-- The URL of each replica's agent listener (agent.advertise), '' without
-- one: the hub sends the live replicas' URLs to every agent, which keeps a
-- connection to each.
ALTER TABLE cluster_replica ADD COLUMN IF NOT EXISTS agent_url text NOT NULL DEFAULT '';
