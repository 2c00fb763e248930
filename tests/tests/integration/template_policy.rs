//! template.yaml, read as data: every function is built the same way and has
//! its own least-privilege role (no `*` action, no `Resource: "*"`, every
//! resource one that function uses), and the bucket, queue, schedule and
//! alarms are what the README promises. No AWS needed.
//!
//! The checks are plain functions returning the violations they find, so
//! that the last tests can prove they fail on a template that grants
//! `dynamodb:*` or `Resource: "*"`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Reading the template: CloudFormation's short-form tags (`!Ref`, `!GetAtt`,
// `!Sub`, `!If`, ...) become their long form, so the rest is plain JSON.
// ---------------------------------------------------------------------------

fn template_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml")
}

fn load_template() -> Value {
    let text = std::fs::read_to_string(template_path()).expect("read template.yaml");
    parse_template(&text)
}

fn parse_template(text: &str) -> Value {
    let yaml: serde_norway::Value = serde_norway::from_str(text).expect("template.yaml is YAML");
    to_json(&yaml)
}

fn to_json(value: &serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(*b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                json!(n.as_f64())
            }
        }
        Y::String(s) => Value::String(s.clone()),
        Y::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s.clone(),
                        other => serde_norway::to_string(other)
                            .expect("key")
                            .trim()
                            .to_owned(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = to_json(&tagged.value);
            match name {
                "Ref" => json!({ "Ref": inner }),
                "Condition" => json!({ "Condition": inner }),
                // `!GetAtt A.B` is the short form of `Fn::GetAtt: [A, B]`.
                "GetAtt" => match inner {
                    Value::String(s) => {
                        let (resource, attribute) = s.split_once('.').expect("!GetAtt X.Attr");
                        json!({ "Fn::GetAtt": [resource, attribute] })
                    }
                    other => json!({ "Fn::GetAtt": other }),
                },
                other => json!({ format!("Fn::{other}"): inner }),
            }
        }
    }
}

fn resources(template: &Value) -> &serde_json::Map<String, Value> {
    template["Resources"].as_object().expect("Resources")
}

fn resources_of_type<'a>(template: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    resources(template)
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, r)| (id.as_str(), r))
        .collect()
}

fn one_or_many(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// `{"Fn::If": [cond, a, b]}` stands for both branches; `AWS::NoValue` for
/// nothing.
fn branches(value: &Value) -> Vec<&Value> {
    if let Some(args) = value.get("Fn::If").and_then(Value::as_array) {
        return args.iter().skip(1).flat_map(branches).collect();
    }
    if value.get("Ref") == Some(&json!("AWS::NoValue")) {
        return Vec::new();
    }
    vec![value]
}

/// The names in a `Fn::Sub` string's `${...}` (`${X.Arn}` gives `X`; `${!x}`
/// is a literal).
fn sub_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        if !name.starts_with('!') {
            names.push(name.split('.').next().unwrap_or(name).to_owned());
        }
        rest = &after[end + 1..];
    }
    names
}

/// Every logical id of a template resource that `value` refers to (by
/// `Ref`, `Fn::GetAtt` or `Fn::Sub`), anywhere inside it.
fn referenced_resources(template: &Value, value: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    collect_refs(value, &mut found);
    found.retain(|name| resources(template).contains_key(name));
    found
}

fn collect_refs(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("Ref", Value::String(name)) => {
                        found.insert(name.clone());
                    }
                    ("Fn::GetAtt", Value::Array(args)) => {
                        if let Some(Value::String(name)) = args.first() {
                            found.insert(name.clone());
                        }
                    }
                    ("Fn::GetAtt", Value::String(s)) => {
                        found.insert(s.split('.').next().unwrap_or(s).to_owned());
                    }
                    ("Fn::Sub", Value::String(s)) => found.extend(sub_names(s)),
                    ("Fn::Sub", Value::Array(args)) => {
                        if let Some(Value::String(s)) = args.first() {
                            found.extend(sub_names(s));
                        }
                        for arg in args.iter().skip(1) {
                            collect_refs(arg, found);
                        }
                    }
                    _ => collect_refs(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, found)),
        _ => {}
    }
}

fn is_ref_to(value: &Value, name: &str) -> bool {
    value.get("Ref") == Some(&json!(name))
}

fn is_getatt(value: &Value, name: &str, attribute: &str) -> bool {
    value.get("Fn::GetAtt") == Some(&json!([name, attribute]))
}

// ---------------------------------------------------------------------------
// What each function may touch.
// ---------------------------------------------------------------------------

