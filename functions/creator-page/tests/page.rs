//! The creator's page against local AWS: the service in process (links,
//! revocation, pages of 50, the 30-day window, one account only, headers),
//! then the real binary under the Lambda emulator behind a local HTTP API,
//! in headless Chromium at a phone and a desktop viewport
//! (functions/creator-page/tests/browser/creator_page.mjs).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use creator_page::PageService;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, RequestExt as _};
use shared::accounts::{Accounts, ConnectedAccount};
use shared::aws::AwsClients;
use shared::creator_link::CreatorLink;
use shared::invite::{Invitation, SigningKey};
use shared::jobs::{
    Job, JobKind, JobStatus, Jobs, LastError, NewJob, ObjectVersion, PostTarget, Upload,
};
use shared::tiktok::FailReason;
use tiktok_drafts_tests::http_api::HttpApi;
use tiktok_drafts_tests::lambda::LambdaFunction;
use tiktok_drafts_tests::{local_aws, unique_name};

const CAPTION: &str = r#"<b>Sunset</b> & "waves" <img src=x onerror="window.__xss=1"> #beach"#;
/// A note of the video probe, as the upload function writes it on a job.
const LONG_NOTE: &str =
    "4 min 5 s long: some creators can post only 3 minutes and must trim it in the app";
const POSTED_LINK: &str = "https://www.tiktok.com/@alice_tt/video/7459287841546292488";

struct Data {
    aws: AwsClients,
    table: String,
    key_secret_id: String,
    key: SigningKey,
}

async fn data() -> Data {
    let aws = AwsClients::from_config(&local_aws().await);
    let table = unique_name("drafts");
    shared::table::create_table(&aws.dynamodb, &table)
        .await
        .unwrap();
    let key_secret_id = format!("{table}/invite-key");
    let key = SigningKey::create_if_missing(&aws.secrets, &key_secret_id)
        .await
        .unwrap();
    Data {
        aws,
        table,
        key_secret_id,
        key,
    }
}

impl Data {
    fn accounts(&self) -> Accounts {
        Accounts::new(self.aws.dynamodb.clone(), &self.table)
    }

    async fn connect(&self, alias: &str) -> String {
        let open_id = format!("open-{alias}");
        self.accounts()
            .connect(
                ConnectedAccount {
                    open_id: open_id.clone(),
                    alias: alias.into(),
                    display_name: Some(format!("{alias} <creator>")),
                    avatar_url: None,
                    scopes: vec!["user.info.basic".into(), "video.upload".into()],
                    access_expires_at: Utc::now() + TimeDelta::hours(2),
                    refresh_expires_at: None,
                },
                shared::accounts::AliasPermits::default(),
                &format!("invite-{alias}"),
            )
            .await
            .unwrap();
        open_id
    }

    async fn put(&self, jobs: &[Job]) {
        Jobs::new(self.aws.dynamodb.clone(), &self.table)
            .put_many(jobs)
            .await
            .unwrap();
    }

    fn service(&self) -> PageService {
        PageService::new(self.aws.dynamodb.clone(), &self.table, self.key.clone())
    }

    fn token(&self, open_id: &str, version: u64) -> String {
        CreatorLink::new(open_id, version, None).sign(&self.key)
    }
}

/// A job of `alias` for `key`, created `age` ago, in `status`.
fn job(alias: &str, key: &str, age: TimeDelta, status: JobStatus) -> Job {
    let created: DateTime<Utc> = Utc::now() - age;
    let mut job = Job::new(
        NewJob {
            upload: Upload {
                bucket: "uploads".into(),
                key: format!("uploads/{alias}/{key}"),
                version: ObjectVersion::etag(key),
                size: 1000,
            },
            alias: Some(alias.into()),
            open_id: Some(format!("open-{alias}")),
            kind: JobKind::Video,
            post: PostTarget::Draft,
            caption: None,
        },
        created,
    );
    job.status = status;
    job.updated_at = created + TimeDelta::minutes(3);
    job
}

