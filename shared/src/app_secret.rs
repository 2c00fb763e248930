//! The TikTok app's credentials, kept in Secrets Manager.
//!
//! In production the client key and secret are never plain environment
//! values: a function is told the secret's id and reads it once per cold
//! start. The secret's string is JSON: `{"client_key": "...", "client_secret": "..."}`.

use serde::Deserialize;

use crate::aws::describe_sdk_error;
use crate::secret::Secret;
use crate::tiktok::{AppCredentials, Endpoints, TikTokClient};

/// The environment variable naming the app-credentials secret.
pub const APP_SECRET_ID_VAR: &str = "TIKTOK_APP_SECRET_ID";

/// Why the app's credentials could not be read from Secrets Manager.
#[derive(Debug, thiserror::Error)]
pub enum AppSecretError {
    /// Secrets Manager did not hand over the secret: it is missing, the
    /// function may not read it, or the call failed.
    #[error("cannot read the TikTok app secret {secret_id}: {detail}")]
    Read {
        /// The secret's id or ARN, as the function was told it.
        secret_id: String,
        /// Secrets Manager's error, described.
        detail: String,
    },
    /// The secret was read but its string is not the expected JSON. The
    /// message never includes the secret's value.
    #[error(
        "the TikTok app secret {secret_id} is not JSON with client_key and client_secret: {detail}"
    )]
    Malformed {
        /// The secret's id or ARN, as the function was told it.
        secret_id: String,
        /// What is wrong with it: no string value, or where the JSON breaks
        /// (a position, never the content).
        detail: String,
    },
}

#[derive(Deserialize)]
struct Stored {
    client_key: String,
    client_secret: Secret,
}

/// Why a deployment's TikTok client could not be built at cold start.
#[derive(Debug, thiserror::Error)]
pub enum ClientSetupError {
    /// The app's client key and secret could not be read.
    #[error(transparent)]
    AppSecret(#[from] AppSecretError),
    /// The HTTP client could not be built (TLS set-up); the text is the
    /// library's error.
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// The TikTok client every function builds once per cold start: the app's
/// credentials from `secret_id`, TikTok's hosts from `endpoints`.
pub async fn tiktok_client(
    secrets: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    endpoints: Endpoints,
) -> Result<TikTokClient, ClientSetupError> {
    let app = load_app_credentials(secrets, secret_id).await?;
    let http = crate::tiktok::config::http_client(Default::default())
        .map_err(|e| ClientSetupError::Http(e.to_string()))?;
    Ok(TikTokClient::new(http, endpoints, app))
}

/// Reads the app credentials from the secret `secret_id`.
pub async fn load_app_credentials(
    secrets: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<AppCredentials, AppSecretError> {
    let value = secrets
        .get_secret_value()
        .secret_id(secret_id)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .map_err(|e| AppSecretError::Read {
            secret_id: secret_id.to_owned(),
            detail: describe_sdk_error(&e),
        })?;
    let text = value
        .secret_string()
        .ok_or_else(|| AppSecretError::Malformed {
            secret_id: secret_id.to_owned(),
            detail: "the secret has no string value".into(),
        })?;
    // serde_json's error names the position, never the content.
    let stored: Stored = serde_json::from_str(text).map_err(|e| AppSecretError::Malformed {
        secret_id: secret_id.to_owned(),
        detail: format!(
            "{} at line {} column {}",
            json_error_kind(&e),
            e.line(),
            e.column()
        ),
    })?;
    if stored.client_key.trim().is_empty() || stored.client_secret.is_empty() {
        return Err(AppSecretError::Malformed {
            secret_id: secret_id.to_owned(),
            detail: "client_key or client_secret is empty".into(),
        });
    }
    Ok(AppCredentials {
        client_key: stored.client_key,
        client_secret: stored.client_secret,
    })
}

/// What kind of JSON error, without serde's message: that message can quote
/// the offending value, which here would be part of the secret.
fn json_error_kind(err: &serde_json::Error) -> &'static str {
    match err.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "a missing or mistyped field",
        serde_json::error::Category::Eof => "truncated JSON",
    }
}
