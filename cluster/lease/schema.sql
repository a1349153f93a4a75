-- One row per named lease. expires_at is set from the database clock only;
-- epoch grows by one on every acquisition and is the fencing token that
-- each leader write checks in its own transaction.
CREATE TABLE IF NOT EXISTS leader_lease (
    name       text        PRIMARY KEY,
    holder     text        NOT NULL,
    epoch      bigint      NOT NULL,
    expires_at timestamptz NOT NULL
);
