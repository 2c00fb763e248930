//! `connect`: binds a TikTok account to an alias from this machine, without
//! the deployed login function.
//!
//! - Default: TikTok's desktop flow. A listener on 127.0.0.1 receives the
//!   redirect; the authorize URL carries a single-use random `state` and a
//!   PKCE challenge (S256), both kept in this process only.
//! - `--print-url --redirect-uri <uri>`, then `--code <code or the whole
//!   redirected URL> --state <state>`: for a machine TikTok cannot redirect
//!   to. The state and verifier are kept in the table between the two runs
//!   (single use, 10 minutes), as the login function keeps them.
//!
//! Either way the end is the login function's (`shared::login::complete`):
//! the code is exchanged with the verifier, the granted scopes and the alias
//! rules are checked, the tokens are stored under the account's refresh
//! lease and the account is bound (`Accounts::connect`, with a fresh
//! invitation id of its own). A login that cannot connect never revokes the
//! grant of an account connected here (TikTok's revoke would disconnect it):
//! it drops the new grant and the account stays as it was.

use shared::login::{Callback as LoginCallback, LoginError, LoginTimeouts};
use std::time::Duration;

use serde_json::json;
use shared::accounts::{AccountError, AliasPermits, Connection};
use shared::login_state::{DEFAULT_TTL, Holder, LoginStates, PendingLogin};
use shared::tiktok::oauth::{PkceVerifier, random_token, scopes_for};
use shared::tiktok::{OAuthErrorCode, TikTokClient};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::context::{
    CliResult, Ctx as _, Deployment, Fail, Output, parse_flag, pkce_encoding, when,
};

/// The loopback port when none is given; register
/// `http://127.0.0.1:8765/callback` (or a wildcard port) with the TikTok app.
pub const DEFAULT_PORT: u16 = 8765;

#[derive(clap::Args)]
pub struct ConnectArgs {
    /// The alias to bind the TikTok account to (the `<account>` in
    /// `uploads/<account>/...`). With --code, taken from the stored login.
    #[arg(long)]
    account: Option<String>,
    /// Let this login take the alias over from another TikTok account.
    #[arg(long)]
    rebind: bool,
    /// Let this login move the TikTok account from the alias it is connected
    /// under to --account (without it such a login is refused).
    #[arg(long = "move")]
    move_alias: bool,
    /// Loopback port for the redirect (0: any free port, for a wildcard
    /// registration). The redirect URI is http://127.0.0.1:<port>/callback.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    port: u16,
    /// How long to wait for the login.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print the authorize URL for --redirect-uri and keep the login pending
    /// (10 minutes) instead of listening; finish with --code and --state.
    #[arg(long, requires = "redirect_uri", conflicts_with = "code")]
    print_url: bool,
    /// The redirect URI registered with the TikTok app (with --print-url).
    #[arg(long)]
    redirect_uri: Option<String>,
    /// The authorization code TikTok redirected with, or the whole URL it
    /// redirected to (then the state is read from it).
    #[arg(long)]
    code: Option<String>,
    /// The state --print-url printed (or the one in the redirected URL).
    #[arg(long)]
    state: Option<String>,
    /// Ask for video.publish too (direct posting), as DIRECT_POST_ENABLED does
    /// for the login function.
    #[arg(long, env = "DIRECT_POST_ENABLED", default_value = "false")]
    direct_post_enabled: String,
}

pub async fn run(d: &Deployment, args: ConnectArgs, _json: bool) -> CliResult<Output> {
    let direct = parse_flag("DIRECT_POST_ENABLED", Some(&args.direct_post_enabled))?;
    if let Some(alias) = &args.account {
        shared::invite::validate_alias(alias).map_err(|e| Fail::new(e.to_string()))?;
    }
    let tiktok = d.tiktok().await?;
    if args.print_url {
        return print_url(d, &tiktok, &args, direct).await;
    }
    if let Some(code) = &args.code {
        return pasted(d, &tiktok, &args, code, direct).await;
    }
    let alias = args.account.clone().ok_or_else(|| {
        Fail::new("--account is required: the alias to bind the TikTok account to")
    })?;
    loopback(d, &tiktok, &args, &alias, direct).await
}

