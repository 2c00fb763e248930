//! `tiktok-drafts link` against the local stack: the link it prints opens
//! the account's creator page (its token verifies for that account at its
//! current link version), `--revoke` moves the version on, and bad input
//! fails clearly.

use crate::common::{Stack, assert_fails};
use shared::accounts::Accounts;
use shared::creator_link::CreatorLink;
use shared::invite::SigningKey;
use tiktok_drafts_tests::unique_name;

#[tokio::test]
async fn link_prints_a_signed_link_for_the_accounts_page_and_revoke_ends_it() {
    let stack = Stack::start().await;
    stack
        .connect("open-lia", "lia", &["user.info.basic", "video.upload"])
        .await;
    let key_id = unique_name("tiktok-drafts/invite-key");
    let key = SigningKey::create_if_missing(&stack.aws.secrets, &key_id)
        .await
        .unwrap();
    let base = "https://api.example.com/creator/";
    let made = stack
        .json(&[
            "link",
            "--account",
            "lia",
            "--page-url",
            base,
            "--key-secret-id",
            &key_id,
        ])
        .await;
    assert_eq!(made["account"], "lia");
    assert_eq!(made["open_id"], "open-lia");
    assert_eq!(made["link_version"], 0);
    assert_eq!(made["expires_at"], serde_json::Value::Null);
    let link = made["link"].as_str().unwrap();
    let token = link.strip_prefix(base).expect("under the page URL");
    let verified = CreatorLink::verify(token, &key, chrono::Utc::now()).unwrap();
    assert_eq!(verified.open_id(), "open-lia");
    assert_eq!(verified.link_version(), 0);
    assert!(
        !link.contains("lia/"),
        "names the account by open_id, inside the token"
    );

    // With a lifetime; and the page URL may come without its final slash.
    let made = stack
        .json(&[
            "link",
            "--account",
            "lia",
            "--ttl",
            "7d",
            "--page-url",
            "https://api.example.com/creator",
            "--key-secret-id",
            &key_id,
        ])
        .await;
    let token = made["link"]
        .as_str()
        .unwrap()
        .strip_prefix(base)
        .unwrap()
        .to_owned();
    let expires = CreatorLink::verify(&token, &key, chrono::Utc::now())
        .unwrap()
        .expires_at()
        .unwrap();
    assert!(expires > chrono::Utc::now() + chrono::Duration::days(6));

    let revoked = stack
        .json(&[
            "link",
            "--account",
            "lia",
            "--revoke",
            "--key-secret-id",
            &key_id,
        ])
        .await;
    assert_eq!(revoked["revoked"], true);
    assert_eq!(revoked["link_version"], 1);
    let account = Accounts::new(stack.aws.dynamodb.clone(), &stack.table)
        .get("open-lia")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.link_version, 1, "old links carry 0 and are refused");
    let text = stack.run(&["link", "--account", "lia", "--revoke"]).await;
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("stops working now"));
}

#[tokio::test]
async fn bad_link_requests_fail_with_a_clear_message() {
    let stack = Stack::start().await;
    stack
        .connect("open-max", "max", &["user.info.basic", "video.upload"])
        .await;
    let key_id = unique_name("tiktok-drafts/invite-key");
    SigningKey::create_if_missing(&stack.aws.secrets, &key_id)
        .await
        .unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "link",
                "--account",
                "nobody",
                "--page-url",
                "https://x.example.com/creator/",
            ],
            "no account is connected as \"nobody\"",
        ),
        (&["link", "--account", "max"], "CREATOR_PAGE_URL"),
        (
            &[
                "link",
                "--account",
                "max",
                "--page-url",
                "https://x.example.com/creator/?a=1",
            ],
            "without ? or #",
        ),
        (
            &["link", "--account", "max", "--page-url", "not a url"],
            "is not a URL",
        ),
    ];
    for (args, message) in cases {
        let mut all = args.to_vec();
        all.extend(["--key-secret-id", key_id.as_str()]);
        let out = stack.run(&all).await;
        assert_fails(&out, message);
    }
}
