//! The small HTML pages a creator sees at the end of a login.
//!
//! Every value that reaches a page is escaped; no page ever carries a token,
//! a code, a verifier or the client secret.

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Response};

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A page with a title and paragraphs of plain text (escaped here).
pub fn page(status: StatusCode, title: &str, paragraphs: &[&str]) -> Response<Body> {
    let body: String = paragraphs
        .iter()
        .map(|p| format!("<p>{}</p>\n", escape(p)))
        .collect();
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;line-height:1.5}}</style>\
         </head><body>\n<h1>{title}</h1>\n{body}</body></html>\n",
        title = escape(title),
    );
    response(status, html)
}

fn response(status: StatusCode, html: String) -> Response<Body> {
    let mut res = Response::new(Body::Text(html));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    keep_private(headers);
    res
}

/// A redirect to TikTok's authorize page.
pub fn redirect(location: &str) -> Response<Body> {
    let mut res = Response::new(Body::Empty);
    *res.status_mut() = StatusCode::FOUND;
    if let Ok(value) = header::HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, value);
    }
    keep_private(res.headers_mut());
    res
}

/// A login answer must not be cached, nor leak its URL (state, code,
/// invitation) onwards through the Referer header.
fn keep_private(headers: &mut header::HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        let res = page(StatusCode::BAD_REQUEST, "A <b>", &["<i>hi</i>"]);
        let Body::Text(html) = res.body() else {
            panic!("text body")
        };
        assert!(html.contains("<h1>A &lt;b&gt;</h1>"));
        assert!(html.contains("<p>&lt;i&gt;hi&lt;/i&gt;</p>"));
        assert_eq!(res.headers()["cache-control"], "no-store");
    }
}
