//! template.yaml deployed, not only linted: translated to CloudFormation
//! offline and created on moto's CloudFormation (`tiktok_drafts_tests::
//! template_stack`), each stack in an account of its own. Every function
//! the template declares is started as its real binary under the Lambda
//! emulator with exactly the environment moto's Lambda holds for it, and
//! must get through its cold start; every resource its environment names
//! must be there for its role; the table must be the one the code makes.
//! A scratch copy of the template with one name changed must fail by that
//! name. (`make demo`, and so `infra/local-demo/tests/demo.rs`, runs the
//! whole flow on such a stack.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_sdk_dynamodb::types::TableDescription;
use chrono::Utc;
use serde_json::Value;
use shared::invite::{Invitation, SigningKey};
use shared::tokens::STACK_TAG;
use tiktok_drafts_tests::events::api_gateway_request;
use tiktok_drafts_tests::lambda::LambdaFunction;
use tiktok_drafts_tests::template_stack::{
    LocalOverrides, StackFunction, TemplateStack, declared_functions, sdk_config_for, template_path,
};
use tiktok_drafts_tests::{SIM_CLIENT_KEY, SIM_CLIENT_SECRET, TestSim, local_aws, unique_name};

/// A callback URL that passes the template's own pattern (https, no query).
const REDIRECT_URI: &str = "https://drafts.example.com/auth/callback";

/// The stack, with the TikTok app's credentials put into its app secret as
/// the README's deploy steps say (the template creates it empty).
async fn create(template: &Path) -> Result<TemplateStack, String> {
    let stack = TemplateStack::create(
        template,
        &unique_name("stack"),
        &[("RedirectUri", REDIRECT_URI)],
        None,
    )
    .await?;
    let secrets = aws_sdk_secretsmanager::Client::new(&stack.sdk_config().await);
    secrets
        .put_secret_value()
        .secret_id(stack.output("AppSecretArn")?)
        .secret_string(
            serde_json::json!({"client_key": SIM_CLIENT_KEY, "client_secret": SIM_CLIENT_SECRET})
                .to_string(),
        )
        .send()
        .await
        .map_err(|e| shared::aws::describe_sdk_error(&e))?;
    Ok(stack)
}

/// A copy of template.yaml with `from` replaced by `to` (once at least).
fn scratch_template(from: &str, to: &str) -> (tempfile::TempDir, PathBuf) {
    let text = std::fs::read_to_string(template_path()).expect("read template.yaml");
    assert!(text.contains(from), "template.yaml has no {from:?}");
    let dir = tempfile::tempdir().expect("a scratch folder");
    let path = dir.path().join("template.yaml");
    std::fs::write(&path, text.replace(from, to)).expect("write the scratch template");
    (dir, path)
}

/// A workspace binary, as `cargo test --workspace` (`make test`) leaves it.
fn binary(name: &str) -> Result<PathBuf, String> {
    tiktok_drafts_tests::workspace_binary(name)
}

/// What only this machine needs on top of the stack's environment: the
/// TikTok simulator is not where the code's defaults point. (The login's
/// REDIRECT_URI stays the template's parameter: no browser comes here.)
fn local_overrides() -> LocalOverrides {
    LocalOverrides {
        replace: Vec::new(),
        add: vec![
            ("TIKTOK_API_BASE_URL", "http://127.0.0.1:9".to_owned()),
            (
                "TIKTOK_AUTH_URL",
                "http://127.0.0.1:9/v2/auth/authorize/".to_owned(),
            ),
        ],
    }
}

/// Starts `function` under the emulator and invokes it once with `{}`: a
/// cold start that fails (a variable missing or wrong, a secret it cannot
/// read) ends the process, and the error says which function and what its
/// log said. The handler refusing `{}` is fine: it got that far.
async fn cold_start(logical_id: &str, function: &StackFunction) -> Result<(), String> {
    let name = function
        .binary
        .as_deref()
        .ok_or_else(|| format!("{logical_id}: no Metadata.BuildProperties.Binary"))?;
    let env = function.local_env(logical_id, &local_overrides())?;
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let mut started = LambdaFunction::try_start(&binary(name)?, &env).await?;
    started
        .try_invoke(&serde_json::json!({}))
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "{logical_id} ({name}) did not start with the environment the stack gave it: {e}"
            )
        })
}

