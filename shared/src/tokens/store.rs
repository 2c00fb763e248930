//! [`TokenStore`] on AWS Secrets Manager: one secret per account.

use aws_sdk_secretsmanager::Client;

use super::{DEFAULT_SECRET_PREFIX, StoredTokens, TokenError, TokenStore, check_open_id};
use crate::aws::describe_sdk_error;

/// The tag on every token secret the store creates: the stack (deployment)
/// it belongs to, so that what a stack deletion leaves can be found.
pub const STACK_TAG: &str = "tiktok-drafts:stack";
/// The environment variable naming the stack (the template sets it).
pub const STACK_NAME_VAR: &str = "STACK_NAME";

/// Secrets named `<prefix>/accounts/<open_id>`, JSON as [`StoredTokens`].
#[derive(Debug, Clone)]
pub struct SecretsManagerTokenStore {
    client: Client,
    prefix: String,
    /// [`STACK_TAG`]'s value, from `STACK_NAME` when it is set.
    stack: Option<String>,
}

impl SecretsManagerTokenStore {
    /// Secrets under `prefix` (trailing `/` dropped; empty means
    /// [`DEFAULT_SECRET_PREFIX`]), tagged with the stack from `STACK_NAME`.
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        let prefix: String = prefix.into();
        let prefix = prefix.trim().trim_end_matches('/').to_owned();
        let prefix = if prefix.is_empty() {
            DEFAULT_SECRET_PREFIX.to_owned()
        } else {
            prefix
        };
        let stack = std::env::var(STACK_NAME_VAR)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        Self {
            client,
            prefix,
            stack,
        }
    }

    /// With the prefix from `SECRETS_PREFIX`, or the default.
    pub fn from_env(client: Client) -> Self {
        let prefix = std::env::var(super::SECRET_PREFIX_VAR).unwrap_or_default();
        Self::new(client, prefix)
    }

    /// The first part of every secret name, without a trailing `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The secret name of an account.
    pub fn secret_name(&self, open_id: &str) -> Result<String, TokenError> {
        check_open_id(open_id)?;
        Ok(format!("{}/accounts/{open_id}", self.prefix))
    }

    async fn put(&self, name: &str, json: &str) -> Result<(), PutError> {
        let result = self
            .client
            .put_secret_value()
            .secret_id(name)
            .secret_string(json)
            .client_request_token(request_token())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Err(PutError::NotFound)
            }
            Err(err) => Err(PutError::Other(describe_sdk_error(&err))),
        }
    }
}

enum PutError {
    NotFound,
    Other(String),
}

/// A fresh idempotency token (UUID v4 shaped) for `PutSecretValue`.
fn request_token() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

impl TokenStore for SecretsManagerTokenStore {
    async fn load(&self, open_id: &str) -> Result<Option<StoredTokens>, TokenError> {
        let name = self.secret_name(open_id)?;
        let result = self
            .client
            .get_secret_value()
            .secret_id(&name)
            .version_stage("AWSCURRENT")
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(err) => {
                return Err(TokenError::Store {
                    open_id: open_id.to_owned(),
                    detail: format!("reading the secret: {}", describe_sdk_error(&err)),
                });
            }
        };
        let corrupt = |detail: String| TokenError::Corrupt {
            open_id: open_id.to_owned(),
            detail,
        };
        let text = out
            .secret_string()
            .ok_or_else(|| corrupt("the secret has no string value".into()))?;
        // serde_json's messages may quote the offending value, which could be
        // a token: report only where and what kind of error it was.
        let tokens: StoredTokens = serde_json::from_str(text).map_err(|e| {
            corrupt(format!(
                "bad JSON ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        if tokens.open_id != open_id {
            return Err(corrupt(format!(
                "the secret holds tokens of account {}",
                tokens.open_id
            )));
        }
        Ok(Some(tokens))
    }

    async fn save(&self, tokens: &StoredTokens) -> Result<(), TokenError> {
        let open_id = tokens.open_id.as_str();
        let name = self.secret_name(open_id)?;
        let fail = |detail: String| TokenError::Store {
            open_id: open_id.to_owned(),
            detail,
        };
        let json = serde_json::to_string(tokens)
            .map_err(|e| fail(format!("cannot encode the tokens ({:?})", e.classify())))?;
        match self.put(&name, &json).await {
            Ok(()) => return Ok(()),
            Err(PutError::Other(detail)) => {
                return Err(fail(format!("writing the secret: {detail}")));
            }
            Err(PutError::NotFound) => {}
        }
        let tags = self.stack.as_ref().map(|stack| {
            vec![
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key(STACK_TAG)
                    .value(stack)
                    .build(),
            ]
        });
        let created = self
            .client
            .create_secret()
            .name(&name)
            .description("TikTok tokens of one connected account (tiktok-drafts)")
            .secret_string(&json)
            .set_tags(tags)
            .client_request_token(request_token())
            .send()
            .await;
        match created {
            Ok(_) => {
                tracing::info!(open_id, secret = %name, "token secret created");
                Ok(())
            }
            // Created by someone else meanwhile: write over it.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_exists_exception()) =>
            {
                match self.put(&name, &json).await {
                    Ok(()) => Ok(()),
                    Err(PutError::NotFound) => Err(fail("the secret vanished while saving".into())),
                    Err(PutError::Other(detail)) => {
                        Err(fail(format!("writing the secret: {detail}")))
                    }
                }
            }
            Err(err) => Err(fail(format!(
                "creating the secret: {}",
                describe_sdk_error(&err)
            ))),
        }
    }

    async fn delete(&self, open_id: &str) -> Result<(), TokenError> {
        let name = self.secret_name(open_id)?;
        // Without a recovery window, so that a reconnect can create the
        // secret again at once.
        let result = self
            .client
            .delete_secret()
            .secret_id(&name)
            .force_delete_without_recovery(true)
            .send()
            .await;
        match result {
            Ok(_) => {
                tracing::info!(open_id, secret = %name, "token secret deleted");
                Ok(())
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(TokenError::Store {
                open_id: open_id.to_owned(),
                detail: format!("deleting the secret: {}", describe_sdk_error(&err)),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_tokens_look_like_uuids() {
        let t = request_token();
        assert_eq!(t.len(), 36);
        assert_eq!(t.matches('-').count(), 4);
        assert_ne!(t, request_token());
    }
}
