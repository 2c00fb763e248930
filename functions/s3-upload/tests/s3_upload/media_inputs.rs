//! What the upload function does with inputs that are too large, not what
//! they claim to be, or encoded: oversized slideshow images, manifests and
//! caption sidecars; audio files named `.mp4` (HEIC photos: heic_slideshow.rs); captions and
//! settings that S3 returns RFC 2047-encoded. Against local AWS (moto) and
//! the TikTok simulator.

use crate::deployment::{Deployment, Options, deploy};
use s3_upload::events::ObjectRef;
use shared::forward::Outcome;
use shared::jobs::JobStatus;
use shared::media::limits::{IMAGE_MAX_BYTES, MANIFEST_MAX_BYTES, SIDECAR_MAX_BYTES};
use tiktok_drafts_tests::{fake_mp4, noise, test_image};

const OPEN_ID: &str = "open-media-inputs";

type Env = Deployment;

/// A deployment with one connected account, "alice", whose photos the
/// simulator pulls from the bucket on moto.
async fn env() -> Env {
    let options = Options {
        media: true,
        ..Options::default()
    };
    deploy(OPEN_ID, "media-inputs", options).await
}

impl Env {
    /// Handles `object` and returns the failure's code and message.
    async fn failure(&self, object: &ObjectRef) -> (String, String) {
        match self.service.handle_object(object).await.unwrap() {
            Some(Outcome::Failed { code, message, .. }) => (code, message),
            other => panic!("{}: expected a failure, got {other:?}", object.key),
        }
    }
}

fn manifest(images: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"caption": "x", "images": images})).unwrap()
}

#[tokio::test]
async fn an_image_over_50_mb_fails_the_slideshow_by_name() {
    let env = env().await;
    env.put_object(
        "uploads/alice/big/ok.png",
        test_image(40, 40, image::ImageFormat::Png),
        &[],
    )
    .await;
    let size = usize::try_from(IMAGE_MAX_BYTES).unwrap() + 1;
    env.put_object("uploads/alice/big/huge scan.png", noise(size, 3), &[])
        .await;
    let object = env
        .put_object(
            "uploads/alice/big/slideshow.json",
            manifest(&["ok.png", "huge scan.png"]),
            &[],
        )
        .await;
    let (code, message) = env.failure(&object).await;
    assert_eq!(code, "bad_image", "{message}");
    assert!(
        message.contains("images[1] \"huge scan.png\" is 50000001 bytes, more than the 50 MB"),
        "{message}"
    );
    assert_eq!(env.job(&object).await.status, JobStatus::Failed);
    assert_eq!(env.photo_inits().await, 0);
}

#[tokio::test]
async fn a_manifest_over_64_kib_fails_before_any_image_is_read() {
    let env = env().await;
    let mut body = manifest(&["1.png"]);
    // Valid JSON all the same: trailing whitespace.
    body.extend(std::iter::repeat_n(
        b' ',
        usize::try_from(MANIFEST_MAX_BYTES).unwrap(),
    ));
    let object = env
        .put_object("uploads/alice/padded/slideshow.json", body, &[])
        .await;
    let (code, message) = env.failure(&object).await;
    assert_eq!(code, "bad_manifest", "{message}");
    assert!(
        message.contains("uploads/alice/padded/slideshow.json"),
        "{message}"
    );
    assert!(message.contains("64 KiB"), "{message}");
    assert_eq!(env.photo_inits().await, 0);
}

#[tokio::test]
async fn an_m4a_named_mp4_fails_as_audio_before_any_upload() {
    let env = env().await;
    let mut m4a = vec![0, 0, 0, 0x1C];
    m4a.extend_from_slice(b"ftypM4A \0\0\0\0M4A mp42isom");
    m4a.extend_from_slice(&noise(5000, 4));
    let object = env.put_object("uploads/alice/song.mp4", m4a, &[]).await;
    let (code, message) = env.failure(&object).await;
    assert_eq!(code, "unsupported_media", "{message}");
    assert!(
        message.contains("an audio file (M4A), not a video"),
        "{message}"
    );
    assert_eq!(
        env.sim
            .requests("/v2/post/publish/inbox/video/init/")
            .await
            .len(),
        0
    );
}

#[tokio::test]
async fn an_encoded_metadata_caption_is_kept_decoded() {
    let env = env().await;
    // What S3 returns for a caption "Café ☕ #été" set through its API
    // (moto stores values as given, so the test stores them encoded).
    let object = env
        .put_object(
            "uploads/alice/cafe.mp4",
            fake_mp4(5000, 11),
            &[(
                "caption",
                "=?UTF-8?B?Q2Fmw6kg4piV?= =?UTF-8?Q?_#=C3=A9t=C3=A9?=",
            )],
        )
        .await;
    let outcome = env.service.handle_object(&object).await.unwrap();
    assert!(
        matches!(outcome, Some(Outcome::Uploaded { .. })),
        "{outcome:?}"
    );
    assert_eq!(
        env.job(&object).await.caption.as_deref(),
        Some("Café ☕ #été")
    );

    // The title fallback too.
    let object = env
        .put_object(
            "uploads/alice/title.mp4",
            fake_mp4(5000, 12),
            &[("title", "=?ISO-8859-1?Q?Andr=E9?= Pirard")],
        )
        .await;
    env.service.handle_object(&object).await.unwrap();
    assert_eq!(
        env.job(&object).await.caption.as_deref(),
        Some("André Pirard")
    );
}

#[tokio::test]
async fn an_encoded_post_mode_is_understood() {
    let env = env().await;
    // Decoded, the upload asks for a direct post, which this deployment
    // refuses by name; undecoded, it would be an unknown post-mode.
    let object = env
        .put_object(
            "uploads/alice/direct.mp4",
            fake_mp4(5000, 13),
            &[
                ("post-mode", "=?UTF-8?Q?direct?="),
                ("privacy-level", "=?UTF-8?B?U0VMRl9PTkxZ?="),
            ],
        )
        .await;
    let (code, message) = env.failure(&object).await;
    assert_eq!(code, "direct_post_refused", "{message}");
    assert!(
        message.contains("direct posting is not enabled"),
        "{message}"
    );
}

#[tokio::test]
async fn a_sidecar_over_64_kib_is_skipped_and_a_small_one_used() {
    let env = env().await;
    let mut padded =
        serde_json::to_vec(&serde_json::json!({"caption": "from a big sidecar"})).unwrap();
    padded.extend(std::iter::repeat_n(
        b' ',
        usize::try_from(SIDECAR_MAX_BYTES).unwrap(),
    ));
    env.put_object("uploads/alice/big.json", padded, &[]).await;
    let object = env
        .put_object("uploads/alice/big.mp4", fake_mp4(5000, 14), &[])
        .await;
    env.service.handle_object(&object).await.unwrap();
    assert_eq!(env.job(&object).await.caption, None);

    env.put_object(
        "uploads/alice/small.json",
        serde_json::to_vec(&serde_json::json!({"caption": "from a sidecar"})).unwrap(),
        &[],
    )
    .await;
    let object = env
        .put_object("uploads/alice/small.mp4", fake_mp4(5000, 15), &[])
        .await;
    env.service.handle_object(&object).await.unwrap();
    assert_eq!(
        env.job(&object).await.caption.as_deref(),
        Some("from a sidecar")
    );
}
