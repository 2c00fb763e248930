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

use aws_sdk_dynamodb::types::TableDescription;
use tiktok_drafts_tests::lambda::LambdaFunction;
use tiktok_drafts_tests::template_stack::{
    LocalOverrides, StackFunction, TemplateStack, declared_functions, sdk_config_for, template_path,
};
use tiktok_drafts_tests::{SIM_CLIENT_KEY, SIM_CLIENT_SECRET, local_aws, unique_name};

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
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/debug/deps/<this test> -> target/debug/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("the target folder")?;
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} is not built: run the tests with `make test` (cargo test --workspace builds every binary)",
            path.display()
        ))
    }
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
        assert!(
            function.environment.contains_key("TIKTOK_APP_SECRET_ID"),
            "{id}: {:?}",
            function.environment
        );
    }
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
