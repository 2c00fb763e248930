//! Start-up configuration and the runtime-adjustable settings.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How the simulator is started.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Where state.json and upload spools live. `None` uses a fresh temporary directory
    /// that is removed at shutdown, so nothing survives a restart.
    pub state_dir: Option<PathBuf>,
    /// Initial settings. A `state.json` found in `state_dir` wins over these.
    pub settings: Settings,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            state_dir: None,
            settings: Settings::default(),
        }
    }
}

/// Whether PKCE is checked on the authorization-code flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PkceMode {
    /// Challenges and verifiers are ignored.
    Off,
    /// A challenge given at authorize must be matched by the verifier at exchange.
    Optional,
    /// Authorize without a challenge is refused.
    Required,
}

/// How a PKCE challenge encodes SHA-256(verifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PkceEncoding {
    /// Lowercase hex, as TikTok's desktop docs say.
    Hex,
    /// Unpadded base64url, as RFC 7636 says.
    Base64url,
    /// Either of the two.
    Either,
}

/// Everything a test may want to change at runtime. Unknown fields are refused so that a
/// typo in a test does not silently leave a default in place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub client_key: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    pub pkce: PkceMode,
    pub pkce_encoding: PkceEncoding,
    pub code_ttl_secs: i64,
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    pub rotate_refresh_tokens: bool,
    /// HTTP status of OAuth error bodies; field reports say TikTok uses 200.
    pub oauth_error_status: u16,
    pub upload_url_ttl_secs: i64,
    /// What the upload host answers for an expired upload URL: 403, 404 and
    /// 405 have all been seen from TikTok; 405 by default, the least obvious.
    pub expired_upload_status: u16,
    /// The host init puts in `upload_url` (`https://{host}/upload/video/...`),
    /// e.g. `open-upload-i18n.tiktokapis.com`; a client reaches it through its
    /// upload stand-in setting. `None`: the simulator's own base URL.
    pub upload_url_host: Option<String>,
    pub init_per_min: u32,
    pub creator_info_per_min: u32,
    pub status_per_min: u32,
    pub user_info_per_min: u32,
    pub retry_after_header: bool,
    pub pending_share_cap: u32,
    pub direct_post_cap: u32,
    pub verified_url_prefixes: Vec<String>,
    pub allow_http_pull: bool,
    pub unaudited: bool,
    pub auto_advance: bool,
    pub max_photo_width: u32,
    pub max_photo_height: u32,
    pub max_photo_bytes: u64,
    pub max_video_bytes: u64,
    /// Where webhooks are POSTed (signed with `client_secret`); `None` sends none.
    pub webhook_url: Option<String>,
    /// How many requests the request log keeps (oldest dropped first); load
    /// benches that measure from the log raise it.
    pub request_log_capacity: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            client_key: "sim-client-key".to_owned(),
            client_secret: "sim-client-secret".to_owned(),
            redirect_uris: vec!["http://127.0.0.1/callback".to_owned()],
            pkce: PkceMode::Optional,
            pkce_encoding: PkceEncoding::Hex,
            code_ttl_secs: 300,
            access_token_ttl_secs: 7200,
            refresh_token_ttl_secs: 15_552_000,
            rotate_refresh_tokens: true,
            oauth_error_status: 200,
            upload_url_ttl_secs: 3600,
            expired_upload_status: 405,
            upload_url_host: None,
            init_per_min: 6,
            creator_info_per_min: 20,
            status_per_min: 30,
            user_info_per_min: 600,
            retry_after_header: false,
            pending_share_cap: 5,
            direct_post_cap: 15,
            verified_url_prefixes: Vec::new(),
            allow_http_pull: false,
            unaudited: false,
            auto_advance: true,
            max_photo_width: 1080,
            max_photo_height: 1920,
            max_photo_bytes: 20_000_000,
            max_video_bytes: 4_000_000_000,
            webhook_url: None,
            request_log_capacity: crate::request_log::CAPACITY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_settings_take_defaults() {
        let settings: Settings =
            serde_json::from_str(r#"{"pkce":"required","pkce_encoding":"either"}"#)
                .expect("valid settings JSON");
        assert_eq!(settings.pkce, PkceMode::Required);
        assert_eq!(settings.pkce_encoding, PkceEncoding::Either);
        assert_eq!(settings.init_per_min, 6);
    }

    #[test]
    fn unknown_setting_is_refused() {
        assert!(serde_json::from_str::<Settings>(r#"{"init_per_minute":3}"#).is_err());
    }
}