/// alice's uploads of every kind, one too old to show, and one of bob's.
async fn seed(data: &Data) {
    data.connect("alice").await;
    data.connect("bob").await;
    let mut inbox = job("alice", "sunset.mp4", TimeDelta::hours(1), JobStatus::Inbox);
    inbox.caption = Some(CAPTION.into());
    inbox.notes = vec![LONG_NOTE.into()];
    let mut posted = job(
        "alice",
        "posted.mp4",
        TimeDelta::hours(2),
        JobStatus::Published,
    );
    posted.post_ids = vec![7_459_287_841_546_292_488];
    posted.share_urls = vec![POSTED_LINK.into()];
    let mut failed = job(
        "alice",
        "too-fast.mp4",
        TimeDelta::hours(3),
        JobStatus::Failed,
    );
    failed.fail_reason = Some(FailReason::FrameRateCheckFailed);
    failed.last_error = Some(LastError {
        code: "frame_rate_check_failed".into(),
        message: "The video's frame rate is outside 23-60 FPS.".into(),
    });
    let held = job("alice", "sixth.mp4", TimeDelta::hours(4), JobStatus::Queued);
    let sending = job(
        "alice",
        "sending.mp4",
        TimeDelta::hours(5),
        JobStatus::Processing,
    );
    let mut slideshow = job(
        "alice",
        "trip/slideshow.json",
        TimeDelta::hours(6),
        JobStatus::Inbox,
    );
    slideshow.kind = JobKind::Slideshow;
    slideshow.caption = Some("Photos keep their caption at TikTok".into());
    let old = job(
        "alice",
        "last-month.mp4",
        TimeDelta::days(40),
        JobStatus::Published,
    );
    let mut bobs = job(
        "bob",
        "bob-private.mp4",
        TimeDelta::minutes(30),
        JobStatus::Inbox,
    );
    bobs.caption = Some("bob's own caption".into());
    data.put(&[inbox, posted, failed, held, sending, slideshow, old, bobs])
        .await;
}

const ORDER: [&str; 6] = [
    "sunset.mp4",
    "posted.mp4",
    "too-fast.mp4",
    "sixth.mp4",
    "sending.mp4",
    "trip",
];

