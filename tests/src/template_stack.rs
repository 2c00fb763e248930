//! `template.yaml` as a stack: translated to CloudFormation offline (the
//! library `sam` itself uses) and created on moto's CloudFormation, each
//! stack in an AWS account of its own (see `infra/template_stack.py`, which
//! also fills in what moto leaves unapplied). What the stack made is read
//! back from moto: each function's environment is the one moto's Lambda
//! holds for it, and [`StackFunction::local_env`] adds only what running it
//! on this machine needs, by name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use aws_config::{BehaviorVersion, SdkConfig};
use serde::Deserialize;

/// Credentials in the stack's account (a deployer's, or a function role's).
#[derive(Debug, Clone, Deserialize)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

/// One resource of the stack.
#[derive(Debug, Clone, Deserialize)]
pub struct StackResource {
    #[serde(rename = "type")]
    pub kind: String,
    pub physical_id: String,
}

/// One event source the template gives a function (`Events:`).
#[derive(Debug, Clone, Deserialize)]
pub struct FunctionEvent {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// HttpApi: the route.
    pub method: Option<String>,
    pub path: Option<String>,
    /// SQS: the event source mapping as moto holds it.
    pub queue_arn: Option<String>,
    pub queue_url: Option<String>,
    /// SQS and DynamoDB.
    pub batch_size: Option<i32>,
    /// DynamoDB: retries of a failing batch (-1: until the record expires).
    pub maximum_retry_attempts: Option<i32>,
    #[serde(default)]
    pub function_response_types: Vec<String>,
    /// Schedule: the EventBridge rule the stack made.
    pub rule_arn: Option<String>,
}

/// One function of the stack.
#[derive(Debug, Clone, Deserialize)]
pub struct StackFunction {
    /// The workspace binary it runs (`Metadata.BuildProperties.Binary`).
    pub binary: Option<String>,
    pub function_name: String,
    pub memory_size: Option<u32>,
    pub timeout: Option<u32>,
    pub role_arn: String,
    /// The statements of its role's own policies, as moto's IAM holds
    /// them (resolved: real ARNs, the stack's parameters).
    #[serde(default)]
    pub role_statements: Vec<serde_json::Value>,
    /// Its own role's credentials, as Lambda gives a function.
    pub credentials: Credentials,
    /// What moto's Lambda holds for it.
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub events: Vec<FunctionEvent>,
}

/// A stack made from a template on the local moto.
#[derive(Debug, Clone, Deserialize)]
pub struct TemplateStack {
    pub stack_name: String,
    pub account_id: String,
    pub region: String,
    pub credentials: Credentials,
    pub parameters: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, String>,
    pub resources: BTreeMap<String, StackResource>,
    /// By logical id.
    pub functions: BTreeMap<String, StackFunction>,
    /// What moto's CloudFormation left unapplied and was filled in.
    pub filled: Vec<String>,
    #[serde(skip)]
    endpoint: String,
}

/// A function the template declares, read offline.
#[derive(Debug, Clone, Deserialize)]
pub struct DeclaredFunction {
    pub binary: Option<String>,
    pub memory_size: Option<u32>,
    pub timeout: Option<u32>,
    /// The names of the variables the template gives it (Globals too).
    #[serde(default)]
    pub environment: Vec<String>,
    #[serde(default)]
    pub events: Vec<FunctionEvent>,
}

#[derive(Deserialize)]
struct Declared {
    functions: BTreeMap<String, DeclaredFunction>,
}

