//! The simulator's control API: what the creator does in the TikTok app
//! (signs up, posts a draft), and what TikTok holds.

use crate::DemoResult;

/// The simulator's control API: what the creator does in the TikTok app.
pub struct SimControl {
    pub base: String,
    pub http: reqwest::Client,
}

impl SimControl {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> DemoResult<serde_json::Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let res = request
            .send()
            .await
            .map_err(|e| format!("simulator {path}: {}", e.without_url()))?;
        let status = res.status();
        let value: serde_json::Value = res
            .json()
            .await
            .map_err(|e| format!("simulator {path}: {}", e.without_url()))?;
        if !status.is_success() {
            return Err(format!("simulator {path} answered {status}: {value}"));
        }
        Ok(value)
    }
}