#[tokio::test]
async fn the_page_lists_one_accounts_recent_uploads_newest_first() {
    let data = data().await;
    seed(&data).await;
    let (status, html) = data
        .service()
        .page(&data.token("open-alice", 0), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let positions: Vec<usize> = ORDER
        .iter()
        .map(|f| {
            html.find(&format!("<h2>{f}</h2>"))
                .unwrap_or_else(|| panic!("{f} missing in {html}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "newest first");
    assert_eq!(html.matches("<li class=\"upload").count(), ORDER.len());
    assert!(!html.contains("last-month.mp4"), "older than 30 days");
    assert!(
        !html.contains("bob"),
        "another account's uploads never show"
    );
    assert!(
        html.contains("alice &lt;creator&gt;"),
        "the name is escaped"
    );
    assert!(!html.contains("<img src=x"), "the caption is text");
    assert_eq!(html.matches("data-copy=").count(), 1, "one inbox video");
    // bob's link shows bob's, and nothing of alice's.
    let (status, html) = data.service().page(&data.token("open-bob", 0), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("bob-private.mp4") && !html.contains("sunset.mp4"));
}

#[tokio::test]
async fn forged_revoked_foreign_and_unknown_links_get_403() {
    let data = data().await;
    seed(&data).await;
    let service = data.service();
    let good = data.token("open-alice", 0);
    let other_key = SigningKey::from_bytes(vec![9; 32]).unwrap();
    let invitation = Invitation::new("alice", std::time::Duration::from_secs(600), false)
        .unwrap()
        .sign(&data.key);
    let mut tampered = good.clone();
    tampered.pop();
    tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
    for (what, token) in [
        (
            "another key",
            CreatorLink::new("open-alice", 0, None).sign(&other_key),
        ),
        ("an invitation", invitation),
        ("a tampered signature", tampered),
        ("garbage", "not-a-token".to_owned()),
        ("an account that is not there", data.token("open-nobody", 0)),
        ("a version from the future", data.token("open-alice", 1)),
        (
            "an expired link",
            CreatorLink::new("open-alice", 0, Some(Utc::now() - TimeDelta::minutes(1)))
                .sign(&data.key),
        ),
    ] {
        let (status, html) = service.page(&token, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
        assert!(html.contains("This link no longer works"), "{what}");
        assert!(!html.contains("sunset.mp4"), "{what}");
    }
    // Revoking ends the link; a new one works.
    assert_eq!(service.page(&good, None).await.0, StatusCode::OK);
    let version = data.accounts().revoke_links("open-alice").await.unwrap();
    assert_eq!(version, 1);
    assert_eq!(service.page(&good, None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        service.page(&data.token("open-alice", 1), None).await.0,
        StatusCode::OK
    );
    assert!(
        data.accounts().revoke_links("open-nobody").await.is_err(),
        "no account, nothing to revoke"
    );
}

#[tokio::test]
async fn pages_hold_at_most_50_and_a_cursor_leads_to_the_rest() {
    let data = data().await;
    data.connect("carol").await;
    let jobs: Vec<Job> = (0..55)
        .map(|i| {
            job(
                "carol",
                &format!("clip-{i:02}.mp4"),
                TimeDelta::minutes(i),
                JobStatus::Processing,
            )
        })
        .collect();
    data.put(&jobs).await;
    let service = data.service();
    let token = data.token("open-carol", 0);
    let (status, first) = service.page(&token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first.matches("<li class=\"upload").count(), 50);
    assert!(first.contains("<h2>clip-00.mp4</h2>") && first.contains("<h2>clip-49.mp4</h2>"));
    let cursor = first
        .split("href=\"?after=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to older uploads");
    let (status, second) = service.page(&token, Some(cursor)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second.matches("<li class=\"upload").count(), 5);
    assert!(second.contains("<h2>clip-50.mp4</h2>") && second.contains("<h2>clip-54.mp4</h2>"));
    assert!(
        !second.contains("?after="),
        "the last page links no further"
    );
    assert!(second.contains("Newest uploads"));
    // A damaged cursor is a clear 400, not another account's data.
    let (status, html) = service.page(&token, Some("%%%")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
}

#[tokio::test]
async fn requests_get_the_pages_headers_and_only_get_and_head() {
    let data = data().await;
    seed(&data).await;
    let service = data.service();
    let token = data.token("open-alice", 0);
    let request = |method: Method, path: &str| {
        lambda_http::http::Request::builder()
            .method(method)
            .uri(format!("https://api.example.com{path}"))
            .body(Body::Empty)
            .unwrap()
    };
    let res = service
        .handle(request(Method::GET, &format!("/creator/{token}")))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let headers = res.headers();
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-robots-tag"], "noindex, nofollow");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'; script-src 'sha256-")
    );
    let head = service
        .handle(request(Method::HEAD, &format!("/creator/{token}")))
        .await;
    assert_eq!(head.status(), StatusCode::OK);
    assert!(matches!(head.body(), Body::Empty));
    let post = service
        .handle(request(Method::POST, &format!("/creator/{token}")))
        .await;
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    for path in ["/creator/", "/creator/a/b", "/elsewhere"] {
        let res = service.handle(request(Method::GET, path)).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // The cursor comes as a query parameter.
    let with_cursor =
        request(Method::GET, &format!("/creator/{token}")).with_query_string_parameters(
            std::collections::HashMap::from([("after".to_owned(), "%%%".to_owned())]),
        );
    assert_eq!(
        service.handle(with_cursor).await.status(),
        StatusCode::BAD_REQUEST
    );
}

/// Where the browser test's pieces are: Debian's Chromium and the Node
/// package next to the script. A machine without them fails here, loudly,
/// with what to install: this test never skips itself.
fn browser_tools() -> (PathBuf, PathBuf) {
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        chromium.is_file(),
        "the browser test needs Chromium at {} (Debian: apt-get install chromium; infra/browser-test-deps.sh does it, and make test runs that)",
        chromium.display()
    );
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "the browser test needs playwright-core: npm ci --prefix {} (infra/browser-test-deps.sh does it, and make test runs that)",
        dir.display()
    );
    (chromium, dir)
}

#[tokio::test]
async fn the_page_in_a_real_browser_at_phone_and_desktop_sizes() {
    let (chromium, browser_dir) = browser_tools();
    let data = data().await;
    seed(&data).await;
    data.accounts()
        .record_username("open-alice", "alice_tt")
        .await
        .unwrap();
    let page = LambdaFunction::start(
        Path::new(env!("CARGO_BIN_EXE_creator-page")),
        &[
            ("TABLE_NAME", data.table.clone()),
            ("INVITE_KEY_SECRET_ID", data.key_secret_id.clone()),
        ],
    )
    .await;
    let api = HttpApi::serve(vec![("/creator/", Arc::new(tokio::sync::Mutex::new(page)))])
        .await
        .unwrap();
    let page_url = format!("{}/creator/", api.base_url());

    // Links as `tiktok-drafts link` makes them (cli/tests/cli/link.rs runs the
    // command itself): one, then revoked, then a new one.
    let link = |token: String| format!("{page_url}{token}");
    let revoked = link(data.token("open-alice", 0));
    assert_eq!(data.accounts().revoke_links("open-alice").await.unwrap(), 1);
    let good = link(data.token("open-alice", 1));
    // A link to bob's page with alice's signature: forged.
    let bob = data.token("open-bob", 0);
    let (bob_payload, _) = bob.split_once('.').unwrap();
    let (_, alice_signature) = good.rsplit_once('.').unwrap();
    let forged = link(format!("{bob_payload}.{alice_signature}"));

    let screenshots = std::env::var_os("SCREENSHOTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("creator-page"));
    let plan = serde_json::json!({
        "chromium": chromium,
        "good": good,
        "revoked": revoked,
        "forged": forged,
        "caption": CAPTION,
        "order": ORDER,
        "statuses": {
            "sunset.mp4": "In your TikTok inbox",
            "posted.mp4": "Posted",
            "too-fast.mp4": "Failed: the video's frame rate is outside what TikTok accepts",
            "sixth.mp4": "Waiting: you have 5 drafts open in TikTok",
            "sending.mp4": "Sending to TikTok",
            "trip": "In your TikTok inbox",
        },
        "posted_file": "posted.mp4",
        "posted_link": POSTED_LINK,
        "failed_file": "too-fast.mp4",
        "failure_texts": ["Export it at 30 or 60 frames per second"],
        "notes": {"sunset.mp4": LONG_NOTE},
        "foreign_texts": ["bob-private.mp4", "bob's own caption", "last-month.mp4"],
        "screenshots_dir": screenshots,
    });
    let plan_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(plan_file.path(), plan.to_string()).unwrap();
    let run = tokio::process::Command::new("node")
        .arg(browser_dir.join("creator_page.mjs"))
        .arg(plan_file.path())
        .current_dir(&browser_dir)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(240), run)
        .await
        .expect("the browser test finishes within 240 s")
        .expect("node runs (the browser test needs Node.js 20 or newer)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    for name in ["phone", "desktop"] {
        assert!(
            screenshots
                .join(format!("creator-page-{name}.png"))
                .is_file(),
            "no {name} screenshot"
        );
    }
}
