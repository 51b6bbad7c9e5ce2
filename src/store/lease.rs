//! Leases: work that exactly one node of a cluster may do at a time (the desk's timers) belongs
//! to the node holding its lease. The store decides, as it decides claims: of any number of nodes
//! asking at once, one is told yes. A holder renews its lease well before it expires; a node that
//! dies stops renewing, and once the lease has expired the next node to ask takes it over.
//! Expiry times are the nodes' own clocks (Unix ms): keep them in step (NTP) to well within a
//! lease's length.

use sqlx::Row;

use super::{Store, StoreError};

impl Store {
    /// Takes or renews the lease `name` for `holder` until `now + ttl_ms`: true when `holder`
    /// holds it now (it held it already, nobody did, or the last holder's time ran out).
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        on!(&self.pool, pool => {
            let done = sqlx::query(
                "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                 WHERE leases.holder = excluded.holder OR leases.expires_at <= $4",
            )
            .bind(name)
            .bind(holder)
            .bind(now + ttl_ms.max(1))
            .bind(now)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Who holds the lease `name` and until when (Unix ms), expired or not; `None` if nobody
    /// ever took it.
    pub async fn lease_holder(&self, name: &str) -> Result<Option<(String, i64)>, StoreError> {
        on!(&self.pool, pool => {
            let row = sqlx::query("SELECT holder, expires_at FROM leases WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|r| (r.get("holder"), r.get("expires_at"))))
        })
    }

    /// Gives the lease up at once (a node stopping), if `holder` holds it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        on!(&self.pool, pool => {
            sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[tokio::test]
    async fn one_node_holds_a_lease_until_it_expires_then_another_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let store = Store::connect(&url).await.unwrap();
        assert!(store.take_lease("timers", "a", 1_000, 500).await.unwrap());
        // Held: another node is refused, the holder renews.
        assert!(!store.take_lease("timers", "b", 1_200, 500).await.unwrap());
        assert!(store.take_lease("timers", "a", 1_400, 500).await.unwrap());
        assert!(!store.take_lease("timers", "b", 1_800, 500).await.unwrap());
        assert_eq!(
            store.lease_holder("timers").await.unwrap(),
            Some(("a".into(), 1_900))
        );
        // `a` stops renewing: once its time is up, `b` takes the lease and `a` is refused.
        assert!(store.take_lease("timers", "b", 1_900, 500).await.unwrap());
        assert!(!store.take_lease("timers", "a", 2_000, 500).await.unwrap());
        // Another lease is another matter; a released lease is free at once.
        assert!(store.take_lease("other", "a", 2_000, 500).await.unwrap());
        store.release_lease("timers", "b").await.unwrap();
        assert!(store.take_lease("timers", "a", 2_100, 500).await.unwrap());
    }
}
