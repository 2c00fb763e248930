//! Links to the creator's page (`GET /creator/<token>`): who may read which
//! account's list of uploads.
//!
//! ```text
//! base64url(JSON {v:1, o:<open_id>, n:<link version>[, e:<expiry>]}) "." base64url(HMAC-SHA256(K', <first part>))
//! ```
//!
//! - **Signed with the deployment's key, for this purpose only.** `K'` is
//!   derived from the invitation key ([`SigningKey::derive`] with
//!   [`PURPOSE`]), so a link never verifies as an invitation and an
//!   invitation never verifies as a link, although one secret serves both.
//! - **Names the account by its `open_id`**, which never changes, not by its
//!   alias, which can move to another TikTok account: a link made for
//!   `alice` keeps showing the same creator's uploads, and never shows the
//!   next holder of the alias hers.
//! - **Revocable.** It carries the account's link version; `tiktok-drafts
//!   link --revoke` bumps the version on the account, and the page refuses
//!   a link whose version is not the account's.
//! - **Carries nothing secret** and grants nothing but reading that account's
//!   list: no TikTok token, no alias, no other account.
//!
//! As with invitations the signature covers the base64url text exactly as
//! sent, and nothing in the payload is parsed before the signature is good.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::invite::{SigningKey, Unsealed};

/// What the derived key is for ([`SigningKey::derive`]).
pub const PURPOSE: &str = "creator page link v1";

/// The one payload version this code writes and accepts.
const VERSION: u32 = 1;
/// The longest `open_id` accepted (as the account store).
const MAX_OPEN_ID_LEN: usize = 256;

/// Why a link was refused. The messages are for the person who opened it:
/// what is wrong and what to do, nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The token is not a link's shape, or its contents do not parse (for
    /// example cut short when copied).
    #[error("this link is damaged or incomplete")]
    Malformed,
    /// The signature does not match: altered, or made with another
    /// deployment's key.
    #[error("this link is not valid")]
    BadSignature,
    /// The link was good but its expiry has passed.
    #[error("this link expired on {expired_at}")]
    Expired {
        /// When it stopped being valid.
        expired_at: DateTime<Utc>,
    },
    /// The payload's version is not the one this code reads.
    #[error("this link was made by another version of the service")]
    UnsupportedVersion,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    v: u32,
    /// The account's open_id.
    o: String,
    /// The account's link version when the link was made.
    n: u64,
    /// Expiry, epoch seconds; none: valid until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<i64>,
}

#[derive(Deserialize)]
struct VersionOnly {
    v: u32,
}

/// A verified (or freshly made) link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatorLink {
    open_id: String,
    link_version: u64,
    expires_at: Option<DateTime<Utc>>,
}

impl CreatorLink {
    /// A link to the page of the account `open_id`, at its current
    /// `link_version`, valid until revoked or until `expires_at`.
    pub fn new(open_id: &str, link_version: u64, expires_at: Option<DateTime<Utc>>) -> Self {
        Self {
            open_id: open_id.to_owned(),
            link_version,
            // Whole seconds, as the token keeps them.
            expires_at: expires_at.and_then(|at| DateTime::from_timestamp(at.timestamp(), 0)),
        }
    }

    /// The TikTok `open_id` of the account whose uploads the link shows.
    pub fn open_id(&self) -> &str {
        &self.open_id
    }

    /// The account's link version when the link was made; the link works
    /// only while the account still has this version.
    pub fn link_version(&self) -> u64 {
        self.link_version
    }

