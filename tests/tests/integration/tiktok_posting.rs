//! The Content Posting client against the simulator: every endpoint, its
//! success and each documented class of error.

use shared::storage::BytesSource;
use shared::tiktok::chunk_plan::DEFAULT_CHUNK_SIZE;
use shared::tiktok::upload::{ChunkRetryPolicy, Uploader, VideoContentType};
use shared::tiktok::{
    ApiErrorCode, ChunkPlan, DirectPostInfo, ErrorClass, FailReason, PhotoPost, PrivacyLevel,
    PublishState, TikTokError, VideoSource,
};
use tiktok_drafts_tests::{FaultAction, FaultRule};
use tiktok_drafts_tests::{TestSim, fake_mp4};

const DRAFT_SCOPES: &[&str] = &["user.info.basic", "video.upload"];
const ALL_SCOPES: &[&str] = &["user.info.basic", "video.upload", "video.publish"];

fn small_video_source(len: u64) -> VideoSource {
    VideoSource::FileUpload(ChunkPlan::new(len, DEFAULT_CHUNK_SIZE).unwrap())
}

async fn upload_small(sim: &TestSim, token: &shared::Secret, bytes: Vec<u8>) -> String {
    let client = sim.client();
    let plan = ChunkPlan::new(bytes.len() as u64, DEFAULT_CHUNK_SIZE).unwrap();
    let init = client
        .init_inbox_video(token, &VideoSource::FileUpload(plan))
        .await
        .unwrap();
    let uploader = Uploader::new(reqwest::Client::new(), ChunkRetryPolicy::immediate(3))
        .with_hosts(client.endpoints().upload_hosts());
    uploader
        .upload(
            init.upload_url.as_ref().unwrap().expose(),
            &plan,
            VideoContentType::Mp4,
            &BytesSource::new(bytes),
            0,
            &mut (),
        )
        .await
        .unwrap();
    init.publish_id
}

fn api_code(err: &TikTokError) -> ApiErrorCode {
    err.api_code()
        .cloned()
        .unwrap_or_else(|| panic!("expected an API error, got {err}"))
}

#[tokio::test]
async fn creator_info_needs_the_publish_scope() {
    let sim = TestSim::start(|_| {}).await;
    sim.seed_user(
        "open-a",
        serde_json::json!({"privacy_level_options": ["SELF_ONLY", "MUTUAL_FOLLOW_FRIENDS"], "max_video_post_duration_sec": 300}),
    )
    .await;
    let client = sim.client();

    let full = sim.tokens("open-a", ALL_SCOPES).await;
    let info = client.creator_info(&full.access_token).await.unwrap();
    assert_eq!(info.creator_nickname.as_deref(), Some("Creator open-a"));
    assert!(info.allows(PrivacyLevel::SelfOnly));
    assert!(!info.allows(PrivacyLevel::PublicToEveryone));
    assert_eq!(info.max_video_post_duration_sec, Some(300));

    let drafts_only = sim.tokens("open-a", DRAFT_SCOPES).await;
    let err = client
        .creator_info(&drafts_only.access_token)
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), ApiErrorCode::ScopeNotAuthorized);
    assert_eq!(err.class(), ErrorClass::NeedsReauthorization);
    sim.shutdown().await;
}