async fn print_url(
    d: &Deployment,
    tiktok: &TikTokClient,
    args: &ConnectArgs,
    direct: bool,
) -> CliResult<Output> {
    let alias = args
        .account
        .clone()
        .ok_or_else(|| Fail::new("--account is required with --print-url"))?;
    let redirect_uri = args.redirect_uri.clone().unwrap_or_default();
    let parsed = url::Url::parse(&redirect_uri)
        .map_err(|e| Fail::new(format!("--redirect-uri {redirect_uri:?} is not a URL: {e}")))?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Fail::new(
            "--redirect-uri must have no query or fragment (TikTok wants a static URI)",
        ));
    }
    let login = PendingLogin::new(
        &alias,
        &invite_id(),
        args.permits(),
        &redirect_uri,
        chrono::Utc::now(),
        DEFAULT_TTL,
    );
    LoginStates::new(d.aws.dynamodb.clone(), d.settings.table()?)
        .create(&login)
        .await
        .ctx("cannot store the pending login")?;
    let url = tiktok.authorize_url(
        &scopes_for(direct),
        &redirect_uri,
        &login.state,
        Some((&login.verifier, pkce_encoding()?)),
    );
    Ok(Output::new(
        format!(
            "Open this URL and log in to TikTok as the creator of \u{201c}{alias}\u{201d}:\n{url}\n\nThen run, within 10 minutes (until {}):\n  tiktok-drafts connect --state {} --code '<the whole URL TikTok redirected to, or its code>'",
            when(Some(login.expires_at)),
            login.state
        ),
        json!({
            "account": alias,
            "authorize_url": url.as_str(),
            "state": login.state,
            "redirect_uri": redirect_uri,
            "expires_at": login.expires_at.to_rfc3339(),
        }),
    ))
}

/// What TikTok's redirect said.
#[derive(Debug, Default)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    scopes: Option<String>,
}

impl Callback {
    fn from_query(query: &str) -> Self {
        let mut cb = Self::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let v = Some(v.into_owned()).filter(|v| !v.is_empty());
            match k.as_ref() {
                "code" => cb.code = v,
                "state" => cb.state = v,
                "error" => cb.error = v,
                "error_description" => cb.error_description = v,
                "scopes" => cb.scopes = v,
                _ => {}
            }
        }
        cb
    }

    /// TikTok's refusal, if it refused.
    fn refusal(&self) -> Option<Fail> {
        self.error.as_ref().map(|error| {
            let code = OAuthErrorCode::parse(error);
            Fail::new(format!(
                "TikTok did not connect the account: {} ({error}{}); nothing was stored",
                code.human_message(),
                self.error_description
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ))
        })
    }
}

async fn pasted(
    d: &Deployment,
    tiktok: &TikTokClient,
    args: &ConnectArgs,
    code: &str,
    direct: bool,
) -> CliResult<Output> {
    let code = code.trim();
    let callback = if code.starts_with("http://") || code.starts_with("https://") {
        let url = url::Url::parse(code).map_err(|e| Fail::new(format!("--code: {e}")))?;
        Callback::from_query(url.query().unwrap_or_default())
    } else {
        Callback {
            code: Some(code.to_owned()),
            ..Callback::default()
        }
    };
    let state = match (&args.state, &callback.state) {
        (Some(given), Some(in_url)) if given != in_url => {
            return Err(Fail::new(
                "--state differs from the state in the redirected URL; nothing was stored",
            ));
        }
        (Some(s), _) | (None, Some(s)) => s.clone(),
        (None, None) => {
            return Err(Fail::new(
                "--state is required with --code (the one `connect --print-url` printed)",
            ));
        }
    };
    // Single use: consumed whatever comes next.
    let login = LoginStates::new(d.aws.dynamodb.clone(), d.settings.table()?)
        .consume(&state, Holder::Command, chrono::Utc::now())
        .await
        .map_err(|e| Fail::new(format!("{e}; start again with `connect --print-url`")))?;
    if let Some(alias) = &args.account
        && alias != &login.alias
    {
        return Err(Fail::new(format!(
            "this login was started for \u{201c}{}\u{201d}, not \u{201c}{alias}\u{201d}; nothing was stored",
            login.alias
        )));
    }
    if let Some(fail) = callback.refusal() {
        return Err(fail);
    }
    let code = callback
        .code
        .as_deref()
        .ok_or_else(|| Fail::new("the redirected URL carries no code; nothing was stored"))?;
    let connection = finish(
        d,
        tiktok,
        &login.alias,
        login.permits,
        &login.invite_id,
        code,
        &login.redirect_uri,
        &login.verifier,
        callback.scopes.as_deref(),
        direct,
    )
    .await?;
    Ok(connected_output(&connection))
}

