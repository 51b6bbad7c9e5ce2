-- On SQLite the client-id index is dropped (the writer remembers the ids: see
-- migrations/0009_client_ids.sql). Postgres keeps it: each node appends in a transaction of its
-- own and finds a re-sent message through it. Nothing changes here.
SELECT 1;
