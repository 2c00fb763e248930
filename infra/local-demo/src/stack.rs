//! The demo's deployment, taken down again afterwards.
//!
//! On the local stack it is `template.yaml` itself, translated and created
//! on moto's CloudFormation ([`TemplateStack`]): what the functions run on
//! is what the template makes, so the demo proves the template on every
//! `make test`. On real AWS the demo makes by hand only what the functions
//! use, named `tiktok-drafts-demo-*`, because there the functions run on
//! your machine, not in Lambda: a CloudFormation deployment of the template
//! would also create Lambda functions, an HTTP API, roles and alarms the
//! demo never uses, need the arm64 artifacts uploaded first, and take
//! minutes to create and delete. The functions' environment comes from the
//! template in both cases (`crate::functions`).
//!
//! - the upload bucket (versioned), whose `uploads/` notify the upload queue;
//! - the upload queue with its dead-letter queue (five deliveries);
//! - the table (TTL, the unfinished-work index);
//! - the app-credentials secret and the invitation key.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::client::Waiters as _;
use aws_sdk_s3::types::{
    BucketVersioningStatus, Event, FilterRule, FilterRuleName, NotificationConfiguration,
    NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter, VersioningConfiguration,
};
use aws_sdk_sqs::types::QueueAttributeName;
use shared::aws::{AwsClients, describe_sdk_error};
use shared::invite::SigningKey;
use tiktok_drafts_tests::template_stack::{TemplateStack, declared_functions, template_path};
use tokio::sync::watch;

use crate::DemoResult;

/// Names and addresses of one demo deployment.
pub struct Stack {
    pub aws: AwsClients,
    pub sqs: aws_sdk_sqs::Client,
    pub region: String,
    /// One name for the table, the queues, the bucket (unless given) and
    /// the secrets prefix.
    pub name: String,
    /// The account alias the demo connects and uploads under
    /// (`uploads/<alias>/`).
    pub alias: String,
    pub bucket: String,
    /// Whether the demo made the bucket (and may change and delete it).
    pub owns_bucket: bool,
    pub table: String,
    pub secrets_prefix: String,
    pub app_secret_id: String,
    pub invite_key_secret_id: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub dead_letter_queue_url: String,
    /// Messages per upload-function invocation (the template's SQS event).
    pub upload_batch_size: i32,
    /// The EventBridge rule that runs the status checker.
    pub schedule_rule_arn: String,
    /// The stack made from the template (None: made by hand).
    pub template: Option<TemplateStack>,
}

/// What the stack is made with.
pub struct StackSettings {
    /// Whether to make it from template.yaml on moto's CloudFormation (the
    /// local stack), or by hand (real AWS).
    pub from_template: bool,
    /// An existing bucket to use instead of a new one: its notification
    /// settings are left alone and it is not deleted.
    pub bucket: Option<String>,
    /// Whether the alias is `demo-<run id>` rather than `demo`.
    pub unique_alias: bool,
    pub client_key: String,
    pub client_secret: String,
}

/// Seconds a received upload message stays hidden: short, so that a
/// message the function asks to see again comes back within the demo.
const VISIBILITY_TIMEOUT_SECS: &str = "20";

/// How long S3 is given to see the queue policy (see [`notify_uploads`]).
const NOTIFY_PATIENCE: Duration = Duration::from_secs(60);

fn sdk<E: std::error::Error>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{what}: {}", describe_sdk_error(&e))
}

/// What one run made in AWS, recorded as each thing is made, so that a
/// failure or an interruption part-way (in [`Stack::create`] or later)
/// deletes exactly that and nothing else.
pub struct Made {
    aws: AwsClients,
    sqs: aws_sdk_sqs::Client,
    region: String,
    queue_urls: Vec<String>,
    /// A bucket the demo created (and so may empty and delete).
    bucket: Option<String>,
    /// A bucket of yours the demo writes into: only its keys are deleted.
    foreign_bucket: Option<String>,
    table: Option<String>,
    secrets_prefix: Option<String>,
    /// The stack made from the template: deleting it deletes everything
    /// above that it holds.
    template: Option<TemplateStack>,
}

