//! `upload`, `jobs` and `status` against the local stack: a local video goes
//! to the simulator's drafts exactly once, the job shows it, and bad input
//! fails clearly with nothing sent.

use crate::common::{Stack, assert_fails};
use tiktok_drafts_tests::{FaultAction, FaultRule};
use tiktok_drafts_tests::{fake_mp4, sha256_hex, test_image};

#[tokio::test]
async fn a_local_video_goes_to_drafts_once_and_the_job_follows_it() {
    let stack = Stack::start().await;
    stack
        .connect("open-up", "alice", &["user.info.basic", "video.upload"])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("clip.mp4");
    // Up to 64,000,000 bytes a video goes up as one chunk.
    let bytes = fake_mp4(6 * 1024 * 1024 + 123, 7);
    std::fs::write(&video, &bytes).unwrap();
    let path = video.to_str().unwrap();

    let out = stack
        .json(&[
            "upload",
            path,
            "--account",
            "alice",
            "--caption",
            "  Hello \u{1F600} world  ",
            "--chunk-size",
            "5242880",
        ])
        .await;
    let job_id = out["job_id"].as_str().unwrap().to_owned();
    let publish_id = out["publish_id"].as_str().unwrap().to_owned();
    assert_eq!(out["status"], "processing");
    assert_eq!(out["account"], "alice");
    assert_eq!(out["already_sent"], false);
    assert_eq!(out["caption"], "Hello \u{1F600} world");
    assert_eq!(out["sha256"], sha256_hex(&bytes));
    assert_eq!(job_id.len(), 64);

    // The simulator holds exactly the file's bytes, as an inbox draft.
    let publish = stack.sim.publish(&publish_id).await;
    assert_eq!(publish["sha256"], sha256_hex(&bytes));
    assert_eq!(publish["kind"], "inbox_video");
    assert_eq!(publish["total_chunk_count"], 1);
    assert_eq!(publish["video_size"], bytes.len() as u64);

    // The job record: a local file, processing, with the publish_id.
    let status = stack.json(&["status", &job_id]).await;
    assert_eq!(status["job"]["status"], "processing");
    assert_eq!(status["job"]["publish_id"], publish_id.as_str());
    assert_eq!(status["job"]["bucket"], "(local-file)");
    assert_eq!(status["job"]["local_file"], true);
    assert_eq!(status["job"]["size"], bytes.len() as u64);
    let key = status["job"]["key"].as_str().unwrap();
    let canonical = std::fs::canonicalize(&video).unwrap();
    assert!(
        key.ends_with(&format!(":{}", canonical.display())),
        "key is <host>:<absolute path>: {key}"
    );
    // TikTok's own status, asked with the account's token.
    let tiktok_status = status["tiktok"]["status"].as_str().unwrap();
    assert!(
        ["SEND_TO_USER_INBOX", "PROCESSING_UPLOAD"].contains(&tiktok_status),
        "{status}"
    );
    // By publish_id too.
    let by_publish = stack.json(&["status", &publish_id]).await;
    assert_eq!(by_publish["job"]["job_id"], job_id.as_str());

    // `jobs --json` lists it, by the index (unfinished status) and by scan.
    let listed = stack.json(&["jobs", "--status", "processing"]).await;
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![job_id.as_str()]);
    let all = stack.json(&["jobs", "--account", "alice"]).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert_eq!(all[0]["job_id"], job_id.as_str());
    assert_eq!(all[0]["status"], "processing");
    let none = stack.json(&["jobs", "--account", "bob"]).await;
    assert_eq!(none.as_array().unwrap().len(), 0);
    let failed = stack.json(&["jobs", "--status", "failed"]).await;
    assert_eq!(failed.as_array().unwrap().len(), 0);

    // Text output is a table naming the job.
    let text = stack.run(&["jobs"]).await;
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("STATUS") && text.contains(&job_id[..12]),
        "{text}"
    );

    // The same command again makes no second draft.
    let inits_before = stack.requests("/v2/post/publish/inbox/video/init/").await;
    let again = stack
        .json(&[
            "upload",
            path,
            "--account",
            "alice",
            "--chunk-size",
            "5242880",
        ])
        .await;
    assert_eq!(again["job_id"], job_id.as_str());
    assert_eq!(again["publish_id"], publish_id.as_str());
    assert_eq!(again["already_sent"], true);
    assert_eq!(
        stack.requests("/v2/post/publish/inbox/video/init/").await,
        inits_before
    );
    assert_eq!(stack.publishes().await.len(), 1);

    stack.sim.shutdown().await;
}

