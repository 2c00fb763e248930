//! Content Posting API inits, status fetch and cancel against the simulator.

use crate::common::{Sim, error_code, file_upload_source};
use reqwest::StatusCode;
use serde_json::{Value, json};

const INBOX: &str = "/v2/post/publish/inbox/video/init/";
const DIRECT: &str = "/v2/post/publish/video/init/";
const CONTENT: &str = "/v2/post/publish/content/init/";
const CREATOR: &str = "/v2/post/publish/creator_info/query/";
const PREFIX: &str = "https://media.example.com/media/";

async fn sim() -> Sim {
    let sim = Sim::start().await;
    sim.user("alice").await;
    sim.user("bob").await;
    sim.settings(json!({"verified_url_prefixes": [PREFIX]}))
        .await;
    sim
}

fn small_file() -> Value {
    json!({"source_info": file_upload_source(1000, 1000)})
}

fn photo_body(mode: &str, count: usize, cover: i64) -> Value {
    let images: Vec<String> = (0..count).map(|i| format!("{PREFIX}p{i}.jpg")).collect();
    json!({
        "media_type": "PHOTO",
        "post_mode": mode,
        "post_info": {"title": "hello", "description": "world", "privacy_level": "SELF_ONLY"},
        "source_info": {"source": "PULL_FROM_URL", "photo_images": images, "photo_cover_index": cover}
    })
}