impl Made {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            aws: AwsClients::from_config(config),
            sqs: aws_sdk_sqs::Client::new(config),
            region: config
                .region()
                .map(|r| r.as_ref().to_owned())
                .unwrap_or_else(|| "us-east-1".to_owned()),
            queue_urls: Vec::new(),
            bucket: None,
            foreign_bucket: None,
            table: None,
            secrets_prefix: None,
            template: None,
        }
    }

    /// Deletes what the demo made: the bucket it created (every version),
    /// or in a bucket of yours the objects it wrote; the queues, the table
    /// and every secret under its prefix (account tokens included), without
    /// the recovery window. Goes on past a failure and reports them all.
    pub async fn delete(&self, written_keys: &[String]) -> DemoResult<()> {
        let mut failures = Vec::new();
        if let Some(template) = &self.template {
            // The stack, then what its deletion leaves: the retained table,
            // the bucket's objects, the secrets (the template's and the
            // account tokens).
            if let Err(e) = template.delete().await {
                failures.push(format!("delete the stack: {e}"));
            }
        }
        if let Some(bucket) = &self.bucket {
            if let Err(e) = empty_bucket(&self.aws.s3, bucket).await {
                failures.push(e);
            } else if let Err(e) = self.aws.s3.delete_bucket().bucket(bucket).send().await {
                failures.push(format!("delete the bucket: {}", describe_sdk_error(&e)));
            }
        } else if let Some(bucket) = &self.foreign_bucket {
            for key in written_keys {
                if let Err(e) = self
                    .aws
                    .s3
                    .delete_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                {
                    failures.push(format!("delete {key}: {}", describe_sdk_error(&e)));
                }
            }
        }
        for url in &self.queue_urls {
            if let Err(e) = self.sqs.delete_queue().queue_url(url).send().await {
                failures.push(format!("delete queue {url}: {}", describe_sdk_error(&e)));
            }
        }
        if let Some(table) = &self.table
            && let Err(e) = delete_table(&self.aws.dynamodb, table).await
        {
            failures.push(e);
        }
        if let Some(prefix) = &self.secrets_prefix {
            match secret_names(&self.aws.secrets, prefix).await {
                Ok(names) => {
                    for name in names {
                        if let Err(e) = self
                            .aws
                            .secrets
                            .delete_secret()
                            .secret_id(&name)
                            .force_delete_without_recovery(true)
                            .send()
                            .await
                        {
                            failures
                                .push(format!("delete secret {name}: {}", describe_sdk_error(&e)));
                        }
                    }
                }
                Err(e) => failures.push(e),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }
}

impl Stack {
    /// Makes the deployment, recording each part in `made` as soon as it
    /// exists: on an error the caller deletes what `made` holds.
    ///
    /// `stop` turning true (a signal) ends it with an error at the next
    /// step, not in the middle of one: a call dropped in flight may have
    /// made something that `made` never heard of (a queue, a bucket). Only
    /// the waits, where nothing is being made, end at once.
    pub async fn create(
        made: &mut Made,
        settings: StackSettings,
        stop: &watch::Receiver<bool>,
    ) -> DemoResult<Self> {
        let run_id = format!("{:08x}", rand::random::<u32>());
        let name = format!("tiktok-drafts-demo-{run_id}");
        let alias = if settings.unique_alias {
            format!("{}-{run_id}", crate::ALIAS)
        } else {
            crate::ALIAS.to_owned()
        };
        if settings.from_template {
            step(stop)?;
            return Self::from_template(made, settings, name, alias).await;
        }
        Self::by_hand(made, settings, name, alias, stop).await
    }

    /// The deployment made by hand (real AWS), one part at a time, each
    /// recorded in `made` as it is made: the queues, the bucket (unless one
    /// was given), the table, the secrets.
    async fn by_hand(
        made: &mut Made,
        settings: StackSettings,
        name: String,
        alias: String,
        stop: &watch::Receiver<bool>,
    ) -> DemoResult<Self> {
        let upload_batch_size = template_batch_size().await?;
        let table = name.clone();
        let secrets_prefix = name.clone();
        let queues = create_queues(made, &name, stop).await?;
        let (bucket, owns_bucket) = match settings.bucket {
            Some(bucket) => {
                made.foreign_bucket = Some(bucket.clone());
                (bucket, false)
            }
            None => (name.clone(), true),
        };
        if owns_bucket {
            create_upload_bucket(made, &bucket, &queues, stop).await?;
        }
        create_table(made, &table, stop).await?;
        let (app_secret_id, invite_key_secret_id) = create_secrets(
            made,
            &secrets_prefix,
            &settings.client_key,
            &settings.client_secret,
            stop,
        )
        .await?;
        let region = made.region.clone();
        Ok(Self {
            schedule_rule_arn: format!("arn:aws:events:{region}:123456789012:rule/{name}-check"),
            aws: made.aws.clone(),
            sqs: made.sqs.clone(),
            region,
            name,
            alias,
            bucket,
            owns_bucket,
            table,
            secrets_prefix,
            app_secret_id,
            invite_key_secret_id,
            queue_url: queues.queue_url,
            queue_arn: queues.queue_arn,
            dead_letter_queue_url: queues.dead_letter_queue_url,
            upload_batch_size,
            template: None,
        })
    }

    /// template.yaml as a stack on the local moto, in the account of the
    /// environment's credentials; then, as the README's deploy steps say,
    /// the app's credentials into its app secret. A bucket given with
    /// --bucket is used instead of the stack's (as by hand).
    async fn from_template(
        made: &mut Made,
        settings: StackSettings,
        name: String,
        alias: String,
    ) -> DemoResult<Self> {
        let template = TemplateStack::create(
            &template_path(),
            &name,
            &[
                // Replaced by the local HTTP API's address when the login
                // starts (the template asks for https; loopback is http).
                ("RedirectUri", "https://drafts.example.com/auth/callback"),
                // This run's own, so that nothing an earlier run kept is met.
                ("SecretsPrefix", &name),
            ],
            Some("current"),
        )
        .await?;
        made.template = Some(template.clone());
        let output = |key: &str| template.output(key).map(str::to_owned);
        let app_secret_id = output("AppSecretArn")?;
        made.aws
            .secrets
            .put_secret_value()
            .secret_id(&app_secret_id)
            .secret_string(
                serde_json::json!({
                    "client_key": settings.client_key,
                    "client_secret": settings.client_secret,
                })
                .to_string(),
            )
            .send()
            .await
            .map_err(sdk("put the app's credentials into the app secret"))?;
        let (_, upload) = template.function_running("s3-upload")?;
        let queue = upload
            .events
            .iter()
            .find(|e| e.kind == "SQS")
            .ok_or("the upload function has no SQS event")?;
        let (_, checker) = template.function_running("status-checker")?;
        let schedule_rule_arn = checker
            .events
            .iter()
            .find_map(|e| e.rule_arn.clone())
            .ok_or("the status checker has no schedule")?;
        let (bucket, owns_bucket) = match settings.bucket {
            Some(bucket) => {
                made.foreign_bucket = Some(bucket.clone());
                (bucket, false)
            }
            None => (output("UploadBucketName")?, true),
        };
        Ok(Self {
            aws: made.aws.clone(),
            sqs: made.sqs.clone(),
            region: made.region.clone(),
            alias,
            bucket,
            owns_bucket,
            table: output("TableName")?,
            secrets_prefix: template
                .parameters
                .get("SecretsPrefix")
                .cloned()
                .ok_or("the stack has no SecretsPrefix")?,
            app_secret_id,
            invite_key_secret_id: output("InviteKeySecretArn")?,
            queue_url: output("UploadQueueUrl")?,
            queue_arn: queue.queue_arn.clone().ok_or("no queue ARN")?,
            dead_letter_queue_url: output("UploadDeadLetterQueueUrl")?,
            upload_batch_size: queue.batch_size.unwrap_or(10),
            schedule_rule_arn,
            name,
            template: Some(template),
        })
    }
}

/// Ends the making of the stack with an error when `stop` is true: checked
/// before each step, never in the middle of one.
fn step(stop: &watch::Receiver<bool>) -> DemoResult<()> {
    if *stop.borrow() {
        Err("interrupted".to_owned())
    } else {
        Ok(())
    }
}

/// The upload queue and its dead-letter queue, as made by hand.
struct Queues {
    dead_letter_queue_url: String,
    queue_url: String,
    queue_arn: String,
}

/// Makes the dead-letter queue, then the upload queue that sends to it after
/// five deliveries, recording each in `made`.
async fn create_queues(
    made: &mut Made,
    name: &str,
    stop: &watch::Receiver<bool>,
) -> DemoResult<Queues> {
    let sqs = made.sqs.clone();
    step(stop)?;
    let dead_letter_queue_url = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .map_err(sdk("create the dead-letter queue"))?
        .queue_url
        .ok_or("the dead-letter queue has no URL")?;
    made.queue_urls.push(dead_letter_queue_url.clone());
    let dead_letter_arn = queue_arn(&sqs, &dead_letter_queue_url).await?;
    step(stop)?;
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("{name}-uploads"))
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            VISIBILITY_TIMEOUT_SECS,
        )
        .attributes(
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": 5})
                .to_string(),
        )
        .send()
        .await
        .map_err(sdk("create the upload queue"))?
        .queue_url
        .ok_or("the upload queue has no URL")?;
    made.queue_urls.push(queue_url.clone());
    let queue_arn = queue_arn(&sqs, &queue_url).await?;
    Ok(Queues {
        dead_letter_queue_url,
        queue_url,
        queue_arn,
    })
}

