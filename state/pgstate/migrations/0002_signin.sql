-- Sign-ins in progress (package state's SignIns): authorization requests
-- waiting for the login form (kind 'request') and round trips through an
-- upstream provider (kind 'upstream'), so that a browser's next request may
-- reach any replica. Keys are hashes of the tokens the browser holds; data
-- is the record as JSON. Rows are taken (deleted) by the step that ends
-- them, and swept once expired.
CREATE TABLE oidc_signin (
	kind    text NOT NULL,
	key     text NOT NULL,
	data    jsonb NOT NULL,
	expires timestamptz NOT NULL,
	PRIMARY KEY (kind, key)
);
CREATE INDEX oidc_signin_expires ON oidc_signin (expires);

-- Throttle keys name accounts by connector and ID joined with NUL bytes,
-- and logins as typed: bytes that text refuses, so they are bytea.
ALTER TABLE throttle ALTER COLUMN key TYPE bytea USING convert_to(key, 'UTF8');

-- Sign-in attempts in flight per throttle key, on every replica: a row
-- from Reserve until Release, or until "until" when its replica died.
CREATE TABLE throttle_inflight (
	tbl   text NOT NULL,
	key   bytea NOT NULL,
	id    text NOT NULL,
	until timestamptz NOT NULL,
	PRIMARY KEY (tbl, key, id)
);

-- throttle_reserve admits an attempt on a key, atomically across replicas:
-- under a transaction-scoped advisory lock of the key, it reads the key's
-- counter and its live reservations, and adds one only while fewer are
-- held than the failures left before the lock (lim <= 0: no limit, no row).
-- Failures are counted (throttle) before a reservation is released, so a
-- reservation that turns into a failure is never missing from both.
CREATE FUNCTION throttle_reserve(p_tbl text, p_key bytea, p_id text, p_at timestamptz, p_until timestamptz,
	p_win interval, p_lim int, OUT o_failures int, OUT o_last timestamptz, OUT o_until timestamptz, OUT o_ok boolean)
LANGUAGE plpgsql AS $$
DECLARE
	held int;
BEGIN
	PERFORM pg_advisory_xact_lock(hashtextextended('dirgate throttle ' || p_tbl || ' ' || encode(p_key, 'hex'), 0));
	SELECT cur.f, t.last, cur.u INTO o_failures, o_last, o_until
		FROM throttle t, throttle_current(t.failures, t.last, t.locked_until, p_at, p_win) cur
		WHERE t.tbl = p_tbl AND t.key = p_key;
	IF NOT FOUND OR (o_failures = 0 AND o_until IS NULL) THEN
		o_failures := 0; o_last := NULL; o_until := NULL;
	END IF;
	IF o_until IS NOT NULL THEN
		o_ok := false;
		RETURN;
	END IF;
	IF p_lim <= 0 THEN
		o_ok := true;
		RETURN;
	END IF;
	DELETE FROM throttle_inflight i WHERE i.tbl = p_tbl AND i.key = p_key AND i.until <= p_at;
	SELECT count(*) INTO held FROM throttle_inflight i WHERE i.tbl = p_tbl AND i.key = p_key;
	o_ok := held < p_lim - o_failures;
	IF o_ok THEN
		INSERT INTO throttle_inflight (tbl, key, id, until) VALUES (p_tbl, p_key, p_id, p_until);
	END IF;
END
$$;
