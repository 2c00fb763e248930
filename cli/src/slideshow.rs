//! `slideshow`: local images to a TikTok photo draft, through the same use
//! case as the S3 path ([`shared::forward`]): each image becomes a
//! TikTok-ready JPEG (shared conversion), the JPEGs go under
//! `media/<job id>/` in the upload bucket, and TikTok pulls them
//! (`content/init`, `PULL_FROM_URL`, `MEDIA_UPLOAD`, `PHOTO`) from
//! MEDIA_BASE_URL or presigned URLs; the init is marked, made once and its
//! answer saved first, as for a video.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use shared::forward::{Hitch, PhotoSet, PhotoText, retry};
use shared::jobs::{Job, JobKind, LOCAL_FILE_BUCKET, NewJob, ObjectVersion, PostTarget, Upload};
use shared::media::MediaUrls;
use shared::media::convert::{ConvertedPhoto, PhotoFile, PhotoLimits, convert_all, worker_count};
use shared::media::detect::{ImageKind, MediaKind, detect};
use shared::media::manifest::{MAX_IMAGES, Manifest};
use shared::storage::media_folder::{photo_folder, photo_key, put_jpeg};
use shared::tiktok::chunk_plan::DEFAULT_CHUNK_SIZE;

use crate::context::{CliResult, Ctx as _, Deployment, Fail, Output, hostname, parse_flag};
use crate::sending::{Sending, local_file, read_prefix, sha256_file};

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
    let (files, total) = checked_images(&args)?;
    let text = Manifest {
        caption: args.caption.clone(),
        title: args.title.clone(),
        images: files.iter().map(|f| f.name.clone()).collect(),
        cover_index: args.cover,
    }
    .post_text();

    let account = d.upload_account(args.account.as_deref()).await?;
    let sending = Sending::new(d, json, DEFAULT_CHUNK_SIZE).await?;
    sending.check_token(&account).await?;

    let new = photo_job(&files, total, &args, &account).await?;
    sending.before_claim(&new, &account).await?;
    let count = files.len();
    let photos = LocalPhotos {
        files,
        images: &args.images,
        bucket: bucket.clone(),
        urls,
        s3: d.aws.s3.clone(),
        threads: worker_count(
            args.threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        ),
        sending: &sending,
        text: PhotoText {
            title: text.title.clone(),
            description: text.description.clone(),
            cover: u32::try_from(args.cover).unwrap_or(0),
        },
        written: std::sync::Mutex::new(Vec::new()),
    };
    let id = new.upload.job_id();
    let sent = sending.forwarder.forward_photos(new, &photos).await;
    let (job, mut out) = sending.report(&id, sent, &account).await?;
    if out.json["already_sent"] == false {
        let keys = photos.written.lock().map(|k| k.clone()).unwrap_or_default();
        out.json["media_keys"] = json!(keys);
        out.json["title"] = json!(text.title);
        out.text.push_str(&format!(
            "\n{count} photos converted to JPEG under s3://{bucket}/{}",
            photo_folder(&job.id)
        ));
    }
    Ok(out)
}

/// The images, checked before anything is recorded or sent: their count,
/// the cover, and that each is an image this can convert. Their total size.
fn checked_images(args: &SlideshowArgs) -> CliResult<(Vec<PhotoFile>, u64)> {
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
    Ok((files, total))
}

/// The job of these images: its identity is this host, the images' paths
/// and their contents.
async fn photo_job(
    files: &[PhotoFile],
    total: u64,
    args: &SlideshowArgs,
    account: &shared::accounts::Account,
) -> CliResult<NewJob> {
    let mut hashes = Vec::with_capacity(files.len());
    for f in files {
        hashes.push(sha256_file(f.path.clone(), indicatif::ProgressBar::hidden()).await?);
    }
    let version = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(hashes.join(",").as_bytes()))
    };
    let paths: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
    let caption = Some(args.caption.trim().to_owned()).filter(|c| !c.is_empty());
    Ok(NewJob {
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
    })
}

/// The local images as the use case reads them: converted here with a
/// progress bar, stored under `media/` in the upload bucket, offered by the
/// URLs TikTok pulls.
struct LocalPhotos<'a> {
    files: Vec<PhotoFile>,
    images: &'a [PathBuf],
    bucket: String,
    urls: MediaUrls,
    s3: aws_sdk_s3::Client,
    threads: usize,
    sending: &'a Sending,
    text: PhotoText,
    /// The keys written under `media/`, in post order.
    written: std::sync::Mutex<Vec<String>>,
}

impl PhotoSet for LocalPhotos<'_> {
    /// Everything was checked before the upload was claimed.
    fn refusal(&self) -> Option<Hitch> {
        None
    }

    /// Local files have no versions to pin.
    async fn ready(&self, _job: &Job) -> Result<Vec<ObjectVersion>, Hitch> {
        Ok(Vec::new())
    }

    async fn offer(&self, job: &Job) -> Result<Vec<String>, Hitch> {
        let bar = self
            .sending
            .bar(self.files.len() as u64, "converting", false);
        let converted = convert(self.files.clone(), self.threads, bar.clone())
            .await
            .map_err(|fail| retry("convert the images", fail.message))?;
        bar.finish_and_clear();
        let mut photos = Vec::with_capacity(converted.len());
        for (index, result) in converted.into_iter().enumerate() {
            photos.push(result.map_err(|message| Hitch::Refused {
                code: "bad_image",
                message: format!("{}: {message}", self.images[index].display()),
            })?);
        }
        let bar = self.sending.bar(photos.len() as u64, "storing", false);
        let mut urls = Vec::with_capacity(photos.len());
        let mut keys = Vec::with_capacity(photos.len());
        for (index, photo) in photos.into_iter().enumerate() {
            let key = photo_key(&job.id, index, &photo.jpeg);
            put_jpeg(&self.s3, &self.bucket, &key, photo.jpeg)
                .await
                .map_err(|e| retry("store a converted photo", e))?;
            let url = self
                .urls
                .url_for(&self.s3, &self.bucket, &key)
                .await
                .map_err(|e| retry("make a media URL", e))?;
            urls.push(url);
            keys.push(key);
            bar.inc(1);
        }
        bar.finish_and_clear();
        if let Ok(mut written) = self.written.lock() {
            *written = keys;
        }
        Ok(urls)
    }

    fn text(&self) -> PhotoText {
        self.text.clone()
    }
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