#[tokio::test]
async fn an_interrupted_upload_resumes_from_the_saved_chunk() {
    let stack = Stack::start().await;
    stack
        .connect("open-resume", "carol", &["user.info.basic", "video.upload"])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("long.mp4");
    // Above 64,000,000 bytes: two chunks of 32,000,000 (the last one
    // taking the remainder).
    let bytes = fake_mp4(64_001_000, 11);
    std::fs::write(&video, &bytes).unwrap();
    let path = video.to_str().unwrap();

    // The second chunk meets a 503 on every try, so the run gives up with
    // the first chunk saved.
    stack
        .sim
        .fault(
            FaultRule::new("/upload/", FaultAction::status(503))
                .method("PUT")
                .skip(1)
                .times(5),
        )
        .await;
    let out = stack
        .run(&[
            "upload",
            path,
            "--account",
            "carol",
            "--chunk-size",
            "32000000",
        ])
        .await;
    assert_fails(&out, "run the same command again");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stopped at byte 32000000"), "{stderr}");
    let uploading = stack.json(&["jobs", "--status", "uploading"]).await;
    assert_eq!(uploading.as_array().unwrap().len(), 1);
    assert_eq!(uploading[0]["next_offset"], 32_000_000);

    stack.sim.clear_faults().await;
    let out = stack
        .json(&[
            "upload",
            path,
            "--account",
            "carol",
            "--chunk-size",
            "32000000",
        ])
        .await;
    assert_eq!(out["status"], "processing");
    assert_eq!(out["job_id"], uploading[0]["job_id"]);
    let publish = stack.sim.publish(out["publish_id"].as_str().unwrap()).await;
    assert_eq!(publish["sha256"], sha256_hex(&bytes));
    assert_eq!(publish["total_chunk_count"], 2);
    assert_eq!(
        stack.requests("/v2/post/publish/inbox/video/init/").await,
        1,
        "one init for both runs"
    );
    stack.sim.shutdown().await;
}

#[tokio::test]
async fn bad_input_fails_clearly_and_sends_nothing() {
    let stack = Stack::start().await;
    stack
        .connect("open-bad", "dave", &["user.info.basic", "video.upload"])
        .await;
    let dir = tempfile::tempdir().unwrap();

    // A PNG named .mp4.
    let png = dir.path().join("not-a-video.mp4");
    std::fs::write(&png, test_image(64, 64, image::ImageFormat::Png)).unwrap();
    let out = stack
        .run(&["upload", png.to_str().unwrap(), "--account", "dave"])
        .await;
    assert_fails(&out, "PNG image, not a video");
    assert_eq!(out.status.code(), Some(1));

    // A missing file.
    let missing = dir.path().join("missing.mp4");
    let out = stack
        .run(&["upload", missing.to_str().unwrap(), "--account", "dave"])
        .await;
    assert_fails(&out, "missing.mp4");
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such file"));

    // An account nobody connected.
    let video = dir.path().join("ok.mp4");
    std::fs::write(&video, fake_mp4(4096, 3)).unwrap();
    let out = stack
        .run(&["upload", video.to_str().unwrap(), "--account", "nobody"])
        .await;
    assert_fails(
        &out,
        "no TikTok account is connected as \u{201c}nobody\u{201d}",
    );

    // Nothing reached TikTok's posting API or upload host, and no job exists.
    assert_eq!(stack.requests("/v2/post/").await, 0);
    assert_eq!(stack.requests("/upload/").await, 0);
    assert!(stack.publishes().await.is_empty());
    let jobs = stack.json(&["jobs"]).await;
    assert_eq!(jobs.as_array().unwrap().len(), 0, "{jobs}");

    // Unknown job or publish id for status; a bad --status for jobs.
    let out = stack.run(&["status", "v_inbox_file~v2.404"]).await;
    assert_fails(&out, "no job has the id or publish_id");
    let out = stack.run(&["jobs", "--status", "done"]).await;
    assert_fails(&out, "is not a job status");
    stack.sim.shutdown().await;
}

