-- The plan of each connector's last blocked run, held for the admin's
-- review until a later run succeeds: shared, so that any replica shows it
-- and approving it works after a failover. Encoded by the sync engine.
CREATE TABLE sync_plan (
	connector text PRIMARY KEY,
	plan      bytea NOT NULL
);
