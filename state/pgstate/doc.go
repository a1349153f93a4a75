// Package pgstate keeps the state stores of package state in PostgreSQL,
// shared by the replicas of a cluster.
package pgstate

import _ "github.com/jackc/pgx/v5/pgxpool"