/// Makes the demo's own bucket (recorded in `made`), versioned, and has it
/// notify the upload queue of new uploads, with a queue policy that lets S3
/// send for this bucket only.
async fn create_upload_bucket(
    made: &mut Made,
    bucket: &str,
    queues: &Queues,
    stop: &watch::Receiver<bool>,
) -> DemoResult<()> {
    let s3 = made.aws.s3.clone();
    step(stop)?;
    create_bucket(&s3, bucket, &made.region).await?;
    made.bucket = Some(bucket.to_owned());
    step(stop)?;
    turn_on_versioning(&s3, bucket).await?;
    // S3 may send to the queue, for this bucket only (as the template
    // says); moto does not check, AWS does.
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queues.queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": format!("arn:aws:s3:::{bucket}")}}
        }]
    });
    step(stop)?;
    made.sqs
        .set_queue_attributes()
        .queue_url(&queues.queue_url)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await
        .map_err(sdk("let S3 send to the upload queue"))?;
    notify_uploads(&s3, bucket, &queues.queue_arn, stop).await
}

/// Makes the table, recorded in `made` before the call: a table made whose
/// TTL step then fails must be deleted too (a table that was never made is
/// skipped).
async fn create_table(
    made: &mut Made,
    table: &str,
    stop: &watch::Receiver<bool>,
) -> DemoResult<()> {
    step(stop)?;
    made.table = Some(table.to_owned());
    // Most of this is waiting for the table to become ACTIVE, which a
    // signal may cut short: the table is recorded already, and deleting
    // it waits for ACTIVE itself.
    tokio::select! {
        created = shared::table::create_table(&made.aws.dynamodb, table) => {
            created.map_err(|e| format!("create the table: {e}"))?;
        }
        () = stopped(stop) => return Err("interrupted".into()),
    }
    Ok(())
}

