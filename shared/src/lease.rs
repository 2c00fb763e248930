//! Short leases on the shared DynamoDB table: at most one holder per name,
//! taken over by anyone once it expires (a holder that died frees it by
//! itself). Token refreshes take one per account (`tokens#<open_id>`), an
//! upload one per job (`job#<job id>`).
//!
//! Item: `pk = LEASE#<name>`, `sk = LEASE`, `holder` (random per attempt),
//! `expires_at` (epoch seconds, also the table's TTL attribute; TTL deletion
//! is lazy, so the condition checks it itself).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::table::{Checked, Cond, Item, Key, PK, SK, TTL, Table, TableError, n, s};

/// The sort key of every lease item.
pub const LEASE_SK: &str = "LEASE";

/// The lease table could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("lease table error: {0}")]
pub struct LeaseError(pub String);

impl From<TableError> for LeaseError {
    fn from(err: TableError) -> Self {
        Self(err.to_string())
    }
}

/// Leases in one table.
#[derive(Debug, Clone)]
pub struct LeaseTable {
    table: Table,
}

impl LeaseTable {
    /// The leases in table `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }

    fn key(name: &str) -> Key {
        Key::new(Self::lease_pk(name), LEASE_SK)
    }

    /// The partition key of the lease called `name`.
    pub fn lease_pk(name: &str) -> String {
        format!("LEASE#{name}")
    }

    /// A random holder id for one attempt.
    pub fn new_holder() -> String {
        let b: [u8; 16] = rand::random();
        hex::encode(b)
    }

    /// Takes the lease when nobody holds it or the holder's time is up.
    /// `Ok(false)` when someone else holds it.
    pub async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, LeaseError> {
        // TTL deletion is lazy: an expired lease may still be there.
        let free = Cond::no_item().or(Cond::lt(TTL, n(now.timestamp())));
        self.put(name, holder, ttl, now, free).await
    }

    /// Extends a lease this holder still has. `Ok(false)` when it lost it.
    pub async fn renew(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, LeaseError> {
        self.put(name, holder, ttl, now, Cond::eq("holder", s(holder)))
            .await
    }

    /// Gives the lease back, if this holder still has it. `Ok(false)` when
    /// it had passed to someone else (or expired and vanished).
    pub async fn release(&self, name: &str, holder: &str) -> Result<bool, LeaseError> {
        let held = Cond::eq("holder", s(holder));
        Ok(matches!(
            self.table.delete(&Self::key(name), Some(&held)).await?,
            Checked::Done(_)
        ))
    }

    /// When the lease called `name` ends, if someone holds it at `now`
    /// (strongly consistent; an expired lease TTL has not deleted yet
    /// counts as free). For a caller that found it taken and wants to come
    /// back when it is free.
    pub async fn expires_at(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, LeaseError> {
        let item = self.table.get(&Self::key(name)).await?;
        let expires = item
            .as_ref()
            .and_then(|item| crate::table::opt_i64(item, TTL))
            .and_then(|secs| DateTime::from_timestamp(secs, 0));
        // `try_acquire` takes a lease only once `expires_at < now`.
        Ok(expires.filter(|at| at.timestamp() >= now.timestamp()))
    }

    /// Puts the lease item for `holder`, ending `ttl` after `now`, if `when`
    /// holds.
    async fn put(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
        when: Cond,
    ) -> Result<bool, LeaseError> {
        // Round up, so a lease never ends before its TTL.
        let ttl_secs = i64::try_from(ttl.as_millis().div_ceil(1000)).unwrap_or(i64::MAX);
        let expires_at = now.timestamp().saturating_add(ttl_secs.max(1));
        let item = Item::from([
            (PK.to_owned(), s(Self::lease_pk(name))),
            (SK.to_owned(), s(LEASE_SK)),
            ("holder".to_owned(), s(holder)),
            (TTL.to_owned(), n(expires_at)),
            ("acquired_at".to_owned(), s(now.to_rfc3339())),
        ]);
        Ok(matches!(
            self.table.put(item, Some(&when)).await?,
            Checked::Done(())
        ))
    }
}

/// A lease this process holds, given back by [`HeldLease::release`]. If the
/// work ends any other way (a panic unwinding, a dropped future) it is given
/// back when dropped, and a process that dies holds it only until its TTL.
#[derive(Debug)]
pub struct HeldLease {
    leases: LeaseTable,
    name: String,
    holder: Option<String>,
}

impl LeaseTable {
    /// Takes the lease `name` for `ttl` with a new holder id, if nobody
    /// holds it (`Ok(None)` when someone does).
    pub async fn hold(
        &self,
        name: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<HeldLease>, LeaseError> {
        let holder = Self::new_holder();
        if !self.try_acquire(name, &holder, ttl, now).await? {
            return Ok(None);
        }
        Ok(Some(HeldLease {
            leases: self.clone(),
            name: name.to_owned(),
            holder: Some(holder),
        }))
    }
}

impl HeldLease {
    /// Gives the lease back now.
    pub async fn release(mut self) {
        if let Some(holder) = self.holder.take() {
            release_quietly(&self.leases, &self.name, &holder).await;
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        let Some(holder) = self.holder.take() else {
            return;
        };
        let leases = self.leases.clone();
        let name = std::mem::take(&mut self.name);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { release_quietly(&leases, &name, &holder).await });
        }
    }
}

/// Gives a lease back; one that cannot be given back expires by itself.
async fn release_quietly(leases: &LeaseTable, name: &str, holder: &str) {
    if let Err(err) = leases.release(name, holder).await {
        tracing::warn!(lease = name, error = %err, "could not release the lease; it expires by itself");
    }
}