/// The per-account token secrets: not a template resource (the login creates
/// them), named by the `SecretsPrefix` parameter.
const ACCOUNT_SECRETS: &str = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SecretsPrefix}/accounts/*";
/// A pseudo resource name for [`ACCOUNT_SECRETS`] in the allowed sets.
const ACCOUNT_SECRETS_NAME: &str = "<account token secrets>";

struct Expected {
    binary: &'static str,
    /// Template resources (and [`ACCOUNT_SECRETS_NAME`]) the function may
    /// name in its policies, besides its own log group.
    may_use: &'static [&'static str],
}

fn expected_functions() -> BTreeMap<&'static str, Expected> {
    BTreeMap::from([
        (
            "OAuthCallbackFunction",
            Expected {
                binary: "oauth-callback",
                may_use: &[
                    "Table",
                    "AppSecret",
                    "InviteKeySecret",
                    ACCOUNT_SECRETS_NAME,
                ],
            },
        ),
        (
            "S3UploadFunction",
            Expected {
                binary: "s3-upload",
                may_use: &[
                    "Table",
                    "UploadBucket",
                    "UploadQueue",
                    "AppSecret",
                    ACCOUNT_SECRETS_NAME,
                ],
            },
        ),
        (
            "StatusCheckerFunction",
            Expected {
                binary: "status-checker",
                may_use: &["Table", "UploadQueue", "AppSecret", ACCOUNT_SECRETS_NAME],
            },
        ),
        (
            "TikTokWebhookFunction",
            Expected {
                binary: "tiktok-webhook",
                // The account secrets only to delete a revoked account's.
                may_use: &["Table", "AppSecret", ACCOUNT_SECRETS_NAME],
            },
        ),
        (
            "EventsFunction",
            Expected {
                binary: "events",
                may_use: &["Table", "EventBus", "EventsDeadLetterQueue"],
            },
        ),
        (
            "CreatorPageFunction",
            Expected {
                binary: "creator-page",
                may_use: &["Table", "InviteKeySecret"],
            },
        ),
    ])
}

/// One `Allow`/`Deny` statement of a function's permissions, with where it
/// came from (for messages).
#[derive(Debug, Clone)]
struct Statement {
    origin: String,
    body: Value,
}

impl Statement {
    fn actions(&self) -> Vec<String> {
        one_or_many(&self.body["Action"])
            .into_iter()
            .flat_map(branches)
            .map(|a| {
                a.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| a.to_string())
            })
            .collect()
    }

    fn resources(&self) -> Vec<&Value> {
        one_or_many(&self.body["Resource"])
            .into_iter()
            .flat_map(branches)
            .collect()
    }

    fn is_allow(&self) -> bool {
        self.body["Effect"] == "Allow"
    }
}

fn statements_of_document(origin: &str, document: &Value, out: &mut Vec<Statement>) {
    for statement in one_or_many(&document["Statement"])
        .into_iter()
        .flat_map(branches)
    {
        out.push(Statement {
            origin: origin.to_owned(),
            body: statement.clone(),
        });
    }
}

const BASIC_EXECUTION: &str = "AWSLambdaBasicExecutionRole";

/// Every statement that reaches `function`'s role, or a violation when the
/// role cannot be checked (SAM policy templates, managed policies other than
/// basic execution, a role shared with another function...).
fn function_statements(
    template: &Value,
    function: &str,
) -> Result<(Option<String>, Vec<Statement>), Vec<String>> {
    let props = &resources(template)[function]["Properties"];
    let mut problems = Vec::new();
    let mut statements = Vec::new();
    let globals = &template["Globals"]["Function"];
    for key in ["Role", "Policies"] {
        if !globals[key].is_null() {
            problems.push(format!(
                "Globals.Function.{key} would give functions a shared role"
            ));
        }
    }
    let role_name = match &props["Role"] {
        Value::Null => None,
        role => match role.get("Fn::GetAtt").and_then(Value::as_array) {
            Some(args) if args.len() == 2 && args[1] == "Arn" => {
                let name = args[0].as_str().unwrap_or_default().to_owned();
                if resources(template).get(&name).map(|r| &r["Type"])
                    != Some(&json!("AWS::IAM::Role"))
                {
                    problems.push(format!(
                        "{function}: Role {name} is not an AWS::IAM::Role of this template"
                    ));
                }
                Some(name)
            }
            _ => {
                problems.push(format!(
                    "{function}: Role must be !GetAtt <an AWS::IAM::Role here>.Arn, got {role}"
                ));
                None
            }
        },
    };
    match &role_name {
        None => {
            // SAM makes a role per function from `Policies`.
            for (i, policy) in one_or_many(&props["Policies"]).into_iter().enumerate() {
                let origin = format!("{function}.Policies[{i}]");
                match policy {
                    Value::String(name) if name.ends_with(BASIC_EXECUTION) => {}
                    Value::Object(map) if map.contains_key("Statement") => {
                        statements_of_document(&origin, policy, &mut statements)
                    }
                    other => problems.push(format!(
                        "{origin}: only inline statements (or {BASIC_EXECUTION}) can be checked, got {other}"
                    )),
                }
            }
            if props["Events"]
                .as_object()
                .is_some_and(|events| events.values().any(|e| e["Type"] == "SQS"))
            {
                problems.push(format!(
                    "{function}: an SQS event with a SAM-made role attaches AWSLambdaSQSQueueExecutionRole (Resource \"*\"); give it its own AWS::IAM::Role"
                ));
            }
        }
        Some(role) => {
            if !props["Policies"].is_null() {
                problems.push(format!("{function}: Role and Policies together"));
            }
            let role_props = &resources(template)[role.as_str()]["Properties"];
            for (i, policy) in one_or_many(&role_props["Policies"]).into_iter().enumerate() {
                statements_of_document(
                    &format!("{role}.Policies[{i}]"),
                    &policy["PolicyDocument"],
                    &mut statements,
                );
            }
            for arn in one_or_many(&role_props["ManagedPolicyArns"])
                .into_iter()
                .flat_map(branches)
            {
                let text = match arn {
                    Value::String(s) => s.clone(),
                    other => other
                        .get("Fn::Sub")
                        .map(Value::to_string)
                        .unwrap_or_else(|| other.to_string()),
                };
                if !text
                    .trim_matches('"')
                    .ends_with(&format!("service-role/{BASIC_EXECUTION}"))
                {
                    problems.push(format!("{role}: managed policy {text} cannot be checked"));
                }
            }
            // Policies attached to the role from outside it.
            for (id, resource) in resources(template) {
                let kind = resource["Type"].as_str().unwrap_or_default();
                let attached = match kind {
                    "AWS::IAM::RolePolicy" => is_ref_to(&resource["Properties"]["RoleName"], role),
                    "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => {
                        one_or_many(&resource["Properties"]["Roles"])
                            .iter()
                            .any(|r| is_ref_to(r, role))
                    }
                    _ => false,
                };
                if attached {
                    statements_of_document(
                        id,
                        &resource["Properties"]["PolicyDocument"],
                        &mut statements,
                    );
                }
            }
        }
    }
    if problems.is_empty() {
        Ok((role_name, statements))
    } else {
        Err(problems)
    }
}

/// The log groups named after `function` (`/aws/lambda/${Function}`).
fn own_log_groups(template: &Value, function: &str) -> BTreeSet<String> {
    resources_of_type(template, "AWS::Logs::LogGroup")
        .into_iter()
        .filter(|(_, r)| {
            referenced_resources(template, &r["Properties"]["LogGroupName"]).contains(function)
        })
        .map(|(id, _)| id.to_owned())
        .collect()
}

/// What one `Resource` entry names: template resources, or the account
/// secrets. Anything else (`*`, a hand-written ARN) is a violation.
fn resource_targets(template: &Value, entry: &Value) -> Result<BTreeSet<String>, String> {
    if let Value::String(text) = entry {
        return Err(if text.contains('*') && !text.contains(':') {
            format!("Resource {text:?} (everything)")
        } else {
            format!("Resource {text:?} is a literal, not one of this template's resources")
        });
    }
    let named = referenced_resources(template, entry);
    if !named.is_empty() {
        return Ok(named);
    }
    if entry.get("Fn::Sub") == Some(&json!(ACCOUNT_SECRETS)) {
        return Ok(BTreeSet::from([ACCOUNT_SECRETS_NAME.to_owned()]));
    }
    Err(format!(
        "Resource {entry} names none of this template's resources"
    ))
}

/// The violations of least privilege in `template`; empty when every
/// function is fine.
/// Asserts that one of `problems` mentions `needle`.
#[track_caller]
fn assert_violation(problems: &[String], needle: &str) {
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "no violation mentions {needle:?}: {problems:?}"
    );
}

fn policy_violations(template: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let expected = expected_functions();
    let functions = resources_of_type(template, "AWS::Serverless::Function");
    let found: BTreeSet<&str> = functions.iter().map(|(id, _)| *id).collect();
    let known: BTreeSet<&str> = expected.keys().copied().collect();
    if found != known {
        problems.push(format!(
            "functions in the template {found:?} differ from the ones this test knows {known:?}: say what a new one may use"
        ));
    }
    let mut roles_seen: BTreeMap<String, &str> = BTreeMap::new();
    for (function, _) in &functions {
        let Some(spec) = expected.get(function) else {
            continue;
        };
        let (role, statements) = match function_statements(template, function) {
            Ok(found) => found,
            Err(mut p) => {
                problems.append(&mut p);
                continue;
            }
        };
        if let Some(role) = role
            && let Some(other) = roles_seen.insert(role.clone(), function)
        {
            problems.push(format!("{function} shares role {role} with {other}"));
        }
        if statements.is_empty() {
            problems.push(format!("{function}: no policy statements found"));
        }
        let mut allowed: BTreeSet<String> = spec.may_use.iter().map(|s| (*s).to_owned()).collect();
        allowed.extend(own_log_groups(template, function));
        for st in &statements {
            let at = format!("{function} ({})", st.origin);
            for key in ["NotAction", "NotResource"] {
                if !st.body[key].is_null() {
                    problems.push(format!("{at}: {key} grants by exclusion"));
                }
            }
            let actions = st.actions();
            if actions.is_empty() {
                problems.push(format!("{at}: a statement without Action"));
            }
            for action in &actions {
                if action.contains('*') {
                    problems.push(format!("{at}: wildcard action {action:?}"));
                }
            }
            let entries = st.resources();
            if entries.is_empty() {
                problems.push(format!("{at}: a statement without Resource"));
            }
            for entry in entries {
                match resource_targets(template, entry) {
                    Err(p) => problems.push(format!("{at}: {p}")),
                    Ok(targets) => {
                        for target in targets.difference(&allowed) {
                            problems.push(format!(
                                "{at}: names {target}, which {function} does not use (it may use {allowed:?})"
                            ));
                        }
                    }
                }
            }
        }
        problems.extend(service_rules(template, function, &statements));
    }
    problems
}

/// The item actions the login may use: single items by key.
const LOGIN_ITEM_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
];

/// The partition keys a login writes and reads (shared::accounts,
/// shared::login_state, the token lease); tests/tests/integration/template_stack.rs
/// checks every request the real login makes against the template.
const LOGIN_KEY_PREFIXES: &[&str] = &[
    "ACCOUNT#*",
    "ALIAS#*",
    "INVITE#*",
    "OAUTHSTATE#*",
    "LEASE#tokens#*",
];

/// The `dynamodb:LeadingKeys` patterns a statement is limited to with
/// `ForAllValues:StringLike` (empty when it is not).
fn leading_keys(statement: &Statement) -> Vec<String> {
    one_or_many(&statement.body["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Finer rules per function, on top of "only its own resources".
fn service_rules(template: &Value, function: &str, statements: &[Statement]) -> Vec<String> {
    let mut problems = Vec::new();
    let allows: Vec<&Statement> = statements.iter().filter(|s| s.is_allow()).collect();
    let with_prefix = |prefix: &str| -> Vec<(&Statement, String)> {
        allows
            .iter()
            .flat_map(|s| {
                s.actions()
                    .into_iter()
                    .filter(|a| a.starts_with(prefix))
                    .map(move |a| (*s, a))
            })
            .collect()
    };
    let names = |s: &Statement| -> BTreeSet<String> {
        s.resources()
            .into_iter()
            .flat_map(|r| resource_targets(template, r).unwrap_or_default())
            .collect()
    };
    match function {
        "OAuthCallbackFunction" => {
            for (s, a) in with_prefix("s3:").into_iter().chain(with_prefix("sqs:")) {
                problems.push(format!(
                    "{function} ({}): the login must not touch the bucket or queue: {a}",
                    s.origin
                ));
            }
            for (s, a) in with_prefix("dynamodb:") {
                if !LOGIN_ITEM_ACTIONS.contains(&a.as_str()) {
                    problems.push(format!(
                        "{function} ({}): the login reads and writes single items by key, {a} is not one of {LOGIN_ITEM_ACTIONS:?} (a Query or Scan has no leading key for the condition to limit)",
                        s.origin
                    ));
                }
                let keys = leading_keys(s);
                if keys
                    != LOGIN_KEY_PREFIXES
                        .iter()
                        .map(|p| (*p).to_owned())
                        .collect::<Vec<_>>()
                {
                    problems.push(format!(
                        "{function} ({}): {a} must be limited by ForAllValues:StringLike dynamodb:LeadingKeys to the login's items {LOGIN_KEY_PREFIXES:?}, got {keys:?}",
                        s.origin
                    ));
                }
            }
        }
        "TikTokWebhookFunction" => {
            for (s, a) in with_prefix("s3:").into_iter().chain(with_prefix("sqs:")) {
                problems.push(format!(
                    "{function} ({}): the webhook must not read the bucket or use the queue: {a}",
                    s.origin
                ));
            }
            for (s, a) in with_prefix("secretsmanager:") {
                if names(s).contains(ACCOUNT_SECRETS_NAME) && a != "secretsmanager:DeleteSecret" {
                    problems.push(format!(
                        "{function} ({}): the webhook reads no token; on the account secrets only secretsmanager:DeleteSecret, got {a}",
                        s.origin
                    ));
                }
            }
        }
        "StatusCheckerFunction" => {
            for (s, a) in with_prefix("s3:") {
                problems.push(format!(
                    "{function} ({}): the checker has no business in the bucket: {a}",
                    s.origin
                ));
            }
            for (s, a) in with_prefix("sqs:") {
                if a != "sqs:SendMessage" {
                    problems.push(format!(
                        "{function} ({}): only sqs:SendMessage, got {a}",
                        s.origin
                    ));
                }
                if names(s) != BTreeSet::from(["UploadQueue".to_owned()]) {
                    problems.push(format!(
                        "{function} ({}): sends only to UploadQueue, got {:?}",
                        s.origin,
                        names(s)
                    ));
                }
            }
        }
        "S3UploadFunction" => {
            for (s, a) in with_prefix("sqs:") {
                if a == "sqs:SendMessage" {
                    problems.push(format!(
                        "{function} ({}): the upload function only consumes the queue",
                        s.origin
                    ));
                }
                if names(s) != BTreeSet::from(["UploadQueue".to_owned()]) {
                    problems.push(format!(
                        "{function} ({}): {a} only on UploadQueue, got {:?}",
                        s.origin,
                        names(s)
                    ));
                }
            }
            // It sets the visibility of messages to retry: on its queue.
            let visibility = with_prefix("sqs:ChangeMessageVisibility");
            if visibility.is_empty() {
                problems.push(format!(
                    "{function}: needs sqs:ChangeMessageVisibility on UploadQueue to bring retries back soon"
                ));
            }
            // S3 checks s3:ListBucket without an s3:prefix (or delimiter,
            // max-keys) when it answers a GET or HEAD of a missing key: a
            // condition on them never matches there, and a missing image
            // reads as 403 instead of 404.
            let lists = with_prefix("s3:ListBucket");
            if lists.is_empty() {
                problems.push(format!(
                    "{function}: needs s3:ListBucket on the bucket to tell a missing image (404) from a forbidden one"
                ));
            }
            for (s, _) in lists {
                if !s.body["Condition"].is_null() {
                    problems.push(format!(
                        "{function} ({}): s3:ListBucket with a Condition ({}): S3 evaluates it without s3:prefix for a GET of a missing key, so that answers 403, not 404",
                        s.origin, s.body["Condition"]
                    ));
                }
            }
            // Object actions only under uploads/ (read) and media/ (read, write).
            for (s, a) in with_prefix("s3:") {
                for entry in s.resources() {
                    let sub = entry
                        .get("Fn::Sub")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let object_action = a != "s3:ListBucket";
                    let ok = if !object_action {
                        is_getatt(entry, "UploadBucket", "Arn")
                    } else if a == "s3:PutObject" {
                        sub == "${UploadBucket.Arn}/media/*"
                    } else {
                        sub == "${UploadBucket.Arn}/uploads/*"
                            || sub == "${UploadBucket.Arn}/media/*"
                    };
                    if !ok {
                        problems.push(format!(
                            "{function} ({}): {a} on {entry}: objects only under uploads/ (read) or media/ (read, write)",
                            s.origin
                        ));
                    }
                }
            }
        }
        "EventsFunction" => {
            // Its own markers only: reading the stream, and GetItem/PutItem
            // limited to EVENT#... partition keys.
            for (s, a) in with_prefix("s3:")
                .into_iter()
                .chain(with_prefix("secretsmanager:"))
            {
                problems.push(format!(
                    "{function} ({}): the events function reads no bucket or secret: {a}",
                    s.origin
                ));
            }
            for (s, a) in with_prefix("dynamodb:") {
                let on_stream = matches!(
                    a.as_str(),
                    "dynamodb:DescribeStream"
                        | "dynamodb:GetRecords"
                        | "dynamodb:GetShardIterator"
                        | "dynamodb:ListStreams"
                );
                let markers = s.body["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
                    == json!(["EVENT#*"]);
                let marker_item =
                    matches!(a.as_str(), "dynamodb:GetItem" | "dynamodb:PutItem") && markers;
                if !(on_stream || marker_item) {
                    problems.push(format!(
                        "{function} ({}): {a} beyond the stream and its EVENT# markers",
                        s.origin
                    ));
                }
            }
            for (s, a) in with_prefix("sqs:") {
                if a != "sqs:SendMessage"
                    || names(s) != BTreeSet::from(["EventsDeadLetterQueue".to_owned()])
                {
                    problems.push(format!(
                        "{function} ({}): only sqs:SendMessage to its dead-letter queue, got {a}",
                        s.origin
                    ));
                }
            }
        }
        "CreatorPageFunction" => {
            // Read-only: it serves a page to whoever holds a link.
            for (s, a) in with_prefix("s3:").into_iter().chain(with_prefix("sqs:")) {
                problems.push(format!(
                    "{function} ({}): the page touches no bucket or queue: {a}",
                    s.origin
                ));
            }
            for (s, a) in with_prefix("dynamodb:") {
                if !matches!(a.as_str(), "dynamodb:GetItem" | "dynamodb:Query") {
                    problems.push(format!(
                        "{function} ({}): the page only reads, got {a}",
                        s.origin
                    ));
                }
            }
        }
        _ => {}
    }
    // Who may do what with secrets.
    for (s, a) in with_prefix("secretsmanager:") {
        let n = names(s);
        // The key signs invitations (the login checks them) and, under a
        // key derived for that purpose, creator page links (the page
        // checks them).
        if n.contains("InviteKeySecret")
            && !matches!(function, "OAuthCallbackFunction" | "CreatorPageFunction")
        {
            problems.push(format!(
                "{function} ({}): only the login and the creator page read the invitation key",
                s.origin
            ));
        }
        if a == "secretsmanager:CreateSecret" && function != "OAuthCallbackFunction" {
            problems.push(format!(
                "{function} ({}): only the login creates token secrets",
                s.origin
            ));
        }
        if a != "secretsmanager:GetSecretValue"
            && (n.contains("AppSecret") || n.contains("InviteKeySecret"))
        {
            problems.push(format!(
                "{function} ({}): the app secret and invitation key are read-only, got {a}",
                s.origin
            ));
        }
    }
    problems
}

// ---------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------

#[test]
fn every_function_has_its_own_least_privilege_role() {
    let template = load_template();
    let problems = policy_violations(&template);
    assert!(
        problems.is_empty(),
        "least privilege:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_function_is_built_with_cargo_lambda_for_arm64_on_al2023() {
    let template = load_template();
    let globals = &template["Globals"]["Function"];
    for (function, spec) in expected_functions() {
        let resource = &resources(&template)[function];
        assert_eq!(resource["Type"], "AWS::Serverless::Function", "{function}");
        assert_eq!(
            resource["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{function}"
        );
        assert_eq!(
            resource["Metadata"]["BuildProperties"]["Binary"], spec.binary,
            "{function}"
        );
        let props = &resource["Properties"];
        assert_eq!(
            props["CodeUri"], ".",
            "{function}: built from the workspace root"
        );
        let runtime = if props["Runtime"].is_null() {
            &globals["Runtime"]
        } else {
            &props["Runtime"]
        };
        assert_eq!(runtime, "provided.al2023", "{function}");
        let arch = if props["Architectures"].is_null() {
            &globals["Architectures"]
        } else {
            &props["Architectures"]
        };
        assert_eq!(arch, &json!(["arm64"]), "{function}");
        let handler = if props["Handler"].is_null() {
            &globals["Handler"]
        } else {
            &props["Handler"]
        };
        assert_eq!(handler, "bootstrap", "{function}");
        // The binary is a workspace crate's.
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../functions")
            .join(spec.binary)
            .join("Cargo.toml");
        assert!(
            manifest.exists(),
            "{function}: no crate at {}",
            manifest.display()
        );
    }
}

#[test]
fn bucket_is_private_encrypted_versioned_and_expires_media() {
    let template = load_template();
    let bucket = &resources(&template)["UploadBucket"]["Properties"];
    for key in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(bucket["PublicAccessBlockConfiguration"][key], true, "{key}");
    }
    let encryption = &bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"];
    let algorithms: Vec<&Value> = one_or_many(encryption)
        .iter()
        .map(|rule| &rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"])
        .collect();
    assert!(
        algorithms.iter().any(|a| *a == "AES256" || *a == "aws:kms"),
        "default encryption: {algorithms:?}"
    );
    assert_eq!(bucket["VersioningConfiguration"]["Status"], "Enabled");
    let rules = one_or_many(&bucket["LifecycleConfiguration"]["Rules"]);
    assert!(
        rules.iter().any(|rule| {
            let prefix = if rule["Prefix"].is_null() {
                &rule["Filter"]["Prefix"]
            } else {
                &rule["Prefix"]
            };
            rule["Status"] == "Enabled"
                && prefix == "media/"
                && is_ref_to(&rule["ExpirationInDays"], "MediaRetentionDays")
        }),
        "a lifecycle rule expiring media/ after MediaRetentionDays: {rules:?}"
    );
    let queues = one_or_many(&bucket["NotificationConfiguration"]["QueueConfigurations"]);
    assert!(
        queues.iter().any(|q| {
            is_getatt(&q["Queue"], "UploadQueue", "Arn")
                && q["Event"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("s3:ObjectCreated:"))
                && one_or_many(&q["Filter"]["S3Key"]["Rules"])
                    .iter()
                    .any(|r| r["Name"] == "prefix" && r["Value"] == "uploads/")
        }),
        "uploads/ -> UploadQueue notification: {queues:?}"
    );
    // The bucket policy allows nothing but CloudFront reading media/.
    for (id, policy) in resources_of_type(&template, "AWS::S3::BucketPolicy") {
        let mut statements = Vec::new();
        statements_of_document(id, &policy["Properties"]["PolicyDocument"], &mut statements);
        for st in statements.iter().filter(|s| s.is_allow()) {
            assert_eq!(
                st.body["Principal"],
                json!({ "Service": "cloudfront.amazonaws.com" }),
                "{id}"
            );
            assert_eq!(st.actions(), vec!["s3:GetObject"], "{id}");
            assert_eq!(
                st.resources(),
                vec![&json!({ "Fn::Sub": "${UploadBucket.Arn}/media/*" })],
                "{id}"
            );
            assert!(
                !st.body["Condition"]["StringEquals"]["AWS:SourceArn"].is_null(),
                "{id}: only our distribution"
            );
        }
    }
}

#[test]
fn upload_queue_redrives_to_the_dead_letter_queue() {
    let template = load_template();
    let queue = &resources(&template)["UploadQueue"]["Properties"];
    let redrive = &queue["RedrivePolicy"];
    assert!(
        is_getatt(
            &redrive["deadLetterTargetArn"],
            "UploadDeadLetterQueue",
            "Arn"
        ),
        "{redrive}"
    );
    assert!(
        redrive["maxReceiveCount"].as_i64().is_some_and(|n| n >= 1),
        "{redrive}"
    );
    assert_eq!(
        resources(&template)["UploadDeadLetterQueue"]["Type"],
        "AWS::SQS::Queue"
    );
}

/// A message the upload function dies with comes back after the queue's
/// visibility timeout: after the function's timeout and its 16-minute job
/// lease (or the job is still held), before the checker's 30-minute stuck
/// mark and the upload URL's hour. Retries it asks for are set shorter, on
/// the queue it is told about.
#[test]
fn upload_retries_come_back_in_time() {
    let template = load_template();
    let queue = &resources(&template)["UploadQueue"]["Properties"];
    let visibility = queue["VisibilityTimeout"]
        .as_i64()
        .expect("VisibilityTimeout");
    let function = &resources(&template)["S3UploadFunction"]["Properties"];
    let timeout = function["Timeout"].as_i64().expect("Timeout");
    let job_lease = i64::try_from(shared::forward::JOB_LEASE.as_secs()).expect("lease in s");
    assert!(
        visibility > timeout && visibility > job_lease,
        "visibility {visibility} s must outlast the timeout {timeout} s and the lease"
    );
    assert!(
        visibility < 30 * 60,
        "visibility {visibility} s: past the stuck mark"
    );
    // The slideshow's image wait spreads over five deliveries.
    assert_eq!(queue["RedrivePolicy"]["maxReceiveCount"], 5);
    let env = &function["Environment"]["Variables"];
    assert!(is_ref_to(&env["UPLOAD_QUEUE_URL"], "UploadQueue"), "{env}");
}

/// API Gateway waits 29 s for the login; the login function gets all of it
/// (its default 15 s would cut off a login waiting on a slow TikTok), and
/// the login's own deadlines assume exactly that.
#[test]
fn the_login_function_has_the_time_api_gateway_gives_it() {
    let template = load_template();
    let function = &resources(&template)["OAuthCallbackFunction"]["Properties"];
    let timeout = function["Timeout"].as_i64().expect("Timeout");
    assert_eq!(timeout, 29);
    assert_eq!(
        u64::try_from(timeout).ok(),
        Some(oauth_callback::FUNCTION_TIMEOUT.as_secs())
    );
}

/// The README's "Deploying without SAM" section, up to the next section.
fn readme_section(title: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(path).expect("read README.md");
    let start = readme
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("README has a section {title:?}"));
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_owned()
}

/// A deployer who does not use SAM builds the table and the secrets from
/// the README alone: what it says must be what the template makes and what
/// the code reads.
#[test]
fn the_readme_describes_the_table_and_secrets_as_the_template_and_code_have_them() {
    use shared::table::{GSI1, GSI1_PK, GSI1_SK, GSI2, GSI2_PK, GSI2_SK, PK, SK, TTL};
    let section = readme_section("Deploying without SAM");
    let template = load_template();
    let resources = resources(&template);
    let table = &resources["Table"]["Properties"];

    let keys: Vec<(&str, &str)> = table["KeySchema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["AttributeName"].as_str().unwrap(),
                k["KeyType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys, [(PK, "HASH"), (SK, "RANGE")]);
    assert!(
        section.contains(&format!("| partition key | `{PK}` | String |")),
        "{section}"
    );
    assert!(
        section.contains(&format!("| sort key | `{SK}` | String |")),
        "{section}"
    );
    let types: BTreeMap<&str, &str> = table["AttributeDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["AttributeName"].as_str().unwrap(),
                d["AttributeType"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(types.values().all(|t| *t == "S"), "{types:?}");

    // Every index, as the code names it, with its keys and projection.
    let indexes = table["GlobalSecondaryIndexes"].as_array().unwrap();
    let known = [(GSI1, GSI1_PK, GSI1_SK), (GSI2, GSI2_PK, GSI2_SK)];
    assert_eq!(indexes.len(), known.len(), "the README names every index");
    for (gsi, (name, pk, sk)) in indexes.iter().zip(known) {
        assert_eq!(gsi["IndexName"], name);
        assert_eq!(gsi["KeySchema"][0]["AttributeName"], pk);
        assert_eq!(gsi["KeySchema"][1]["AttributeName"], sk);
        let projection = gsi["Projection"]["ProjectionType"].as_str().unwrap();
        assert!(
            section.contains(&format!(
                "`{name}`: partition key `{pk}` (String), sort key `{sk}` (String), projection `{projection}`"
            )),
            "{name} in {section}"
        );
    }
    let stream = table["StreamSpecification"]["StreamViewType"]
        .as_str()
        .expect("the table has a stream");
    assert!(
        section.contains(&format!("| stream | `{stream}` |")),
        "{section}"
    );

    assert_eq!(table["TimeToLiveSpecification"]["AttributeName"], TTL);
    assert!(
        section.contains(&format!(
            "| TTL attribute | `{TTL}` | Number, epoch seconds"
        )),
        "{section}"
    );

    // The two named secrets: their names under the prefix, and the
    // variable that points the login function at each.
    let login_env = &resources["OAuthCallbackFunction"]["Properties"]["Environment"]["Variables"];
    for (resource, variable) in [
        ("AppSecret", "TIKTOK_APP_SECRET_ID"),
        ("InviteKeySecret", "INVITE_KEY_SECRET_ID"),
    ] {
        assert!(is_ref_to(&login_env[variable], resource), "{login_env}");
        let name = resources[resource]["Properties"]["Name"]["Fn::Sub"]
            .as_str()
            .unwrap_or_else(|| panic!("{resource} is named with !Sub"));
        let name = name.replace("${SecretsPrefix}", "<prefix>");
        assert!(
            section.contains(&format!("| `{name}` | `{variable}` |")),
            "{name} / {variable} in {section}"
        );
    }

    // The token secrets: the name the store uses and every field it writes.
    let offline = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::Config::builder()
            .behavior_version_latest()
            .build(),
    );
    let store = shared::tokens::SecretsManagerTokenStore::new(offline, "<prefix>");
    let name = store
        .secret_name("open_id")
        .unwrap()
        .replace("open_id", "<open_id>");
    let row = section
        .lines()
        .find(|l| l.starts_with(&format!("| `{name}` |")))
        .unwrap_or_else(|| panic!("a row for {name} in {section}"));
    let answer: shared::tiktok::oauth::TokenResponse = serde_json::from_value(json!({
        "access_token": "act.x", "expires_in": 60, "open_id": "o", "refresh_token": "rft.x",
        "refresh_expires_in": 600, "scope": "user.info.basic"
    }))
    .unwrap();
    let now = shared::clock::Clock::system().now();
    let mut tokens = shared::tokens::StoredTokens::from_response(None, &answer, now).unwrap();
    tokens.reconnect_required_at = Some(now);
    let written = serde_json::to_value(&tokens).unwrap();
    for field in written.as_object().unwrap().keys() {
        assert!(
            row.contains(&format!("\"{field}\"")) || row.contains(&format!("`{field}`")),
            "{field} in {row}"
        );
    }

    let timeout = resources["OAuthCallbackFunction"]["Properties"]["Timeout"]
        .as_i64()
        .unwrap();
    assert!(
        section.contains(&format!("(`oauth-callback`, {timeout} s")),
        "{section}"
    );
}

#[test]
fn the_upload_function_may_set_visibility_only_on_its_queue() {
    let mut template = load_template();
    assert!(policy_violations(&template).is_empty());
    let statements = template["Resources"]["S3UploadRole"]["Properties"]["Policies"][0]
        ["PolicyDocument"]["Statement"]
        .as_array_mut()
        .expect("statements");
    let events = statements
        .iter_mut()
        .find(|s| s["Sid"] == "UploadEvents")
        .expect("the UploadEvents statement");
    events["Resource"] = json!({"Fn::GetAtt": ["UploadDeadLetterQueue", "Arn"]});
    let problems = policy_violations(&template);
    assert_violation(&problems, "only on UploadQueue");
    let mut template = load_template();
    let statements = template["Resources"]["S3UploadRole"]["Properties"]["Policies"][0]
        ["PolicyDocument"]["Statement"]
        .as_array_mut()
        .expect("statements");
    let events = statements
        .iter_mut()
        .find(|s| s["Sid"] == "UploadEvents")
        .expect("the UploadEvents statement");
    events["Action"] = json!([
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes"
    ]);
    let problems = policy_violations(&template);
    assert_violation(&problems, "sqs:ChangeMessageVisibility");
}

#[test]
fn status_checker_runs_on_a_schedule_of_check_every_minutes_without_overlap() {
    let template = load_template();
    let props = &resources(&template)["StatusCheckerFunction"]["Properties"];
    let schedules: Vec<&Value> = props["Events"]
        .as_object()
        .expect("Events")
        .values()
        .filter(|e| e["Type"] == "Schedule" || e["Type"] == "ScheduleV2")
        .collect();
    assert_eq!(schedules.len(), 1, "one schedule: {schedules:?}");
    let expression = &schedules[0]["Properties"][if schedules[0]["Type"] == "Schedule" {
        "Schedule"
    } else {
        "ScheduleExpression"
    }];
    // rate(1 minute) for 1 (AWS refuses "rate(1 minutes)"), else the parameter.
    let forms: Vec<&Value> = branches(expression);
    assert!(forms.contains(&&json!("rate(1 minute)")), "{expression}");
    assert!(
        forms.contains(&&json!({ "Fn::Sub": "rate(${CheckEveryMinutes} minutes)" })),
        "{expression}"
    );
    assert_eq!(
        props["ReservedConcurrentExecutions"], 1,
        "runs must not overlap"
    );
    assert_eq!(props["Timeout"], 120);
    let env = &props["Environment"]["Variables"];
    assert!(
        is_ref_to(&env["CHECK_INTERVAL_MINUTES"], "CheckEveryMinutes"),
        "{env}"
    );
    assert!(is_ref_to(&env["UPLOAD_QUEUE_URL"], "UploadQueue"), "{env}");
    assert!(
        is_ref_to(&env["TIKTOK_APP_SECRET_ID"], "AppSecret"),
        "{env}"
    );
    assert_eq!(template["Parameters"]["CheckEveryMinutes"]["Default"], 5);
}

#[test]
fn webhook_is_routed_on_the_http_api() {
    let template = load_template();
    let events = &resources(&template)["TikTokWebhookFunction"]["Properties"]["Events"];
    assert!(
        events.as_object().expect("Events").values().any(|e| {
            e["Type"] == "HttpApi"
                && e["Properties"]["Method"] == "POST"
                && e["Properties"]["Path"] == "/webhooks/tiktok"
                && is_ref_to(&e["Properties"]["ApiId"], "LoginApi")
        }),
        "{events}"
    );
    assert!(!template["Outputs"]["WebhookUrl"].is_null());
}

#[test]
fn the_table_has_its_stream_and_the_account_index() {
    let template = load_template();
    let table = &resources(&template)["Table"]["Properties"];
    assert_eq!(
        table["StreamSpecification"]["StreamViewType"], "NEW_AND_OLD_IMAGES",
        "the events function needs both images"
    );
    let gsi2 = one_or_many(&table["GlobalSecondaryIndexes"])
        .into_iter()
        .find(|i| i["IndexName"] == shared::table::GSI2)
        .expect("the account index");
    assert_eq!(
        gsi2["KeySchema"],
        json!([
            {"AttributeName": shared::table::GSI2_PK, "KeyType": "HASH"},
            {"AttributeName": shared::table::GSI2_SK, "KeyType": "RANGE"},
        ])
    );
}

#[test]
fn the_events_function_reads_job_and_account_changes_with_batch_failures_and_a_dead_letter_queue() {
    let template = load_template();
    let props = &resources(&template)["EventsFunction"]["Properties"];
    let stream = props["Events"]
        .as_object()
        .expect("Events")
        .values()
        .find(|e| e["Type"] == "DynamoDB")
        .expect("a DynamoDB stream event source")["Properties"]
        .clone();
    assert!(
        is_getatt(&stream["Stream"], "Table", "StreamArn"),
        "{stream}"
    );
    assert_eq!(
        stream["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert_eq!(stream["ParallelizationFactor"], 1, "order per item");
    assert!(is_getatt(
        &stream["DestinationConfig"]["OnFailure"]["Destination"],
        "EventsDeadLetterQueue",
        "Arn"
    ));
    // The filters are the ones the function's code holds.
    let in_template: Vec<Value> = one_or_many(&stream["FilterCriteria"]["Filters"])
        .into_iter()
        .map(|f| serde_json::from_str(f["Pattern"].as_str().expect("a pattern")).expect("JSON"))
        .collect();
    let in_code: Vec<Value> = events::FILTER_PATTERNS
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    assert_eq!(in_template, in_code);
    let env = &props["Environment"]["Variables"];
    assert!(is_ref_to(&env["EVENT_BUS_NAME"], "EventBus"), "{env}");
    let all = alarms(&template);
    assert!(
        all.iter()
            .any(|a| a["MetricName"] == "ApproximateNumberOfMessagesVisible"
                && dimension(a, "QueueName").is_some_and(|v| is_getatt(
                    v,
                    "EventsDeadLetterQueue",
                    "QueueName"
                ))),
        "an alarm on the events' dead-letter queue"
    );
    assert!(
        all.iter().any(|a| a["MetricName"] == "IteratorAge"
            && dimension(a, "FunctionName").is_some_and(|v| is_ref_to(v, "EventsFunction"))),
        "an alarm on events lagging behind the table"
    );
}

#[test]
fn mail_is_optional_and_carries_the_events_a_person_should_hear_about() {
    let template = load_template();
    assert_eq!(template["Parameters"]["NotifyEmail"]["Default"], "");
    assert_eq!(
        template["Conditions"]["HasNotifyEmail"],
        json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "NotifyEmail"}, ""]}]})
    );
    // Nothing is sent anywhere by default: everything that sends is
    // conditional on the address.
    for (id, resource) in resources(&template) {
        let kind = resource["Type"].as_str().unwrap_or_default();
        let sends = matches!(
            kind,
            "AWS::Events::Rule"
                | "AWS::SNS::Topic"
                | "AWS::SNS::Subscription"
                | "AWS::SNS::TopicPolicy"
                | "AWS::Events::ApiDestination"
                | "AWS::Events::Connection"
        );
        if sends && id.starts_with("Notify") {
            assert_eq!(resource["Condition"], "HasNotifyEmail", "{id}");
        }
        if kind == "AWS::Events::Rule" {
            assert!(
                !resource["Condition"].is_null()
                    || !resource["Properties"]["ScheduleExpression"].is_null(),
                "{id}: an event rule that always sends"
            );
        }
    }
    let rule = &resources(&template)["NotifyRule"]["Properties"];
    assert!(is_ref_to(&rule["EventBusName"], "EventBus"));
    assert_eq!(rule["EventPattern"]["source"], json!([events::SOURCE]));
    let mailed: Vec<&str> = events::ALL_KINDS
        .iter()
        .filter(|k| k.is_mailed())
        .map(|k| k.detail_type())
        .collect();
    assert_eq!(rule["EventPattern"]["detail-type"], json!(mailed));
    let target = &one_or_many(&rule["Targets"])[0];
    assert!(is_ref_to(&target["Arn"], "NotifyTopic"));
    let paths = target["InputTransformer"]["InputPathsMap"]
        .as_object()
        .expect("an input transformer");
    let template_text = target["InputTransformer"]["InputTemplate"]
        .as_str()
        .unwrap();
    // Every placeholder is defined, and reads a field every event has, on
    // one line (the mail's layout never breaks on a missing or long field).
    for name in sub_placeholders(template_text) {
        let path = paths
            .get(&name)
            .unwrap_or_else(|| panic!("<{name}> is not in InputPathsMap"))
            .as_str()
            .unwrap();
        assert!(
            matches!(
                path,
                "$.detail.headline"
                    | "$.detail.summary"
                    | "$.detail.hint"
                    | "$.detail.occurred_at"
                    | "$.detail.event_id"
                    | "$.detail-type"
            ),
            "<{name}> reads {path}, which not every event has on one line"
        );
    }
    // The topic lets only this rule publish.
    let policy = &resources(&template)["NotifyTopicPolicy"]["Properties"]["PolicyDocument"];
    let statement = &one_or_many(&policy["Statement"])[0];
    assert_eq!(statement["Principal"]["Service"], "events.amazonaws.com");
    assert!(is_getatt(
        &statement["Condition"]["ArnEquals"]["aws:SourceArn"],
        "NotifyRule",
        "Arn"
    ));
}

/// The `<name>` placeholders of an input template.
fn sub_placeholders(text: &str) -> Vec<String> {
    text.split('<')
        .skip(1)
        .filter_map(|part| part.split_once('>').map(|(name, _)| name.to_owned()))
        .collect()
}

#[test]
fn the_creator_page_is_routed_on_the_login_api() {
    let template = load_template();
    let props = &resources(&template)["CreatorPageFunction"]["Properties"];
    assert!(
        props["Events"]
            .as_object()
            .expect("Events")
            .values()
            .any(|e| {
                e["Type"] == "HttpApi"
                    && e["Properties"]["Method"] == "GET"
                    && e["Properties"]["Path"] == "/creator/{token}"
                    && is_ref_to(&e["Properties"]["ApiId"], "LoginApi")
            }),
        "{props}"
    );
    assert!(is_ref_to(
        &props["Environment"]["Variables"]["INVITE_KEY_SECRET_ID"],
        "InviteKeySecret"
    ));
    assert!(!template["Outputs"]["CreatorPageUrl"].is_null());
}

fn alarms(template: &Value) -> Vec<&Value> {
    resources_of_type(template, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(_, a)| &a["Properties"])
        .collect()
}

fn dimension<'a>(alarm: &'a Value, name: &str) -> Option<&'a Value> {
    one_or_many(&alarm["Dimensions"])
        .into_iter()
        .find(|d| d["Name"] == name)
        .map(|d| &d["Value"])
}

#[test]
fn alarms_cover_the_dead_letter_queue_every_function_and_stuck_jobs() {
    let template = load_template();
    let all = alarms(&template);
    assert!(
        all.iter().any(|a| a["Namespace"] == "AWS/SQS"
            && a["MetricName"] == "ApproximateNumberOfMessagesVisible"
            && dimension(a, "QueueName").is_some_and(|v| is_getatt(
                v,
                "UploadDeadLetterQueue",
                "QueueName"
            ))
            && a["ComparisonOperator"] == "GreaterThanThreshold"
            && a["Threshold"] == 0),
        "dead-letter queue depth alarm"
    );
    for function in expected_functions().keys() {
        assert!(
            all.iter().any(|a| a["Namespace"] == "AWS/Lambda"
                && a["MetricName"] == "Errors"
                && dimension(a, "FunctionName").is_some_and(|v| is_ref_to(v, function))
                && a["ComparisonOperator"] == "GreaterThanThreshold"
                && a["Threshold"] == 0),
            "errors alarm for {function}"
        );
    }
    // Stuck jobs: a metric filter on the checker's log group, and an alarm on it.
    let filters = resources_of_type(&template, "AWS::Logs::MetricFilter");
    let stuck = filters
        .iter()
        .map(|(_, f)| &f["Properties"])
        .find(|f| {
            f["FilterPattern"]
                .as_str()
                .is_some_and(|p| p.contains("$.fields.message") && p.contains("job flagged stuck"))
        })
        .expect("a metric filter on \"job flagged stuck\"");
    assert!(
        is_ref_to(&stuck["LogGroupName"], "StatusCheckerLogs"),
        "{stuck}"
    );
    assert!(own_log_groups(&template, "StatusCheckerFunction").contains("StatusCheckerLogs"));
    let metric = &one_or_many(&stuck["MetricTransformations"])[0];
    assert!(
        all.iter()
            .any(|a| a["Namespace"] == metric["MetricNamespace"]
                && a["MetricName"] == metric["MetricName"]
                && a["ComparisonOperator"] == "GreaterThanThreshold"
                && a["Threshold"] == 0),
        "stuck jobs alarm on {metric}"
    );
    assert!(
        all.iter().any(|a| a["MetricName"] == "Duration"
            && dimension(a, "FunctionName").is_some_and(|v| is_ref_to(v, "StatusCheckerFunction"))),
        "status checker duration alarm"
    );
}

// ---------------------------------------------------------------------------
// The checks catch what they are for.
// ---------------------------------------------------------------------------

fn first_statement_of_role<'a>(template: &'a mut Value, role: &str) -> &'a mut Value {
    &mut template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]
}

#[test]
fn a_wildcard_action_is_caught() {
    let mut template = load_template();
    first_statement_of_role(&mut template, "TikTokWebhookRole")["Action"] = json!("dynamodb:*");
    let problems = policy_violations(&template);
    assert_violation(&problems, "wildcard action \"dynamodb:*\"");
    let mut template = load_template();
    first_statement_of_role(&mut template, "StatusCheckerRole")["Action"] =
        json!(["dynamodb:GetItem", "*"]);
    assert_violation(&policy_violations(&template), "wildcard action \"*\"");
}

#[test]
fn resource_star_and_foreign_resources_are_caught() {
    let mut template = load_template();
    first_statement_of_role(&mut template, "S3UploadRole")["Resource"] = json!("*");
    let problems = policy_violations(&template);
    assert_violation(&problems, "(everything)");

    // The upload function reading the invitation key.
    let mut template = load_template();
    first_statement_of_role(&mut template, "S3UploadRole")["Resource"] =
        json!({ "Ref": "InviteKeySecret" });
    let problems = policy_violations(&template);
    assert_violation(&problems, "names InviteKeySecret");

    // The login reaching the bucket.
    let mut template = load_template();
    first_statement_of_role(&mut template, "OAuthCallbackRole")["Action"] = json!("s3:GetObject");
    first_statement_of_role(&mut template, "OAuthCallbackRole")["Resource"] =
        json!({ "Fn::Sub": "${UploadBucket.Arn}/uploads/*" });
    let problems = policy_violations(&template);
    assert_violation(&problems, "names UploadBucket");
    assert_violation(&problems, "must not touch the bucket");

    // The checker sending to the dead-letter queue.
    let mut template = load_template();
    first_statement_of_role(&mut template, "StatusCheckerRole")["Action"] =
        json!("sqs:SendMessage");
    first_statement_of_role(&mut template, "StatusCheckerRole")["Resource"] =
        json!({ "Fn::GetAtt": ["UploadDeadLetterQueue", "Arn"] });
    assert!(!policy_violations(&template).is_empty());

    // A hand-written ARN.
    let mut template = load_template();
    first_statement_of_role(&mut template, "TikTokWebhookRole")["Resource"] =
        json!({ "Fn::Sub": "arn:${AWS::Partition}:s3:::some-bucket/*" });
    assert!(!policy_violations(&template).is_empty());
}

#[test]
fn sam_policy_templates_and_shared_roles_are_caught() {
    // SAM's DynamoDBCrudPolicy cannot be checked statement by statement.
    let mut template = load_template();
    let function = &mut template["Resources"]["TikTokWebhookFunction"]["Properties"];
    function.as_object_mut().expect("props").remove("Role");
    function["Policies"] = json!([{ "DynamoDBCrudPolicy": { "TableName": { "Ref": "Table" } } }]);
    assert_violation(&policy_violations(&template), "can be checked");

    let mut template = load_template();
    template["Resources"]["TikTokWebhookFunction"]["Properties"]["Role"] =
        json!({ "Fn::GetAtt": ["StatusCheckerRole", "Arn"] });
    assert_violation(&policy_violations(&template), "shares role");
}

#[test]
fn short_form_tags_are_read() {
    let parsed = parse_template(
        "a: !Ref X\nb: !GetAtt Y.Arn\nc: !Sub \"${Z.Arn}/k\"\nd: !If [C, !Ref A, !Ref AWS::NoValue]\ne: !Join [\"\", [x, !Ref P]]\n",
    );
    assert_eq!(parsed["a"], json!({ "Ref": "X" }));
    assert_eq!(parsed["b"], json!({ "Fn::GetAtt": ["Y", "Arn"] }));
    assert_eq!(parsed["c"], json!({ "Fn::Sub": "${Z.Arn}/k" }));
    assert_eq!(branches(&parsed["d"]), vec![&json!({ "Ref": "A" })]);
    assert_eq!(
        parsed["e"],
        json!({ "Fn::Join": ["", ["x", { "Ref": "P" }]] })
    );
}

// ---------------------------------------------------------------------------
// The template's edges.
// ---------------------------------------------------------------------------

/// Every HttpApi route belongs to an API of this template whose stage
/// throttles every route (`DefaultRouteSettings`), so anyone calling the
/// login or webhook URLs is capped. Violations, by name.
fn throttling_violations(template: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let positive = |value: &Value| match value {
        Value::Number(n) => n.as_f64().is_some_and(|n| n > 0.0),
        other => other
            .get("Ref")
            .and_then(Value::as_str)
            .and_then(|p| template["Parameters"].get(p))
            .is_some_and(|p| p["MinValue"].as_f64().is_some_and(|m| m >= 1.0)),
    };
    for (id, api) in resources_of_type(template, "AWS::Serverless::HttpApi") {
        let settings = &api["Properties"]["DefaultRouteSettings"];
        for key in ["ThrottlingRateLimit", "ThrottlingBurstLimit"] {
            if !positive(&settings[key]) {
                problems.push(format!(
                    "{id}: DefaultRouteSettings.{key} must be a positive number (or a parameter with MinValue 1), got {}",
                    settings[key]
                ));
            }
        }
    }
    for (function, resource) in resources_of_type(template, "AWS::Serverless::Function") {
        let events = resource["Properties"]["Events"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (name, event) in events.iter().filter(|(_, e)| e["Type"] == "HttpApi") {
            let api = event["Properties"]["ApiId"]["Ref"].as_str();
            let throttled = api.is_some_and(|api| {
                resources(template).get(api).map(|r| &r["Type"])
                    == Some(&json!("AWS::Serverless::HttpApi"))
            });
            if !throttled {
                problems.push(format!(
                    "{function}.Events.{name}: the route must be on one of this template's HttpApis (ApiId: !Ref ...), whose stage is throttled; SAM's implicit API is not"
                ));
            }
        }
    }
    problems
}

#[test]
fn every_route_of_the_http_api_is_throttled() {
    let template = load_template();
    let problems = throttling_violations(&template);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Some route exists to be throttled.
    assert!(
        resources_of_type(&template, "AWS::Serverless::Function")
            .iter()
            .any(|(_, f)| f["Properties"]["Events"]
                .as_object()
                .is_some_and(|e| e.values().any(|e| e["Type"] == "HttpApi")))
    );

    let mut unthrottled = load_template();
    unthrottled["Resources"]["LoginApi"]["Properties"]
        .as_object_mut()
        .expect("LoginApi properties")
        .remove("DefaultRouteSettings");
    let problems = throttling_violations(&unthrottled);
    assert_violation(
        &problems,
        "LoginApi: DefaultRouteSettings.ThrottlingRateLimit",
    );
    let mut implicit = load_template();
    implicit["Resources"]["TikTokWebhookFunction"]["Properties"]["Events"]["Webhook"]["Properties"]
        .as_object_mut()
        .expect("the webhook's route")
        .remove("ApiId");
    let problems = throttling_violations(&implicit);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("TikTokWebhookFunction.Events.Webhook")),
        "{problems:?}"
    );
}

fn role_statement_mut<'a>(template: &'a mut Value, role: &str, sid: &str) -> &'a mut Value {
    template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array_mut()
        .expect("statements")
        .iter_mut()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("{role} has no statement {sid}"))
}

#[test]
fn the_login_reaches_only_the_items_it_owns() {
    let template = load_template();
    let login = function_statements(&template, "OAuthCallbackFunction")
        .expect("the login's statements")
        .1;
    let table: Vec<&Statement> = login
        .iter()
        .filter(|s| s.actions().iter().any(|a| a.starts_with("dynamodb:")))
        .collect();
    assert!(!table.is_empty(), "the login uses the table");
    for statement in table {
        assert_eq!(leading_keys(statement), LOGIN_KEY_PREFIXES, "{statement:?}");
    }

    let mut open = load_template();
    role_statement_mut(&mut open, "OAuthCallbackRole", "TableItems")
        .as_object_mut()
        .expect("statement")
        .remove("Condition");
    // An unconditioned table grant is caught.
    assert_violation(
        &policy_violations(&open),
        "must be limited by ForAllValues:StringLike dynamodb:LeadingKeys",
    );
    let mut query = load_template();
    role_statement_mut(&mut query, "OAuthCallbackRole", "TableItems")["Action"]
        .as_array_mut()
        .expect("actions")
        .push(json!("dynamodb:Query"));
    // A Query (no leading key to limit) is caught.
    assert_violation(&policy_violations(&query), "dynamodb:Query is not one of");
}

#[test]
fn the_upload_function_can_tell_a_missing_image_from_a_forbidden_one() {
    let template = load_template();
    assert!(policy_violations(&template).is_empty());
    let mut conditioned = load_template();
    role_statement_mut(&mut conditioned, "S3UploadRole", "ListUploads")["Condition"] =
        json!({"StringLike": {"s3:prefix": ["uploads/*"]}});
    let problems = policy_violations(&conditioned);
    assert_violation(&problems, "s3:ListBucket with a Condition");
    let mut missing = load_template();
    role_statement_mut(&mut missing, "S3UploadRole", "ListUploads")["Action"] =
        json!("s3:GetObjectAttributes");
    role_statement_mut(&mut missing, "S3UploadRole", "ListUploads")["Resource"] =
        json!({"Fn::Sub": "${UploadBucket.Arn}/uploads/*"});
    // No ListBucket at all is caught.
    assert_violation(&policy_violations(&missing), "needs s3:ListBucket");
}

#[test]
fn deleted_and_overwritten_uploads_expire_but_current_ones_stay() {
    let template = load_template();
    let rules = one_or_many(
        &resources(&template)["UploadBucket"]["Properties"]["LifecycleConfiguration"]["Rules"],
    );
    let prefix = |rule: &Value| -> Value {
        if rule["Prefix"].is_null() {
            rule["Filter"]["Prefix"].clone()
        } else {
            rule["Prefix"].clone()
        }
    };
    let uploads: Vec<&&Value> = rules
        .iter()
        .filter(|r| r["Status"] == "Enabled" && prefix(r) == "uploads/")
        .collect();
    assert!(
        uploads.iter().any(|r| is_ref_to(
            &r["NoncurrentVersionExpiration"]["NoncurrentDays"],
            "DeletedUploadRetentionDays"
        )),
        "noncurrent versions under uploads/ expire after DeletedUploadRetentionDays: {rules:?}"
    );
    assert!(
        uploads
            .iter()
            .all(|r| r["ExpirationInDays"].is_null() && r["ExpirationDate"].is_null()),
        "a creator's current uploads are never expired: {uploads:?}"
    );
    assert!(
        template["Parameters"]["DeletedUploadRetentionDays"]["MinValue"]
            .as_i64()
            .is_some_and(|m| m >= 1)
    );
}

#[test]
fn token_secrets_are_tagged_with_the_stack_and_go_with_the_authorization() {
    let template = load_template();
    let login = &resources(&template)["OAuthCallbackFunction"]["Properties"];
    assert!(
        is_ref_to(
            &login["Environment"]["Variables"]["STACK_NAME"],
            "AWS::StackName"
        ),
        "the login tags the secrets it creates with the stack's name"
    );
    let grants = |function: &str| -> BTreeSet<String> {
        function_statements(&template, function)
            .expect("statements")
            .1
            .iter()
            .filter(|s| {
                s.resources()
                    .iter()
                    .any(|r| r.get("Fn::Sub") == Some(&json!(ACCOUNT_SECRETS)))
            })
            .flat_map(Statement::actions)
            .collect()
    };
    let login = grants("OAuthCallbackFunction");
    for action in ["secretsmanager:CreateSecret", "secretsmanager:TagResource"] {
        assert!(login.contains(action), "login: {login:?}");
    }
    assert_eq!(
        grants("TikTokWebhookFunction"),
        BTreeSet::from(["secretsmanager:DeleteSecret".to_owned()]),
        "the webhook deletes a revoked account's secret and does nothing else with them"
    );

    let mut reading = load_template();
    role_statement_mut(&mut reading, "TikTokWebhookRole", "RevokedAccountTokens")["Action"] =
        json!([
            "secretsmanager:DeleteSecret",
            "secretsmanager:GetSecretValue"
        ]);
    // A webhook reading tokens is caught.
    assert_violation(&policy_violations(&reading), "the webhook reads no token");
}
