//! One account's jobs, newest first: the sparse index `gsi2` that the
//! creator's page reads.
//!
//! A job enters the index once it knows its account: `gsi2pk` =
//! `JOBS#<open_id>`, `gsi2sk` = `<created_at>#<job id>` (the job store writes
//! both with the `open_id`, see `index_keys`). Jobs without an account and
//! every other kind of item stay out of it. Queried backwards from now, a
//! page of one account's recent uploads is one Query of its own partition,
//! however many accounts and jobs the table holds; the checker's index
//! (`gsi1`) is never touched.
//!
//! A page ends with a [`Cursor`]: the sort key of its last job, which names
//! a place in that account's partition only, so a cursor edited by hand can
//! at worst skip within the same account's list.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use chrono::{DateTime, Utc};

use super::codec::{job_from_item, stamp};
use super::model::{Job, JobId};
use super::store::JobError;
use crate::aws::describe_sdk_error;
use crate::table::{GSI2, GSI2_PK, GSI2_SK, Item, PK, SK, opt_text, s};

const INDEX_PREFIX: &str = "JOBS#";

/// The most jobs one page may hold.
pub const MAX_PAGE: u32 = 50;

/// The index keys of a job of `open_id` created at `created_at`.
pub(crate) fn index_keys(
    open_id: &str,
    created_at: DateTime<Utc>,
    id: &JobId,
) -> [(String, AttributeValue); 2] {
    [
        (GSI2_PK.to_owned(), s(format!("{INDEX_PREFIX}{open_id}"))),
        (GSI2_SK.to_owned(), s(sort_key(created_at, id))),
    ]
}

fn sort_key(created_at: DateTime<Utc>, id: &JobId) -> String {
    format!("{}#{id}", stamp(created_at))
}

/// Where the next page starts: opaque text for a URL (base64url of the last
/// job's sort key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

/// A cursor that this code did not make.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this page link is damaged; start again from the first page")]
pub struct BadCursor;

impl Cursor {
    /// The text to put in a link.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Reads a cursor from a link: base64url of `<time>#<job id>`, both
    /// checked, so nothing but a place in the list reaches the query.
    pub fn parse(text: &str) -> Result<Self, BadCursor> {
        if text.is_empty() || text.len() > 200 {
            return Err(BadCursor);
        }
        let raw = b64().decode(text).map_err(|_| BadCursor)?;
        let key = String::from_utf8(raw).map_err(|_| BadCursor)?;
        Self::split(&key).ok_or(BadCursor)?;
        Ok(Self(text.to_owned()))
    }

    fn from_sort_key(key: &str) -> Self {
        Self(b64().encode(key))
    }

    fn sort_key(&self) -> String {
        // Checked by `parse` or made by `from_sort_key`.
        b64()
            .decode(&self.0)
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .unwrap_or_default()
    }

    /// The time and job id of a sort key, when it is one.
    fn split(key: &str) -> Option<(DateTime<Utc>, JobId)> {
        let (time, id) = key.rsplit_once('#')?;
        let time = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
        Some((time, JobId::parse(id).ok()?))
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// One page of an account's jobs.
#[derive(Debug, Clone, Default)]
pub struct AccountJobsPage {
    /// Newest first.
    pub jobs: Vec<Job>,
    /// Items of the index that could not be read (logged by key, skipped).
    pub unreadable: u32,
    /// Set when older jobs (still inside the window) follow.
    pub next: Option<Cursor>,
}

/// The jobs of `open_id` created at or after `since`, newest first, at most
/// `limit` (capped at [`MAX_PAGE`]) after `after`.
pub async fn recent_of_account(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    open_id: &str,
    since: DateTime<Utc>,
    limit: u32,
    after: Option<&Cursor>,
) -> Result<AccountJobsPage, JobError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let store_error = |detail: String| JobError::Store {
        table: table.to_owned(),
        detail,
    };
    let pk = format!("{INDEX_PREFIX}{open_id}");
    let start = match after.map(|c| (c.sort_key(), Cursor::split(&c.sort_key()))) {
        Some((key, Some((_, id)))) => Some(Item::from([
            (GSI2_PK.to_owned(), s(&pk)),
            (GSI2_SK.to_owned(), s(key)),
            (PK.to_owned(), s(format!("JOB#{id}"))),
            (SK.to_owned(), s("JOB")),
        ])),
        Some((_, None)) => return Ok(AccountJobsPage::default()),
        None => None,
    };
    // One more than asked: whether a next page exists is then known without
    // a link that leads to an empty page.
    let answer = client
        .query()
        .table_name(table)
        .index_name(GSI2)
        .key_condition_expression("#pk = :pk AND #sk >= :since")
        .expression_attribute_names("#pk", GSI2_PK)
        .expression_attribute_names("#sk", GSI2_SK)
        .expression_attribute_values(":pk", s(&pk))
        .expression_attribute_values(":since", s(stamp(since)))
        .scan_index_forward(false)
        .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
        .set_exclusive_start_key(start)
        .send()
        .await
        .map_err(|e| store_error(describe_sdk_error(&e)))?;
    let mut items = answer.items.unwrap_or_default();
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = if more {
        items
            .last()
            .and_then(|item| opt_text(item, GSI2_SK))
            .map(|key| Cursor::from_sort_key(&key))
    } else {
        None
    };
    let mut page = AccountJobsPage {
        next,
        ..AccountJobsPage::default()
    };
    for item in items {
        let key = opt_text(&item, PK).unwrap_or_default();
        match job_from_item(&key, &item) {
            Ok(job) if job.open_id.as_deref() == Some(open_id) => page.jobs.push(job),
            Ok(job) => {
                // The index key and the job disagree: never show it.
                page.unreadable += 1;
                tracing::error!(table, key = %key, job_open_id = job.open_id.as_deref(), "job in another account's index partition; skipped");
            }
            Err(err) => {
                page.unreadable += 1;
                tracing::error!(table, key = %key, error = %err, "unreadable job in the account index; skipped");
            }
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> JobId {
        JobId::parse(&"ab".repeat(32)).unwrap()
    }

    #[test]
    fn cursors_round_trip_and_refuse_what_is_not_a_place() {
        let at = DateTime::parse_from_rfc3339("2026-11-22T01:02:03.456Z")
            .unwrap()
            .with_timezone(&Utc);
        let cursor = Cursor::from_sort_key(&sort_key(at, &id()));
        let back = Cursor::parse(cursor.as_str()).unwrap();
        assert_eq!(back, cursor);
        assert_eq!(Cursor::split(&back.sort_key()), Some((at, id())));
        for bad in [
            "",
            "not base64!",
            &b64().encode("2026-11-22T01:02:03.456Z#nothex"),
            &b64().encode(format!("yesterday#{}", id())),
            &b64().encode(id().as_str()),
            &"A".repeat(300),
        ] {
            assert_eq!(Cursor::parse(bad), Err(BadCursor), "{bad}");
        }
    }

    #[test]
    fn index_keys_name_the_account_and_sort_by_creation() {
        let early = DateTime::parse_from_rfc3339("2026-01-02T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let late = DateTime::parse_from_rfc3339("2026-10-02T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let [(pk_name, pk), (sk_name, a)] = index_keys("open-1", early, &id());
        let [_, (_, b)] = index_keys("open-1", late, &id());
        assert_eq!((pk_name.as_str(), sk_name.as_str()), (GSI2_PK, GSI2_SK));
        assert_eq!(pk, s("JOBS#open-1"));
        let (AttributeValue::S(a), AttributeValue::S(b)) = (a, b) else {
            panic!("string keys")
        };
        assert!(a < b, "text order is time order");
    }
}
