//! The login function: `GET /auth/start?invite=…` and `GET /auth/callback`.
//!
//! Only an operator's invitation opens a login, so nobody can bind their own
//! TikTok account to another creator's alias. The alias travels inside the
//! stored login state, never in the callback's query. Every failure answers a
//! clear page with the right status and stores nothing.

pub mod config;
pub mod pages;

use std::collections::HashMap;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt as _, Response};
use shared::accounts::{AccountError, Accounts};
use shared::app_secret::tiktok_client;
use shared::aws::AwsClients;
use shared::clock::Clock;
use shared::invite::{Invitation, SigningKey};
use shared::login::{Callback, LoginError};
use shared::login_state::{DEFAULT_TTL, LoginStates, PendingLogin, StateError};
use shared::tiktok::oauth::scopes_for;
use shared::tiktok::{OAuthErrorCode, TikTokClient};
use shared::tokens::{SecretsManagerTokenStore, TokenManager};

pub use config::LoginConfig;

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
        let tokens = TokenManager::for_deployment(
            aws,
            tiktok.clone(),
            &config.secrets_prefix,
            &config.table,
        )
        .with_clock(clock.clone());
        Ok(Self {
            tiktok,
            states: LoginStates::new(aws.dynamodb.clone(), &config.table),
            accounts: Accounts::new(aws.dynamodb.clone(), &config.table),
            tokens,
            invite_key,
            clock,
            config,
        })
    }

    /// Routes one HTTP request. Never fails: every outcome is a page.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        if request.method() != Method::GET {
            return pages::page(
                StatusCode::METHOD_NOT_ALLOWED,
                "Not allowed",
                &["This address only answers GET requests."],
            );
        }
        let query = query_params(&request);
        match request.uri().path().trim_end_matches('/') {
            path if path.ends_with("/auth/start") => self.start(&query).await,
            path if path.ends_with("/auth/callback") => self.callback(&query).await,
            _ => pages::page(
                StatusCode::NOT_FOUND,
                "Not found",
                &["There is nothing here. Use the invitation link you were sent."],
            ),
        }
    }

    async fn start(&self, query: &HashMap<String, String>) -> Response<Body> {
        let Some(token) = query.get("invite").filter(|t| !t.is_empty()) else {
            return pages::page(
                StatusCode::FORBIDDEN,
                "Invitation needed",
                &[
                    "Connecting a TikTok account needs an invitation link from the operator of this service.",
                ],
            );
        };
        let now = self.clock.now();
        let invitation = match Invitation::verify(token, &self.invite_key, now) {
            Ok(inv) => inv,
            Err(err) => {
                tracing::info!(reason = %err, "login refused: bad invitation");
                return pages::page(
                    StatusCode::FORBIDDEN,
                    "Invitation not accepted",
                    &[&err.to_string()],
                );
            }
        };
        let login = PendingLogin::new(
            invitation.alias(),
            invitation.id(),
            invitation.rebind(),
            &self.config.redirect_uri,
            now,
            DEFAULT_TTL,
        );
        if let Err(err) = self.states.create(&login).await {
            tracing::error!(error = %err, "cannot store the login state");
            return unavailable();
        }
        let scopes = scopes_for(self.config.direct_post_enabled);
        let url = self.tiktok.authorize_url(
            &scopes,
            &self.config.redirect_uri,
            &login.state,
            Some((&login.verifier, self.config.pkce_encoding)),
        );
        tracing::info!(alias = invitation.alias(), "login started");
        pages::redirect(url.as_str())
    }

    async fn callback(&self, query: &HashMap<String, String>) -> Response<Body> {
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
        // Consumed first, whatever TikTok said: a state is good for one answer.
        let login = match self.states.consume(state, now).await {
            Ok(login) => login,
            Err(err @ (StateError::Unknown | StateError::Expired)) => {
                tracing::info!(reason = %err, "callback refused: state");
                return pages::page(
                    StatusCode::BAD_REQUEST,
                    "Login not recognised",
                    &[&err.to_string()],
                );
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot read the login state");
                return unavailable();
            }
        };
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
                    "Nothing was stored. Open your invitation link again to retry.",
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
            Callback {
                code,
                redirect_uri: &login.redirect_uri,
                verifier: &login.verifier,
                granted_in_query: query.get("scopes").map(String::as_str),
                required: &required,
                alias,
                rebind: login.rebind,
                invite_id: &login.invite_id,
                now,
            },
        )
        .await;
        let account = match completed {
            Ok(account) => account,
            Err(LoginError::ScopesMissing { missing }) => return scope_page(alias, &missing),
            Err(LoginError::Exchange(err)) => {
                tracing::warn!(alias, error = %err, "code exchange failed");
                let status = if err.is_retryable() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::BAD_GATEWAY
                };
                let reason = err
                    .oauth_code()
                    .map(|c| c.human_message())
                    .unwrap_or("TikTok could not be reached or answered unexpectedly.");
                return pages::page(
                    status,
                    "Not connected",
                    &[
                        reason,
                        "Nothing was stored. Open your invitation link again to retry.",
                    ],
                );
            }
            Err(LoginError::Unusable(err)) => {
                tracing::warn!(alias, error = %err, "token answer unusable");
                return pages::page(
                    StatusCode::BAD_GATEWAY,
                    "Not connected",
                    &["TikTok's answer could not be used. Nothing was stored; try again."],
                );
            }
            Err(LoginError::Account(err)) => return account_error_page(alias, &err),
            Err(LoginError::TokensNotStored(_)) => return unavailable(),
        };
        let name = account
            .display_name
            .clone()
            .unwrap_or_else(|| "Your TikTok account".to_owned());
        pages::page(
            StatusCode::OK,
            "Connected",
            &[
                &format!("{name} is now connected as \u{201c}{alias}\u{201d}."),
                &format!(
                    "Videos and slideshows dropped under uploads/{alias}/ will arrive in your TikTok inbox as drafts, where you finish and post them."
                ),
                "You can close this page.",
            ],
        )
    }
}