#[tokio::test]
async fn a_sixth_pending_draft_is_refused_before_anything_is_recorded() {
    let stack = Stack::start().await;
    stack
        .connect("open-full", "erin", &["user.info.basic", "video.upload"])
        .await;
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5u64 {
        let video = dir.path().join(format!("v{i}.mp4"));
        std::fs::write(&video, fake_mp4(2048, 100 + i)).unwrap();
        let out = stack
            .json(&["upload", video.to_str().unwrap(), "--account", "erin"])
            .await;
        assert_eq!(out["status"], "processing");
    }
    let sixth = dir.path().join("v5.mp4");
    std::fs::write(&sixth, fake_mp4(2048, 200)).unwrap();
    let out = stack
        .run(&["upload", sixth.to_str().unwrap(), "--account", "erin"])
        .await;
    assert_fails(&out, "5 pending drafts");
    assert_eq!(out.status.code(), Some(3), "exit code 3: try again later");
    assert_eq!(stack.publishes().await.len(), 5);
    let jobs = stack.json(&["jobs", "--account", "erin"]).await;
    assert_eq!(jobs.as_array().unwrap().len(), 5, "the sixth left no job");
    stack.sim.shutdown().await;
}

/// The init reaches TikTok, which makes the draft, and its answer is lost
/// on the way back. The CLI runs the upload function's use case, so the job
/// is flagged for the operator (`stuck`, `init_unconfirmed`) instead of
/// waiting to retry, and running the same command again, twice, never
/// inits a second time: one draft, however often it is run.
#[tokio::test]
async fn an_init_whose_answer_is_lost_is_flagged_and_never_sent_twice() {
    const INIT: &str = "/v2/post/publish/inbox/video/init/";
    let stack = Stack::start().await;
    stack
        .connect("open-lost", "gina", &["user.info.basic", "video.upload"])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("lost.mp4");
    std::fs::write(&video, fake_mp4(4096, 21)).unwrap();
    let path = video.to_str().unwrap();
    stack
        .sim
        .fault(FaultRule::new(INIT, FaultAction::DropAnswer).method("POST"))
        .await;

    let out = stack.run(&["upload", path, "--account", "gina"]).await;
    assert_fails(&out, "look in the creator's TikTok inbox");
    assert_fails(&out, "init_unconfirmed");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stack.requests(INIT).await, 1);
    assert_eq!(stack.publishes().await.len(), 1, "TikTok made the draft");
    let jobs = stack.json(&["jobs", "--account", "gina"]).await;
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
    assert_eq!(jobs[0]["status"], "stuck");
    assert_eq!(jobs[0]["error"]["code"], "init_unconfirmed");
    assert_eq!(jobs[0]["publish_id"], serde_json::Value::Null);

    for _ in 0..2 {
        let again = stack.run(&["upload", path, "--account", "gina"]).await;
        assert_fails(&again, "init_unconfirmed");
    }
    assert_eq!(stack.requests(INIT).await, 1, "no second init");
    assert_eq!(stack.publishes().await.len(), 1, "no second draft");
    let jobs = stack.json(&["jobs", "--account", "gina"]).await;
    assert_eq!(jobs[0]["status"], "stuck");
    stack.sim.shutdown().await;
}

/// TikTok ends the account's access token long before its expiry: `status`
/// refreshes it once and still shows TikTok's answer.
#[tokio::test]
async fn status_refreshes_a_token_tiktok_ended_early_once() {
    let stack = Stack::start().await;
    stack
        .connect("open-early", "early", &["user.info.basic", "video.upload"])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("clip.mp4");
    std::fs::write(&video, fake_mp4(300_000, 9)).unwrap();
    let out = stack
        .json(&["upload", video.to_str().unwrap(), "--account", "early"])
        .await;
    let job_id = out["job_id"].as_str().unwrap().to_owned();
    let refreshes = || async {
        stack
            .sim
            .requests("/v2/oauth/token/")
            .await
            .iter()
            .filter(|r| r["grant_type"] == "refresh_token")
            .count()
    };
    assert_eq!(refreshes().await, 0);

    stack
        .sim
        .post(
            "/_sim/users/open-early/invalidate_access",
            serde_json::json!({}),
        )
        .await;
    let status = stack.json(&["status", &job_id]).await;
    assert!(status["tiktok"]["status"].is_string(), "{status}");
    assert!(status["tiktok_error"].is_null(), "{status}");
    assert_eq!(refreshes().await, 1, "one refresh");
    // The next command uses the refreshed token without another refresh.
    stack.json(&["status", &job_id]).await;
    assert_eq!(refreshes().await, 1);
}