/// Cold-starts every function of the stack; all failures, each by name.
async fn cold_start_all(stack: &TemplateStack) -> Result<(), String> {
    let mut problems = Vec::new();
    for (id, function) in &stack.functions {
        if let Err(e) = cold_start(id, function).await {
            problems.push(e);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Every resource a function's environment names is there, and reachable
/// with the function's own credentials: `TABLE_NAME` a table,
/// `*_SECRET_ID` a secret, `*_QUEUE_URL` a queue, `*_BUCKET` a bucket.
async fn unreachable_resources(stack: &TemplateStack) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, function) in &stack.functions {
        let config = sdk_config_for(&function.credentials).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let secrets = aws_sdk_secretsmanager::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let s3 = shared::aws::s3_client(&config);
        for (name, value) in &function.environment {
            let checked = if name == "TABLE_NAME" {
                dynamodb
                    .describe_table()
                    .table_name(value)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| shared::aws::describe_sdk_error(&e))
            } else if name.ends_with("_SECRET_ID") {
                secrets
                    .describe_secret()
                    .secret_id(value)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| shared::aws::describe_sdk_error(&e))
            } else if name.ends_with("_QUEUE_URL") {
                sqs.get_queue_attributes()
                    .queue_url(value)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| shared::aws::describe_sdk_error(&e))
            } else if name.ends_with("_BUCKET") {
                s3.head_bucket()
                    .bucket(value)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| shared::aws::describe_sdk_error(&e))
            } else {
                continue;
            };
            if let Err(e) = checked {
                problems.push(format!("{id} {name}={value:?}: {e}"));
            }
        }
    }
    problems
}

/// The table's shape as the code makes it (`shared::table::create_table`,
/// which every other test and the local tools use) against the stack's:
/// keys, indexes, TTL attribute, stream. Differences by name.
async fn table_differences(stack: &TemplateStack) -> Result<Vec<String>, String> {
    let config = stack.sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let made = stack
        .resources
        .values()
        .find(|r| r.kind == "AWS::DynamoDB::Table")
        .ok_or("the stack has no table")?
        .physical_id
        .clone();
    let reference = format!("{}-code", stack.stack_name);
    shared::table::create_table(&dynamodb, &reference)
        .await
        .map_err(|e| e.to_string())?;
    let shape = |name: String| {
        let dynamodb = dynamodb.clone();
        async move {
            let table = dynamodb
                .describe_table()
                .table_name(&name)
                .send()
                .await
                .map_err(|e| shared::aws::describe_sdk_error(&e))?
                .table
                .ok_or("no table")?;
            let ttl = dynamodb
                .describe_time_to_live()
                .table_name(&name)
                .send()
                .await
                .map_err(|e| shared::aws::describe_sdk_error(&e))?
                .time_to_live_description
                .and_then(|t| t.attribute_name);
            Ok::<_, String>(TableShape::of(&table, ttl))
        }
    };
    let code = shape(reference.clone()).await?;
    let template = shape(made).await?;
    dynamodb
        .delete_table()
        .table_name(&reference)
        .send()
        .await
        .map_err(|e| shared::aws::describe_sdk_error(&e))?;
    Ok(code.differences(&template))
}

/// What the code relies on in a table.
#[derive(Debug, PartialEq)]
struct TableShape {
    keys: Vec<String>,
    /// Index name -> its keys and projection.
    indexes: BTreeMap<String, Vec<String>>,
    ttl_attribute: Option<String>,
    stream: Option<String>,
}