/// Makes the app secret (with the app's credentials) and the invitation key
/// under `secrets_prefix`, recorded in `made` first. Gives their ids.
async fn create_secrets(
    made: &mut Made,
    secrets_prefix: &str,
    client_key: &str,
    client_secret: &str,
    stop: &watch::Receiver<bool>,
) -> DemoResult<(String, String)> {
    let app_secret_id = format!("{secrets_prefix}/app");
    let invite_key_secret_id = format!("{secrets_prefix}/invite-key");
    // The secrets are found by prefix when deleted, whichever exist.
    step(stop)?;
    made.secrets_prefix = Some(secrets_prefix.to_owned());
    made.aws
        .secrets
        .create_secret()
        .name(&app_secret_id)
        .secret_string(
            serde_json::json!({
                "client_key": client_key,
                "client_secret": client_secret,
            })
            .to_string(),
        )
        .send()
        .await
        .map_err(sdk("create the app secret"))?;
    step(stop)?;
    // The template generates this key at deploy time.
    SigningKey::create_if_missing(&made.aws.secrets, &invite_key_secret_id)
        .await
        .map_err(|e| format!("create the invitation key: {e}"))?;
    Ok((app_secret_id, invite_key_secret_id))
}

/// Messages per upload-function invocation, as the template's SQS event
/// for the upload function says.
async fn template_batch_size() -> DemoResult<i32> {
    let declared = declared_functions(&template_path()).await?;
    declared
        .values()
        .filter(|f| f.binary.as_deref() == Some("s3-upload"))
        .flat_map(|f| &f.events)
        .find(|e| e.kind == "SQS")
        .map(|e| e.batch_size.unwrap_or(10))
        .ok_or_else(|| "the template gives the upload function no SQS event".to_owned())
}