#[tokio::test]
async fn inbox_file_upload_reaches_the_inbox_with_the_same_bytes() {
    let sim = TestSim::start(|_| {}).await;
    sim.seed_user("open-b", serde_json::json!({})).await;
    let tokens = sim.tokens("open-b", DRAFT_SCOPES).await;
    let bytes = fake_mp4(3_000_000, 1);
    let publish_id = upload_small(&sim, &tokens.access_token, bytes.clone()).await;
    assert!(publish_id.starts_with("v_inbox_file~"), "{publish_id}");

    let status = sim
        .client()
        .fetch_status(&tokens.access_token, &publish_id)
        .await
        .unwrap();
    assert_eq!(status.status, PublishState::SendToUserInbox);
    let record = sim.publish(&publish_id).await;
    assert_eq!(record["sha256"], tiktok_drafts_tests::sha256_hex(&bytes));
    assert_eq!(record["total_chunk_count"], 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn status_follows_the_lifecycle_and_keeps_large_post_ids() {
    let sim = TestSim::start(|s| s.auto_advance = false).await;
    sim.seed_user("open-c", serde_json::json!({})).await;
    let tokens = sim.tokens("open-c", DRAFT_SCOPES).await;
    let client = sim.client();
    let publish_id = upload_small(&sim, &tokens.access_token, fake_mp4(1_000, 2)).await;

    let s = client
        .fetch_status(&tokens.access_token, &publish_id)
        .await
        .unwrap();
    assert!(s.status.is_processing(), "{s:?}");

    for (status, extra) in [
        ("SEND_TO_USER_INBOX", serde_json::json!({})),
        (
            "PUBLISH_COMPLETE",
            serde_json::json!({"post_ids": [7459287841546292488u64]}),
        ),
    ] {
        let mut body = serde_json::json!({"status": status});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        sim.post(&format!("/_sim/publishes/{publish_id}/status"), body)
            .await;
        let s = client
            .fetch_status(&tokens.access_token, &publish_id)
            .await
            .unwrap();
        assert_eq!(s.status.as_str(), status);
    }
    let s = client
        .fetch_status(&tokens.access_token, &publish_id)
        .await
        .unwrap();
    assert_eq!(s.post_ids, vec![7459287841546292488]);

    // A failure carries its reason, classified.
    let other = upload_small(&sim, &tokens.access_token, fake_mp4(1_000, 3)).await;
    sim.post(
        &format!("/_sim/publishes/{other}/status"),
        serde_json::json!({"status": "FAILED", "fail_reason": "internal"}),
    )
    .await;
    let s = client
        .fetch_status(&tokens.access_token, &other)
        .await
        .unwrap();
    assert_eq!(s.status, PublishState::Failed);
    assert_eq!(s.fail_reason, Some(FailReason::Internal));
    assert!(s.fail_reason.unwrap().is_retryable());
    sim.shutdown().await;
}

#[tokio::test]
async fn status_errors_for_unknown_and_foreign_publish_ids() {
    let sim = TestSim::start(|_| {}).await;
    sim.seed_user("open-d", serde_json::json!({})).await;
    sim.seed_user("open-e", serde_json::json!({})).await;
    let d = sim.tokens("open-d", DRAFT_SCOPES).await;
    let e = sim.tokens("open-e", DRAFT_SCOPES).await;
    let client = sim.client();
    let publish_id = upload_small(&sim, &d.access_token, fake_mp4(2_000, 4)).await;

    let err = client
        .fetch_status(&d.access_token, "v_inbox_file~v2.999999")
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), ApiErrorCode::InvalidPublishId);
    let err = client
        .fetch_status(&e.access_token, &publish_id)
        .await
        .unwrap_err();
    assert_eq!(
        api_code(&err),
        ApiErrorCode::TokenNotAuthorizedForSpecifiedPublishId
    );
    assert_eq!(err.class(), ErrorClass::Permanent);
    sim.shutdown().await;
}

#[tokio::test]
async fn status_reads_are_retried_through_a_passing_5xx() {
    let sim = TestSim::start(|_| {}).await;
    sim.seed_user("open-f", serde_json::json!({})).await;
    let t = sim.tokens("open-f", DRAFT_SCOPES).await;
    let publish_id = upload_small(&sim, &t.access_token, fake_mp4(2_000, 5)).await;
    sim.fault(
        FaultRule::new(
            "/v2/post/publish/status/fetch/",
            FaultAction::error(503, "internal_error"),
        )
        .times(2),
    )
    .await;
    let s = sim
        .client()
        .fetch_status(&t.access_token, &publish_id)
        .await
        .expect("the third attempt succeeds");
    assert_eq!(s.status, PublishState::SendToUserInbox);
    let status_calls = sim.requests("/v2/post/publish/status/fetch/").await;
    assert_eq!(status_calls.len(), 3, "two faults, one success");
    sim.shutdown().await;
}

