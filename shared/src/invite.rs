//! Invitations: who may connect a TikTok account, and under which alias.
//!
//! The login is closed to the world: `GET /auth/start?invite=<token>` needs an
//! invitation the operator made. Without that gate anybody could walk through
//! TikTok Login and bind their own TikTok account to someone else's alias, and
//! so receive that creator's uploads in their drafts.
//!
//! An invitation is a signed, expiring token that names the alias:
//!
//! ```text
//! base64url(JSON {v:1, id, alias, exp, rebind, mv, iat}) "." base64url(HMAC-SHA256(key, <first part>))
//! ```
//!
//! `mv` (may move the account from its current alias to this one) and `iat`
//! (when the invitation was made) came later; a token without them reads as
//! "no move" and "made at an unknown time", so links already sent keep
//! working and never allow more than they did.
//!
//! The signature covers the base64url text exactly as sent, so there is no
//! canonical-JSON question to get wrong. The token carries no secret: anyone
//! may read the alias in it, nobody can change it without the key. It is single
//! use, but that is not something a stateless token can enforce; the account
//! store records the invitation `id` in the same transaction that binds the
//! account (see [`crate::accounts`]).
//!
//! The signing key lives in Secrets Manager as the base64 of at least 32
//! random bytes ([`SigningKey::load`]).

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::aws::describe_sdk_error;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The one payload version this code writes and accepts.
const VERSION: u32 = 1;
/// Longer tokens are refused before any decoding: a real one is about 200
/// characters, and nothing user-supplied should make us decode megabytes.
const MAX_TOKEN_LEN: usize = 1024;
/// The longest alias; it becomes an S3 key segment (`uploads/<alias>/…`).
pub const MAX_ALIAS_LEN: usize = 64;

/// Why an invitation token was refused. The messages are safe to show the
/// person holding the link: they say what is wrong, never anything secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// The token is not an invitation's shape, or its signed contents are
    /// not a valid invitation (for example cut short when copied).
    #[error("this invitation link is damaged or incomplete; ask for a new one")]
    Malformed,
    /// The signature does not match: altered, or made with another
    /// deployment's key.
    #[error("this invitation link is not valid; ask for a new one")]
    BadSignature,
    /// The invitation was good but its expiry has passed.
    #[error("this invitation expired on {expired_at}; ask for a new one")]
    Expired {
        /// When it stopped being valid.
        expired_at: DateTime<Utc>,
    },
    /// The payload's version is not the one this code reads.
    #[error("this invitation was made by another version of the service; ask for a new one")]
    UnsupportedVersion,
    /// The alias given to make an invitation (or connect an account) is not
    /// one [`validate_alias`] accepts.
    #[error(
        "an account alias has 1 to {MAX_ALIAS_LEN} characters from a-z, 0-9, '-' and '_' (got {alias:?})"
    )]
    BadAlias {
        /// The alias as given, cut short when much too long.
        alias: String,
    },
    /// The lifetime asked for is zero or longer than [`Invitation::MAX_TTL`].
    #[error("an invitation must be valid for a positive time of at most {max_days} days")]
    BadLifetime {
        /// The longest lifetime allowed, in whole days.
        max_days: i64,
    },
}

/// Checks that `alias` can name an account: 1 to 64 characters of lowercase
/// ASCII letters, digits, `-` and `_`. It becomes an S3 key segment and a
/// DynamoDB key part, so anything that could be a path separator, change case
/// on some file system, or need URL-encoding is kept out.
pub fn validate_alias(alias: &str) -> Result<(), InviteError> {
    let ok = !alias.is_empty()
        && alias.len() <= MAX_ALIAS_LEN
        && alias
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(InviteError::BadAlias {
            alias: alias.chars().take(MAX_ALIAS_LEN + 8).collect(),
        })
    }
}

/// The JSON inside a token. Field names are short because the token travels
/// in a URL.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    v: u32,
    id: String,
    alias: String,
    exp: i64,
    rebind: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    mv: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
}

/// Only the version, read first so that a future payload with other fields
/// is reported as [`InviteError::UnsupportedVersion`], not as malformed.
#[derive(Deserialize)]
struct VersionOnly {
    v: u32,
}

/// A verified (or freshly made) invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    id: String,
    alias: String,
    expires_at: DateTime<Utc>,
    rebind: bool,
    move_alias: bool,
    issued_at: Option<DateTime<Utc>>,
}

impl Invitation {
    /// The longest lifetime an invitation may have. A link sent by mail or
    /// chat should not stay usable for months.
    pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

