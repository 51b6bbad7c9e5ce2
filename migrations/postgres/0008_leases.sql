-- Postgres dialect of ../0008_leases.sql (the same schema).
-- Leases (issue 13, several nodes): work that exactly one node of a cluster may do at a time (the
-- desk's timers) is done by the node that holds its lease. A holder renews it before it expires;
-- when a node dies, another takes the lease once it has expired. One node on its own takes none.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    -- The node that holds it (its id on the Redis bus).
    holder     TEXT NOT NULL,
    -- Unix ms; after this any node may take it.
    expires_at BIGINT NOT NULL
);