/// The desktop flow: listens on 127.0.0.1, prints the authorize URL, waits
/// for TikTok's redirect with this login's state, finishes the login and
/// tells the browser how it went.
async fn loopback(
    d: &Deployment,
    tiktok: &TikTokClient,
    args: &ConnectArgs,
    alias: &str,
    direct: bool,
) -> CliResult<Output> {
    let (listener, port) = listen(args.port).await?;
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let state = random_token();
    let verifier = PkceVerifier::generate();
    let url = tiktok.authorize_url(
        &scopes_for(direct),
        &redirect_uri,
        &state,
        Some((&verifier, pkce_encoding()?)),
    );
    eprintln!(
        "Open this URL in a browser and log in to TikTok as the creator of \u{201c}{alias}\u{201d}:\n{url}\nWaiting up to {} for TikTok's redirect to {redirect_uri} ...",
        humantime::format_duration(args.timeout)
    );
    let (mut stream, callback) = wait_for_callback(&listener, &state, args.timeout).await?;
    let result = match callback.refusal() {
        Some(fail) => Err(fail),
        None => match callback.code.as_deref() {
            None => Err(Fail::new(
                "TikTok's answer carries no code; nothing was stored",
            )),
            Some(code) => {
                finish(
                    d,
                    tiktok,
                    alias,
                    args.permits(),
                    &invite_id(),
                    code,
                    &redirect_uri,
                    &verifier,
                    callback.scopes.as_deref(),
                    direct,
                )
                .await
            }
        },
    };
    match &result {
        Ok(connection) => {
            let text = connected_page(connection, alias);
            respond(&mut stream, 200, "Connected", &text).await;
        }
        Err(fail) => respond(&mut stream, 400, "Not connected", &fail.message).await,
    }
    result.map(|connection| connected_output(&connection))
}

/// The loopback listener for the redirect, and the port it got (`port` 0
/// takes any free one).
async fn listen(port: u16) -> CliResult<(tokio::net::TcpListener, u16)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            Fail::new(format!(
                "cannot listen on 127.0.0.1:{port}: {e}; choose another --port (and register it with the TikTok app)"
            ))
        })?;
    let port = listener
        .local_addr()
        .ctx("cannot read the listening port")?
        .port();
    Ok((listener, port))
}

/// Waits up to `timeout` for TikTok's redirect to `/callback` with this
/// login's `state`, answering anything else and waiting on. Gives the
/// connection (still to be answered) and what the redirect said.
async fn wait_for_callback(
    listener: &tokio::net::TcpListener,
    state: &str,
    timeout: Duration,
) -> CliResult<(tokio::net::TcpStream, Callback)> {
    let waited = tokio::time::timeout(timeout, async {
        loop {
            let (mut stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(_) => continue,
            };
            let Some(target) = read_request_target(&mut stream).await else {
                continue;
            };
            let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
            if path != "/callback" {
                respond(&mut stream, 404, "Not found", "Nothing here.").await;
                continue;
            }
            let callback = Callback::from_query(query);
            if callback.state.as_deref() != Some(state) {
                // Not our login (a stale tab, or a forged request): keep waiting.
                respond(
                    &mut stream,
                    400,
                    "Login not recognised",
                    "This answer does not belong to the login the command is waiting for.",
                )
                .await;
                continue;
            }
            return (stream, callback);
        }
    })
    .await;
    waited.map_err(|_| {
        Fail::new(format!(
            "no login arrived within {}; nothing was stored",
            humantime::format_duration(timeout)
        ))
    })
}

/// What the browser is told once the account is connected (or moved) as
/// `alias`.
fn connected_page(connection: &Connection, alias: &str) -> String {
    let name = connection
        .account
        .display_name
        .clone()
        .unwrap_or_else(|| "Your TikTok account".into());
    match &connection.moved_from {
        Some(old) => format!(
            "{name} was moved from \u{201c}{old}\u{201d} to \u{201c}{alias}\u{201d}. You can close this page."
        ),
        None => {
            format!("{name} is now connected as \u{201c}{alias}\u{201d}. You can close this page.")
        }
    }
}

/// Reads an HTTP request head and returns its target (`/path?query`).
async fn read_request_target(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return None;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.lines().next()?.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Some(target.to_owned()),
        _ => None,
    }
}

async fn respond(stream: &mut tokio::net::TcpStream, status: u16, title: &str, body: &str) {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head><body><h1>{}</h1><p>{}</p></body></html>",
        escape(title),
        escape(title),
        escape(body)
    );
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n{html}",
        html.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A fresh id for the single-use invitation record `Accounts::connect`
/// consumes: the operator running this command is the invitation.
fn invite_id() -> String {
    format!("cli-{}", random_token())
}

impl ConnectArgs {
    fn permits(&self) -> AliasPermits {
        AliasPermits {
            rebind: self.rebind,
            move_alias: self.move_alias,
        }
    }
}