    /// A new invitation for `alias`, valid for `ttl` from now. `rebind` lets
    /// the login move the alias to another TikTok account than the one that
    /// holds it today (the operator's explicit decision).
    pub fn new(alias: &str, ttl: Duration, rebind: bool) -> Result<Self, InviteError> {
        Self::new_at(alias, ttl, rebind, Utc::now())
    }

    /// As [`Invitation::new`], with the clock given.
    pub fn new_at(
        alias: &str,
        ttl: Duration,
        rebind: bool,
        now: DateTime<Utc>,
    ) -> Result<Self, InviteError> {
        validate_alias(alias)?;
        let bad_lifetime = InviteError::BadLifetime {
            max_days: (Self::MAX_TTL.as_secs() / 86_400) as i64,
        };
        if ttl.is_zero() || ttl > Self::MAX_TTL {
            return Err(bad_lifetime);
        }
        let ttl = chrono::Duration::from_std(ttl).map_err(|_| bad_lifetime)?;
        let id_bytes: [u8; 16] = rand::random();
        // Whole seconds, as the token stores them, so a round trip is exact.
        let whole = |t: DateTime<Utc>| DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t);
        Ok(Self {
            id: hex::encode(id_bytes),
            alias: alias.to_owned(),
            expires_at: whole(now + ttl),
            rebind,
            move_alias: false,
            issued_at: Some(whole(now)),
        })
    }

    /// Lets the login move the TikTok account from the alias it is connected
    /// under today to this one (the operator's explicit decision, `invite
    /// --move`). Without it such a login is refused: an account never
    /// changes alias silently.
    pub fn allowing_move(mut self, move_alias: bool) -> Self {
        self.move_alias = move_alias;
        self
    }

    /// The random 128-bit id (32 hex characters) that makes the invitation
    /// single use. Not secret: it cannot be turned into a token without the key.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The alias the invited account will be connected under, as in
    /// `uploads/<alias>/`.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// When the link stops working, to the whole second.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }

    /// Whether the login may take the alias from the TikTok account that
    /// holds it today (`invite --rebind`).
    pub fn rebind(&self) -> bool {
        self.rebind
    }

    /// Whether the login may move the TikTok account from its current alias
    /// to this one ([`Invitation::allowing_move`]).
    pub fn move_alias(&self) -> bool {
        self.move_alias
    }

    /// When the invitation was made; `None` for links made before this was
    /// recorded.
    pub fn issued_at(&self) -> Option<DateTime<Utc>> {
        self.issued_at
    }

    /// The token to put in the link: payload, `.`, signature.
    pub fn sign(&self, key: &SigningKey) -> String {
        let payload = Payload {
            v: VERSION,
            id: self.id.clone(),
            alias: self.alias.clone(),
            exp: self.expires_at.timestamp(),
            rebind: self.rebind,
            mv: self.move_alias,
            iat: self.issued_at.map(|t| t.timestamp()),
        };
        // Serialising a struct of strings, integers and booleans cannot fail.
        key.seal(&serde_json::to_vec(&payload).unwrap_or_default())
    }

    /// Checks a token from a link: shape, signature (compared in constant
    /// time), version, alias and expiry, in that order. Nothing in the payload
    /// is trusted, or even parsed as JSON, before the signature is good.
    pub fn verify(token: &str, key: &SigningKey, now: DateTime<Utc>) -> Result<Self, InviteError> {
        let json = key.open(token).map_err(|e| match e {
            Unsealed::Malformed => InviteError::Malformed,
            Unsealed::BadSignature => InviteError::BadSignature,
        })?;
        let version: VersionOnly =
            serde_json::from_slice(&json).map_err(|_| InviteError::Malformed)?;
        if version.v != VERSION {
            return Err(InviteError::UnsupportedVersion);
        }
        let payload: Payload = serde_json::from_slice(&json).map_err(|_| InviteError::Malformed)?;
        // A signed payload with a bad alias or id means a bug in whatever
        // signed it; refuse it all the same rather than write it to S3 keys.
        validate_alias(&payload.alias).map_err(|_| InviteError::Malformed)?;
        if payload.id.len() != 32 || !payload.id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(InviteError::Malformed);
        }
        let expires_at = DateTime::from_timestamp(payload.exp, 0).ok_or(InviteError::Malformed)?;
        if now >= expires_at {
            return Err(InviteError::Expired {
                expired_at: expires_at,
            });
        }
        let issued_at = match payload.iat {
            Some(secs) => Some(DateTime::from_timestamp(secs, 0).ok_or(InviteError::Malformed)?),
            None => None,
        };
        Ok(Self {
            id: payload.id,
            alias: payload.alias,
            expires_at,
            rebind: payload.rebind,
            move_alias: payload.mv,
            issued_at,
        })
    }
}

