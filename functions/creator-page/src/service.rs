//! `GET /creator/<token>[?after=<cursor>]`: check the link, read the
//! account and one page of its recent jobs, answer with HTML.
//!
//! Read-only by construction: the function's role may read the table (and
//! its account index) and the key, nothing else. A link that is forged,
//! damaged, expired, revoked (its version is not the account's) or names an
//! account that is gone gets one 403 page that says what to do; which of
//! those it was is logged, never shown (a guesser learns nothing). The token
//! itself is never logged.

use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt as _, Response};
use shared::accounts::Accounts;
use shared::creator_link::CreatorLink;
use shared::invite::SigningKey;
use shared::jobs::by_account::{Cursor, MAX_PAGE, recent_of_account};

use crate::assets::content_security_policy;
use crate::page::{ListView, list_page, message_page};

/// Where the page lives on the HTTP API (after any stage prefix).
pub const ROUTE_PREFIX: &str = "/creator/";
/// How far back the list goes.
pub const WINDOW_DAYS: i64 = 30;

pub struct PageService {
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
    accounts: Accounts,
    key: SigningKey,
    now: fn() -> DateTime<Utc>,
}

impl PageService {
    pub fn new(dynamodb: aws_sdk_dynamodb::Client, table: &str, key: SigningKey) -> Self {
        Self {
            accounts: Accounts::new(dynamodb.clone(), table),
            dynamodb,
            table: table.to_owned(),
            key,
            now: Utc::now,
        }
    }

    pub fn with_clock(mut self, now: fn() -> DateTime<Utc>) -> Self {
        self.now = now;
        self
    }

    /// Answers one request.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut res = respond(
                StatusCode::METHOD_NOT_ALLOWED,
                message_page("Not here", &["This page can only be read."]),
            );
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return res;
        }
        let path = request.uri().path().to_owned();
        let token = path
            .find(ROUTE_PREFIX)
            .map(|at| &path[at + ROUTE_PREFIX.len()..])
            .filter(|t| !t.is_empty() && !t.contains('/'));
        let Some(token) = token else {
            return respond(
                StatusCode::NOT_FOUND,
                message_page("Nothing here", &["This address does not lead to a page."]),
            );
        };
        let query = request.query_string_parameters();
        let (status, html) = self.page(token, query.first("after")).await;
        let mut res = respond(status, html);
        if request.method() == Method::HEAD {
            *res.body_mut() = Body::Empty;
        }
        res
    }

    /// The status and HTML for a token and an optional cursor.
    pub async fn page(&self, token: &str, after: Option<&str>) -> (StatusCode, String) {
        let now = (self.now)();
        let link = match CreatorLink::verify(token, &self.key, now) {
            Ok(link) => link,
            Err(err) => {
                tracing::warn!(reason = %err, "creator page link refused");
                return refused();
            }
        };
        let account = match self.accounts.get(link.open_id()).await {
            Ok(Some(account)) if account.link_version == link.link_version() => account,
            Ok(Some(account)) => {
                tracing::warn!(
                    open_id = link.open_id(),
                    link_version = link.link_version(),
                    current = account.link_version,
                    "creator page link revoked"
                );
                return refused();
            }
            Ok(None) => {
                tracing::warn!(
                    open_id = link.open_id(),
                    "creator page link for an account that is gone"
                );
                return refused();
            }
            Err(err) => return unavailable(&err.to_string()),
        };
        let cursor = match after
            .filter(|a| !a.is_empty())
            .map(Cursor::parse)
            .transpose()
        {
            Ok(cursor) => cursor,
            Err(err) => {
                return (
                    StatusCode::BAD_REQUEST,
                    message_page("This page link is damaged", &[&err.to_string()]),
                );
            }
        };
        let since = now - TimeDelta::days(WINDOW_DAYS);
        let page = match recent_of_account(
            &self.dynamodb,
            &self.table,
            &account.open_id,
            since,
            MAX_PAGE,
            cursor.as_ref(),
        )
        .await
        {
            Ok(page) => page,
            Err(err) => return unavailable(&err.to_string()),
        };
        tracing::info!(
            open_id = %account.open_id,
            jobs = page.jobs.len(),
            unreadable = page.unreadable,
            later_page = cursor.is_some(),
            "creator page served"
        );
        let html = list_page(&ListView {
            account: &account,
            jobs: &page.jobs,
            next: page.next.as_ref().map(Cursor::as_str),
            later_page: cursor.is_some(),
            window_days: WINDOW_DAYS,
            now,
        });
        (StatusCode::OK, html)
    }
}

fn refused() -> (StatusCode, String) {
    (
        StatusCode::FORBIDDEN,
        message_page(
            "This link no longer works",
            &[
                "It may have been replaced by a newer link, it may have been copied incompletely, or it was never valid.",
                "Ask whoever manages your uploads for a new link to this page.",
            ],
        ),
    )
}

fn unavailable(detail: &str) -> (StatusCode, String) {
    tracing::error!(error = detail, "creator page cannot read the table");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        message_page(
            "Your uploads cannot be shown right now",
            &["Please try again in a minute."],
        ),
    )
}

/// An HTML answer with the page's headers: never cached or indexed, no
/// referrer (the path holds the link's token), nothing but our own inline
/// code allowed to run, no framing.
pub fn respond(status: StatusCode, html: String) -> Response<Body> {
    let mut res = Response::new(Body::Text(html));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    let mut set = |name: header::HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(header::CONTENT_TYPE, "text/html; charset=utf-8");
    set(header::CACHE_CONTROL, "no-store");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(
        header::HeaderName::from_static("x-robots-tag"),
        "noindex, nofollow",
    );
    set(
        header::HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    );
    set(header::CONTENT_SECURITY_POLICY, content_security_policy());
    res
}