impl TableShape {
    fn of(table: &TableDescription, ttl_attribute: Option<String>) -> Self {
        let keys = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
            schema
                .iter()
                .map(|k| format!("{} {}", k.attribute_name(), k.key_type().as_str()))
                .collect::<Vec<_>>()
        };
        Self {
            keys: keys(table.key_schema()),
            indexes: table
                .global_secondary_indexes()
                .iter()
                .map(|i| {
                    let mut shape = keys(i.key_schema());
                    shape.push(format!(
                        "projection {}",
                        i.projection()
                            .and_then(|p| p.projection_type())
                            .map(|p| p.as_str().to_owned())
                            .unwrap_or_default()
                    ));
                    (i.index_name().unwrap_or_default().to_owned(), shape)
                })
                .collect(),
            ttl_attribute,
            stream: table
                .stream_specification()
                .filter(|s| s.stream_enabled())
                .map(|s| format!("{:?}", s.stream_view_type())),
        }
    }

    fn differences(&self, template: &Self) -> Vec<String> {
        let mut out = Vec::new();
        if self.keys != template.keys {
            out.push(format!(
                "table keys: the code uses {:?}, the template declares {:?}",
                self.keys, template.keys
            ));
        }
        for (name, shape) in &self.indexes {
            match template.indexes.get(name) {
                None => out.push(format!(
                    "index {name}: the code queries it, the template declares no such index (it has {:?})",
                    template.indexes.keys().collect::<Vec<_>>()
                )),
                Some(other) if other != shape => out.push(format!(
                    "index {name}: the code uses {shape:?}, the template declares {other:?}"
                )),
                Some(_) => {}
            }
        }
        for name in template.indexes.keys() {
            if !self.indexes.contains_key(name) {
                out.push(format!(
                    "index {name}: the template declares it, shared::table::create_table does not make it (tests would not see it)"
                ));
            }
        }
        if self.ttl_attribute != template.ttl_attribute {
            out.push(format!(
                "TTL attribute: the code writes {:?}, the template expires {:?}",
                self.ttl_attribute, template.ttl_attribute
            ));
        }
        if self.stream != template.stream {
            out.push(format!(
                "stream: the code makes {:?}, the template declares {:?}",
                self.stream, template.stream
            ));
        }
        out
    }
}

#[tokio::test]
async fn every_function_of_the_template_starts_on_the_stack_it_makes() {
    let _sdk = local_aws().await;
    let stack = create(&template_path()).await.unwrap();

    // Every function the template declares was made, with its binary.
    let declared = declared_functions(&template_path()).await.unwrap();
    assert_eq!(
        declared.keys().collect::<Vec<_>>(),
        stack.functions.keys().collect::<Vec<_>>(),
        "functions made on the stack"
    );
    for (id, function) in &stack.functions {
        assert!(
            function.binary.is_some(),
            "{id}: Metadata.BuildProperties.Binary"
        );
        assert_eq!(
            function.memory_size, declared[id].memory_size,
            "{id}: MemorySize"
        );
        assert_eq!(function.timeout, declared[id].timeout, "{id}: Timeout");
    }
    // What moto left unapplied was filled in: the secrets the functions'
    // environments name are there (their Refs kept), TTL and the bucket's
    // versioning and notification are on.
    for (id, function) in &stack.functions {
        let missing: Vec<&String> = declared[id]
            .environment
            .iter()
            .filter(|name| !function.environment.contains_key(*name))
            .collect();
        assert!(
            missing.is_empty(),
            "{id}: the template gives {missing:?}, moto's Lambda lacks them: {:?}",
            function.environment
        );
    }
    assert!(
        stack
            .functions
            .values()
            .any(|f| f.environment.contains_key("TIKTOK_APP_SECRET_ID")),
        "some function reads the app secret"
    );
    let problems = unreachable_resources(&stack).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let differences = table_differences(&stack).await.unwrap();
    assert!(differences.is_empty(), "{}", differences.join("\n"));

    let config = stack.sdk_config().await;
    let s3 = shared::aws::s3_client(&config);
    let bucket = stack.output("UploadBucketName").unwrap();
    // Versioned: the same key written twice keeps two versions. (Put
    // outside uploads/, which would notify the queue.)
    for body in ["one", "two"] {
        s3.put_object()
            .bucket(bucket)
            .key("media/versioning-check")
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    }
    let versions = s3
        .list_object_versions()
        .bucket(bucket)
        .prefix("media/versioning-check")
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 2, "{versions:?}");
    let notification = s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let queue_arn = stack
        .functions
        .values()
        .flat_map(|f| &f.events)
        .find_map(|e| e.queue_arn.clone())
        .expect("a function fed by a queue");
    assert!(
        notification
            .queue_configurations()
            .iter()
            .any(|q| q.queue_arn() == queue_arn),
        "uploads/ notifies the queue the upload function reads: {notification:?}"
    );

    cold_start_all(&stack).await.unwrap();

    let deleted = stack.delete().await.unwrap();
    assert!(
        deleted.iter().any(|d| d.starts_with("retained table")),
        "{deleted:?}"
    );
}

