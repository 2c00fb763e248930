//! The main job end to end on the local stack: local AWS (moto) and the
//! TikTok simulator, no account needed. Run it with `make demo`.
//!
//! 1. makes an operator's invitation and connects a simulated creator with
//!    it through the real login handler (`/auth/start`, TikTok's authorize
//!    page, `/auth/callback`: state, PKCE, code exchange), which records the
//!    account in DynamoDB and its tokens in Secrets Manager;
//! 2. drops a video into S3 and forwards it to the creator's drafts with
//!    FILE_UPLOAD, streamed from S3 by ranged GETs, chunk by chunk;
//! 3. drops JPEG photos under `media/` and offers them as a photo draft
//!    (`content/init`, PULL_FROM_URL, MEDIA_UPLOAD, PHOTO);
//! 4. follows both until TikTok reports `SEND_TO_USER_INBOX`, and checks that
//!    TikTok holds exactly the bytes that were in S3.
//!
//! The login runs the oauth-callback function's handler in process; the
//! upload steps use the same shared crate the upload function will.

use std::process::ExitCode;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use lambda_http::{Body, http::StatusCode};
use oauth_callback::{LoginConfig, LoginService};
use shared::Secret;
use shared::accounts::Accounts;
use shared::aws::{AwsClients, describe_sdk_error};
use shared::invite::{Invitation, SigningKey};
use shared::storage::S3Object;
use shared::tiktok::chunk_plan::DEFAULT_CHUNK_SIZE;
use shared::tiktok::upload::{RetryPolicy, UploadProgress, Uploader, VideoContentType};
use shared::tiktok::{
    AppCredentials, ChunkPlan, Endpoints, PhotoPost, PkceEncoding, PublishState, TikTokClient,
    VideoSource,
};
use shared::tokens::{Clock, TokenManager};

type DemoResult<T> = Result<T, String>;

const CLIENT_KEY: &str = "demo-client-key";
const CLIENT_SECRET: &str = "demo-client-secret";
const REDIRECT_URI: &str = "https://drafts.example.com/auth/callback";
const VIDEO_BYTES: usize = 75_000_000;

fn err<E: std::fmt::Display>(context: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{context}: {e}")
}

struct Progress {
    total: u64,
}

impl UploadProgress for Progress {
    async fn chunk_done(&mut self, next_offset: u64, chunk_index: u64) {
        println!(
            "    chunk {:>2} accepted, {:>5.1} / {:.1} MB",
            chunk_index + 1,
            next_offset as f64 / 1e6,
            self.total as f64 / 1e6
        );
    }
}

fn get(path_and_query: &str) -> DemoResult<lambda_http::Request> {
    lambda_http::http::Request::builder()
        .method("GET")
        .uri(format!("https://login.example.com{path_and_query}"))
        .body(Body::Empty)
        .map_err(err("request"))
}

fn page_text(body: &Body) -> String {
    match body {
        Body::Text(t) => t.chars().take(300).collect(),
        _ => String::new(),
    }
}

async fn control(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    body: serde_json::Value,
) -> DemoResult<serde_json::Value> {
    let res = http
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .map_err(err("simulator control API"))?;
    let status = res.status();
    let value: serde_json::Value = res.json().await.map_err(err("simulator answer"))?;
    if !status.is_success() {
        return Err(format!("simulator {path} answered {status}: {value}"));
    }
    Ok(value)
}

