-- Twin of the SQLite migration that drops the index of client ids. Postgres keeps it: there a
-- re-send is looked for by it, in the whole conversation (what it costs there was not measured).
SELECT 1;