/// Versioning keeps a deleted upload; the bucket the stack made lets it be
/// restored for DeletedUploadRetentionDays and then removes it, while the
/// current uploads never expire. (moto never runs the rules: what is
/// proven is that S3's API takes them as the template writes them, with
/// the stack's parameter.)
#[tokio::test]
async fn deleted_uploads_expire_after_the_stacks_retention_and_current_ones_stay() {
    let _sdk = local_aws().await;
    let stack = TemplateStack::create(
        &template_path(),
        &unique_name("stack"),
        &[
            ("RedirectUri", REDIRECT_URI),
            ("DeletedUploadRetentionDays", "3"),
        ],
        None,
    )
    .await
    .unwrap();
    let s3 = shared::aws::s3_client(&stack.sdk_config().await);
    let bucket = stack.output("UploadBucketName").unwrap();

    let key = "uploads/lifecycle-check/clip.mp4";
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(b"not a video".to_vec().into())
        .send()
        .await
        .unwrap();
    s3.delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let versions = s3
        .list_object_versions()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (versions.versions().len(), versions.delete_markers().len()),
        (1, 1),
        "a deleted upload stays as a noncurrent version behind a delete marker: {versions:?}"
    );

    let lifecycle = s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let prefix = |rule: &aws_sdk_s3::types::LifecycleRule| {
        rule.filter()
            .and_then(|f| f.prefix())
            .unwrap_or_default()
            .to_owned()
    };
    let enabled: Vec<_> = lifecycle
        .rules()
        .iter()
        .filter(|r| r.status() == &aws_sdk_s3::types::ExpirationStatus::Enabled)
        .collect();
    let uploads: Vec<_> = enabled
        .iter()
        .filter(|r| "uploads/".starts_with(&prefix(r)))
        .collect();
    assert!(
        uploads.iter().any(|r| prefix(r) == "uploads/"
            && r.noncurrent_version_expiration()
                .and_then(|e| e.noncurrent_days())
                == Some(3)),
        "noncurrent versions under uploads/ expire after the stack's 3 days: {lifecycle:?}"
    );
    assert!(
        uploads.iter().all(|r| r
            .expiration()
            .is_none_or(|e| e.days().is_none() && e.date().is_none())),
        "no rule expires a current upload: {lifecycle:?}"
    );
    stack.delete().await.unwrap();
}

