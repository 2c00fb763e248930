//! Which upload URLs are TikTok's, and where their bytes go.
//!
//! TikTok hands out upload URLs on more than one host
//! (`open-upload.tiktokapis.com`, `open-upload-i18n.tiktokapis.com`, ...),
//! so any `https://*.tiktokapis.com/` URL is taken; anything else is not
//! TikTok's and would receive the creator's video, so it is refused. Where a
//! stand-in plays TikTok's upload hosts (the simulator in the local stack),
//! TikTok's URLs are sent to it with their path and query kept, and URLs it
//! hands out on its own origin are taken as they are.
//!
//! Errors name the problem and at most the host, never the URL (its query
//! carries the upload token).

use url::Url;

/// The domain every TikTok upload host sits under.
pub const TIKTOK_UPLOAD_DOMAIN: &str = "tiktokapis.com";

/// Why an upload URL is not one to send a video to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadUrlError {
    /// Not a URL (the parser's complaint, not the URL).
    #[error("the upload URL does not parse: {0}")]
    Malformed(String),
    /// A scheme other than https (named).
    #[error("the upload URL is not https (scheme {0:?})")]
    NotHttps(String),
    /// A host outside TikTok's upload domain (named: hosts carry no secrets).
    #[error("the upload URL's host {0:?} is not under *.{TIKTOK_UPLOAD_DOMAIN}")]
    ForeignHost(String),
    /// A user name or password in the URL.
    #[error("the upload URL carries credentials in its authority")]
    Credentials,
}

/// The rule for upload URLs, and where their bytes are sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadHosts {
    /// The stand-in for TikTok's upload hosts; `None` in production.
    stand_in: Option<Url>,
    /// Test servers on loopback are taken as they are (unit tests of the
    /// chunk protocol only).
    #[cfg(test)]
    loopback: bool,
}

impl UploadHosts {
    /// TikTok's own hosts only, reached directly.
    pub fn tiktok() -> Self {
        Self::default()
    }

    /// TikTok's URLs sent to `stand_in` (path and query kept); URLs on
    /// `stand_in`'s own origin taken as they are.
    pub fn stand_in(stand_in: Url) -> Self {
        Self {
            stand_in: Some(stand_in),
            #[cfg(test)]
            loopback: false,
        }
    }

    #[cfg(test)]
    pub(super) fn loopback() -> Self {
        Self {
            stand_in: None,
            loopback: true,
        }
    }

    /// Checks `raw` (an upload URL from an init answer) and returns where
    /// its chunks are to be sent.
    pub fn target(&self, raw: &str) -> Result<Url, UploadUrlError> {
        let url = Url::parse(raw).map_err(|e| UploadUrlError::Malformed(e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UploadUrlError::Credentials);
        }
        if let Some(stand_in) = &self.stand_in
            && same_origin(&url, stand_in)
        {
            return Ok(url);
        }
        #[cfg(test)]
        if self.loopback && url.host_str() == Some("127.0.0.1") {
            return Ok(url);
        }
        check_tiktok(&url)?;
        Ok(match &self.stand_in {
            Some(stand_in) => routed(&url, stand_in),
            None => url,
        })
    }
}

/// Whether `url` is an https URL on a host under `*.tiktokapis.com`.
fn check_tiktok(url: &Url) -> Result<(), UploadUrlError> {
    if url.scheme() != "https" {
        return Err(UploadUrlError::NotHttps(url.scheme().to_owned()));
    }
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    let under = host
        .strip_suffix(TIKTOK_UPLOAD_DOMAIN)
        .and_then(|rest| rest.strip_suffix('.'))
        .is_some_and(|label| !label.is_empty() && !label.starts_with('.'));
    if !under || url.port().is_some() {
        return Err(UploadUrlError::ForeignHost(host.to_owned()));
    }
    Ok(())
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// `url`'s path and query under `base`.
fn routed(url: &Url, base: &Url) -> Url {
    let mut out = base.clone();
    let prefix = base.path().trim_end_matches('/');
    out.set_path(&format!("{prefix}{}", url.path()));
    out.set_query(url.query());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUERY: &str = "?upload_id=1&upload_token=SECRETSECRET";

    #[test]
    fn tiktoks_upload_hosts_are_taken_as_they_are() {
        let hosts = UploadHosts::tiktok();
        for host in [
            "open-upload.tiktokapis.com",
            "open-upload-i18n.tiktokapis.com",
            "OPEN-UPLOAD.TikTokApis.com",
            "a.b.tiktokapis.com",
        ] {
            let raw = format!("https://{host}/upload/{QUERY}");
            let url = hosts.target(&raw).unwrap();
            assert_eq!(url.host_str(), Some(host.to_ascii_lowercase().as_str()));
            assert_eq!(url.query(), Some(&QUERY[1..]));
        }
    }

    #[test]
    fn anything_else_is_refused_without_echoing_the_url() {
        let hosts = UploadHosts::tiktok();
        for (raw, want) in [
            ("http://open-upload.tiktokapis.com/u", "NotHttps"),
            ("https://tiktokapis.com/u", "ForeignHost"),
            (
                "https://open-upload.tiktokapis.com.evil.example/u",
                "ForeignHost",
            ),
            ("https://eviltiktokapis.com/u", "ForeignHost"),
            ("https://open-upload.tiktokapis.com:8443/u", "ForeignHost"),
            ("https://127.0.0.1/u", "ForeignHost"),
            ("https://x:y@open-upload.tiktokapis.com/u", "Credentials"),
            ("not a url", "Malformed"),
        ] {
            let err = hosts.target(&format!("{raw}{QUERY}")).unwrap_err();
            assert!(format!("{err:?}").starts_with(want), "{raw}: {err:?}");
            assert!(!err.to_string().contains("SECRETSECRET"), "{err}");
        }
    }

    #[test]
    fn a_stand_in_receives_tiktoks_urls_and_takes_its_own() {
        let hosts = UploadHosts::stand_in(Url::parse("http://127.0.0.1:9300/sim/").unwrap());
        let url = hosts
            .target(&format!(
                "https://open-upload-i18n.tiktokapis.com/upload/video/{QUERY}"
            ))
            .unwrap();
        assert_eq!(
            url.as_str(),
            format!("http://127.0.0.1:9300/sim/upload/video/{QUERY}")
        );
        let own = format!("http://127.0.0.1:9300/upload/video/{QUERY}");
        assert_eq!(hosts.target(&own).unwrap().as_str(), own);
        // Another port on the same machine is not the stand-in.
        assert!(
            hosts
                .target(&format!("http://127.0.0.1:9301/upload/{QUERY}"))
                .is_err()
        );
        assert!(
            hosts
                .target(&format!("https://uploads.example.com/upload/{QUERY}"))
                .is_err()
        );
    }
}