/// The repository's `template.yaml`.
pub fn template_path() -> PathBuf {
    workspace_root().join("template.yaml")
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// Runs `infra/template-stack.sh <args>` and parses what it prints; its
/// error message (naming what failed) on failure.
async fn run_script<T: serde::de::DeserializeOwned>(args: &[&str]) -> Result<T, String> {
    let script = workspace_root().join("infra/template-stack.sh");
    let output = tokio::process::Command::new(&script)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("run {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "infra/template-stack.sh {}: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("infra/template-stack.sh {}: {e}", args.join(" ")))
}

/// The functions `template` declares, by logical id, without AWS.
pub async fn declared_functions(
    template: &Path,
) -> Result<BTreeMap<String, DeclaredFunction>, String> {
    let template = template.to_string_lossy();
    let declared: Declared = run_script(&["describe", "--template", &template]).await?;
    Ok(declared.functions)
}

/// One function's environment as the template declares it, resolved
/// against resources made some other way.
#[derive(Debug, Clone, Deserialize)]
pub struct ResolvedFunction {
    pub binary: Option<String>,
    /// The environment, when every reference in it resolved.
    pub environment: Option<BTreeMap<String, String>>,
    /// Else what did not resolve, by name.
    pub error: Option<String>,
}

/// Each function's environment as `template` declares it, with its
/// references resolved against resources made some other way
/// (`resources`: logical id -> what `Ref` gives), by logical id.
pub async fn resolved_environments(
    template: &Path,
    region: &str,
    resources: &[(&str, &str)],
    parameters: &[(&str, &str)],
) -> Result<BTreeMap<String, ResolvedFunction>, String> {
    #[derive(Deserialize)]
    struct Resolved {
        functions: BTreeMap<String, ResolvedFunction>,
    }
    let template = template.to_string_lossy();
    let mut args: Vec<String> = vec![
        "resolve".into(),
        "--template".into(),
        template.into_owned(),
        "--region".into(),
        region.into(),
    ];
    for (name, value) in resources {
        args.extend(["--resource".into(), format!("{name}={value}")]);
    }
    for (name, value) in parameters {
        args.extend(["--param".into(), format!("{name}={value}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let resolved: Resolved = run_script(&args).await?;
    Ok(resolved.functions)
}

impl TemplateStack {
    /// Creates `template` as stack `name` on the moto at `AWS_ENDPOINT_URL`,
    /// with `parameters`, in `account` ("current": the environment's) or,
    /// by default, a new one.
    pub async fn create(
        template: &Path,
        name: &str,
        parameters: &[(&str, &str)],
        account: Option<&str>,
    ) -> Result<Self, String> {
        let endpoint = local_endpoint()?;
        let region = region();
        let template = template.to_string_lossy();
        let mut args: Vec<String> = [
            "create",
            "--template",
            &template,
            "--endpoint",
            &endpoint,
            "--region",
            &region,
            "--stack-name",
            name,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for (name, value) in parameters {
            args.extend(["--param".into(), format!("{name}={value}")]);
        }
        if let Some(account) = account {
            args.extend(["--account".into(), account.to_owned()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut stack: Self = run_script(&args).await?;
        stack.endpoint = endpoint;
        Ok(stack)
    }

    /// Deletes the stack, then what a deletion leaves (the retained table,
    /// the secrets); returns what was deleted.
    pub async fn delete(&self) -> Result<Vec<String>, String> {
        #[derive(Deserialize)]
        struct Deleted {
            deleted: Vec<String>,
        }
        let deleted: Deleted = run_script(&[
            "delete",
            "--endpoint",
            &self.endpoint,
            "--region",
            &self.region,
            "--account",
            &self.account_id,
            "--stack-name",
            &self.stack_name,
        ])
        .await?;
        Ok(deleted.deleted)
    }

    /// The SDK configuration of the stack's account (an operator's view).
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config_for(&self.credentials).await
    }

    /// An output, or an error naming it.
    pub fn output(&self, key: &str) -> Result<&str, String> {
        self.outputs
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("the stack has no output {key}"))
    }

    /// The function that runs `binary`, with its logical id.
    pub fn function_running(&self, binary: &str) -> Result<(&str, &StackFunction), String> {
        self.functions
            .iter()
            .find(|(_, f)| f.binary.as_deref() == Some(binary))
            .map(|(id, f)| (id.as_str(), f))
            .ok_or_else(|| format!("no function of the template runs {binary}"))
    }
}

/// What a function's environment gets on this machine on top of what the
/// stack gave it.
#[derive(Debug, Default, Clone)]
pub struct LocalOverrides {
    /// Variables the template gives, set to another value here (each with
    /// the reason in the caller). One the template does not give is an
    /// error, so that an override never hides a name the template lacks.
    pub replace: Vec<(&'static str, String)>,
    /// Variables the template does not give (the code's defaults name real
    /// TikTok, say). One the template does give is an error.
    pub add: Vec<(&'static str, String)>,
}

impl LocalOverrides {
    /// `environment` with the overrides applied; every override that would
    /// hide a name the template lacks (or gives already) is named.
    pub fn apply(
        &self,
        logical_id: &str,
        environment: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, String> {
        let mut env = environment.clone();
        let mut problems = Vec::new();
        for (name, value) in &self.replace {
            match env.get_mut(*name) {
                Some(held) => *held = value.clone(),
                None => problems.push(format!(
                    "{logical_id}: the template gives no {name} (it gives {:?})",
                    environment.keys().collect::<BTreeSet<_>>()
                )),
            }
        }
        for (name, value) in &self.add {
            if env.insert((*name).to_owned(), value.clone()).is_some() {
                problems.push(format!(
                    "{logical_id}: the template gives {name} already; it is not added here"
                ));
            }
        }
        if problems.is_empty() {
            Ok(env)
        } else {
            Err(problems.join("; "))
        }
    }
}

impl StackFunction {
    /// The environment to start this function's binary with: exactly what
    /// moto's Lambda holds for it, `overrides` applied, plus what Lambda
    /// itself sets (name, memory) and its role's credentials.
    pub fn local_env(
        &self,
        logical_id: &str,
        overrides: &LocalOverrides,
    ) -> Result<Vec<(String, String)>, String> {
        let env = overrides.apply(logical_id, &self.environment)?;
        let mut env: Vec<(String, String)> = env.into_iter().collect();
        env.extend([
            (
                "AWS_LAMBDA_FUNCTION_NAME".to_owned(),
                self.function_name.clone(),
            ),
            (
                "AWS_ACCESS_KEY_ID".to_owned(),
                self.credentials.access_key_id.clone(),
            ),
            (
                "AWS_SECRET_ACCESS_KEY".to_owned(),
                self.credentials.secret_access_key.clone(),
            ),
            (
                "AWS_SESSION_TOKEN".to_owned(),
                self.credentials.session_token.clone(),
            ),
        ]);
        if let Some(memory) = self.memory_size {
            env.push((
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(),
                memory.to_string(),
            ));
        }
        Ok(env)
    }
}

/// An SDK configuration with `credentials`, the endpoint and region from
/// the environment.
pub async fn sdk_config_for(credentials: &Credentials) -> SdkConfig {
    let credentials = aws_sdk_s3::config::Credentials::new(
        &credentials.access_key_id,
        &credentials.secret_access_key,
        Some(credentials.session_token.clone()),
        None,
        "template-stack",
    );
    aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(credentials)
        .load()
        .await
}

fn local_endpoint() -> Result<String, String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    if endpoint.starts_with("http://127.0.0.1") || endpoint.starts_with("http://localhost") {
        Ok(endpoint)
    } else {
        Err(format!(
            "a stack from the template is made on the local moto only: AWS_ENDPOINT_URL is {endpoint:?}"
        ))
    }
}

fn region() -> String {
    std::env::var("AWS_REGION")
        .ok()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "us-east-1".to_owned())
}
