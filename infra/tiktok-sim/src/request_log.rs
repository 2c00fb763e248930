//! The request log tests read to check what a client actually sent. It never holds a
//! credential: bearer tokens appear only as a short hash, upload tokens are cut from
//! queries, and only JSON API bodies (never uploads or OAuth forms) are kept.

use std::collections::VecDeque;

use serde::Serialize;

/// How many requests are kept by default; older ones are dropped.
pub const CAPACITY: usize = 10_000;

/// The most a test may ask the log to keep.
pub const MAX_CAPACITY: usize = 1_000_000;

#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    pub seq: u64,
    pub time: String,
    pub time_ms: i64,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
    pub error_code: Option<String>,
    pub content_type: Option<String>,
    pub content_length: Option<u64>,
    pub content_range: Option<String>,
    /// First 16 hex characters of SHA-256 of the bearer token.
    pub token_sha256: Option<String>,
    pub body: Option<serde_json::Value>,
    /// For OAuth form posts: the field names sent (values left out, they hold secrets),
    /// plus the harmless `grant_type`.
    pub form_fields: Option<Vec<String>>,
    pub grant_type: Option<String>,
    /// Set when a scripted fault handled the request.
    pub fault: Option<String>,
}

#[derive(Debug, Default)]
pub struct RequestLog {
    entries: VecDeque<LoggedRequest>,
    next_seq: u64,
    /// `None`: [`CAPACITY`].
    capacity: Option<usize>,
}

impl RequestLog {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: Some(capacity),
            ..Self::default()
        }
    }

    /// Keeps at most `capacity` entries from now on (dropping the oldest).
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = Some(capacity);
        while self.entries.len() > capacity {
            self.entries.pop_front();
        }
    }

    pub fn push(&mut self, mut entry: LoggedRequest) {
        self.next_seq += 1;
        entry.seq = self.next_seq;
        let capacity = self.capacity.unwrap_or(CAPACITY).max(1);
        while self.entries.len() >= capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    /// Oldest first; `limit` keeps the newest `limit` matches.
    pub fn query(&self, path_prefix: Option<&str>, limit: Option<usize>) -> Vec<LoggedRequest> {
        let matching: Vec<&LoggedRequest> = self
            .entries
            .iter()
            .filter(|e| path_prefix.is_none_or(|p| e.path.starts_with(p)))
            .collect();
        let skip = limit.map_or(0, |l| matching.len().saturating_sub(l));
        matching.into_iter().skip(skip).cloned().collect()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Drops `upload_token` from a query string.
pub fn redact_query(query: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            url::form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != "upload_token"),
        )
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> LoggedRequest {
        LoggedRequest {
            seq: 0,
            time: String::new(),
            time_ms: 0,
            method: "POST".into(),
            path: "/v2/post/publish/status/fetch/".into(),
            query: None,
            status: 200,
            error_code: None,
            content_type: None,
            content_length: None,
            content_range: None,
            token_sha256: None,
            body: None,
            form_fields: None,
            grant_type: None,
            fault: None,
        }
    }

    #[test]
    fn the_capacity_keeps_the_newest() {
        let mut log = RequestLog::with_capacity(3);
        for _ in 0..5 {
            log.push(entry());
        }
        let seqs: Vec<u64> = log.query(None, None).iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![3, 4, 5]);
        log.set_capacity(1);
        assert_eq!(log.query(None, None).len(), 1);
    }

    #[test]
    fn upload_token_is_removed() {
        assert_eq!(
            redact_query("upload_id=abc&upload_token=secret"),
            "upload_id=abc"
        );
    }
}