#[tokio::test]
async fn inits_are_rate_limited_per_token_and_never_retried_by_the_client() {
    let sim = TestSim::start(|_| {}).await;
    sim.seed_user("open-g", serde_json::json!({})).await;
    let t = sim.tokens("open-g", DRAFT_SCOPES).await;
    let client = sim.client();
    // Each draft is marked posted at once, so the pending-drafts cap (5)
    // stays out of the way of the rate limit (6 a minute).
    for i in 0..6 {
        let init = client
            .init_inbox_video(&t.access_token, &small_video_source(1000))
            .await
            .unwrap_or_else(|e| panic!("init {i}: {e}"));
        sim.post(
            &format!("/_sim/publishes/{}/status", init.publish_id),
            serde_json::json!({"status": "PUBLISH_COMPLETE"}),
        )
        .await;
    }
    let err = client
        .init_inbox_video(&t.access_token, &small_video_source(1000))
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), ApiErrorCode::RateLimitExceeded);
    assert_eq!(err.class(), ErrorClass::Retryable);
    let inits = sim.requests("/v2/post/publish/inbox/video/init/").await;
    assert_eq!(
        inits.len(),
        7,
        "the client sent the 7th init once, no retry"
    );

    sim.advance_clock(61).await;
    client
        .init_inbox_video(&t.access_token, &small_video_source(1000))
        .await
        .expect("a new minute, a new allowance");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_sixth_pending_draft_hits_the_cap() {
    let sim = TestSim::start(|_| {}).await;
    sim.seed_user("open-h", serde_json::json!({})).await;
    let client = sim.client();
    let mut ids = Vec::new();
    for _ in 0..5 {
        // A fresh token per init keeps the per-token rate limit out of it.
        let t = sim.tokens("open-h", DRAFT_SCOPES).await;
        ids.push(
            client
                .init_inbox_video(&t.access_token, &small_video_source(1000))
                .await
                .unwrap()
                .publish_id,
        );
    }
    let t = sim.tokens("open-h", DRAFT_SCOPES).await;
    let err = client
        .init_inbox_video(&t.access_token, &small_video_source(1000))
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), ApiErrorCode::SpamRiskTooManyPendingShare);
    assert_eq!(err.class(), ErrorClass::CapReached);
    assert!(err.to_string().contains("HTTP 403"), "{err}");

    // Posting one of the drafts frees a slot.
    sim.post(
        &format!("/_sim/publishes/{}/status", ids[0]),
        serde_json::json!({"status": "PUBLISH_COMPLETE"}),
    )
    .await;
    client
        .init_inbox_video(&t.access_token, &small_video_source(1000))
        .await
        .expect("a slot is free again");
    sim.shutdown().await;
}

#[tokio::test]
async fn direct_post_checks_privacy_and_title() {
    let sim = TestSim::start(|_| {}).await;
    sim.seed_user(
        "open-i",
        serde_json::json!({"privacy_level_options": ["MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]}),
    )
    .await;
    let t = sim.tokens("open-i", ALL_SCOPES).await;
    let client = sim.client();

    let err = client
        .init_direct_video(
            &t.access_token,
            &DirectPostInfo::new(PrivacyLevel::PublicToEveryone),
            &small_video_source(1000),
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), ApiErrorCode::PrivacyLevelOptionMismatch);

    // A title over 2200 UTF-16 units is refused before it is sent.
    let mut post = DirectPostInfo::new(PrivacyLevel::SelfOnly);
    post.title = Some("😀".repeat(1101));
    let err = client
        .init_direct_video(&t.access_token, &post, &small_video_source(1000))
        .await
        .unwrap_err();
    assert!(matches!(err, TikTokError::InvalidRequest(_)), "{err}");

    post.title = Some("😀".repeat(1100));
    let init = client
        .init_direct_video(&t.access_token, &post, &small_video_source(1000))
        .await
        .unwrap();
    assert!(
        init.publish_id.starts_with("v_pub_file~"),
        "{}",
        init.publish_id
    );
    assert!(init.upload_url.is_some());

    // Drafts-only tokens cannot direct post.
    let drafts = sim.tokens("open-i", DRAFT_SCOPES).await;
    let err = client
        .init_direct_video(
            &drafts.access_token,
            &DirectPostInfo::new(PrivacyLevel::SelfOnly),
            &small_video_source(1000),
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), ApiErrorCode::ScopeNotAuthorized);
    sim.shutdown().await;
}

#[tokio::test]
async fn unaudited_apps_post_only_privately_to_private_accounts() {
    let sim = TestSim::start(|s| s.unaudited = true).await;
    sim.seed_user(
        "open-j",
        serde_json::json!({"privacy_level_options": ["PUBLIC_TO_EVERYONE", "SELF_ONLY"], "is_private": false}),
    )
    .await;
    let t = sim.tokens("open-j", ALL_SCOPES).await;
    let err = sim
        .client()
        .init_direct_video(
            &t.access_token,
            &DirectPostInfo::new(PrivacyLevel::SelfOnly),
            &small_video_source(1000),
        )
        .await
        .unwrap_err();
    assert_eq!(
        api_code(&err),
        ApiErrorCode::UnauditedClientCanOnlyPostToPrivateAccounts
    );
    assert_eq!(err.class(), ErrorClass::Permanent);
    sim.shutdown().await;
}

#[tokio::test]
async fn banned_creators_cannot_init() {
    let sim = TestSim::start(|_| {}).await;
    sim.seed_user("open-k", serde_json::json!({"banned": true}))
        .await;
    let t = sim.tokens("open-k", DRAFT_SCOPES).await;
    let err = sim
        .client()
        .init_inbox_video(&t.access_token, &small_video_source(1000))
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), ApiErrorCode::SpamRiskUserBannedFromPosting);
    assert_eq!(err.class(), ErrorClass::Permanent);
    sim.shutdown().await;
}

