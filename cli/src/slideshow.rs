//! `slideshow`: local images to a TikTok photo draft, as the S3 path does it
//! (functions/s3-upload/src/slideshow.rs): each image becomes a TikTok-ready
//! JPEG (shared conversion), the JPEGs go under `media/<job id>/` in the
//! upload bucket, and TikTok pulls them (`content/init`, `PULL_FROM_URL`,
//! `MEDIA_UPLOAD`, `PHOTO`) from MEDIA_BASE_URL or presigned URLs.

use shared::media::MediaUrls;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_s3::primitives::ByteStream;
use serde_json::json;
use shared::jobs::{
    Changes, JobKind, JobStatus, LOCAL_FILE_BUCKET, NewJob, ObjectVersion, PostTarget, Upload,
};
use shared::media::convert::{ConvertedPhoto, PhotoFile, PhotoLimits, convert_all, worker_count};
use shared::media::detect::{ImageKind, MediaKind, detect};
use shared::media::manifest::{MAX_IMAGES, Manifest};
use shared::storage::media_folder::{photo_folder, photo_key};
use shared::tiktok::PhotoPost;

use crate::context::{CliResult, Ctx as _, Deployment, Fail, Output, hostname, parse_flag};
use crate::upload::{Begun, Uploading, done_output, local_file, read_prefix, sha256_file};

/// How long a presigned photo URL lives: TikTok's pull times out within it.

#[derive(clap::Args)]
pub struct SlideshowArgs {
    /// The images, in post order (1 to 35; PNG, JPEG, WebP or GIF).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// The account alias (else DEFAULT_ACCOUNT, else the only account).
    #[arg(long)]
    account: Option<String>,
    /// The post description (trimmed to 4000 UTF-16 units); its first line
    /// is the title unless --title is given.
    #[arg(long, default_value = "")]
    caption: String,
    /// The post title (trimmed to 90 UTF-16 units).
    #[arg(long)]
    title: Option<String>,
    /// Index of the cover image (0 is the first).
    #[arg(long, default_value_t = 0)]
    cover: usize,
    /// The upload bucket; the converted JPEGs go under media/ in it.
    #[arg(long, env = "UPLOAD_BUCKET")]
    bucket: Option<String>,
    /// URL prefix, verified with TikTok, in front of the bucket's keys.
    #[arg(long, env = "MEDIA_BASE_URL")]
    media_base_url: Option<String>,
    /// Offer presigned S3 URLs instead (local stack only: TikTok cannot
    /// verify S3's domain).
    #[arg(long, env = "MEDIA_PRESIGNED_URLS", default_value = "false")]
    media_presigned_urls: String,
    /// Conversion threads (at most the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn media_urls(args: &SlideshowArgs) -> CliResult<MediaUrls> {
    let presigned = parse_flag("MEDIA_PRESIGNED_URLS", Some(&args.media_presigned_urls))?;
    match MediaUrls::from_settings(args.media_base_url.as_deref(), presigned) {
        Ok(Some(urls)) => Ok(urls),
        Ok(None) => Err(Fail::new(
            "photo drafts need MEDIA_BASE_URL (or --media-base-url): a URL prefix verified with TikTok in front of the bucket; on the local stack MEDIA_PRESIGNED_URLS=true",
        )),
        Err(err) => Err(Fail::new(err.to_string())),
    }
}