    /// When the link stops working, to the whole second; `None`: it works
    /// until revoked.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
    }

    /// The token for the link's path; `key` is the deployment's invitation
    /// key (the link's own key is derived from it).
    pub fn sign(&self, key: &SigningKey) -> String {
        let payload = Payload {
            v: VERSION,
            o: self.open_id.clone(),
            n: self.link_version,
            e: self.expires_at.map(|at| at.timestamp()),
        };
        // A struct of strings and integers always serialises.
        key.derive(PURPOSE)
            .seal(&serde_json::to_vec(&payload).unwrap_or_default())
    }

    /// Checks a token from a link: shape, signature (in constant time),
    /// version, contents and expiry, in that order. Whether the link is
    /// still the account's current one is the caller's check (it needs the
    /// account).
    pub fn verify(token: &str, key: &SigningKey, now: DateTime<Utc>) -> Result<Self, LinkError> {
        let json = key.derive(PURPOSE).open(token).map_err(|e| match e {
            Unsealed::Malformed => LinkError::Malformed,
            Unsealed::BadSignature => LinkError::BadSignature,
        })?;
        let version: VersionOnly =
            serde_json::from_slice(&json).map_err(|_| LinkError::Malformed)?;
        if version.v != VERSION {
            return Err(LinkError::UnsupportedVersion);
        }
        let payload: Payload = serde_json::from_slice(&json).map_err(|_| LinkError::Malformed)?;
        if payload.o.is_empty() || payload.o.len() > MAX_OPEN_ID_LEN {
            return Err(LinkError::Malformed);
        }
        let expires_at = match payload.e {
            None => None,
            Some(secs) => Some(DateTime::from_timestamp(secs, 0).ok_or(LinkError::Malformed)?),
        };
        if let Some(expired_at) = expires_at.filter(|at| now >= *at) {
            return Err(LinkError::Expired { expired_at });
        }
        Ok(Self {
            open_id: payload.o,
            link_version: payload.n,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use base64::Engine as _;

    use super::*;
    use crate::invite::Invitation;

    fn key() -> SigningKey {
        SigningKey::from_bytes(vec![7; 32]).unwrap()
    }

    fn b64() -> base64::engine::GeneralPurpose {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
    }

    fn sign_raw(json: &str, key: &SigningKey) -> String {
        key.derive(PURPOSE).seal(json.as_bytes())
    }

    #[test]
    fn round_trip_with_and_without_expiry() {
        let now = Utc::now();
        for expiry in [None, Some(now + chrono::Duration::days(30))] {
            let link = CreatorLink::new("open-alice", 4, expiry);
            let back = CreatorLink::verify(&link.sign(&key()), &key(), now).unwrap();
            assert_eq!(back, link);
            assert_eq!(back.open_id(), "open-alice");
            assert_eq!(back.link_version(), 4);
        }
    }

    #[test]
    fn a_link_is_no_invitation_and_an_invitation_no_link() {
        let now = Utc::now();
        let link = CreatorLink::new("open-alice", 0, None).sign(&key());
        assert!(Invitation::verify(&link, &key(), now).is_err());
        let invitation = Invitation::new_at("alice", Duration::from_secs(3600), false, now)
            .unwrap()
            .sign(&key());
        assert_eq!(
            CreatorLink::verify(&invitation, &key(), now),
            Err(LinkError::BadSignature)
        );
        // Neither does a payload of the other kind signed with this purpose's key.
        let foreign = sign_raw(
            r#"{"v":1,"id":"00000000000000000000000000000000","alias":"alice","exp":99999999999,"rebind":false}"#,
            &key(),
        );
        assert_eq!(
            CreatorLink::verify(&foreign, &key(), now),
            Err(LinkError::Malformed)
        );
    }

    #[test]
    fn forged_changed_and_foreign_key_links_are_refused() {
        let now = Utc::now();
        let token = CreatorLink::new("open-alice", 0, None).sign(&key());
        let other_key = SigningKey::from_bytes(vec![8; 32]).unwrap();
        assert_eq!(
            CreatorLink::verify(&token, &other_key, now),
            Err(LinkError::BadSignature)
        );
        // Another account's open_id under the same signature.
        let (_, signature) = token.split_once('.').unwrap();
        let bob = b64().encode(r#"{"v":1,"o":"open-bob","n":0}"#);
        assert_eq!(
            CreatorLink::verify(&format!("{bob}.{signature}"), &key(), now),
            Err(LinkError::BadSignature)
        );
        for bad in ["", "abc", "a.b.c", ".sig", &"x".repeat(2000), "e30.!!"] {
            assert_eq!(
                CreatorLink::verify(bad, &key(), now),
                Err(LinkError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn expired_other_versions_and_bad_payloads() {
        let now = Utc::now();
        let past = CreatorLink::new("o", 0, Some(now - chrono::Duration::seconds(5))).sign(&key());
        assert!(matches!(
            CreatorLink::verify(&past, &key(), now),
            Err(LinkError::Expired { .. })
        ));
        assert_eq!(
            CreatorLink::verify(&sign_raw(r#"{"v":2,"x":1}"#, &key()), &key(), now),
            Err(LinkError::UnsupportedVersion)
        );
        for json in [
            r#"{"v":1,"o":"","n":0}"#.to_owned(),
            format!(r#"{{"v":1,"o":"{}","n":0}}"#, "o".repeat(300)),
            r#"{"v":1,"o":"a","n":-1}"#.to_owned(),
            r#"{"v":1,"o":"a"}"#.to_owned(),
            "not json".to_owned(),
        ] {
            assert_eq!(
                CreatorLink::verify(&sign_raw(&json, &key()), &key(), now),
                Err(LinkError::Malformed),
                "{json}"
            );
        }
    }
}
