-- A re-sent message is found by the SQLite writer, which remembers the client ids each
-- conversation has stored (src/store/client_ids.rs), not by this index: its entry was one more
-- page written to the log for every message (docs/BENCHMARKS.md, "What a stored message's rows
-- cost"). The writer reads a conversation's ids by the events' primary key when it needs them.
DROP INDEX events_client_id;
