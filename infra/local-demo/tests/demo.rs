//! The README's demo command runs the main job end to end: the binary
//! `make demo` runs, with the function binaries under cargo-lambda's
//! emulator, against the moto server of this test run, on a stack made
//! from template.yaml on moto's CloudFormation, so this is also the proof
//! that the template's stack carries the whole flow. `cargo test
//! --workspace` (`make test`) builds the function binaries it starts.

use std::process::Command;

use tiktok_drafts_tests::local_aws;

#[tokio::test]
async fn the_demo_runs_start_to_finish_and_takes_everything_down() {
    let sdk = local_aws().await;
    let output = Command::new(env!("CARGO_BIN_EXE_local-demo"))
        .output()
        .expect("the demo binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for expected in [
        // The deployment is template.yaml's.
        "(template.yaml, translated and created on CloudFormation; account",
        // The login, through the HTTP API in front of the real binary.
        "GET /auth/start -> oauth-callback -> 302",
        "browser           to TikTok's authorize page",
        "GET /auth/callback -> oauth-callback -> 200",
        "connected         Demo Creator (open_id open-demo-creator, scopes user.info.basic,video.upload, state active)",
        // S3's notifications through the queue to the upload function.
        "SQS -> s3-upload",
        "0 retried",
        // The checker's runs take both jobs to the inbox.
        "status-checker    checked 2 job(s)",
        // The webhooks of the creator's post reach the webhook function.
        "POST /webhooks/tiktok -> tiktok-webhook -> 200",
        "published  post id",
        // TikTok holds the right media: the photos converted and fitted,
        // the phone JPEG and the HEIC turned upright (unturned, each would
        // be 1080x810).
        "photos            3 JPEG(s) pulled: 1080x1440, 1080x1440, 800x800",
        "video             7 chunk(s); SHA-256 equals the S3 object's",
        "dead-letter queue empty",
        // The events function, fed from the table's stream, and a replay
        // of the whole stream that publishes nothing again.
        "0 to the dead-letter queue",
        "replayed stream   0 new event(s)",
        // The creator's link, made by the CLI, opens her page through the
        // HTTP API, listing the demo's uploads.
        "tiktok-drafts link --account demo",
        "link              http://127.0.0.1:",
        "GET /creator/{token} -> creator-page -> 200",
        "page              200",
        "lists 2 of 2 upload(s): trip, holiday clip.mp4",
        "authorization     revoked",
        "every upload is in the creator's TikTok drafts",
        "taken down",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}\n{stderr}"
        );
    }
    let inbox_lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("TikTok SEND_TO_USER_INBOX"))
        .collect();
    assert!(
        inbox_lines.iter().any(|l| l.contains("slideshow"))
            && inbox_lines.iter().any(|l| l.contains("video")),
        "both jobs reach SEND_TO_USER_INBOX:\n{stdout}"
    );
    // The CLI's listing ends with one video published and the slideshow
    // in the inbox.
    assert!(
        stdout.lines().any(|l| l.contains("slideshow  inbox")),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.contains("video      published")),
        "{stdout}"
    );

    // Each change of the demo's drafts reached the bus exactly once: both
    // drafts in the inbox, the video posted.
    let job_id = |listed: &str| {
        stdout
            .lines()
            .find(|l| l.contains(listed))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("the CLI lists {listed:?}:\n{stdout}"))
            .to_owned()
    };
    let (video, slideshow) = (job_id("video      published"), job_id("slideshow  inbox"));
    let events: Vec<(String, String)> = stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("event "))
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(fields.get(1), Some(&"job"), "an event line: {l}");
            (fields[0].to_owned(), fields[2].to_owned())
        })
        .collect();
    for (kind, job) in [
        ("upload.in_inbox", &video),
        ("upload.in_inbox", &slideshow),
        ("upload.posted", &video),
    ] {
        let times = events.iter().filter(|(k, j)| k == kind && j == job).count();
        assert_eq!(times, 1, "{kind} for job {job}, once:\n{stdout}");
    }
    let mut distinct = events.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), events.len(), "an event twice:\n{stdout}");

    // Taken down means gone: the table (which the template retains when
    // the stack is deleted), the secrets and the bucket of this run.
    let printed = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(str::trim))
            .unwrap_or_else(|| panic!("the demo names its {name}:\n{stdout}"))
            .to_owned()
    };
    let table = printed("table");
    // "<prefix>/app, <prefix>/invite-key"
    let secrets_prefix = printed("secrets")
        .split_once("/app")
        .map(|(prefix, _)| prefix.to_owned())
        .expect("the demo names its secrets");
    // "<bucket> (versioned; ...)"
    let bucket = printed("bucket")
        .split_whitespace()
        .next()
        .expect("the demo names its bucket")
        .to_owned();
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    assert!(
        dynamodb
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .is_err(),
        "the table {table} is still there"
    );
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk)
        .list_secrets()
        // Only this run's: other tests' secrets share the account.
        .filters(
            aws_sdk_secretsmanager::types::Filter::builder()
                .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                .values(format!("{secrets_prefix}/"))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        !secrets
            .secret_list()
            .iter()
            .filter_map(|s| s.name())
            .any(|n| n.starts_with(&format!("{secrets_prefix}/"))),
        "secrets of {secrets_prefix} are left"
    );
    let s3 = shared::aws::s3_client(&sdk);
    assert!(
        s3.head_bucket().bucket(&bucket).send().await.is_err(),
        "the bucket {bucket} is still there"
    );
}
