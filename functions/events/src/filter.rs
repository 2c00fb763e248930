//! Which stream records reach the function at all: the event source
//! mapping's filter criteria. `template.yaml` carries these patterns (a test
//! compares them), and the handler checks the same in code
//! ([`crate::decide::item_kind`]), so that a mapping without filters, or a
//! replay from a tool that ignores them, still makes no event of the items
//! it does not care about (its own markers above all: each published event
//! writes one, and the stream would otherwise feed them back).

/// The filter patterns, one per item kind the function reads: inserts and
/// modifications of job and account items. Removals (TTL, deletes) and every
/// other item, markers included, never invoke it.
pub const FILTER_PATTERNS: [&str; 2] = [
    r#"{"eventName":["INSERT","MODIFY"],"dynamodb":{"Keys":{"pk":{"S":[{"prefix":"JOB#"}]},"sk":{"S":["JOB"]}}}}"#,
    r#"{"eventName":["INSERT","MODIFY"],"dynamodb":{"Keys":{"pk":{"S":[{"prefix":"ACCOUNT#"}]},"sk":{"S":["ACCOUNT"]}}}}"#,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{ACCOUNT_PREFIX, ACCOUNT_SK, JOB_PREFIX, JOB_SK};

    #[test]
    fn the_patterns_name_the_items_the_code_reads() {
        let parsed: Vec<serde_json::Value> = FILTER_PATTERNS
            .iter()
            .map(|p| serde_json::from_str(p).expect("valid JSON"))
            .collect();
        for (pattern, (prefix, sk)) in parsed
            .iter()
            .zip([(JOB_PREFIX, JOB_SK), (ACCOUNT_PREFIX, ACCOUNT_SK)])
        {
            assert_eq!(
                pattern["eventName"],
                serde_json::json!(["INSERT", "MODIFY"])
            );
            assert_eq!(pattern["dynamodb"]["Keys"]["pk"]["S"][0]["prefix"], prefix);
            assert_eq!(pattern["dynamodb"]["Keys"]["sk"]["S"][0], sk);
        }
    }
}
