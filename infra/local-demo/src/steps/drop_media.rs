//! Step 4: drop a video and a slideshow into `uploads/`. S3 notifies the
//! upload queue (or, in a bucket that is not the demo's, the demo sends the
//! message S3 would have sent).

use aws_sdk_s3::primitives::ByteStream;
use shared::aws::describe_sdk_error;

use crate::functions::MediaAccess;
use crate::stack::Stack;
use crate::{Args, DemoResult, media};
use tiktok_drafts_tests::events::{CreatedObject, s3_notification};

/// What the demo put under `uploads/`.
pub struct Dropped {
    pub video_key: String,
    pub video_sha256: String,
    /// How many jobs the uploads make (the video, and the slideshow when
    /// photos can reach TikTok).
    pub expected_jobs: usize,
}

pub async fn drop_media(
    args: &Args,
    stack: &Stack,
    media_access: &MediaAccess,
    written: &mut Vec<String>,
) -> DemoResult<Dropped> {
    println!("== drop media into S3");
    let video = media::video(args.video.as_deref())?;
    let video_key = format!("uploads/{}/{}", stack.alias, video.name);
    let caption = "Holiday clip 🌴 from tiktok-drafts #demo";
    put(
        stack,
        &video_key,
        video.bytes.clone(),
        &[("caption", caption)],
        written,
    )
    .await?;
    println!(
        "    s3://{}/{video_key} ({}, caption in its metadata)",
        stack.bucket,
        size(video.bytes.len())
    );
    let video_sha256 = tiktok_drafts_tests::sha256_hex(&video.bytes);
    drop(video);

    if matches!(media_access, MediaAccess::Unavailable) {
        println!(
            "    slideshow         skipped: photo drafts are pulled by TikTok from a verified URL prefix; pass --bucket and --media-base-url"
        );
        return Ok(Dropped {
            video_key,
            video_sha256,
            expected_jobs: 1,
        });
    }
    let images = media::images(&args.images)?;
    let show = format!("uploads/{}/trip", stack.alias);
    let mut names = Vec::new();
    for image in images {
        let key = format!("{show}/{}", image.name);
        put(stack, &key, image.bytes.clone(), &[], written).await?;
        println!(
            "    s3://{}/{key} ({}, {})",
            stack.bucket,
            image.description,
            size(image.bytes.len())
        );
        names.push(image.name);
    }
    // The manifest goes last: it starts the job (a missing image would be
    // waited for).
    let manifest = serde_json::json!({
        "caption": "Summer trip 🌊 three photos, converted to JPEG on the way",
        "title": "Summer trip",
        "images": names,
        "cover_index": 0,
    });
    let manifest_key = format!("{show}/slideshow.json");
    put(
        stack,
        &manifest_key,
        manifest.to_string().into_bytes(),
        &[],
        written,
    )
    .await?;
    println!(
        "    s3://{}/{manifest_key} (the manifest: caption, title, order, cover)",
        stack.bucket
    );
    Ok(Dropped {
        video_key,
        video_sha256,
        expected_jobs: 2,
    })
}

fn size(bytes: usize) -> String {
    if bytes >= 1_000_000 {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else {
        format!("{:.1} kB", bytes as f64 / 1e3)
    }
}

async fn put(
    stack: &Stack,
    key: &str,
    bytes: Vec<u8>,
    metadata: &[(&str, &str)],
    written: &mut Vec<String>,
) -> DemoResult<()> {
    let size = bytes.len() as u64;
    let mut request = stack
        .aws
        .s3
        .put_object()
        .bucket(&stack.bucket)
        .key(key)
        .body(ByteStream::from(bytes));
    for (name, value) in metadata {
        request = request.metadata(*name, *value);
    }
    let put = request
        .send()
        .await
        .map_err(|e| format!("put {key}: {}", describe_sdk_error(&e)))?;
    written.push(key.to_owned());
    if !stack.owns_bucket {
        // The bucket is not the demo's to configure: send the message S3
        // would have sent.
        let body = s3_notification(
            &stack.region,
            &CreatedObject {
                bucket: &stack.bucket,
                key,
                size,
                etag: put.e_tag().unwrap_or_default(),
                version_id: put.version_id(),
            },
            chrono::Utc::now(),
        );
        stack
            .sqs
            .send_message()
            .queue_url(&stack.queue_url)
            .message_body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("notify the queue of {key}: {}", describe_sdk_error(&e)))?;
    }
    Ok(())
}