pub async fn run(d: &Deployment, args: SlideshowArgs, json: bool) -> CliResult<Output> {
    let bucket = args
        .bucket
        .clone()
        .filter(|b| !b.trim().is_empty())
        .ok_or_else(|| {
            Fail::new("no bucket for the converted photos: set UPLOAD_BUCKET or pass --bucket")
        })?;
    let urls = media_urls(&args)?;
    if args.images.len() > MAX_IMAGES {
        return Err(Fail::new(format!(
            "a photo post has at most {MAX_IMAGES} images, not {}",
            args.images.len()
        )));
    }
    if args.cover >= args.images.len() {
        return Err(Fail::new(format!(
            "--cover {} is out of range for {} images (0 is the first)",
            args.cover,
            args.images.len()
        )));
    }
    // Every file first: a missing one or one that is not an image stops
    // here, before anything is recorded or sent.
    let mut files = Vec::with_capacity(args.images.len());
    let mut total = 0u64;
    for (index, image) in args.images.iter().enumerate() {
        let (path, size) = local_file(image)?;
        match detect(&read_prefix(&path)?) {
            MediaKind::Image(
                ImageKind::Jpeg | ImageKind::Png | ImageKind::WebP | ImageKind::Gif,
            ) => {}
            MediaKind::Image(other) => {
                return Err(Fail::new(format!(
                    "{} is a {other} image, which cannot be converted here; export it as JPEG or PNG (nothing was sent)",
                    image.display()
                )));
            }
            _ => {
                return Err(Fail::new(format!(
                    "{} is not an image (PNG, JPEG, WebP or GIF; the file's contents decide, not its name); nothing was sent",
                    image.display()
                )));
            }
        }
        total += size;
        files.push(PhotoFile {
            name: format!(
                "{index}:{}",
                image
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            ),
            path,
        });
    }
    let text = Manifest {
        caption: args.caption.clone(),
        title: args.title.clone(),
        images: files.iter().map(|f| f.name.clone()).collect(),
        cover_index: args.cover,
    }
    .post_text();

    let account = d.upload_account(args.account.as_deref()).await?;
    let up = Uploading::new(d, json).await?;
    let token = up.token(&account).await?;

    // The job's identity: this host, the images' paths and their contents.
    let mut hashes = Vec::with_capacity(files.len());
    for f in &files {
        hashes.push(sha256_file(f.path.clone(), indicatif::ProgressBar::hidden()).await?);
    }
    let version = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(hashes.join(",").as_bytes()))
    };
    let paths: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
    let caption = Some(args.caption.trim().to_owned()).filter(|c| !c.is_empty());
    let new = NewJob {
        upload: Upload {
            bucket: LOCAL_FILE_BUCKET.to_owned(),
            key: format!("{}:{}", hostname(), paths.join("|")),
            version: ObjectVersion::etag(&version),
            size: total,
        },
        alias: account.alias.clone(),
        open_id: Some(account.open_id.clone()),
        kind: JobKind::Slideshow,
        post: PostTarget::Draft,
        caption,
    };
    let (job, lease) = match up.begin(new, &account).await? {
        Begun::Done(out) => return Ok(out),
        Begun::Work(job, lease) => (*job, lease),
    };
    let result = async {
        // Initialised before a crash, not yet recorded as offered.
        if job.status == JobStatus::Uploading && job.publish_id.is_some() {
            let job = up
                .jobs
                .transition(
                    &job,
                    JobStatus::Processing,
                    Changes::default(),
                    up.clock.now(),
                )
                .await
                .ctx("cannot record the offered photos")?;
            return Ok(done_output(&job, false));
        }
        // The slot before the work, as the upload function does.
        up.slot(&job, &account).await?;

        let threads = worker_count(
            args.threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        );
        let bar = up.bar(files.len() as u64, "converting", false);
        let converted = convert(files.clone(), threads, bar.clone()).await?;
        bar.finish_and_clear();
        let mut photos = Vec::with_capacity(converted.len());
        for (index, result) in converted.into_iter().enumerate() {
            match result {
                Ok(p) => photos.push(p),
                Err(message) => {
                    return Err(up
                        .fail(
                            &job,
                            "bad_image",
                            format!("{}: {message}", args.images[index].display()),
                        )
                        .await);
                }
            }
        }
        let bar = up.bar(photos.len() as u64, "storing", false);
        let mut keys = Vec::with_capacity(photos.len());
        let mut photo_urls = Vec::with_capacity(photos.len());
        for (index, photo) in photos.into_iter().enumerate() {
            let key = photo_key(&job.id, index);
            d.aws
                .s3
                .put_object()
                .bucket(&bucket)
                .key(&key)
                .content_type("image/jpeg")
                .body(ByteStream::from(photo.jpeg))
                .send()
                .await
                .map_err(|e| {
                    Fail::new(format!(
                        "cannot write s3://{bucket}/{key}: {}",
                        shared::aws::describe_sdk_error(&e)
                    ))
                })?;
            photo_urls.push(media_url(d, &urls, &bucket, &key).await?);
            keys.push(key);
            bar.inc(1);
        }
        bar.finish_and_clear();

        let mut post = PhotoPost::draft(photo_urls, u32::try_from(args.cover).unwrap_or(0));
        post.title = Some(text.title.clone()).filter(|t| !t.is_empty());
        post.description = Some(text.description.clone()).filter(|t| !t.is_empty());
        let init = match up.tiktok.init_photo(&token.access_token, &post).await {
            Ok(init) => init,
            Err(err) => return Err(up.init_refused(&job, &err).await),
        };
        let job = up
            .jobs
            .save_init(&job.id, &init.publish_id, None, None, up.clock.now())
            .await
            .ctx("TikTok accepted the photos but the publish_id could not be saved")?;
        let job = up
            .jobs
            .transition(
                &job,
                JobStatus::Processing,
                Changes::default(),
                up.clock.now(),
            )
            .await
            .ctx("cannot record the offered photos")?;
        let mut out = done_output(&job, false);
        out.json["media_keys"] = json!(keys);
        out.json["title"] = json!(text.title);
        out.text.push_str(&format!(
            "\n{} photos converted to JPEG under s3://{bucket}/{}",
            keys.len(),
            photo_folder(&job.id)
        ));
        Ok(out)
    }
    .await;
    up.release(lease).await;
    result
}

/// Converts every file with the shared conversion, `threads` at a time,
/// ticking `bar` as each one finishes. One result per file, in order.
async fn convert(
    files: Vec<PhotoFile>,
    threads: usize,
    bar: indicatif::ProgressBar,
) -> CliResult<Vec<Result<ConvertedPhoto, String>>> {
    tokio::task::spawn_blocking(move || {
        let next = AtomicUsize::new(0);
        let results: Vec<Mutex<Option<Result<ConvertedPhoto, String>>>> =
            files.iter().map(|_| Mutex::new(None)).collect();
        let limits = PhotoLimits::default();
        std::thread::scope(|scope| {
            for _ in 0..threads.max(1) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(file) = files.get(i) else { break };
                        let result = convert_all(std::slice::from_ref(file), &limits, 1)
                            .pop()
                            .unwrap_or_else(|| unreachable!("one result per input"))
                            .map_err(|e| e.source.to_string());
                        if let Ok(mut slot) = results[i].lock() {
                            *slot = Some(result);
                        }
                        bar.inc(1);
                    }
                });
            }
        });
        results
            .into_iter()
            .map(|m| {
                m.into_inner()
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| Err("the conversion did not finish".into()))
            })
            .collect()
    })
    .await
    .ctx("the conversion failed")
}

async fn media_url(d: &Deployment, urls: &MediaUrls, bucket: &str, key: &str) -> CliResult<String> {
    urls.url_for(&d.aws.s3, bucket, key)
        .await
        .map_err(|e| Fail::new(e.to_string()))
}