async fn wait_for_inbox(
    client: &TikTokClient,
    token: &Secret,
    publish_id: &str,
) -> DemoResult<PublishState> {
    let mut last = None;
    for _ in 0..200 {
        let status = client
            .fetch_status(token, publish_id)
            .await
            .map_err(err("status fetch"))?;
        if last.as_ref() != Some(&status.status) {
            println!("    status {}", status.status);
            last = Some(status.status.clone());
        }
        match status.status {
            PublishState::SendToUserInbox | PublishState::PublishComplete => {
                return Ok(status.status);
            }
            PublishState::Failed => {
                return Err(format!(
                    "publish {publish_id} failed: {}",
                    status
                        .fail_reason
                        .map(|r| format!("{r} ({})", r.human_message()))
                        .unwrap_or_default()
                ));
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Err(format!(
        "publish {publish_id} did not reach the inbox in time"
    ))
}

async fn run() -> DemoResult<()> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .map_err(|_| "AWS_ENDPOINT_URL is not set: run the demo with `make demo`".to_owned())?;
    let aws = AwsClients::from_config(&shared::aws::load_config().await);
    let bucket = format!("tiktok-drafts-demo-{:08x}", rand::random::<u32>());
    let media_prefix = format!("{}/{bucket}/media/", endpoint.trim_end_matches('/'));

    println!("== local stack");
    let sim = tiktok_sim::start(tiktok_sim::SimConfig {
        settings: tiktok_sim::Settings {
            client_key: CLIENT_KEY.into(),
            client_secret: CLIENT_SECRET.into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            pkce: tiktok_sim::PkceMode::Required,
            // The media prefix "verified" with the simulated TikTok app; on
            // loopback it is plain http.
            verified_url_prefixes: vec![media_prefix.clone()],
            allow_http_pull: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .map_err(err("start the TikTok simulator"))?;
    let base = sim.base_url();
    println!("    AWS (moto)        {endpoint}");
    println!("    TikTok simulator  {base}");
    aws.s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .map_err(|e| format!("create bucket: {}", describe_sdk_error(&e)))?;
    println!("    bucket            {bucket}");

    let http = reqwest::Client::new();
    let result = async {
        control(
            &http,
            &base,
            "/_sim/users",
            serde_json::json!({"open_id": "open-demo-creator", "username": "demo.creator", "display_name": "Demo Creator"}),
        )
        .await?;
        let client = TikTokClient::new(
            shared::tiktok::config::http_client(Default::default()).map_err(err("http client"))?,
            Endpoints::for_base_url(&base).map_err(err("simulator URL"))?,
            AppCredentials {
                client_key: CLIENT_KEY.into(),
                client_secret: CLIENT_SECRET.into(),
            },
        );

        println!("== connect an account (invitation, TikTok Login v2, PKCE S256)");
        // One name for this run's bucket, table and secrets prefix.
        let table = bucket.clone();
        shared::table::create_table(&aws.dynamodb, &table).await.map_err(err("create table"))?;
        let prefix = table.clone();
        let app_secret_id = format!("{prefix}/app");
        aws.secrets
            .create_secret()
            .name(&app_secret_id)
            .secret_string(serde_json::json!({"client_key": CLIENT_KEY, "client_secret": CLIENT_SECRET}).to_string())
            .send()
            .await
            .map_err(|e| format!("create app secret: {}", describe_sdk_error(&e)))?;
        let invite_key_secret_id = format!("{prefix}/invite-key");
        let invite_key = SigningKey::create_if_missing(&aws.secrets, &invite_key_secret_id)
            .await
            .map_err(err("invitation key"))?;
        println!("    table             {table}");
        println!("    app secret        {app_secret_id}");
        let login = LoginService::new(
            LoginConfig {
                table: table.clone(),
                secrets_prefix: prefix.clone(),
                app_secret_id,
                invite_key_secret_id,
                redirect_uri: REDIRECT_URI.into(),
                pkce_encoding: PkceEncoding::Hex,
                direct_post_enabled: false,
                endpoints: Endpoints::for_base_url(&base).map_err(err("simulator URL"))?,
            },
            &aws,
            Clock::system(),
        )
        .await
        .map_err(err("login service"))?;

        let invitation = Invitation::new("demo", Duration::from_secs(24 * 3600), false).map_err(err("invitation"))?;
        let start_path = format!(
            "/auth/start?invite={}",
            url::form_urlencoded::byte_serialize(invitation.sign(&invite_key).as_bytes()).collect::<String>()
        );
        println!("    invitation        for alias \u{201c}demo\u{201d}, valid 24 h, single use");
        let start = login.handle(get(&start_path)?).await;
        if start.status() != StatusCode::FOUND {
            return Err(format!("/auth/start answered {}: {}", start.status(), page_text(start.body())));
        }
        let authorize = start
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .ok_or("/auth/start gave no redirect")?
            .to_owned();
        println!("    /auth/start       302 to TikTok's authorize page (state and PKCE challenge stored)");
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(err("browser"))?;
        let res = browser.get(&authorize).send().await.map_err(err("authorize page"))?;
        let back = res
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| format!("authorize page answered {} without a redirect", res.status()))?;
        let callback = url::Url::parse(back).map_err(err("callback URL"))?;
        println!("    TikTok            the creator approves; back to the callback with code and state");
        let done = login
            .handle(get(&format!("/auth/callback?{}", callback.query().unwrap_or(""))
            )?)
            .await;
        if done.status() != StatusCode::OK {
            return Err(format!("/auth/callback answered {}: {}", done.status(), page_text(done.body())));
        }
        let account = Accounts::new(aws.dynamodb.clone(), &table)
            .get_by_alias("demo")
            .await
            .map_err(err("account"))?
            .ok_or("no account is bound to the alias demo")?;
        println!(
            "    connected         {} (open_id {}, scopes {}, state {})",
            account.display_name.as_deref().unwrap_or("?"),
            account.open_id,
            account.scopes.join(","),
            account.state
        );
        let tokens = TokenManager::for_deployment(&aws, client.clone(), &prefix, &table);
        let fresh = tokens.get_fresh_token(&account.open_id).await.map_err(err("fresh token"))?;
        println!(
            "    tokens            in Secrets Manager as {prefix}/accounts/{}, access token valid until {}",
            account.open_id,
            fresh.expires_at.format("%H:%M:%S UTC")
        );
        let access_token = fresh.access_token;

        println!("== video -> draft (FILE_UPLOAD streamed from S3)");
        let key = "uploads/demo/holiday clip.mp4";
        let video = tiktok_drafts_tests::fake_mp4(VIDEO_BYTES, 42);
        let expected_sha = tiktok_drafts_tests::sha256_hex(&video);
        aws.s3
            .put_object()
            .bucket(&bucket)
            .key(key)
            .body(ByteStream::from(video))
            .send()
            .await
            .map_err(|e| format!("put video: {}", describe_sdk_error(&e)))?;
        println!("    s3://{bucket}/{key} ({:.1} MB)", VIDEO_BYTES as f64 / 1e6);
        let source = S3Object::open(aws.s3.clone(), &bucket, key).await.map_err(err("open video"))?;
        let plan = ChunkPlan::new(source.size(), DEFAULT_CHUNK_SIZE).map_err(err("chunk plan"))?;
        println!(
            "    plan              {} chunks of {} bytes, last {} bytes",
            plan.total_chunk_count,
            plan.chunk_size,
            plan.last_chunk_len()
        );
        let init = client
            .init_inbox_video(&access_token, &VideoSource::FileUpload(plan))
            .await
            .map_err(err("inbox init"))?;
        println!("    publish_id        {}", init.publish_id);
        let upload_url = init.upload_url.as_ref().ok_or("init gave no upload_url")?;
        let report = Uploader::new(reqwest::Client::new(), RetryPolicy::default())
            .upload(
                upload_url.expose(),
                &plan,
                VideoContentType::Mp4,
                &source,
                0,
                &mut Progress { total: plan.video_size },
            )
            .await
            .map_err(err("upload"))?;
        println!("    uploaded          {} chunks, {} retries", report.chunks_sent, report.retries);
        wait_for_inbox(&client, &access_token, &init.publish_id).await?;
        let record = http
            .get(format!("{base}/_sim/publishes/{}", init.publish_id))
            .send()
            .await
            .map_err(err("simulator record"))?
            .json::<serde_json::Value>()
            .await
            .map_err(err("simulator record"))?;
        if record["sha256"].as_str() != Some(expected_sha.as_str()) {
            return Err(format!("TikTok holds other bytes than S3: {} != {expected_sha}", record["sha256"]));
        }
        println!("    bytes check       TikTok's SHA-256 equals the S3 object's");

        println!("== photos -> photo draft (content/init, PULL_FROM_URL, MEDIA_UPLOAD)");
        let mut urls = Vec::new();
        for (i, (w, h)) in [(1080u32, 1350u32), (1080, 1920), (960, 720)].into_iter().enumerate() {
            let key = format!("media/demo/slide-{i}.jpg");
            aws.s3
                .put_object()
                .bucket(&bucket)
                .key(&key)
                .content_type("image/jpeg")
                .body(ByteStream::from(tiktok_drafts_tests::test_image(w, h, image::ImageFormat::Jpeg)))
                .send()
                .await
                .map_err(|e| format!("put photo: {}", describe_sdk_error(&e)))?;
            let presigned = aws
                .s3
                .get_object()
                .bucket(&bucket)
                .key(&key)
                .presigned(PresigningConfig::expires_in(Duration::from_secs(3600)).map_err(err("presign"))?)
                .await
                .map_err(|e| format!("presign: {}", describe_sdk_error(&e)))?;
            println!("    s3://{bucket}/{key} ({w}x{h})");
            urls.push(presigned.uri().to_owned());
        }
        let mut post = PhotoPost::draft(urls, 0);
        post.title = Some("Demo slideshow 🌍".into());
        post.description = Some("Three slides forwarded by tiktok-drafts".into());
        let photo = client.init_photo(&access_token, &post).await.map_err(err("photo init"))?;
        println!("    publish_id        {}", photo.publish_id);
        wait_for_inbox(&client, &access_token, &photo.publish_id).await?;
        println!("== done: both drafts are in the creator's TikTok inbox");
        Ok(())
    }
    .await;
    sim.shutdown().await;
    result
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("local-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("local-demo: {e}");
            ExitCode::FAILURE
        }
    }
}
