//! The small HTML pages a creator sees at the end of a login.
//!
//! Every value that reaches a page is escaped; no page ever carries a token,
//! a code, a verifier or the client secret.

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Response};
use shared::accounts::{Account, AccountError, Connection};
use shared::html::escape;
use shared::tiktok::oauth::{SCOPE_USER_INFO_BASIC, SCOPE_VIDEO_PUBLISH, SCOPE_VIDEO_UPLOAD};

/// A page with a title and paragraphs of plain text (escaped here).
pub fn page(status: StatusCode, title: &str, paragraphs: &[&str]) -> Response<Body> {
    let body: String = paragraphs
        .iter()
        .map(|p| format!("<p>{}</p>\n", escape(p)))
        .collect();
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;line-height:1.5}}</style>\
         </head><body>\n<h1>{title}</h1>\n{body}</body></html>\n",
        title = escape(title),
    );
    response(status, html)
}

fn response(status: StatusCode, html: String) -> Response<Body> {
    let mut res = Response::new(Body::Text(html));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    keep_private(headers);
    res
}

/// A redirect to TikTok's authorize page.
pub fn redirect(location: &str) -> Response<Body> {
    let mut res = Response::new(Body::Empty);
    *res.status_mut() = StatusCode::FOUND;
    if let Ok(value) = header::HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, value);
    }
    keep_private(res.headers_mut());
    res
}

/// A login answer must not be cached, nor leak its URL (state, code,
/// invitation) onwards through the Referer header.
fn keep_private(headers: &mut header::HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
}

/// How a page names a TikTok account: `@username` when known, else its
/// display name in quotes.
fn account_label(account: &Account) -> Option<String> {
    account
        .username
        .as_deref()
        .map(|u| format!("@{u}"))
        .or_else(|| {
            account
                .display_name
                .as_deref()
                .map(|n| format!("\u{201c}{n}\u{201d}"))
        })
}

/// The login connected (or reconnected, or moved) the account.
pub fn connected(connection: &Connection, alias: &str) -> Response<Body> {
    let name = connection
        .account
        .display_name
        .clone()
        .unwrap_or_else(|| "Your TikTok account".to_owned());
    let headline = match &connection.moved_from {
        Some(old) => format!(
            "{name} was moved from \u{201c}{old}\u{201d} to \u{201c}{alias}\u{201d}: uploads under uploads/{old}/ no longer reach it."
        ),
        None => format!("{name} is now connected as \u{201c}{alias}\u{201d}."),
    };
    let title = if connection.moved_from.is_some() {
        "Moved"
    } else {
        "Connected"
    };
    page(
        StatusCode::OK,
        title,
        &[
            &headline,
            &format!(
                "Videos and slideshows dropped under uploads/{alias}/ will arrive in your TikTok inbox as drafts, where you finish and post them."
            ),
            "You can close this page.",
        ],
    )
}

/// An invitation that was used already. `connected` is the account it
/// connected, while that account is still connected under the link's
/// alias (or, at the callback, the logging-in account when it is connected
/// here).
pub fn invitation_used(connected: Option<&Account>) -> Response<Body> {
    let first = match connected {
        Some(account) => {
            let alias = account.alias.as_deref().unwrap_or_default();
            match account_label(account) {
                Some(label) => format!(
                    "This link was already used; the account {label} is connected as \u{201c}{alias}\u{201d}."
                ),
                None => format!(
                    "This link was already used; a TikTok account is connected as \u{201c}{alias}\u{201d}."
                ),
            }
        }
        None => "This link was already used.".to_owned(),
    };
    page(
        StatusCode::CONFLICT,
        "Invitation already used",
        &[
            &first,
            "Nothing was changed. If you need to connect again, ask the operator for a new link.",
        ],
    )
}

/// The login's invitation or alias does not allow it; nothing changed.
/// `connected` is the logging-in account when it is connected here.
pub fn refused(alias: &str, reason: &AccountError, connected: Option<&Account>) -> Response<Body> {
    let stays = connected
        .and_then(|a| a.alias.as_deref().map(|held| (a, held)))
        .map(|(a, held)| {
            format!(
                "{} stays connected as \u{201c}{held}\u{201d}.",
                account_label(a).unwrap_or_else(|| "Your TikTok account".to_owned())
            )
        });
    match reason {
        AccountError::InvitationUsed => {
            tracing::info!(alias, "login refused: invitation already used");
            invitation_used(connected)
        }
        AccountError::AliasTaken { .. } => {
            tracing::warn!(alias, "login refused: alias bound to another account");
            let mut paragraphs = vec![format!(
                "\u{201c}{alias}\u{201d} is already connected to another TikTok account. Nothing was changed."
            )];
            paragraphs.extend(stays);
            paragraphs
                .push("Ask the operator for an invitation that allows rebinding it.".to_owned());
            let refs: Vec<&str> = paragraphs.iter().map(String::as_str).collect();
            page(StatusCode::CONFLICT, "Name already taken", &refs)
        }
        AccountError::MoveNotAllowed { from, to } => {
            tracing::warn!(alias, from = %from, to = %to, "login refused: move without a permit");
            page(
                StatusCode::CONFLICT,
                "Not moved",
                &[
                    &format!(
                        "This TikTok account is connected as \u{201c}{from}\u{201d}. This invitation is for \u{201c}{to}\u{201d} and does not allow moving it there."
                    ),
                    &format!(
                        "Nothing was changed: it stays connected as \u{201c}{from}\u{201d}. To move it, ask the operator for an invitation made with --move."
                    ),
                ],
            )
        }
        other => {
            tracing::error!(alias, error = %other, "login refused for an unexpected reason");
            unavailable()
        }
    }
}

/// The creator switched off a permission the service needs.
pub fn scopes_missing(alias: &str, missing: &[&str]) -> Response<Body> {
    tracing::info!(alias, missing = ?missing, "login refused: scopes switched off");
    let names: Vec<String> = missing
        .iter()
        .map(|&scope| match scope {
            SCOPE_VIDEO_UPLOAD => format!("upload videos as drafts ({scope})"),
            SCOPE_VIDEO_PUBLISH => format!("post directly ({scope})"),
            SCOPE_USER_INFO_BASIC => format!("read your basic profile ({scope})"),
            other => other.to_owned(),
        })
        .collect();
    page(
        StatusCode::FORBIDDEN,
        "Permission needed",
        &[
            &format!(
                "The login switched off a permission this service needs: {}.",
                names.join(", ")
            ),
            "Nothing was changed. Open your invitation link again and keep every permission switched on.",
        ],
    )
}

/// A callback opened in another browser than the one that started the
/// login (or with its cookie blocked).
pub fn other_browser() -> Response<Body> {
    page(
        StatusCode::FORBIDDEN,
        "Open it where you started",
        &[
            "This login was started in another browser (or this browser did not keep its cookie), so it cannot be finished here. Nothing was changed.",
            "Open your invitation link in the browser where you want to log in, and finish the login there.",
        ],
    )
}

/// Our side failed; nothing was changed.
pub fn unavailable() -> Response<Body> {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again shortly",
        &[
            "The service could not complete the login just now. Nothing was changed; open your invitation link again in a minute.",
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        let res = page(StatusCode::BAD_REQUEST, "A <b>", &["<i>hi</i>"]);
        let Body::Text(html) = res.body() else {
            panic!("text body")
        };
        assert!(html.contains("<h1>A &lt;b&gt;</h1>"));
        assert!(html.contains("<p>&lt;i&gt;hi&lt;/i&gt;</p>"));
        assert_eq!(res.headers()["cache-control"], "no-store");
    }
}
