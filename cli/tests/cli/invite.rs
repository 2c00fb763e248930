//! `tiktok-drafts invite` against local AWS: the link it prints carries an
//! invitation the login function accepts, and bad input fails clearly.

use std::process::Command;

use shared::aws::AwsClients;
use shared::invite::{Invitation, SigningKey};
use tiktok_drafts_tests::{local_aws, unique_name};

fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tiktok-drafts"))
}

#[tokio::test]
async fn invite_prints_a_signed_single_account_link() {
    let aws = AwsClients::from_config(&local_aws().await);
    let secret_id = unique_name("tiktok-drafts/invite-key");
    let key = SigningKey::create_if_missing(&aws.secrets, &secret_id)
        .await
        .unwrap();

    let out = cli()
        .args(["--json", "invite", "--account", "alice", "--ttl", "2h"])
        .args(["--login-url", "https://login.example.com/auth/start"])
        .args(["--key-secret-id", &secret_id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["account"], "alice");
    assert_eq!(json["rebind"], false);
    let link = url::Url::parse(json["link"].as_str().unwrap()).unwrap();
    assert_eq!(link.path(), "/auth/start");
    let token = link
        .query_pairs()
        .find(|(k, _)| k == "invite")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let invitation = Invitation::verify(&token, &key, chrono::Utc::now()).unwrap();
    assert_eq!(invitation.alias(), "alice");
    let ttl = invitation.expires_at() - chrono::Utc::now();
    assert!(ttl > chrono::Duration::minutes(119) && ttl <= chrono::Duration::hours(2));

    // Text output names the account and the link.
    let out = cli()
        .args(["invite", "--account", "bob", "--rebind"])
        .args(["--login-url", "https://login.example.com/auth/start"])
        .args(["--key-secret-id", &secret_id])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\u{201c}bob\u{201d}"), "{text}");
    assert!(
        text.contains("https://login.example.com/auth/start?invite="),
        "{text}"
    );
}

#[tokio::test]
async fn bad_input_fails_with_a_clear_message() {
    let _ = local_aws().await;
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "invite",
                "--account",
                "Not An Alias",
                "--login-url",
                "https://x.example.com/auth/start",
            ],
            "alias",
        ),
        (
            &[
                "invite",
                "--account",
                "a",
                "--ttl",
                "90d",
                "--login-url",
                "https://x.example.com/auth/start",
            ],
            "30 days",
        ),
        (
            &["invite", "--account", "a", "--login-url", "not a url"],
            "not a URL",
        ),
        (
            &[
                "invite",
                "--account",
                "a",
                "--login-url",
                "https://x.example.com/auth/start",
                "--key-secret-id",
                "tiktok-drafts/absent-key",
            ],
            "tiktok-drafts/absent-key",
        ),
    ];
    for (args, expected) in cases {
        let out = cli().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }

    // No login URL at all: the variable is named, with where to find it,
    // not a usage dump.
    for empty in [None, Some("")] {
        let mut cmd = cli();
        cmd.args(["invite", "--account", "a"]);
        match empty {
            None => cmd.env_remove("LOGIN_URL"),
            Some(v) => cmd.env("LOGIN_URL", v),
        };
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.starts_with("tiktok-drafts: LOGIN_URL is not set"),
            "{stderr}"
        );
        assert!(stderr.contains("LoginStartUrl"), "{stderr}");
        assert!(!stderr.contains("Usage:"), "{stderr}");
    }
}

#[tokio::test]
async fn invite_move_makes_a_link_that_allows_moving_the_account() {
    let aws = AwsClients::from_config(&local_aws().await);
    let secret_id = unique_name("tiktok-drafts/invite-key");
    let key = SigningKey::create_if_missing(&aws.secrets, &secret_id)
        .await
        .unwrap();
    let out = cli()
        .args(["--json", "invite", "--account", "alice-studio", "--move"])
        .args(["--login-url", "https://login.example.com/auth/start"])
        .args(["--key-secret-id", &secret_id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["move"], true);
    assert_eq!(json["rebind"], false);
    let link = url::Url::parse(json["link"].as_str().unwrap()).unwrap();
    let token = link
        .query_pairs()
        .find(|(k, _)| k == "invite")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let invitation = Invitation::verify(&token, &key, chrono::Utc::now()).unwrap();
    assert!(invitation.move_alias());
    assert!(!invitation.rebind());
    assert!(invitation.issued_at().is_some());
}