/// The login function's end: exchange, checks, tokens, then the account.
#[allow(clippy::too_many_arguments)]
async fn finish(
    d: &Deployment,
    tiktok: &TikTokClient,
    alias: &str,
    permits: AliasPermits,
    invite_id: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &PkceVerifier,
    granted_in_query: Option<&str>,
    direct: bool,
) -> CliResult<Connection> {
    let required = scopes_for(direct);
    let timeouts = LoginTimeouts::default();
    let completed = shared::login::complete(
        tiktok,
        &d.accounts()?,
        &d.tokens(tiktok.clone())?,
        &timeouts,
        LoginCallback {
            code,
            redirect_uri,
            verifier,
            granted_in_query,
            required: &required,
            alias,
            permits,
            invite_id,
            now: chrono::Utc::now(),
        },
    )
    .await;
    completed.map_err(|err| match err {
        LoginError::ScopesMissing { missing } => scopes_missing(&missing),
        LoginError::Exchange(e) => Fail::new(format!(
            "TikTok did not exchange the code: {e}; nothing was changed"
        )),
        LoginError::ExchangeTimedOut(t) => Fail::new(format!(
            "TikTok did not answer the code exchange within {} s; nothing was changed, connect again",
            t.as_secs()
        )),
        LoginError::Unusable(e) => Fail::new(format!(
            "TikTok's answer could not be used ({e}); nothing was changed"
        )),
        LoginError::Refused { reason, connected } => {
            let stays = connected
                .and_then(|a| a.alias.clone())
                .map(|held| format!("; the TikTok account stays connected as \u{201c}{held}\u{201d}"))
                .unwrap_or_default();
            match reason {
                AccountError::AliasTaken { .. } => Fail::new(format!(
                    "\u{201c}{alias}\u{201d} is already connected to another TikTok account; run again with --rebind to take it over (nothing was changed{stays})"
                )),
                AccountError::MoveNotAllowed { from, to } => Fail::new(format!(
                    "this TikTok account is connected as \u{201c}{from}\u{201d}; run again with --move to move it to \u{201c}{to}\u{201d} (nothing was changed{stays})"
                )),
                other => Fail::new(format!("{other} (nothing was changed{stays})")),
            }
        }
        LoginError::Account(other) => Fail::new(format!(
            "cannot record the account: {other}; nothing was changed, connect again"
        )),
        LoginError::TokensNotStored(e) => Fail::new(format!(
            "the tokens could not be stored ({e}); nothing was changed, connect again"
        )),
    })
}

fn scopes_missing(missing: &[&str]) -> Fail {
    Fail::new(format!(
        "the login switched off a permission this service needs ({}); nothing was stored: connect again and keep every permission on",
        missing.join(", ")
    ))
}

fn connected_output(connection: &Connection) -> Output {
    let account = &connection.account;
    let alias = account.alias.clone().unwrap_or_default();
    let moved = connection
        .moved_from
        .as_deref()
        .map(|old| format!(" (moved from \u{201c}{old}\u{201d})"))
        .unwrap_or_default();
    Output::new(
        format!(
            "Connected {} ({}) as \u{201c}{alias}\u{201d}{moved}; tokens stored, access token valid until {}.",
            account
                .display_name
                .as_deref()
                .unwrap_or("the TikTok account"),
            account.open_id,
            when(account.access_expires_at)
        ),
        json!({
            "moved_from": connection.moved_from,
            "account": alias,
            "open_id": account.open_id,
            "display_name": account.display_name,
            "state": account.state.as_str(),
            "scopes": account.scopes,
            "access_expires_at": account.access_expires_at.map(|t| t.to_rfc3339()),
            "refresh_expires_at": account.refresh_expires_at.map(|t| t.to_rfc3339()),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_are_read_from_the_query() {
        let cb =
            Callback::from_query("code=abc%2F1&state=s1&scopes=user.info.basic%2Cvideo.upload");
        assert_eq!(cb.code.as_deref(), Some("abc/1"));
        assert_eq!(cb.state.as_deref(), Some("s1"));
        assert_eq!(cb.scopes.as_deref(), Some("user.info.basic,video.upload"));
        assert!(cb.refusal().is_none());

        let denied =
            Callback::from_query("error=access_denied&error_description=no&state=s1&code=");
        assert_eq!(denied.code, None, "an empty code is no code");
        let fail = denied.refusal().unwrap();
        assert!(
            fail.message.contains("access_denied: no"),
            "{}",
            fail.message
        );
        assert!(fail.message.contains("nothing was stored"));
    }
}
