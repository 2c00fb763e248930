//! The deployment every handler test runs against: a bucket and the
//! template's stores on local AWS (moto), the TikTok simulator with one
//! connected account, "alice", and the upload function's service configured
//! as the template configures it. Tests differ only in [`Options`].

use aws_sdk_s3::primitives::ByteStream;
use s3_upload::config::{MediaUrls, UploadConfig, VideoTransfer};
use s3_upload::events::ObjectRef;
use s3_upload::service::{RedeliveryDelay, UploadService};
use shared::accounts::Accounts;
use shared::aws::AwsClients;
use shared::clock::Clock;
use shared::jobs::{Job, JobId, Jobs, ObjectVersion};
use shared::tiktok::Endpoints;
use shared::tiktok::upload::ChunkRetryPolicy;
use shared::tokens::TokenManager;
use tiktok_drafts_tests::{
    DeploymentStores, TestSim, connect_account, deployment_stores, local_aws, unique_name,
};

pub(crate) struct Deployment {
    pub sim: TestSim,
    pub aws: AwsClients,
    pub sqs: aws_sdk_sqs::Client,
    pub service: UploadService,
    pub bucket: String,
    pub table: String,
    /// The bucket keeps versions; events name them.
    pub versioned: bool,
    /// Where the account tokens are kept.
    pub secrets_prefix: String,
}

/// What a test deployment differs in.
#[derive(Default, Clone)]
pub(crate) struct Options {
    /// Media (photos, pulled videos) reachable by the simulator: the
    /// bucket's `media/` prefix on moto is its verified prefix, and TikTok
    /// pulls presigned URLs.
    pub media: bool,
    pub pull_videos: bool,
    pub direct_post: bool,
    /// How long a slideshow waits for a missing image (0: not at all).
    pub image_grace_secs: u64,
    /// Retried messages visible again at once, so a test can receive them.
    pub redelivery_immediate: bool,
    /// A versioned bucket (as template.yaml makes it).
    pub versioned: bool,
    /// The host the simulator puts in upload URLs (its own when `None`).
    pub upload_url_host: Option<&'static str>,
    /// DEFAULT_ACCOUNT: keys may leave the account out.
    pub default_account: Option<&'static str>,
    /// An interceptor on the function's S3 client (to count what it reads).
    pub s3_interceptor: Option<aws_sdk_s3::config::SharedInterceptor>,
}

/// A deployment whose bucket is named after `bucket`, with `open_id`
/// connected as "alice".
pub(crate) async fn deploy(open_id: &str, bucket: &str, options: Options) -> Deployment {
    let sdk = local_aws().await;
    let mut aws = AwsClients::from_config(&sdk);
    if let Some(interceptor) = options.s3_interceptor.clone() {
        let mut config = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true);
        config.push_interceptor(interceptor);
        aws.s3 = aws_sdk_s3::Client::from_conf(config.build());
    }
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let bucket = unique_name(bucket);
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("run under infra/with-local-stack.sh");
    // Presigned URLs of the bucket on moto start with this prefix.
    let prefix_for_sim = format!("{}/{bucket}/media/", endpoint.trim_end_matches('/'));
    let sim = TestSim::start(|s| {
        s.upload_url_host = options.upload_url_host.map(str::to_owned);
        if options.media {
            s.verified_url_prefixes = vec![prefix_for_sim.clone()];
            s.allow_http_pull = true;
        }
    })
    .await;
    sim.seed_user(open_id, serde_json::json!({})).await;
    let DeploymentStores {
        table,
        prefix,
        app_secret_id,
    } = deployment_stores(&aws).await;
    aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    if options.versioned {
        aws.s3
            .put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    // A connected account "alice", as the login function leaves it.
    let scopes: &[&str] = if options.direct_post {
        &["user.info.basic", "video.upload", "video.publish"]
    } else {
        &["user.info.basic", "video.upload"]
    };
    let manager = TokenManager::for_deployment(&aws, sim.client(), &prefix, &table);
    let accounts = Accounts::new(aws.dynamodb.clone(), &table);
    connect_account(&sim, &manager, &accounts, open_id, "alice", scopes).await;

    let config = UploadConfig {
        table: table.clone(),
        secrets_prefix: prefix.clone(),
        app_secret_id,
        default_account: options.default_account.map(str::to_owned),
        chunk_size: 10_000_000,
        media_urls: options.media.then_some(MediaUrls::Presigned),
        image_grace: std::time::Duration::from_secs(options.image_grace_secs),
        convert_threads: 2,
        endpoints: Endpoints::for_base_url(sim.base_url()).unwrap(),
        video_transfer: if options.pull_videos {
            VideoTransfer::PullFromUrl
        } else {
            VideoTransfer::FileUpload
        },
        direct_post_enabled: options.direct_post,
    };
    // No queue URL: the one each message's eventSourceARN names.
    let service = UploadService::new(config, &aws, Clock::system())
        .await
        .unwrap()
        .with_redelivery(sqs.clone(), None)
        .with_redelivery_delay(if options.redelivery_immediate {
            RedeliveryDelay::immediate()
        } else {
            RedeliveryDelay::default()
        })
        .with_upload_retry(ChunkRetryPolicy::immediate(2));
    Deployment {
        sim,
        aws,
        sqs,
        service,
        bucket,
        table,
        versioned: options.versioned,
        secrets_prefix: prefix,
    }
}

impl Deployment {
    /// Puts an object with user metadata, and names it as S3's event does
    /// (with its version in a versioned bucket).
    pub async fn put_object(
        &self,
        key: &str,
        body: Vec<u8>,
        metadata: &[(&str, &str)],
    ) -> ObjectRef {
        let mut put = self
            .aws
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body));
        for (name, value) in metadata {
            put = put.metadata(*name, *value);
        }
        let out = put.send().await.unwrap();
        ObjectRef {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            version_id: if self.versioned {
                Some(out.version_id().expect("a versioned put").to_owned())
            } else {
                None
            },
            e_tag: out.e_tag().map(str::to_owned),
            size: None,
        }
    }

    pub fn jobs(&self) -> Jobs {
        Jobs::new(self.aws.dynamodb.clone(), &self.table)
    }

    /// The job of the object's current version (by its ETag now).
    pub async fn job(&self, object: &ObjectRef) -> Job {
        let head = self
            .aws
            .s3
            .head_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .send()
            .await
            .unwrap();
        let id = JobId::for_upload(
            &object.bucket,
            &object.key,
            &ObjectVersion::etag(head.e_tag().unwrap()),
        );
        self.jobs().get(&id).await.unwrap().expect("a job record")
    }

    /// The job of the version `object` names (its version id in a
    /// versioned bucket, else its ETag).
    pub async fn job_of_version(&self, object: &ObjectRef) -> Job {
        let version = ObjectVersion::of(object.version_id.as_deref(), object.e_tag.as_deref());
        self.jobs()
            .get(&JobId::for_upload(&object.bucket, &object.key, &version))
            .await
            .unwrap()
            .expect("a job record")
    }

    /// Photo drafts TikTok was asked to make (`content/init`).
    pub async fn photo_inits(&self) -> usize {
        self.sim
            .requests("/v2/post/publish/content/init/")
            .await
            .len()
    }
}
