//! The README's demo command runs the main job end to end: the same binary
//! `make demo` runs, against the moto server of this test run.

use std::process::Command;

#[test]
fn the_demo_runs_start_to_finish() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1"),
        "run the tests with `make test` (AWS_ENDPOINT_URL must point at moto, got {endpoint:?})"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_local-demo"))
        .output()
        .expect("the demo binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for expected in [
        "/auth/start       302",
        "connected         Demo Creator (open_id open-demo-creator, scopes user.info.basic,video.upload, state active)",
        "chunk  7 accepted,  75.0 / 75.0 MB",
        "bytes check       TikTok's SHA-256 equals the S3 object's",
        "status SEND_TO_USER_INBOX",
        "both drafts are in the creator's TikTok inbox",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert_eq!(
        stdout.matches("status SEND_TO_USER_INBOX").count(),
        2,
        "the video and the photo draft both reach the inbox:\n{stdout}"
    );
}
