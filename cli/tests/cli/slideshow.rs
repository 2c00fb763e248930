//! `slideshow` against the local stack: local images become JPEGs in the
//! bucket, TikTok pulls them as a photo draft, and bad input sends nothing.

use crate::common::{Stack, assert_fails};
use tiktok_drafts_tests::{FaultAction, FaultRule};
use tiktok_drafts_tests::{fake_mp4, test_image};

#[tokio::test]
async fn local_images_become_a_photo_draft_once() {
    let stack = Stack::start().await;
    stack
        .connect("open-show", "lena", &["user.info.basic", "video.upload"])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("1-big.png");
    std::fs::write(&big, test_image(2000, 3000, image::ImageFormat::Png)).unwrap();
    let jpeg = dir.path().join("2.jpg");
    std::fs::write(&jpeg, test_image(640, 480, image::ImageFormat::Jpeg)).unwrap();
    let webp = dir.path().join("3.webp");
    std::fs::write(&webp, test_image(300, 300, image::ImageFormat::WebP)).unwrap();
    let images = [
        big.to_str().unwrap(),
        jpeg.to_str().unwrap(),
        webp.to_str().unwrap(),
    ];
    let mut args = vec!["slideshow"];
    args.extend_from_slice(&images);
    args.extend_from_slice(&[
        "--account",
        "lena",
        "--caption",
        "Summer trip\nthree photos from the beach",
        "--cover",
        "1",
    ]);

    let out = stack.json(&args).await;
    assert_eq!(out["status"], "processing");
    assert_eq!(out["account"], "lena");
    assert_eq!(out["title"], "Summer trip");
    let job_id = out["job_id"].as_str().unwrap().to_owned();
    let publish_id = out["publish_id"].as_str().unwrap().to_owned();
    let keys: Vec<String> = out["media_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 3);
    for (i, key) in keys.iter().enumerate() {
        // `<index>-<content hash>.jpg`: a cache never serves an older JPEG.
        let name = key
            .strip_prefix(&format!("media/{job_id}/{i}-"))
            .unwrap_or_else(|| panic!("{key}"));
        assert!(name.ends_with(".jpg") && name.len() == 16 + 4, "{key}");
    }

    // The JPEGs are in the bucket, and TikTok pulled exactly them.
    let publish = stack.sim.publish(&publish_id).await;
    assert_eq!(publish["kind"], "photo");
    assert_eq!(publish["post_mode"], "MEDIA_UPLOAD");
    let pulled = publish["images"].as_array().unwrap();
    assert_eq!(pulled.len(), 3, "{publish}");
    for (key, pulled) in keys.iter().zip(pulled) {
        let object = stack
            .aws
            .s3
            .get_object()
            .bucket(&stack.bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(object.content_type(), Some("image/jpeg"));
        let bytes = object.body.collect().await.unwrap().into_bytes();
        assert_eq!(pulled["sha256"], tiktok_drafts_tests::sha256_hex(&bytes));
        assert_eq!(pulled["format"], "jpeg", "{pulled}");
        assert!(pulled["width"].as_u64().unwrap() <= 1080);
        assert!(pulled["height"].as_u64().unwrap() <= 1920);
    }
    // The 2000 x 3000 PNG was fitted inside 1080 x 1920.
    assert_eq!(pulled[0]["width"], 1080);
    assert_eq!(pulled[0]["height"], 1620);
    assert_eq!(publish["post_info"]["title"], "Summer trip");

    // The job is listed; the same command again makes no second draft.
    let jobs = stack.json(&["jobs", "--account", "lena"]).await;
    assert_eq!(jobs.as_array().unwrap().len(), 1);
    assert_eq!(jobs[0]["kind"], "slideshow");
    assert_eq!(jobs[0]["job_id"], job_id.as_str());
    let again = stack.json(&args).await;
    assert_eq!(again["already_sent"], true);
    assert_eq!(again["publish_id"], publish_id.as_str());
    assert_eq!(stack.publishes().await.len(), 1);
    stack.sim.shutdown().await;
}

#[tokio::test]
async fn bad_slideshows_fail_clearly_and_send_nothing() {
    let stack = Stack::start().await;
    stack
        .connect("open-bad-show", "mia", &["user.info.basic", "video.upload"])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("a.png");
    std::fs::write(&png, test_image(32, 32, image::ImageFormat::Png)).unwrap();
    let video = dir.path().join("b.png");
    std::fs::write(&video, fake_mp4(4096, 1)).unwrap();
    let png = png.to_str().unwrap();

    let out = stack
        .run(&[
            "slideshow",
            png,
            video.to_str().unwrap(),
            "--account",
            "mia",
        ])
        .await;
    assert_fails(&out, "b.png is not an image");
    let out = stack
        .run(&["slideshow", png, "/no/such/image.png", "--account", "mia"])
        .await;
    assert_fails(&out, "/no/such/image.png");
    let out = stack
        .run(&["slideshow", png, "--account", "mia", "--cover", "1"])
        .await;
    assert_fails(&out, "--cover 1 is out of range");
    let out = stack.run(&["slideshow", png, "--account", "nobody"]).await;
    assert_fails(&out, "\u{201c}nobody\u{201d}");
    let out = stack
        .run(&[
            "slideshow",
            png,
            "--account",
            "mia",
            "--media-presigned-urls",
            "false",
        ])
        .await;
    assert_fails(&out, "MEDIA_BASE_URL");

    assert_eq!(stack.requests("/v2/post/").await, 0);
    assert!(stack.publishes().await.is_empty());
    let jobs = stack.json(&["jobs"]).await;
    assert_eq!(jobs.as_array().unwrap().len(), 0);
    stack.sim.shutdown().await;
}

/// A photo post's init reaches TikTok and its answer is lost: as for a
/// video, the job is flagged, and the same command again converts nothing
/// and offers nothing a second time.
#[tokio::test]
async fn a_photo_init_whose_answer_is_lost_is_flagged_and_never_sent_twice() {
    const INIT: &str = "/v2/post/publish/content/init/";
    let stack = Stack::start().await;
    stack
        .connect(
            "open-lost-show",
            "nora",
            &["user.info.basic", "video.upload"],
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.png");
    std::fs::write(&a, test_image(64, 48, image::ImageFormat::Png)).unwrap();
    let b = dir.path().join("b.jpg");
    std::fs::write(&b, test_image(48, 64, image::ImageFormat::Jpeg)).unwrap();
    let args = [
        "slideshow",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--account",
        "nora",
        "--caption",
        "Lost and found",
    ];
    stack
        .sim
        .fault(FaultRule::new(INIT, FaultAction::DropAnswer).method("POST"))
        .await;

    let out = stack.run(&args).await;
    assert_fails(&out, "look in the creator's TikTok inbox");
    assert_fails(&out, "init_unconfirmed");
    assert_eq!(stack.requests(INIT).await, 1);
    assert_eq!(stack.publishes().await.len(), 1, "TikTok took the photos");
    let jobs = stack.json(&["jobs", "--account", "nora"]).await;
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
    assert_eq!(jobs[0]["kind"], "slideshow");
    assert_eq!(jobs[0]["status"], "stuck");
    assert_eq!(jobs[0]["error"]["code"], "init_unconfirmed");

    for _ in 0..2 {
        let again = stack.run(&args).await;
        assert_fails(&again, "init_unconfirmed");
    }
    assert_eq!(stack.requests(INIT).await, 1, "no second init");
    assert_eq!(stack.publishes().await.len(), 1, "no second draft");
    stack.sim.shutdown().await;
}