#[tokio::test]
async fn photo_posts_are_validated_before_sending_and_by_tiktok() {
    let sim = TestSim::start(|s| {
        s.verified_url_prefixes = vec!["https://media.example.com/media/".into()]
    })
    .await;
    sim.seed_user("open-l", serde_json::json!({})).await;
    let t = sim.tokens("open-l", DRAFT_SCOPES).await;
    let client = sim.client();

    // 36 images, a cover out of range, a long title: refused locally.
    let many: Vec<String> = (0..36)
        .map(|i| format!("https://media.example.com/media/{i}.jpg"))
        .collect();
    let err = client
        .init_photo(&t.access_token, &PhotoPost::draft(many, 0))
        .await
        .unwrap_err();
    assert!(matches!(err, TikTokError::InvalidRequest(_)), "{err}");
    let two = vec![
        "https://media.example.com/media/a.jpg".to_owned(),
        "https://media.example.com/media/b.jpg".to_owned(),
    ];
    let err = client
        .init_photo(&t.access_token, &PhotoPost::draft(two.clone(), 2))
        .await
        .unwrap_err();
    assert!(matches!(err, TikTokError::InvalidRequest(_)), "{err}");
    let mut long = PhotoPost::draft(two.clone(), 0);
    long.title = Some("é".repeat(91));
    assert!(client.init_photo(&t.access_token, &long).await.is_err());

    // An unverified URL: TikTok's 403.
    let err = client
        .init_photo(
            &t.access_token,
            &PhotoPost::draft(vec!["https://elsewhere.example.com/media/a.jpg".into()], 0),
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), ApiErrorCode::UrlOwnershipUnverified);
    assert_eq!(err.class(), ErrorClass::Permanent);

    // A valid draft is accepted (the pull itself is tested with moto).
    let mut ok = PhotoPost::draft(two, 1);
    ok.title = Some("Trip 🌍".into());
    ok.description = Some("Day one".into());
    let init = client.init_photo(&t.access_token, &ok).await.unwrap();
    assert!(
        init.publish_id.starts_with("p_pub_url~"),
        "{}",
        init.publish_id
    );
    let record = sim.publish(&init.publish_id).await;
    assert_eq!(record["post_mode"], "MEDIA_UPLOAD");
    sim.shutdown().await;
}

/// A server that accepts connections and never answers, so a pull from it
/// stays in progress for as long as the test needs.
async fn hanging_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (format!("http://{addr}/media/"), task)
}

#[tokio::test]
async fn cancel_only_stops_pulls_in_progress() {
    let (prefix, server) = hanging_server().await;
    let sim = TestSim::start(|s| {
        s.verified_url_prefixes = vec![prefix.clone()];
        s.allow_http_pull = true;
    })
    .await;
    sim.seed_user("open-m", serde_json::json!({})).await;
    let t = sim.tokens("open-m", DRAFT_SCOPES).await;
    let client = sim.client();

    let file_upload = client
        .init_inbox_video(&t.access_token, &small_video_source(1000))
        .await
        .unwrap();
    let err = client
        .cancel(&t.access_token, &file_upload.publish_id)
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), ApiErrorCode::PublishNotCancellable);

    let pull = client
        .init_inbox_video(
            &t.access_token,
            &VideoSource::PullFromUrl {
                video_url: format!("{prefix}v.mp4"),
            },
        )
        .await
        .unwrap();
    assert!(pull.upload_url.is_none());
    assert!(
        pull.publish_id.starts_with("v_inbox_url~"),
        "{}",
        pull.publish_id
    );
    let s = client
        .fetch_status(&t.access_token, &pull.publish_id)
        .await
        .unwrap();
    assert_eq!(s.status, PublishState::ProcessingDownload);
    client
        .cancel(&t.access_token, &pull.publish_id)
        .await
        .unwrap();
    let s = client
        .fetch_status(&t.access_token, &pull.publish_id)
        .await
        .unwrap();
    assert_eq!(s.status, PublishState::Failed);
    assert_eq!(s.fail_reason, Some(FailReason::PublishCancelled));
    sim.shutdown().await;
    server.abort();
}
