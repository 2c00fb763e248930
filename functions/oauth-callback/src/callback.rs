//! `GET /auth/callback?code&state[&scopes]` (or `?error&state`): take the
//! login state back for the browser that started it, then finish the login
//! through [`shared::login::complete`].

use std::collections::HashMap;

use lambda_http::http::header::SET_COOKIE;
use lambda_http::http::{HeaderMap, StatusCode};
use lambda_http::{Body, Response};
use shared::accounts::AccountError;
use shared::login::{Callback, LoginError};
use shared::login_state::{Holder, PendingLogin, StateError};
use shared::tiktok::oauth::scopes_for;
use shared::tiktok::{ErrorClass, OAuthErrorCode, TikTokError};

use crate::{LoginService, browser, pages};

impl LoginService {
    pub(crate) async fn callback(
        &self,
        headers: &HeaderMap,
        query: &HashMap<String, String>,
    ) -> Response<Body> {
        let now = self.clock.now();
        let Some(state) = query.get("state").filter(|s| !s.is_empty()) else {
            return pages::page(
                StatusCode::BAD_REQUEST,
                "Login not recognised",
                &[
                    "The answer from TikTok carries no state. Start again from your invitation link.",
                ],
            );
        };
        // The browser's proof first: nothing is consumed or used for a
        // browser that did not start this login.
        let nonce = browser::nonce_for(headers, state);
        let holder = Holder::Browser {
            nonce: nonce.as_deref(),
        };
        let login = match self.states.consume(state, holder, now).await {
            Ok(login) => login,
            Err(StateError::NotThisBrowser) => return pages::other_browser(),
            Err(err @ (StateError::Unknown | StateError::Expired)) => {
                tracing::info!(reason = %err, "callback refused: state");
                return forget_cookie(
                    pages::page(
                        StatusCode::BAD_REQUEST,
                        "Login not recognised",
                        &[&err.to_string()],
                    ),
                    state,
                );
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot read the login state");
                return pages::unavailable();
            }
        };
        // Used up: whatever the answer, this browser's cookie for it goes.
        forget_cookie(self.finish(&login, query).await, state)
    }

    async fn finish(
        &self,
        login: &PendingLogin,
        query: &HashMap<String, String>,
    ) -> Response<Body> {
        let alias = login.alias.as_str();
        if let Some(error) = query.get("error").filter(|e| !e.is_empty()) {
            let code = OAuthErrorCode::parse(error);
            tracing::info!(alias, error = %code, "login ended by TikTok");
            let status = if code == OAuthErrorCode::AccessDenied {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::BAD_REQUEST
            };
            return pages::page(
                status,
                "Not connected",
                &[
                    code.human_message(),
                    "Nothing was changed. Open your invitation link again to retry.",
                ],
            );
        }
        let Some(code) = query.get("code").filter(|c| !c.is_empty()) else {
            return pages::page(
                StatusCode::BAD_REQUEST,
                "Not connected",
                &[
                    "TikTok's answer carries no authorization code. Open your invitation link again.",
                ],
            );
        };
        let required = scopes_for(self.config.direct_post_enabled);
        let completed = shared::login::complete(
            &self.tiktok,
            &self.accounts,
            &self.tokens,
            &self.timeouts,
            Callback {
                code,
                redirect_uri: &login.redirect_uri,
                verifier: &login.verifier,
                granted_in_query: query.get("scopes").map(String::as_str),
                required: &required,
                alias,
                permits: login.permits,
                invite_id: &login.invite_id,
                now: self.clock.now(),
            },
        )
        .await;
        match completed {
            Ok(connection) => pages::connected(&connection, alias),
            Err(err) => failure_page(alias, err),
        }
    }
}

fn failure_page(alias: &str, err: LoginError) -> Response<Body> {
    match err {
        LoginError::ScopesMissing { missing } => pages::scopes_missing(alias, &missing),
        LoginError::Exchange(err) => exchange_failed(alias, &err),
        LoginError::ExchangeTimedOut(_) => pages::page(
            StatusCode::GATEWAY_TIMEOUT,
            "Not connected",
            &[
                "TikTok did not answer in time.",
                "Nothing was changed. Open your invitation link again to retry.",
            ],
        ),
        LoginError::Unusable(err) => {
            tracing::warn!(alias, error = %err, "token answer unusable");
            pages::page(
                StatusCode::BAD_GATEWAY,
                "Not connected",
                &["TikTok's answer could not be used. Nothing was changed; try again."],
            )
        }
        LoginError::Refused { reason, connected } => {
            pages::refused(alias, &reason, connected.as_deref())
        }
        LoginError::Account(err @ AccountError::Conflict) => {
            tracing::warn!(alias, error = %err, "account changed while connecting");
            pages::unavailable()
        }
        LoginError::Account(err) => {
            tracing::error!(alias, error = %err, "cannot record the account");
            pages::unavailable()
        }
        LoginError::TokensNotStored(err) => {
            tracing::error!(alias, error = %err, "cannot store the tokens");
            pages::unavailable()
        }
    }
}

/// A code TikTok refuses (spent, expired, not for this app) is the
/// request's problem: 400. TikTok failing is a gateway's: 503 when passing,
/// 502 otherwise.
fn exchange_failed(alias: &str, err: &TikTokError) -> Response<Body> {
    tracing::warn!(alias, error = %err, "code exchange failed");
    let code = err.oauth_code();
    let status = match code {
        _ if err.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
        Some(code)
            if matches!(
                code,
                OAuthErrorCode::InvalidGrant
                    | OAuthErrorCode::InvalidRequest
                    | OAuthErrorCode::AccessDenied
                    | OAuthErrorCode::NonSandboxTarget
            ) || code.class() == ErrorClass::NeedsReauthorization =>
        {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::BAD_GATEWAY,
    };
    let reason = code
        .map(OAuthErrorCode::human_message)
        .unwrap_or("TikTok could not be reached or answered unexpectedly.");
    pages::page(
        status,
        "Not connected",
        &[
            reason,
            "Nothing was changed. Open your invitation link again to retry.",
        ],
    )
}

fn forget_cookie(mut response: Response<Body>, state: &str) -> Response<Body> {
    if let Some(cookie) = browser::clear_cookie(state) {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}
