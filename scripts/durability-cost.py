# The storage cost of an acknowledged message: one commit of the append's two statements
# (UPDATE conversations ... RETURNING, INSERT events) in SQLite WAL mode, synchronous FULL vs NORMAL,
# on this machine's disk (/work). Median and p99 per commit over 2,000 commits, 3 runs each.
import sqlite3, time, statistics, tempfile, os
def run(sync):
    d = tempfile.mkdtemp(dir=os.environ.get("TMPDIR", "."))
    db = sqlite3.connect(os.path.join(d, "t.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL"); db.execute(f"PRAGMA synchronous={sync}")
    db.execute("CREATE TABLE c (id TEXT PRIMARY KEY, last_seq INT)"); db.execute("INSERT INTO c VALUES ('x', 0)")
    db.execute("CREATE TABLE e (cid TEXT, seq INT, body TEXT, PRIMARY KEY (cid, seq))")
    ts = []
    for i in range(2000):
        t = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        seq = db.execute("UPDATE c SET last_seq = last_seq + 1 WHERE id = 'x' RETURNING last_seq").fetchone()[0]
        db.execute("INSERT INTO e VALUES ('x', ?, ?)", (seq, '{"type":"message","text":"hello there"}'))
        db.execute("COMMIT")
        ts.append((time.perf_counter() - t) * 1000)
    db.close()
    ts.sort()
    return statistics.median(ts), ts[int(len(ts) * 0.99)]
for sync in ["FULL", "NORMAL"] * 3:
    m, p = run(sync)
    print(f"synchronous={sync}: median {m:.3f} ms, p99 {p:.3f} ms per commit")