/// Deletes the table, waiting for it to become ACTIVE when it is still
/// being made (DynamoDB refuses to delete a CREATING table). Recorded
/// before CreateTable was sent (a table whose TTL step failed must go
/// too), it may never have been made: then there is nothing to do.
async fn delete_table(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> DemoResult<()> {
    for attempt in 0..2 {
        let err = match dynamodb.delete_table().table_name(table).send().await {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        let service = err.as_service_error();
        if service.is_some_and(|e| e.is_resource_not_found_exception()) {
            return Ok(());
        }
        if attempt > 0 || !service.is_some_and(|e| e.is_resource_in_use_exception()) {
            return Err(format!("delete the table: {}", describe_sdk_error(&err)));
        }
        dynamodb
            .wait_until_table_exists()
            .table_name(table)
            .wait(Duration::from_secs(300))
            .await
            .map_err(|e| {
                format!(
                    "delete the table: it did not become ACTIVE: {}",
                    describe_sdk_error(&e)
                )
            })?;
    }
    Ok(())
}

/// The secrets under the demo's prefix (its own name is random, so nothing
/// else matches).
async fn secret_names(
    secrets: &aws_sdk_secretsmanager::Client,
    prefix: &str,
) -> DemoResult<Vec<String>> {
    let prefix = format!("{prefix}/");
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = secrets
            .list_secrets()
            .set_next_token(token)
            .filters(
                aws_sdk_secretsmanager::types::Filter::builder()
                    .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                    .values(&prefix)
                    .build(),
            )
            .send()
            .await
            .map_err(sdk("list the demo's secrets"))?;
        names.extend(
            page.secret_list()
                .iter()
                .filter_map(|s| s.name())
                .filter(|n| n.starts_with(&prefix))
                .map(str::to_owned),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(names);
        }
    }
}

async fn empty_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> DemoResult<()> {
    let mut key_marker = None;
    let mut version_marker = None;
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .set_key_marker(key_marker)
            .set_version_id_marker(version_marker)
            .send()
            .await
            .map_err(sdk("list the bucket's objects"))?;
        let versions = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                page.delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            );
        for (key, version) in versions {
            let Some(key) = key else { continue };
            s3.delete_object()
                .bucket(bucket)
                .key(key)
                .set_version_id(version.map(str::to_owned))
                .send()
                .await
                .map_err(sdk("delete an object version"))?;
        }
        if page.is_truncated() != Some(true) {
            return Ok(());
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
    }
}

/// Ends when `stop` is (or turns) true; never if its sender is gone.
async fn stopped(stop: &watch::Receiver<bool>) {
    let mut stop = stop.clone();
    if stop.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> DemoResult<String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(sdk("read a queue's ARN"))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| format!("queue {url} has no ARN"))
}

async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str, region: &str) -> DemoResult<()> {
    let mut create = s3.create_bucket().bucket(bucket);
    // us-east-1 is S3's default and refuses to be named.
    if region != "us-east-1" {
        create = create.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                .build(),
        );
    }
    create.send().await.map_err(sdk("create the bucket"))?;
    Ok(())
}

/// Versioned, as in the template: a new upload to the same key is a new
/// version and so a new job.
async fn turn_on_versioning(s3: &aws_sdk_s3::Client, bucket: &str) -> DemoResult<()> {
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map_err(sdk("turn on versioning"))?;
    Ok(())
}

/// Every object created under `uploads/` notifies the upload queue.
async fn notify_uploads(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    queue_arn: &str,
    stop: &watch::Receiver<bool>,
) -> DemoResult<()> {
    let queue = QueueConfiguration::builder()
        .id("tiktok-drafts-uploads")
        .queue_arn(queue_arn)
        .events(Event::from("s3:ObjectCreated:*"))
        .filter(
            NotificationConfigurationFilter::builder()
                .key(
                    S3KeyFilter::builder()
                        .filter_rules(
                            FilterRule::builder()
                                .name(FilterRuleName::Prefix)
                                .value("uploads/")
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
        .map_err(|e| format!("notification settings: {e}"))?;
    let configuration = NotificationConfiguration::builder()
        .queue_configurations(queue)
        .build();
    // S3 checks that it may send to the queue when the configuration is
    // set, and a queue policy set a moment ago may not have reached it yet
    // ("Unable to validate the following destination configurations"):
    // that one error is tried again, with backoff, for about a minute.
    let give_up = Instant::now() + NOTIFY_PATIENCE;
    let mut pause = Duration::from_secs(1);
    loop {
        let sent = s3
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(configuration.clone())
            .send()
            .await;
        let err = match sent {
            Ok(_) => return Ok(()),
            Err(err) => describe_sdk_error(&err),
        };
        if !err.contains("Unable to validate the following destination configurations")
            || Instant::now() + pause > give_up
        {
            return Err(format!("notify the upload queue of new uploads: {err}"));
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = stopped(stop) => return Err("interrupted".into()),
        }
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}
