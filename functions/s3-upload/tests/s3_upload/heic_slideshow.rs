//! iPhone photos in a slideshow, end to end: HEIC objects in S3 (moto)
//! become JPEGs TikTok (the simulator) pulls and accepts; a HEIC that
//! cannot be decoded fails the slideshow by name before any init.

use crate::deployment::{Deployment, Options, deploy};
use shared::forward::Outcome;
use test_media::heif::{Heif, iphone_grid};
use test_media::picture::{self, BOTTOM, MARK, TOP, p3_to_srgb};
use tiktok_drafts_tests::{TestSim, noise, sha256_hex, test_image};

const OPEN_ID: &str = "open-heic";

type Env = Deployment;

/// One connected account, "alice"; the simulator pulls photos from the
/// bucket's `media/` prefix.
async fn env() -> Env {
    let options = Options {
        media: true,
        ..Options::default()
    };
    deploy(OPEN_ID, "heic", options).await
}

impl Env {
    async fn slideshow(&self, folder: &str, images: &[(&str, Vec<u8>)]) -> Option<Outcome> {
        for (name, body) in images {
            self.put_object(&format!("uploads/alice/{folder}/{name}"), body.clone(), &[])
                .await;
        }
        let names: Vec<&str> = images.iter().map(|(name, _)| *name).collect();
        let manifest = serde_json::json!({"caption": "phone photos", "images": names});
        let object = self
            .put_object(
                &format!("uploads/alice/{folder}/slideshow.json"),
                serde_json::to_vec(&manifest).unwrap(),
                &[],
            )
            .await;
        self.service.handle_object(&object).await.unwrap()
    }

    /// The converted JPEG in the bucket whose SHA-256 the simulator recorded.
    async fn converted(&self, sha256: &str) -> Vec<u8> {
        let listed = self
            .aws
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix("media/")
            .send()
            .await
            .unwrap();
        for object in listed.contents() {
            let body = self
                .aws
                .s3
                .get_object()
                .bucket(&self.bucket)
                .key(object.key().unwrap())
                .send()
                .await
                .unwrap()
                .body
                .collect()
                .await
                .unwrap()
                .into_bytes()
                .to_vec();
            if sha256_hex(&body) == sha256 {
                return body;
            }
        }
        panic!("no converted JPEG with SHA-256 {sha256}");
    }
}

async fn pulled(sim: &TestSim, publish_id: &str) -> serde_json::Value {
    for _ in 0..200 {
        let record = sim.publish(publish_id).await;
        if record["status"] != "PROCESSING_DOWNLOAD" {
            return record;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("photos of {publish_id} were never pulled");
}

#[tokio::test]
async fn an_iphone_grid_heic_becomes_an_upright_srgb_jpeg_in_a_photo_draft() {
    let env = env().await;
    let outcome = env
        .slideshow(
            "phone",
            &[
                ("IMG_0001.HEIC", iphone_grid(10).to_bytes()),
                ("2.png", test_image(800, 600, image::ImageFormat::Png)),
            ],
        )
        .await;
    let Some(Outcome::Uploaded { publish_id, .. }) = outcome else {
        panic!("expected an upload, got {outcome:?}");
    };
    let record = pulled(&env.sim, &publish_id).await;
    assert_eq!(record["status"], "SEND_TO_USER_INBOX", "{record}");
    let images = record["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    let heic = &images[0];
    assert_eq!(heic["format"], "jpeg", "{heic}");
    // Portrait (turned upright by irot), fitted inside 1080 × 1920.
    assert_eq!(
        (heic["width"].as_u64(), heic["height"].as_u64()),
        (Some(1080), Some(1440))
    );
    // Upright in its pixels, not by an EXIF tag TikTok might ignore.
    assert!(heic["exif_orientation"].is_null(), "{heic}");

    let jpeg = image::load_from_memory_with_format(
        &env.converted(heic["sha256"].as_str().unwrap()).await,
        image::ImageFormat::Jpeg,
    )
    .unwrap()
    .into_rgb8();
    // The top band is at the top, the bottom band at the bottom, the mark
    // on the left, each in sRGB (converted from Display P3).
    for (what, x, y, colour) in [
        ("top", 100, 20, TOP),
        ("bottom", 100, 1340, BOTTOM),
        ("mark", 20, 170, MARK),
    ] {
        let w = if what == "mark" { 80 } else { 880 };
        let measured = picture::mean(&jpeg, x, y, w, 80);
        let expected = p3_to_srgb(colour);
        assert!(
            picture::distance(measured, expected) <= 8.0,
            "{what}: {measured:?}, expected {expected:?}"
        );
    }
}

#[tokio::test]
async fn heics_that_cannot_be_converted_fail_the_slideshow_by_name_before_init() {
    let env = env().await;
    let mut avc = test_media::heif::Coded::from_heif(&test_media::fixture("heic/plain.heic"));
    avc.item_type = *b"avc1";
    let grid = iphone_grid(8).to_bytes();
    let mut broken = vec![0, 0, 0, 0x18];
    broken.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
    broken.extend_from_slice(&noise(2000, 9));
    for (folder, name, body, says) in [
        (
            "avc",
            "IMG_0002.HEIC",
            Heif::single(avc).to_bytes(),
            "coded as AVC (H.264)",
        ),
        (
            "cut",
            "IMG_0003.HEIC",
            grid[..grid.len() / 2].to_vec(),
            "damaged or incomplete",
        ),
        ("noise", "IMG_0004.HEIC", broken, "damaged or incomplete"),
    ] {
        let outcome = env
            .slideshow(
                folder,
                &[
                    ("1.png", test_image(40, 40, image::ImageFormat::Png)),
                    (name, body),
                ],
            )
            .await;
        let Some(Outcome::Failed { code, message, .. }) = outcome else {
            panic!("{folder}: expected a failure, got {outcome:?}");
        };
        assert_eq!(code, "bad_image", "{message}");
        assert!(
            message.contains(&format!("images[1] {name:?}")),
            "{message}"
        );
        assert!(message.contains(says), "{message}");
        assert!(message.contains("JPEG"), "says what to do: {message}");
    }
    assert_eq!(env.photo_inits().await, 0);
}