#[tokio::test]
async fn creator_info_and_its_errors() {
    let sim = sim().await;
    let token = sim.token("alice", &["video.publish"]).await;
    let (status, body) = sim.api(CREATOR, &token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["creator_username"], "alice_name");
    assert_eq!(
        body["data"]["privacy_level_options"],
        json!(["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"])
    );
    assert_eq!(body["data"]["max_video_post_duration_sec"], 600);

    let upload_only = sim.token("alice", &["video.upload"]).await;
    let (status, body) = sim.api(CREATOR, &upload_only, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "scope_not_authorized");

    sim.user_with(
        json!({"open_id": "carol", "username": "c", "display_name": "C", "banned": true}),
    )
    .await;
    let carol = sim.token("carol", &["video.publish", "video.upload"]).await;
    let (status, body) = sim.api(CREATOR, &carol, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(error_code(&body), "spam_risk_user_banned_from_posting");
    let (status, body) = sim.api(INBOX, &carol, small_file()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "spam_risk_user_banned_from_posting");
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn inbox_init_success_and_request_errors() {
    let sim = sim().await;
    let token = sim.token("alice", &["video.upload"]).await;
    let (status, body) = sim.api(INBOX, &token, small_file()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(error_code(&body), "ok");
    let publish_id = body["data"]["publish_id"].as_str().expect("publish_id");
    assert!(publish_id.starts_with("v_inbox_file~v2."));
    let upload_url = body["data"]["upload_url"].as_str().expect("upload_url");
    assert!(upload_url.starts_with(&format!("{}/upload/video/?upload_id=", sim.base)));
    assert!(upload_url.contains("&upload_token="));

    let (status, body) = sim
        .api(INBOX, &token, json!({"source_info": {"source": "PULL_FROM_URL", "video_url": format!("{PREFIX}v.mp4")}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["data"]["publish_id"]
            .as_str()
            .is_some_and(|p| p.starts_with("v_inbox_url~v2."))
    );
    assert!(body["data"].get("upload_url").is_none());

    let t = sim.token("alice", &["video.upload"]).await;
    // post_info is not a field of the inbox endpoint.
    let (status, body) = sim
        .api(
            INBOX,
            &t,
            json!({"post_info": {"title": "x"}, "source_info": file_upload_source(1000, 1000)}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_param")
    );
    // video_cover_timestamp_ms belongs in post_info, not source_info.
    let mut source = file_upload_source(1000, 1000);
    source["video_cover_timestamp_ms"] = json!(100);
    let (status, body) = sim.api(INBOX, &t, json!({"source_info": source})).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_param")
    );
    // Sizes as strings are the wrong type.
    let (status, body) = sim
        .api(INBOX, &t, json!({"source_info": {"source": "FILE_UPLOAD", "video_size": "1000", "chunk_size": 1000, "total_chunk_count": 1}}))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_param")
    );
    // Missing size fields.
    let (status, body) = sim
        .api(
            INBOX,
            &t,
            json!({"source_info": {"source": "FILE_UPLOAD", "video_size": 1000}}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_param")
    );

    // Content-Type other than JSON.
    let t = sim.token("alice", &["video.upload"]).await;
    let response = sim
        .http
        .post(sim.url(INBOX))
        .bearer_auth(&t)
        .header("Content-Type", "text/plain")
        .body(small_file().to_string())
        .send()
        .await
        .expect("call");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        error_code(&response.json::<Value>().await.expect("JSON")),
        "invalid_params"
    );

    // Unverified URL: 403 with no data object.
    let (status, body) = sim
        .api(INBOX, &t, json!({"source_info": {"source": "PULL_FROM_URL", "video_url": "https://other.example.com/media/v.mp4"}}))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "url_ownership_unverified")
    );
    assert!(body.get("data").is_none());
    let (status, body) = sim
        .api(INBOX, &t, json!({"source_info": {"source": "PULL_FROM_URL", "video_url": "http://media.example.com/media/v.mp4"}}))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "url_ownership_unverified")
    );

    // Missing and unknown tokens, and a scope the grant lacks.
    let response = sim
        .http
        .post(sim.url(INBOX))
        .json(&small_file())
        .send()
        .await
        .expect("call");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = sim.api(INBOX, "act.unknown", small_file()).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "access_token_invalid")
    );
    let basic = sim.token("alice", &["user.info.basic"]).await;
    let (status, body) = sim.api(INBOX, &basic, small_file()).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "scope_not_authorized")
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn token_expires_on_the_simulated_clock() {
    let sim = sim().await;
    let token = sim.token("alice", &["video.upload"]).await;
    sim.advance(7199).await;
    let (status, _) = sim.api(INBOX, &token, small_file()).await;
    assert_eq!(status, StatusCode::OK);
    sim.advance(2).await;
    let (status, body) = sim.api(INBOX, &token, small_file()).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "access_token_invalid")
    );

    let token = sim.token("alice", &["video.upload"]).await;
    sim.post_control("/_sim/tokens/expire", json!({"access_token": token}))
        .await;
    let (status, _) = sim.api(INBOX, &token, small_file()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn rate_limit_per_token_per_endpoint() {
    let sim = sim().await;
    sim.settings(json!({"pending_share_cap": 100, "retry_after_header": true}))
        .await;
    let token = sim.token("alice", &["video.upload", "video.publish"]).await;
    for _ in 0..6 {
        let (status, body) = sim.api(INBOX, &token, small_file()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let response = sim
        .http
        .post(sim.url(INBOX))
        .bearer_auth(&token)
        .json(&small_file())
        .send()
        .await
        .expect("call");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("retry-after").is_some());
    assert_eq!(
        error_code(&response.json::<Value>().await.expect("JSON")),
        "rate_limit_exceeded"
    );
    // Each init endpoint has its own window.
    let (status, _) = sim
        .api(CONTENT, &token, photo_body("MEDIA_UPLOAD", 1, 0))
        .await;
    assert_eq!(status, StatusCode::OK);
    sim.advance(60).await;
    let (status, _) = sim.api(INBOX, &token, small_file()).await;
    assert_eq!(status, StatusCode::OK);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn chunk_maths_over_http() {
    let sim = sim().await;
    let cases: &[(u64, u64, u64, bool)] = &[
        (1, 1, 1, true),
        (5 * 1024 * 1024 - 1, 5 * 1024 * 1024 - 1, 1, true),
        (64_000_000, 64_000_000, 1, true),
        (64_000_001, 64_000_001, 1, false),
        (300_000_000, 10_000_000, 30, true),
        (50_000_123, 10_000_000, 6, false),
    ];
    for &(size, chunk, count, accepted) in cases {
        let token = sim.token("alice", &["video.upload"]).await;
        let body = json!({"source_info": {"source": "FILE_UPLOAD", "video_size": size, "chunk_size": chunk, "total_chunk_count": count}});
        let (status, body) = sim.api(INBOX, &token, body).await;
        if accepted {
            assert_eq!(status, StatusCode::OK, "{size}/{chunk}/{count}: {body}");
            // Free the pending slot for the next case.
            let id = body["data"]["publish_id"].as_str().expect("publish_id");
            sim.post_control(
                &format!("/_sim/publishes/{id}/status"),
                json!({"status": "FAILED"}),
            )
            .await;
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{size}/{chunk}/{count}");
            assert_eq!(error_code(&body), "invalid_params");
            assert_eq!(body["error"]["message"], "The chunk size is invalid");
        }
    }
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn direct_post_rules() {
    let sim = sim().await;
    let emoji_title = "😀".repeat(1100);
    let token = sim.token("alice", &["video.publish"]).await;
    let body = json!({"post_info": {"privacy_level": "SELF_ONLY", "title": emoji_title, "disable_comment": true, "is_aigc": false}, "source_info": file_upload_source(1000, 1000)});
    let (status, resp) = sim.api(DIRECT, &token, body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert!(
        resp["data"]["publish_id"]
            .as_str()
            .is_some_and(|p| p.starts_with("v_pub_file~v2-1."))
    );
    let id = resp["data"]["publish_id"].as_str().expect("id");
    assert_eq!(
        sim.publish(id).await["post_info"]["title"],
        json!("😀".repeat(1100))
    );

    let too_long = format!("{}a", "😀".repeat(1100));
    let body = json!({"post_info": {"privacy_level": "SELF_ONLY", "title": too_long}, "source_info": file_upload_source(1000, 1000)});
    let (status, resp) = sim.api(DIRECT, &token, body).await;
    assert_eq!(
        (status, error_code(&resp)),
        (StatusCode::BAD_REQUEST, "invalid_param")
    );

    let body = json!({"post_info": {"privacy_level": "FOLLOWER_OF_CREATOR"}, "source_info": file_upload_source(1000, 1000)});
    let (status, resp) = sim.api(DIRECT, &token, body).await;
    assert_eq!(
        (status, error_code(&resp)),
        (StatusCode::FORBIDDEN, "privacy_level_option_mismatch")
    );

    let body = json!({"post_info": {"title": "no privacy"}, "source_info": file_upload_source(1000, 1000)});
    let (status, resp) = sim.api(DIRECT, &token, body).await;
    assert_eq!(
        (status, error_code(&resp)),
        (StatusCode::BAD_REQUEST, "invalid_param")
    );

    let token = sim.token("alice", &["video.publish"]).await;
    let body = json!({"post_info": {"privacy_level": "SELF_ONLY"}, "source_info": {"source": "PULL_FROM_URL", "video_url": format!("{PREFIX}v.mp4")}});
    let (status, resp) = sim.api(DIRECT, &token, body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert!(
        resp["data"]["publish_id"]
            .as_str()
            .is_some_and(|p| p.starts_with("v_pub_url~v2."))
    );

    // Unaudited: public account refused, private account with SELF_ONLY accepted.
    sim.settings(json!({"unaudited": true})).await;
    let body = json!({"post_info": {"privacy_level": "SELF_ONLY"}, "source_info": file_upload_source(1000, 1000)});
    let (status, resp) = sim.api(DIRECT, &token, body.clone()).await;
    assert_eq!(
        (status, error_code(&resp)),
        (
            StatusCode::FORBIDDEN,
            "unaudited_client_can_only_post_to_private_accounts"
        )
    );
    sim.user_with(
        json!({"open_id": "dana", "username": "d", "display_name": "D", "is_private": true}),
    )
    .await;
    let dana = sim.token("dana", &["video.publish"]).await;
    let (status, resp) = sim.api(DIRECT, &dana, body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    sim.settings(json!({"unaudited": false})).await;

    // Posting cap.
    sim.settings(json!({"direct_post_cap": 1})).await;
    let token = sim.token("alice", &["video.publish"]).await;
    let body = json!({"post_info": {"privacy_level": "SELF_ONLY"}, "source_info": file_upload_source(1000, 1000)});
    let (status, resp) = sim.api(DIRECT, &token, body).await;
    assert_eq!(
        (status, error_code(&resp)),
        (StatusCode::FORBIDDEN, "spam_risk_too_many_posts")
    );
    let (status, resp) = sim.api(CREATOR, &token, json!({})).await;
    assert_eq!(
        (status, error_code(&resp)),
        (StatusCode::OK, "spam_risk_too_many_posts")
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn pending_share_cap() {
    let sim = sim().await;
    let token = sim.token("alice", &["video.upload"]).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (status, body) = sim.api(INBOX, &token, small_file()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.push(body["data"]["publish_id"].as_str().expect("id").to_owned());
    }
    let (status, body) = sim.api(INBOX, &token, small_file()).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "spam_risk_too_many_pending_share")
    );
    assert!(body.get("data").is_none());
    // Photo drafts count against the same cap; bob has his own.
    let (status, body) = sim
        .api(CONTENT, &token, photo_body("MEDIA_UPLOAD", 1, 0))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "spam_risk_too_many_pending_share")
    );
    let bob = sim.token("bob", &["video.upload"]).await;
    assert_eq!(sim.api(INBOX, &bob, small_file()).await.0, StatusCode::OK);

    // A published draft frees its slot.
    sim.post_control(
        &format!("/_sim/publishes/{}/status", ids[0]),
        json!({"status": "PUBLISH_COMPLETE"}),
    )
    .await;
    sim.advance(60).await;
    assert_eq!(sim.api(INBOX, &token, small_file()).await.0, StatusCode::OK);
    assert_eq!(
        sim.api(INBOX, &token, small_file()).await.0,
        StatusCode::FORBIDDEN
    );
    // After 24 h the old ones no longer count.
    sim.advance(24 * 3600).await;
    let token = sim.token("alice", &["video.upload"]).await;
    assert_eq!(sim.api(INBOX, &token, small_file()).await.0, StatusCode::OK);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn photo_init_rules() {
    let sim = sim().await;
    let upload = sim.token("alice", &["video.upload"]).await;
    let (status, body) = sim
        .api(CONTENT, &upload, photo_body("MEDIA_UPLOAD", 35, 34))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["data"]["publish_id"]
            .as_str()
            .is_some_and(|p| p.starts_with("p_pub_url~v2."))
    );

    let (status, body) = sim
        .api(CONTENT, &upload, photo_body("MEDIA_UPLOAD", 36, 0))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_param")
    );
    let (status, body) = sim
        .api(CONTENT, &upload, photo_body("MEDIA_UPLOAD", 3, 3))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_param")
    );
    let (status, body) = sim
        .api(CONTENT, &upload, photo_body("MEDIA_UPLOAD", 0, 0))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_param")
    );
    let mut body = photo_body("MEDIA_UPLOAD", 1, 0);
    body["post_info"]["title"] = json!("x".repeat(91));
    let (status, resp) = sim.api(CONTENT, &upload, body).await;
    assert_eq!(
        (status, error_code(&resp)),
        (StatusCode::BAD_REQUEST, "invalid_param")
    );

    let upload = sim.token("alice", &["video.upload"]).await;
    let (status, body) = sim
        .api(CONTENT, &upload, photo_body("DIRECT_POST", 1, 0))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "scope_not_authorized")
    );
    let mut body = photo_body("MEDIA_UPLOAD", 1, 0);
    body["media_type"] = json!("VIDEO");
    let (status, resp) = sim.api(CONTENT, &upload, body).await;
    assert_eq!(
        (status, error_code(&resp)),
        (StatusCode::BAD_REQUEST, "invalid_param")
    );
    let mut body = photo_body("MEDIA_UPLOAD", 1, 0);
    body["source_info"]["photo_images"][0] = json!("https://elsewhere.example.com/p.jpg");
    let (status, resp) = sim.api(CONTENT, &upload, body).await;
    assert_eq!(
        (status, error_code(&resp)),
        (StatusCode::FORBIDDEN, "url_ownership_unverified")
    );

    let publish = sim.token("alice", &["video.publish"]).await;
    let (status, body) = sim
        .api(CONTENT, &publish, photo_body("DIRECT_POST", 2, 1))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut body = photo_body("DIRECT_POST", 1, 0);
    body["post_info"]["privacy_level"] = json!("FOLLOWER_OF_CREATOR");
    let (status, resp) = sim.api(CONTENT, &publish, body).await;
    assert_eq!(
        (status, error_code(&resp)),
        (StatusCode::FORBIDDEN, "privacy_level_option_mismatch")
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn status_fetch_lifecycle_and_ownership() {
    let sim = sim().await;
    let token = sim.token("alice", &["video.upload"]).await;
    let (_, body) = sim.api(INBOX, &token, small_file()).await;
    let id = body["data"]["publish_id"].as_str().expect("id").to_owned();

    let data = sim.status(&token, &id).await;
    assert_eq!(
        data,
        json!({"status": "PROCESSING_UPLOAD", "uploaded_bytes": 0})
    );

    sim.post_control(
        &format!("/_sim/publishes/{id}/status"),
        json!({"status": "SEND_TO_USER_INBOX"}),
    )
    .await;
    assert_eq!(
        sim.status(&token, &id).await["status"],
        "SEND_TO_USER_INBOX"
    );
    sim.post_control(
        &format!("/_sim/publishes/{id}/status"),
        json!({"status": "PUBLISH_COMPLETE", "post_ids": [7_459_287_841_546_292_488u64]}),
    )
    .await;
    let response = sim
        .http
        .post(sim.url("/v2/post/publish/status/fetch/"))
        .bearer_auth(&token)
        .json(&json!({"publish_id": id}))
        .send()
        .await
        .expect("status");
    let text = response.text().await.expect("body");
    // The id must go over the wire as an exact integer.
    assert!(
        text.contains("\"publicaly_available_post_id\":[7459287841546292488]"),
        "{text}"
    );

    sim.post_control(
        &format!("/_sim/publishes/{id}/status"),
        json!({"status": "FAILED", "fail_reason": "spam_risk_text"}),
    )
    .await;
    let data = sim.status(&token, &id).await;
    assert_eq!(data["fail_reason"], "spam_risk_text");

    let (status, body) = sim
        .api(
            "/v2/post/publish/status/fetch/",
            &token,
            json!({"publish_id": "v_inbox_file~v2.1"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_publish_id")
    );
    let bob = sim.token("bob", &["video.upload"]).await;
    let (status, body) = sim
        .api(
            "/v2/post/publish/status/fetch/",
            &bob,
            json!({"publish_id": id}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (
            StatusCode::BAD_REQUEST,
            "token_not_authorized_for_specified_publish_id"
        )
    );
    let (status, body) = sim
        .api(
            "/v2/post/publish/status/fetch/",
            &bob,
            json!({"publish_id": id, "extra": 1}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_param")
    );

    // 30 per minute.
    let token = sim.token("alice", &["video.upload"]).await;
    for _ in 0..30 {
        sim.status(&token, &id).await;
    }
    let (status, _) = sim
        .api(
            "/v2/post/publish/status/fetch/",
            &token,
            json!({"publish_id": id}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // The request log has the JSON body and a token hash, never the token.
    let log = sim
        .control(
            reqwest::Method::GET,
            "/_sim/requests?path_prefix=/v2/post/publish/inbox/&limit=1",
            None,
        )
        .await;
    let entries = log.as_array().expect("array");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["body"]["source_info"]["source"], "FILE_UPLOAD");
    assert_eq!(entries[0]["token_sha256"].as_str().map(str::len), Some(16));
    assert_eq!(entries[0]["status"], 200);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn cancel_refuses_file_uploads_and_unknown_ids() {
    let sim = sim().await;
    // Cancelling a pull that is still downloading is covered in tests/pull.rs.
    let token = sim.token("alice", &["video.upload"]).await;
    let (_, body) = sim.api(INBOX, &token, small_file()).await;
    let file_id = body["data"]["publish_id"].as_str().expect("id").to_owned();
    let (status, body) = sim
        .api(
            "/v2/post/publish/cancel/",
            &token,
            json!({"publish_id": file_id}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "publish_not_cancellable")
    );
    let (status, body) = sim
        .api(
            "/v2/post/publish/cancel/",
            &token,
            json!({"publish_id": "nope"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_publish_id")
    );
    sim.handle.shutdown().await;
}

/// `drop_answer`: the init is made (the publish exists, the request is in
/// the log with its status) and the connection drops before the answer.
#[tokio::test]
async fn a_dropped_answer_still_makes_the_publish() {
    let sim = sim().await;
    let token = sim.token("alice", &["video.upload"]).await;
    sim.post_control(
        "/_sim/faults",
        json!({"path_prefix": INBOX, "action": {"type": "drop_answer"}}),
    )
    .await;
    let sent = sim
        .http
        .post(sim.url(INBOX))
        .bearer_auth(&token)
        .json(&small_file())
        .send()
        .await;
    assert!(sent.is_err(), "no answer reaches the client: {sent:?}");
    let publishes = sim
        .control(reqwest::Method::GET, "/_sim/publishes", None)
        .await;
    let publishes = publishes
        .as_array()
        .or_else(|| publishes["publishes"].as_array())
        .cloned()
        .unwrap_or_default();
    assert_eq!(publishes.len(), 1, "{publishes:?}");
    let log = sim
        .control(
            reqwest::Method::GET,
            &format!("/_sim/requests?path_prefix={INBOX}"),
            None,
        )
        .await;
    let log = log
        .as_array()
        .or_else(|| log["requests"].as_array())
        .cloned()
        .unwrap_or_default();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["fault"], "drop_answer");
    assert_eq!(log[0]["status"], 200);
    // The next one is answered as usual.
    let (status, body) = sim.api(INBOX, &token, small_file()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
