//! The login function: `GET /auth/start?invite=…` and `GET /auth/callback`.
//!
//! Only an operator's invitation opens a login, so nobody can bind their own
//! TikTok account to another creator's alias. The alias travels inside the
//! stored login state, never in the callback's query, and the state is bound
//! to the browser that started the login ([`browser`]). Every outcome is a
//! clear page with the right status; a login that does not connect leaves
//! whatever was connected before as it was (see [`shared::login`]).

pub mod browser;
mod callback;
pub mod config;
pub mod pages;
mod start;

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt as _, Response};
use shared::accounts::Accounts;
use shared::app_secret::tiktok_client;
use shared::aws::AwsClients;
use shared::clock::Clock;
use shared::invite::SigningKey;
use shared::login::LoginTimeouts;
use shared::login_state::LoginStates;
use shared::tiktok::TikTokClient;
use shared::tokens::{SecretsManagerTokenStore, TokenManager};

pub use config::LoginConfig;

/// The function's timeout in the template: the most API Gateway waits for
/// an integration (29 s in the template; the HTTP API's hard limit is 30 s).
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(29);

/// Kept free before Lambda's deadline, so that a login running late still
/// answers with a page (and Lambda does not cut it off with a 503).
const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// Why the function could not start; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration: {0}")]
    Config(#[from] shared::tiktok::config::ConfigError),
    #[error(transparent)]
    Client(#[from] shared::app_secret::ClientSetupError),
    #[error("invitation key: {0}")]
    InviteKey(String),
}

/// Everything a login needs, built once per cold start.
pub struct LoginService {
    config: LoginConfig,
    tiktok: TikTokClient,
    states: LoginStates,
    accounts: Accounts,
    tokens: TokenManager<SecretsManagerTokenStore>,
    invite_key: SigningKey,
    clock: Clock,
    timeouts: LoginTimeouts,
}

impl LoginService {
    /// Reads the configuration and the two secrets (app credentials and the
    /// invitation key) once.
    pub async fn from_env(aws: &AwsClients) -> Result<Self, StartupError> {
        let config = LoginConfig::from_env()?;
        Self::new(config, aws, Clock::system()).await
    }

    pub async fn new(
        config: LoginConfig,
        aws: &AwsClients,
        clock: Clock,
    ) -> Result<Self, StartupError> {
        let tiktok = tiktok_client(
            &aws.secrets,
            &config.app_secret_id,
            config.endpoints.clone(),
        )
        .await?;
        let invite_key = SigningKey::load(&aws.secrets, &config.invite_key_secret_id)
            .await
            .map_err(|e| StartupError::InviteKey(e.to_string()))?;
        let timeouts = LoginTimeouts::default();
        let tokens = TokenManager::for_deployment(
            aws,
            tiktok.clone(),
            &config.secrets_prefix,
            &config.table,
        )
        .with_settings(timeouts.refresh_settings())
        .with_clock(clock.clone());
        Ok(Self {
            tiktok,
            states: LoginStates::new(aws.dynamodb.clone(), &config.table),
            accounts: Accounts::new(aws.dynamodb.clone(), &config.table),
            tokens,
            invite_key,
            clock,
            config,
            timeouts,
        })
    }

    /// Routes one HTTP request. Never fails: every outcome is a page, within
    /// the invocation's time.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        if request.method() != Method::GET {
            return pages::page(
                StatusCode::METHOD_NOT_ALLOWED,
                "Not allowed",
                &["This address only answers GET requests."],
            );
        }
        let budget = budget(&request);
        let query = query_params(&request);
        let path = request.uri().path().trim_end_matches('/');
        let answer = if path.ends_with("/auth/start") {
            tokio::time::timeout(budget, self.start(&query)).await
        } else if path.ends_with("/auth/callback") {
            tokio::time::timeout(budget, self.callback(request.headers(), &query)).await
        } else {
            return pages::page(
                StatusCode::NOT_FOUND,
                "Not found",
                &["There is nothing here. Use the invitation link you were sent."],
            );
        };
        answer.unwrap_or_else(|_| {
            // Something past TikTok's own deadlines hung (the table, Secrets
            // Manager). What a login cut off here leaves is safe by its order
            // of steps: connected, or not at all.
            tracing::error!(budget_ms = budget.as_millis() as u64, path, "login ran out of time");
            pages::page(
                StatusCode::GATEWAY_TIMEOUT,
                "Try again shortly",
                &[
                    "The login took too long and was stopped. Open your invitation link again: it says so if your account is connected already.",
                ],
            )
        })
    }
}

/// The time this invocation may still use: until Lambda's deadline less a
/// margin, or the template's timeout less that margin when no deadline is
/// known (a test, another front end).
fn budget(request: &Request) -> Duration {
    let default = FUNCTION_TIMEOUT - DEADLINE_MARGIN;
    request
        .lambda_context_ref()
        .and_then(|context| context.deadline().duration_since(SystemTime::now()).ok())
        .map(|left| left.saturating_sub(DEADLINE_MARGIN).min(default))
        .unwrap_or(default)
}

/// Query parameters from API Gateway's parsed map, or from the URI when the
/// request was built another way (a Function URL, a test).
fn query_params(request: &Request) -> HashMap<String, String> {
    let parsed = request.query_string_parameters();
    if !parsed.is_empty() {
        return parsed
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    }
    request
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logins_own_deadlines_fit_inside_the_function() {
        let timeouts = LoginTimeouts::default();
        // TikTok's calls and the lease wait, with room left for the table
        // and Secrets Manager, inside what the handler allows itself.
        assert!(
            timeouts.total() + Duration::from_secs(4) <= FUNCTION_TIMEOUT - DEADLINE_MARGIN,
            "{timeouts:?}"
        );
    }
}