/// The deliberate mismatch: the template calls the table's variable
/// something else, so no function gets the TABLE_NAME its code needs.
#[tokio::test]
async fn a_variable_the_template_does_not_give_fails_by_name() {
    let _sdk = local_aws().await;
    let (_dir, template) = scratch_template(
        "        TABLE_NAME: !Ref Table",
        "        TABLE: !Ref Table",
    );
    let stack = create(&template).await.unwrap();
    for (id, function) in &stack.functions {
        let err = cold_start(id, function).await.unwrap_err();
        // The message this mismatch fails with (shown with --nocapture).
        eprintln!("{err}");
        assert!(
            err.starts_with(&format!("{id} (")) && err.contains("TABLE_NAME is not set"),
            "{id} fails naming TABLE_NAME:\n{err}"
        );
    }
    // An override cannot paper over it: the local stack only replaces what
    // the template gives.
    let (id, function) = stack.function_running("s3-upload").unwrap();
    let err = function
        .local_env(
            id,
            &LocalOverrides {
                replace: vec![("TABLE_NAME", "x".into())],
                add: Vec::new(),
            },
        )
        .unwrap_err();
    assert!(err.contains("the template gives no TABLE_NAME"), "{err}");
    stack.delete().await.unwrap();
}

#[tokio::test]
async fn an_index_the_code_queries_must_be_in_the_template() {
    let _sdk = local_aws().await;
    let (_dir, template) = scratch_template("IndexName: gsi1", "IndexName: gsi-unfinished");
    let stack = create(&template).await.unwrap();
    let differences = table_differences(&stack).await.unwrap();
    assert!(
        differences
            .iter()
            .any(|d| d.starts_with("index gsi1: the code queries it")),
        "{differences:?}"
    );
    stack.delete().await.unwrap();
}

#[tokio::test]
async fn a_queue_the_code_cannot_reach_fails_by_name() {
    let _sdk = local_aws().await;
    // An ARN where the code needs the queue's URL.
    let (_dir, template) = scratch_template(
        "UPLOAD_QUEUE_URL: !Ref UploadQueue\n          CHECK_INTERVAL_MINUTES",
        "UPLOAD_QUEUE_URL: !GetAtt UploadQueue.Arn\n          CHECK_INTERVAL_MINUTES",
    );
    let stack = create(&template).await.unwrap();
    let problems = unreachable_resources(&stack).await;
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("StatusCheckerFunction UPLOAD_QUEUE_URL=\"arn:aws:sqs:")),
        "{problems:?}"
    );
    stack.delete().await.unwrap();
}

// ---------------------------------------------------------------------------
// The login within its role; a revoked account's tokens gone.
// ---------------------------------------------------------------------------