fn scope_page(alias: &str, missing: &[&str]) -> Response<Body> {
    tracing::info!(alias, missing = ?missing, "login refused: scopes switched off");
    let names: Vec<String> = missing
        .iter()
        .map(|s| match *s {
            "video.upload" => "upload videos as drafts (video.upload)".to_owned(),
            "video.publish" => "post directly (video.publish)".to_owned(),
            "user.info.basic" => "read your basic profile (user.info.basic)".to_owned(),
            other => other.to_owned(),
        })
        .collect();
    pages::page(
        StatusCode::FORBIDDEN,
        "Permission needed",
        &[
            &format!(
                "The login switched off a permission this service needs: {}.",
                names.join(", ")
            ),
            "Nothing was stored. Open your invitation link again and keep every permission switched on.",
        ],
    )
}

fn account_error_page(alias: &str, err: &AccountError) -> Response<Body> {
    match err {
        AccountError::InvitationUsed => {
            tracing::info!(alias, "login refused: invitation already used");
            pages::page(
                StatusCode::CONFLICT,
                "Invitation already used",
                &["This invitation link was used already. Ask the operator for a new one."],
            )
        }
        AccountError::AliasTaken { .. } => {
            tracing::warn!(alias, "login refused: alias bound to another account");
            pages::page(
                StatusCode::CONFLICT,
                "Name already taken",
                &[
                    &format!(
                        "\u{201c}{alias}\u{201d} is already connected to another TikTok account."
                    ),
                    "Nothing was stored. Ask the operator for an invitation that allows rebinding it.",
                ],
            )
        }
        other => {
            tracing::error!(alias, error = %other, "cannot record the account");
            unavailable()
        }
    }
}

fn unavailable() -> Response<Body> {
    pages::page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again shortly",
        &[
            "The service could not complete the login just now. Nothing was stored; open your invitation link again in a minute.",
        ],
    )
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
