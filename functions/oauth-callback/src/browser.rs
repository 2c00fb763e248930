//! The cookie that binds a login to the browser that started it.
//!
//! `/auth/start` sets one cookie per login:
//!
//! ```text
//! __Host-login-<first 16 hex of SHA-256(state)>=<nonce>; Max-Age=600; Path=/; Secure; HttpOnly; SameSite=Lax
//! ```
//!
//! - `__Host-` makes the browser refuse the cookie unless it is `Secure`,
//!   has `Path=/` and no `Domain`: no other host (a sibling subdomain) can
//!   set or overwrite it.
//! - `HttpOnly`: no script reads it. `SameSite=Lax`: it still comes along on
//!   TikTok's redirect back, a top-level GET navigation from another site.
//! - One cookie per login, named after its state, so that two tabs started
//!   from one link each keep their own (a single name would let the second
//!   tab's cookie overwrite the first's).
//! - It lives as long as the login state, and the callback clears it.
//!
//! Only the nonce's SHA-256 is stored with the state; the callback hands the
//! nonce to [`shared::login_state::LoginStates::consume`], which compares in
//! constant time.
//!
//! API Gateway's HTTP API (payload 2.0) delivers cookies apart from the
//! headers, in the event's `cookies` array; lambda_http joins them into one
//! `cookie` header with `"; "`, which is what [`nonce_for`] reads (every
//! `cookie` header, for other front ends that send several). Going out,
//! lambda_http moves `set-cookie` headers into the answer's `cookies` array.

use std::time::Duration;

use lambda_http::http::HeaderMap;
use lambda_http::http::header::{COOKIE, HeaderValue};
use sha2::{Digest as _, Sha256};

const PREFIX: &str = "__Host-login-";

/// The cookie's name for the login with `state`.
pub fn cookie_name(state: &str) -> String {
    let digest = hex::encode(Sha256::digest(state.as_bytes()));
    format!("{PREFIX}{}", &digest[..16])
}

/// The `Set-Cookie` value that binds the login `state` to this browser.
pub fn set_cookie(state: &str, nonce: &str, lifetime: Duration) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{}={nonce}; Max-Age={}; Path=/; Secure; HttpOnly; SameSite=Lax",
        cookie_name(state),
        lifetime.as_secs()
    ))
    .ok()
}

/// The `Set-Cookie` value that removes the login's cookie once the state is
/// used up.
pub fn clear_cookie(state: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{}=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax",
        cookie_name(state)
    ))
    .ok()
}

/// The nonce this browser holds for the login with `state`, if it sent one.
pub fn nonce_for(headers: &HeaderMap, state: &str) -> Option<String> {
    let name = cookie_name(state);
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_has_every_attribute_a_host_cookie_needs() {
        let value = set_cookie("s1", "n1", Duration::from_secs(600)).unwrap();
        let value = value.to_str().unwrap();
        assert!(value.starts_with("__Host-login-"), "{value}");
        for attribute in [
            "Max-Age=600",
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
        ] {
            assert!(
                value.split("; ").any(|a| a == attribute),
                "{attribute} in {value}"
            );
        }
        assert!(!value.contains("Domain"), "{value}");
        assert!(!value.contains("s1"), "the state is not in the name");
        let cleared = clear_cookie("s1").unwrap();
        assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn the_right_cookie_is_found_among_others() {
        let name = cookie_name("state-a");
        assert_ne!(name, cookie_name("state-b"));
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_str(&format!(
                "theme=dark; {}=nonce-b; {name}=nonce-a",
                cookie_name("state-b")
            ))
            .unwrap(),
        );
        assert_eq!(nonce_for(&headers, "state-a").as_deref(), Some("nonce-a"));
        assert_eq!(nonce_for(&headers, "state-b").as_deref(), Some("nonce-b"));
        assert_eq!(nonce_for(&headers, "state-c"), None);
        // Several cookie headers, and an empty value.
        headers.append(
            COOKIE,
            HeaderValue::from_str(&format!("{}=", cookie_name("state-c"))).unwrap(),
        );
        assert_eq!(nonce_for(&headers, "state-c"), None);
        assert_eq!(nonce_for(&HeaderMap::new(), "state-a"), None);
    }
}
