//! Scripted faults: tests ask for the next matching requests to fail, hang or lose their
//! connection, to exercise the client's retry paths.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultAction {
    /// Answer with this status (and an error body when `error_code` is given).
    Status {
        status: u16,
        #[serde(default)]
        error_code: Option<String>,
    },
    /// Drop the connection without a response (after reading part of an upload body).
    Reset,
    /// Wait, then handle the request normally.
    Delay { ms: u64 },
    /// Handle the request normally (its state changes at once: a refresh rotates the
    /// refresh token), then wait before sending the answer. The strict reading of a slow
    /// answer: TikTok has acted while the client is still waiting, so a client that gives
    /// up early and tries again with what it had finds it spent.
    AnswerLate { ms: u64 },
    /// Handle the request normally (its state changes as usual), then leave `field` out
    /// of a success answer's `data`: a malformed answer to a request TikTok acted on.
    OmitField { field: String },
    /// Handle the request normally (its state changes as usual), then drop the connection
    /// without sending the answer: TikTok acted, and the client never hears of it.
    DropAnswer,
}

impl FaultAction {
    /// Answer with HTTP `status` and no error body.
    pub fn status(status: u16) -> Self {
        Self::Status {
            status,
            error_code: None,
        }
    }

    /// Answer with HTTP `status` and TikTok's error body carrying `code`.
    pub fn error(status: u16, code: &str) -> Self {
        Self::Status {
            status,
            error_code: Some(code.to_owned()),
        }
    }
}

/// Which requests a fault applies to, and what it does to them. Built in
/// tests as `FaultRule::new("/upload/", FaultAction::Reset).method("PUT").skip(2)`;
/// sent to `POST /_sim/faults` as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Matching requests to let through before the fault starts.
    #[serde(default)]
    pub skip: u32,
    /// Matching requests the fault applies to.
    #[serde(default = "one")]
    pub times: u32,
    pub action: FaultAction,
}

fn one() -> u32 {
    1
}

impl FaultRule {
    /// The next request (of any method) whose path starts with
    /// `path_prefix` gets `action`: once, unless [`FaultRule::times`] says
    /// otherwise.
    pub fn new(path_prefix: &str, action: FaultAction) -> Self {
        Self {
            method: None,
            path_prefix: Some(path_prefix.to_owned()),
            skip: 0,
            times: 1,
            action,
        }
    }

    /// Only requests with this HTTP method.
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_owned());
        self
    }

    /// Lets `count` matching requests through first.
    pub fn skip(mut self, count: u32) -> Self {
        self.skip = count;
        self
    }

    /// Applies to `count` matching requests.
    pub fn times(mut self, count: u32) -> Self {
        self.times = count;
        self
    }
}

impl FaultRule {
    /// Whether the rule is about this request.
    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
    }
}

#[derive(Debug, Default)]
pub struct Faults {
    rules: Vec<FaultRule>,
}

impl Faults {
    pub fn add(&mut self, rule: FaultRule) {
        if rule.times > 0 {
            self.rules.push(rule);
        }
    }

    pub fn list(&self) -> Vec<FaultRule> {
        self.rules.clone()
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// Every matching rule sees the request (its `skip` counts down); the first rule whose
    /// skip is used up fires. Spent rules are dropped.
    pub fn take(&mut self, method: &str, path: &str) -> Option<FaultAction> {
        let mut fired = None;
        for rule in &mut self.rules {
            if !rule.matches(method, path) {
                continue;
            }
            if rule.skip > 0 {
                rule.skip -= 1;
            } else if fired.is_none() {
                rule.times -= 1;
                fired = Some(rule.action.clone());
            }
        }
        self.rules.retain(|r| r.times > 0);
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_rule_is_the_json_one() {
        let parsed: FaultRule = serde_json::from_str(
            r#"{"method":"POST","path_prefix":"/v2/x/","skip":1,"times":2,"action":{"type":"status","status":500,"error_code":"internal_error"}}"#,
        )
        .expect("valid rule");
        let built = FaultRule::new("/v2/x/", FaultAction::error(500, "internal_error"))
            .method("POST")
            .skip(1)
            .times(2);
        assert_eq!(built, parsed);
        let json = serde_json::to_value(&built).expect("serialises");
        assert_eq!(serde_json::from_value::<FaultRule>(json).ok(), Some(parsed));
    }

    #[test]
    fn skip_then_fire_then_spent() {
        let mut faults = Faults::default();
        faults.add(
            serde_json::from_str(
                r#"{"method":"PUT","path_prefix":"/upload/","skip":1,"times":2,"action":{"type":"reset"}}"#,
            )
            .expect("valid rule"),
        );
        assert_eq!(faults.take("GET", "/upload/video/"), None);
        assert_eq!(faults.take("PUT", "/upload/video/"), None);
        assert_eq!(
            faults.take("PUT", "/upload/video/"),
            Some(FaultAction::Reset)
        );
        assert_eq!(
            faults.take("PUT", "/upload/video/"),
            Some(FaultAction::Reset)
        );
        assert_eq!(faults.take("PUT", "/upload/video/"), None);
        assert!(faults.list().is_empty());
    }
}
