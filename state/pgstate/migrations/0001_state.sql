-- The state stores of package state, shared by the replicas of a cluster.
-- Times are those the callers pass (the store interfaces take them), so
-- every expiry below is compared with a parameter, not with now().

-- Authorization codes, spent by the first redemption and kept a minute past
-- expiry so that a replay is still recognised.
CREATE TABLE oidc_code (
	hash         text PRIMARY KEY,
	client_id    text NOT NULL,
	redirect_uri text NOT NULL,
	nonce        text NOT NULL,
	scope        text[] NOT NULL,
	challenge    text NOT NULL,
	connector    text NOT NULL,
	account_id   text NOT NULL,
	auth_time    timestamptz NOT NULL,
	expires      timestamptz NOT NULL,
	family       text NOT NULL,
	access_jti   text NOT NULL DEFAULT '',
	access_exp   timestamptz NOT NULL DEFAULT '-infinity',
	redeemed     boolean NOT NULL DEFAULT false
);
CREATE INDEX oidc_code_expires ON oidc_code (expires);

-- Refresh tokens by hash; family is the token's own hash for tokens that
-- were issued without one.
CREATE TABLE oidc_refresh (
	hash       text PRIMARY KEY,
	family     text NOT NULL,
	client_id  text NOT NULL,
	connector  text NOT NULL,
	account_id text NOT NULL,
	scope      text[] NOT NULL,
	auth_time  timestamptz NOT NULL,
	expires    timestamptz NOT NULL,
	rotated    boolean NOT NULL DEFAULT false
);
CREATE INDEX oidc_refresh_family ON oidc_refresh (family);
CREATE INDEX oidc_refresh_expires ON oidc_refresh (expires);

-- Revoked families: a row revokes every token of the family, including the
-- ones stored after it.
CREATE TABLE oidc_family_revoked (
	family  text PRIMARY KEY,
	revoked timestamptz NOT NULL
);

-- Revoked access tokens, until they expire.
CREATE TABLE oidc_access_revoked (
	jti     text PRIMARY KEY,
	expires timestamptz NOT NULL
);

-- The signing key set: one row, AES-256-GCM encrypted with the key the
-- process was given (nonce || sealed set, see keys.go).
CREATE TABLE signing_keys (
	id     int PRIMARY KEY CHECK (id = 1),
	sealed bytea NOT NULL
);

-- Offline verifiers; connector and account are bytea because an account ID
-- may hold any byte, NUL included, which text refuses.
CREATE TABLE offline_verifier (
	connector  bytea NOT NULL,
	account_id bytea NOT NULL,
	created    timestamptz NOT NULL,
	stamp      text NOT NULL,
	hash       text NOT NULL CHECK (hash <> ''),
	PRIMARY KEY (connector, account_id)
);

CREATE TABLE sync_engine (
	connector  text PRIMARY KEY,
	last_full  timestamptz NOT NULL,
	need_full  boolean NOT NULL,
	last_error text NOT NULL,
	scope      text NOT NULL
);

-- The incremental-sync cursor of each connector, written by the leader in
-- the transaction that records the changes it describes.
CREATE TABLE sync_cursor (
	connector text PRIMARY KEY,
	cursor    bytea NOT NULL
);

-- Sync history, one run per connector and start (the Badger key).
CREATE TABLE sync_run (
	connector text NOT NULL,
	start     timestamptz NOT NULL,
	run       jsonb NOT NULL,
	PRIMARY KEY (connector, start)
);

-- Failed sign-ins per key of each table.
CREATE TABLE throttle (
	tbl          text NOT NULL,
	key          text NOT NULL,
	failures     int NOT NULL,
	last         timestamptz NOT NULL,
	locked_until timestamptz,
	PRIMARY KEY (tbl, key)
);

-- throttle_current is a counter as of time "at": a lock whose time is up
-- is over and its count starts again; failures whose latest is older than
-- the window are forgotten (state.Counter's rule).
CREATE FUNCTION throttle_current(failures int, last timestamptz, locked_until timestamptz, at timestamptz, win interval,
	OUT f int, OUT u timestamptz)
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN locked_until IS NOT NULL AND at >= locked_until THEN 0
	            WHEN locked_until IS NULL AND at - last > win THEN 0
	            ELSE failures END,
	       CASE WHEN locked_until IS NOT NULL AND at >= locked_until THEN NULL ELSE locked_until END
$$;