/// An HTTP proxy in front of moto's DynamoDB that keeps every request's
/// target and body: the requests a function makes, to be checked against
/// its role (moto enforces no IAM).
struct DynamoDbRecorder {
    url: String,
    requests: Arc<std::sync::Mutex<Vec<(String, Value)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl DynamoDbRecorder {
    async fn start(upstream: String) -> Self {
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let http = reqwest::Client::new();
        let app = axum::Router::new().fallback(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (recorded, http, upstream) = (recorded.clone(), http.clone(), upstream.clone());
                async move {
                    let target = headers
                        .get("x-amz-target")
                        .and_then(|t| t.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    recorded.lock().unwrap().push((target, json));
                    let mut request = http.post(&upstream).body(body.to_vec());
                    for (name, value) in &headers {
                        if name != "host" && name != "content-length" {
                            request = request.header(name.as_str(), value.as_bytes());
                        }
                    }
                    let answer = request.send().await.expect("moto answers");
                    let mut response =
                        axum::http::Response::builder().status(answer.status().as_u16());
                    for (name, value) in answer.headers() {
                        if !["content-length", "transfer-encoding", "connection"]
                            .contains(&name.as_str())
                        {
                            response = response.header(name.as_str(), value.as_bytes());
                        }
                    }
                    let bytes = answer.bytes().await.expect("moto's answer");
                    response
                        .body(axum::body::Body::from(bytes))
                        .expect("a response")
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            requests,
            task,
        }
    }

    fn requests(&self) -> Vec<(String, Value)> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for DynamoDbRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What IAM authorises for one DynamoDB request: each item action with its
/// partition key (a transaction is authorised item by item).
fn item_actions(target: &str, body: &Value) -> Vec<(String, Option<String>)> {
    let operation = target.rsplit('.').next().unwrap_or(target);
    let pk = |item: &Value| item["pk"]["S"].as_str().map(str::to_owned);
    match operation {
        "GetItem" | "UpdateItem" | "DeleteItem" => {
            vec![(format!("dynamodb:{operation}"), pk(&body["Key"]))]
        }
        "PutItem" => vec![("dynamodb:PutItem".into(), pk(&body["Item"]))],
        "TransactWriteItems" | "TransactGetItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|item| {
                [
                    ("Put", "dynamodb:PutItem", "Item"),
                    ("Update", "dynamodb:UpdateItem", "Key"),
                    ("Delete", "dynamodb:DeleteItem", "Key"),
                    ("ConditionCheck", "dynamodb:ConditionCheckItem", "Key"),
                    ("Get", "dynamodb:GetItem", "Key"),
                ]
                .into_iter()
                .filter(|(kind, _, _)| !item[*kind].is_null())
                .map(|(kind, action, key)| (action.to_owned(), pk(&item[kind][key])))
                .collect::<Vec<_>>()
            })
            .collect(),
        // Anything else (a Query, a Scan, DescribeTable): the action alone;
        // with no key, a ForAllValues condition would not limit it.
        other => vec![(format!("dynamodb:{other}"), None)],
    }
}

/// `pattern` (IAM's `*` and `?`) matches `text`.
fn like(pattern: &str, text: &str) -> bool {
    match pattern.chars().next() {
        None => text.is_empty(),
        Some('*') => (0..=text.len())
            .filter(|i| text.is_char_boundary(*i))
            .any(|i| like(&pattern[1..], &text[i..])),
        Some('?') => text
            .chars()
            .next()
            .is_some_and(|c| like(&pattern[1..], &text[c.len_utf8()..])),
        Some(p) => text.starts_with(p) && like(&pattern[p.len_utf8()..], &text[p.len_utf8()..]),
    }
}

/// Whether an Allow statement of `statements` grants `action` on an item
/// with partition key `pk` of the resource (table ARN) `resource`. A
/// condition other than the LeadingKeys forms used here is not evaluated:
/// it counts as not granting.
fn grants(statements: &[Value], action: &str, resource: &str, pk: Option<&str>) -> bool {
    let strings = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    statements.iter().any(|s| {
        s["Effect"] == "Allow"
            && strings(&s["Action"]).iter().any(|a| a == action)
            && strings(&s["Resource"]).iter().any(|r| like(r, resource))
            && s["Condition"].as_object().is_none_or(|conditions| {
                conditions.iter().all(|(operator, keys)| {
                    keys.as_object().is_some_and(|keys| {
                        keys.iter().all(|(key, values)| {
                            let values = strings(values);
                            match (operator.as_str(), key.as_str()) {
                                ("ForAllValues:StringLike", "dynamodb:LeadingKeys") => {
                                    pk.is_none_or(|pk| values.iter().any(|v| like(v, pk)))
                                }
                                ("ForAllValues:StringEquals", "dynamodb:LeadingKeys") => {
                                    pk.is_none_or(|pk| values.iter().any(|v| v == pk))
                                }
                                _ => false,
                            }
                        })
                    })
                })
            })
    })
}

#[test]
fn the_role_evaluation_reads_leading_keys_as_iam_does() {
    const TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/t";
    let statements = vec![serde_json::json!({
        "Effect": "Allow",
        "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
        "Resource": TABLE,
        "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["ACCOUNT#*", "LEASE#tokens#*"]}}
    })];
    let can = |action: &str, table: &str, pk: &str| grants(&statements, action, table, Some(pk));
    assert!(can("dynamodb:GetItem", TABLE, "ACCOUNT#o1"));
    assert!(can("dynamodb:PutItem", TABLE, "LEASE#tokens#o1"));
    assert!(!can("dynamodb:PutItem", TABLE, "LEASE#other#o1"));
    assert!(!can("dynamodb:PutItem", TABLE, "JOB#x"));
    assert!(!can("dynamodb:DeleteItem", TABLE, "ACCOUNT#o1"));
    assert!(!can("dynamodb:GetItem", &format!("{TABLE}2"), "ACCOUNT#o1"));
    assert!(like("A?C*", "ABCdef") && !like("A?C*", "AC"));
    let transaction = serde_json::json!({"TransactItems": [
        {"Put": {"Item": {"pk": {"S": "INVITE#i"}}}},
        {"ConditionCheck": {"Key": {"pk": {"S": "ALIAS#a"}}}}
    ]});
    assert_eq!(
        item_actions("DynamoDB_20120810.TransactWriteItems", &transaction),
        vec![
            ("dynamodb:PutItem".to_owned(), Some("INVITE#i".to_owned())),
            (
                "dynamodb:ConditionCheckItem".to_owned(),
                Some("ALIAS#a".to_owned())
            ),
        ]
    );
}

/// The answer of an HTTP function: status, headers and the cookies it sets.
fn http_answer(invocation: &tiktok_drafts_tests::lambda::Invocation) -> (u64, Value, Vec<String>) {
    let body = &invocation.body;
    let cookies = body["cookies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str())
        // "name=value; Path=/; ..." -> "name=value"
        .filter_map(|c| c.split(';').next().map(str::to_owned))
        .collect();
    (
        body["statusCode"].as_u64().unwrap_or_default(),
        body["headers"].clone(),
        cookies,
    )
}

#[tokio::test]
async fn a_login_on_the_stack_stays_within_its_role_and_a_removal_deletes_its_tokens() {
    const OPEN_ID: &str = "open-stack-creator";
    let _sdk = local_aws().await;
    let sim = TestSim::start(|_| {}).await;
    sim.seed_user(OPEN_ID, serde_json::json!({})).await;
    let stack = create(&template_path()).await.unwrap();
    let recorder = DynamoDbRecorder::start(std::env::var("AWS_ENDPOINT_URL").unwrap()).await;
    let sim_endpoints = || {
        vec![
            ("TIKTOK_API_BASE_URL", sim.base_url().to_owned()),
            ("TIKTOK_UPLOAD_BASE_URL", sim.base_url().to_owned()),
            (
                "TIKTOK_AUTH_URL",
                format!("{}/v2/auth/authorize/", sim.base_url()),
            ),
        ]
    };

    // The login, as the browser drives it, with its DynamoDB requests
    // recorded.
    let (login_id, login) = stack.function_running("oauth-callback").unwrap();
    let mut add = sim_endpoints();
    add.push(("AWS_ENDPOINT_URL_DYNAMODB", recorder.url.clone()));
    let env = login
        .local_env(
            login_id,
            &LocalOverrides {
                replace: Vec::new(),
                add,
            },
        )
        .unwrap();
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let mut function = LambdaFunction::start(&binary("oauth-callback").unwrap(), &env).await;
    let config = stack.sdk_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let key = SigningKey::load(&secrets, stack.output("InviteKeySecretArn").unwrap())
        .await
        .unwrap();
    let invite = Invitation::new("stacked", std::time::Duration::from_secs(3600), false)
        .unwrap()
        .sign(&key);
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("invite", &invite)
        .finish();
    let started = function
        .invoke(&api_gateway_request(
            "GET",
            "/auth/start",
            &query,
            &[],
            None,
            Utc::now(),
        ))
        .await;
    let (status, headers, cookies) = http_answer(&started);
    assert_eq!(status, 302, "{:?}\n{}", started, function.logs().join("\n"));
    let authorize = headers["location"].as_str().expect("to TikTok").to_owned();
    // The creator approves at TikTok, which sends the browser back.
    let approved = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&authorize)
        .send()
        .await
        .unwrap();
    let back = url::Url::parse(
        approved.headers()["location"]
            .to_str()
            .expect("back to the callback"),
    )
    .unwrap();
    assert!(back.as_str().starts_with(REDIRECT_URI), "{back}");
    let cookie_header: Vec<(String, String)> = if cookies.is_empty() {
        Vec::new()
    } else {
        vec![("cookie".to_owned(), cookies.join("; "))]
    };
    let finished = function
        .invoke(&api_gateway_request(
            "GET",
            "/auth/callback",
            back.query().unwrap_or_default(),
            &cookie_header,
            None,
            Utc::now(),
        ))
        .await;
    let (status, _, _) = http_answer(&finished);
    assert_eq!(
        status,
        200,
        "{:?}\n{}",
        finished,
        function.logs().join("\n")
    );

    // Every item the login touched is one its role, as the stack made it,
    // lets it touch.
    let statements = &login.role_statements;
    let table_arn = format!(
        "arn:aws:dynamodb:{}:{}:table/{}",
        stack.region, stack.account_id, login.environment["TABLE_NAME"]
    );
    assert!(
        !statements.is_empty(),
        "{login_id}'s role has statements in moto's IAM"
    );
    let requests = recorder.requests();
    let touched: Vec<(String, Option<String>)> = requests
        .iter()
        .flat_map(|(target, body)| item_actions(target, body))
        .collect();
    for prefix in [
        "OAUTHSTATE#",
        "ACCOUNT#",
        "ALIAS#",
        "INVITE#",
        "LEASE#tokens#",
    ] {
        assert!(
            touched
                .iter()
                .any(|(_, pk)| pk.as_deref().is_some_and(|pk| pk.starts_with(prefix))),
            "the recorder saw the login's {prefix} items: {touched:?}"
        );
    }
    let refused: Vec<&(String, Option<String>)> = touched
        .iter()
        .filter(|(action, pk)| !grants(statements, action, &table_arn, pk.as_deref()))
        .collect();
    assert!(
        refused.is_empty(),
        "{login_id}'s role would refuse these requests of the login: {refused:?}"
    );

    // Its token secret carries the stack's name.
    let prefix = &stack.parameters["SecretsPrefix"];
    let secret_name = format!("{prefix}/accounts/{OPEN_ID}");
    let described = secrets
        .describe_secret()
        .secret_id(&secret_name)
        .send()
        .await
        .unwrap();
    assert!(
        described
            .tags()
            .iter()
            .any(|t| t.key() == Some(STACK_TAG) && t.value() == Some(stack.stack_name.as_str())),
        "{:?}",
        described.tags()
    );

    // TikTok says the creator removed the app: the webhook revokes the
    // account and its token secret goes.
    let (webhook_id, webhook) = stack.function_running("tiktok-webhook").unwrap();
    let env = webhook
        .local_env(
            webhook_id,
            &LocalOverrides {
                replace: Vec::new(),
                add: sim_endpoints(),
            },
        )
        .unwrap();
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let mut function = LambdaFunction::start(&binary("tiktok-webhook").unwrap(), &env).await;
    let now = Utc::now().timestamp();
    let body = serde_json::json!({
        "client_key": SIM_CLIENT_KEY,
        "event": "authorization.removed",
        "create_time": now + 1,
        "user_openid": OPEN_ID,
        "content": serde_json::json!({"reason": 1}).to_string(),
    })
    .to_string();
    let signature = shared::webhook::signature_header(SIM_CLIENT_SECRET, now, body.as_bytes());
    let delivered = function
        .invoke(&api_gateway_request(
            "POST",
            "/webhooks/tiktok",
            "",
            &[(shared::webhook::SIGNATURE_HEADER.to_owned(), signature)],
            Some(&body),
            Utc::now(),
        ))
        .await;
    let (status, _, _) = http_answer(&delivered);
    assert_eq!(
        status,
        200,
        "{:?}\n{}",
        delivered,
        function.logs().join("\n")
    );
    let gone = secrets
        .describe_secret()
        .secret_id(&secret_name)
        .send()
        .await;
    assert!(
        gone.as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "the revoked account's token secret is gone: {gone:?}"
    );
    stack.delete().await.unwrap();
    sim.shutdown().await;
}