/// Why [`SigningKey::open`] refused a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unsealed {
    /// Not a token of this form (or too long).
    Malformed,
    /// Well formed, but not signed by this key.
    BadSignature,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// Why the signing key could not be read or made. The messages name the
/// secret, never its value.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    /// Secrets Manager has no secret of that id.
    #[error("the invitation signing key secret {secret_id} does not exist")]
    NotFound {
        /// The secret's id or ARN, as given.
        secret_id: String,
    },
    /// The secret exists but holds no usable key.
    #[error("the invitation signing key secret {secret_id} is unusable: {reason}")]
    Invalid {
        /// The secret's id or ARN, as given.
        secret_id: String,
        /// What is wrong: no string value, not base64, or too short.
        reason: String,
    },
    /// Secrets Manager failed (permissions, network, throttling).
    #[error("cannot reach the invitation signing key secret {secret_id}: {detail}")]
    Unavailable {
        /// The secret's id or ARN, as given.
        secret_id: String,
        /// Secrets Manager's error, described.
        detail: String,
    },
}

/// The HMAC key that signs invitations: at least 32 random bytes. `Debug`
/// hides it, and nothing else prints it.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    /// The shortest key accepted: the HMAC-SHA256 output size.
    pub const MIN_LEN: usize = 32;

    /// A new random key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let bytes: [u8; Self::MIN_LEN] = rand::random();
        Self(bytes.to_vec())
    }

    /// Wraps raw key bytes; `None` when shorter than [`SigningKey::MIN_LEN`].
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() >= Self::MIN_LEN).then_some(Self(bytes))
    }

    /// Reads the key from Secrets Manager: the secret string is the standard
    /// base64 of the key bytes.
    pub async fn load(
        client: &aws_sdk_secretsmanager::Client,
        secret_id: &str,
    ) -> Result<Self, SigningKeyError> {
        let answer = client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|err| {
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception())
                {
                    SigningKeyError::NotFound {
                        secret_id: secret_id.to_owned(),
                    }
                } else {
                    SigningKeyError::Unavailable {
                        secret_id: secret_id.to_owned(),
                        detail: describe_sdk_error(&err),
                    }
                }
            })?;
        let invalid = |reason: &str| SigningKeyError::Invalid {
            secret_id: secret_id.to_owned(),
            reason: reason.to_owned(),
        };
        let text = answer
            .secret_string()
            .ok_or_else(|| invalid("it has no string value"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| invalid("its value is not base64"))?;
        let key =
            Self::from_bytes(bytes).ok_or_else(|| invalid("the key is shorter than 32 bytes"))?;
        tracing::debug!(secret_id, "loaded the invitation signing key");
        Ok(key)
    }

    /// Makes the secret with a new random key unless it exists, then returns
    /// the key that is stored. For the local stack and tests; in AWS the
    /// template creates the secret. Two callers racing both end up with the
    /// one key that won.
    pub async fn create_if_missing(
        client: &aws_sdk_secretsmanager::Client,
        secret_id: &str,
    ) -> Result<Self, SigningKeyError> {
        let key = Self::generate();
        let created = client
            .create_secret()
            .name(secret_id)
            .description("tiktok-drafts: HMAC key that signs account invitations")
            .secret_string(base64::engine::general_purpose::STANDARD.encode(&key.0))
            .send()
            .await;
        match created {
            Ok(_) => {
                tracing::info!(secret_id, "created the invitation signing key");
                Ok(key)
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_exists_exception()) =>
            {
                Self::load(client, secret_id).await
            }
            Err(err) => Err(SigningKeyError::Unavailable {
                secret_id: secret_id.to_owned(),
                detail: describe_sdk_error(&err),
            }),
        }
    }

    /// A key of its own for another use of the same secret, named by
    /// `purpose`: HMAC-SHA256 of `"tiktok-drafts key for: <purpose>"` under
    /// this key. An invitation's signature is an HMAC of base64url text,
    /// which never contains that message's spaces or colon, so no signature
    /// this key makes reveals a derived key; and a token signed with a
    /// derived key never verifies as an invitation, nor one the other way.
    pub fn derive(&self, purpose: &str) -> SigningKey {
        let message = format!("tiktok-drafts key for: {purpose}");
        Self(
            self.mac(message.as_bytes())
                .finalize()
                .into_bytes()
                .to_vec(),
        )
    }

    /// A signed token: the payload and its HMAC, both base64url, joined by
    /// `.`; the form of every token this key signs (invitations, and with a
    /// derived key, creator links).
    pub(crate) fn seal(&self, payload: &[u8]) -> String {
        let payload_b64 = b64().encode(payload);
        let signature = b64().encode(self.mac(payload_b64.as_bytes()).finalize().into_bytes());
        format!("{payload_b64}.{signature}")
    }

    /// The payload of a token made by [`SigningKey::seal`]: its shape and
    /// length first, then its signature (compared in constant time). Nothing
    /// in the payload is decoded before the signature is good.
    pub(crate) fn open(&self, token: &str) -> Result<Vec<u8>, Unsealed> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(Unsealed::Malformed);
        }
        let (payload_b64, signature_b64) = token.split_once('.').ok_or(Unsealed::Malformed)?;
        if payload_b64.is_empty() || signature_b64.contains('.') {
            return Err(Unsealed::Malformed);
        }
        let signature = b64()
            .decode(signature_b64)
            .map_err(|_| Unsealed::Malformed)?;
        self.mac(payload_b64.as_bytes())
            .verify_slice(&signature)
            .map_err(|_| Unsealed::BadSignature)?;
        b64().decode(payload_b64).map_err(|_| Unsealed::Malformed)
    }

    pub(crate) fn mac(&self, message: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length, so this never fails.
        let mut mac = <HmacSha256 as hmac::Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(message);
        mac
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(vec![7; 32]).unwrap()
    }

    /// Signs an arbitrary payload, as a future or buggy signer might.
    fn sign_raw(json: &str, key: &SigningKey) -> String {
        let payload_b64 = b64().encode(json);
        let sig = b64().encode(key.mac(payload_b64.as_bytes()).finalize().into_bytes());
        format!("{payload_b64}.{sig}")
    }

    #[test]
    fn round_trip() {
        let now = Utc::now();
        let inv = Invitation::new_at("alice", Duration::from_secs(3600), true, now).unwrap();
        let token = inv.sign(&key());
        let back = Invitation::verify(&token, &key(), now).unwrap();
        assert_eq!(back, inv);
        assert_eq!(back.id().len(), 32);
    }

    #[test]
    fn moves_round_trip_and_old_links_mean_no_move() {
        let now = Utc::now();
        let inv = Invitation::new_at("alice", Duration::from_secs(3600), false, now)
            .unwrap()
            .allowing_move(true);
        let back = Invitation::verify(&inv.sign(&key()), &key(), now).unwrap();
        assert!(back.move_alias());
        assert_eq!(back.issued_at(), inv.issued_at());
        assert!(back.issued_at().is_some());

        // A link signed before `mv` and `iat` existed still works, and
        // allows no move.
        let old = sign_raw(
            &format!(
                r#"{{"v":1,"id":"{}","alias":"bob","exp":{},"rebind":false}}"#,
                "a".repeat(32),
                now.timestamp() + 60
            ),
            &key(),
        );
        let old = Invitation::verify(&old, &key(), now).unwrap();
        assert_eq!(old.alias(), "bob");
        assert!(!old.move_alias());
        assert!(!old.rebind());
        assert_eq!(old.issued_at(), None);
    }

    #[test]
    fn other_versions_are_unsupported() {
        let token = sign_raw(r#"{"v":2,"whatever":true}"#, &key());
        assert_eq!(
            Invitation::verify(&token, &key(), Utc::now()),
            Err(InviteError::UnsupportedVersion)
        );
    }

    #[test]
    fn signed_but_bad_payloads_are_malformed() {
        let now = Utc::now().timestamp();
        for json in [
            "not json".to_owned(),
            format!(
                r#"{{"v":1,"id":"{}","alias":"A/b","exp":{},"rebind":false}}"#,
                "0".repeat(32),
                now + 60
            ),
            format!(
                r#"{{"v":1,"id":"short","alias":"a","exp":{},"rebind":false}}"#,
                now + 60
            ),
            r#"{"v":1,"alias":"a"}"#.to_owned(),
        ] {
            let token = sign_raw(&json, &key());
            assert_eq!(
                Invitation::verify(&token, &key(), Utc::now()),
                Err(InviteError::Malformed),
                "{json}"
            );
        }
    }

    #[test]
    fn aliases() {
        for ok in ["a", "alice", "team-1_b", &"x".repeat(64)] {
            assert!(validate_alias(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Alice", "a/b", "a b", "é", "a.b", &"x".repeat(65)] {
            assert!(validate_alias(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lifetimes_are_bounded() {
        assert!(Invitation::new("a", Duration::ZERO, false).is_err());
        assert!(Invitation::new("a", Invitation::MAX_TTL + Duration::from_secs(1), false).is_err());
    }

    #[test]
    fn debug_hides_the_key() {
        assert_eq!(format!("{:?}", key()), "SigningKey([redacted])");
        assert!(SigningKey::from_bytes(vec![1; 31]).is_none());
    }
}
