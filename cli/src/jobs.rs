//! `status` and `jobs`: what became of uploads.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use shared::jobs::{ALL_STATUSES, Job, JobId, JobStatus, Jobs, UNFINISHED_SHARDS};

use crate::context::{CliResult, Ctx as _, Deployment, Fail, Output, table, when};

/// A job as the CLI shows it; never the upload URL (it carries a token).
pub fn job_json(job: &Job) -> Value {
    json!({
        "job_id": job.id.as_str(),
        "kind": job.kind.as_str(),
        "status": job.status.as_str(),
        "alias": job.alias,
        "open_id": job.open_id,
        "bucket": job.upload.bucket,
        "key": job.upload.key,
        "size": job.upload.size,
        "local_file": job.upload.is_local_file(),
        "caption": job.caption,
        "publish_id": job.publish_id(),
        "next_offset": job.next_offset(),
        "attempts": job.attempts,
        "error": job.current_error().map(|e| json!({"code": e.code, "message": e.message})),
        "earlier_error": job.earlier_error().map(|e| json!({"code": e.code, "message": e.message})),
        "tiktok_status": job.tiktok_status.as_ref().map(|s| s.as_str().to_owned()),
        "fail_reason": job.fail_reason.as_ref().map(|f| f.as_str().to_owned()),
        "post_ids": job.post_ids.iter().map(|id| id.to_string()).collect::<Vec<_>>(),
        "notes": job.notes,
        "created_at": job.created_at.to_rfc3339(),
        "updated_at": job.updated_at.to_rfc3339(),
        "not_before": job.not_before.map(|t| t.to_rfc3339()),
    })
}

/// Finds a job by its id or its publish_id.
pub async fn find(jobs: &Jobs, id: &str) -> CliResult<Job> {
    let id = id.trim();
    let found = match JobId::parse(id) {
        Ok(job_id) => jobs.get(&job_id).await.ctx("cannot read the job")?,
        Err(_) => jobs
            .by_publish_id(id)
            .await
            .ctx("cannot look up the publish_id")?,
    };
    found.ok_or_else(|| {
        Fail::new(format!(
            "no job has the id or publish_id {id:?}; see `tiktok-drafts jobs`"
        ))
    })
}

/// `status`: the job, then TikTok's own status of its publish.
pub async fn status(d: &Deployment, id: &str) -> CliResult<Output> {
    let jobs = d.jobs()?;
    let job = find(&jobs, id).await?;
    let mut text = describe(&job);
    let mut tiktok_json = Value::Null;
    let mut tiktok_error = None;
    match (job.publish_id(), &job.open_id) {
        (Some(publish_id), Some(open_id)) => {
            let tiktok = d.tiktok().await?;
            let tokens = d.tokens(tiktok.clone())?;
            let fetched = match tokens.get_fresh_token(open_id).await {
                Ok(mut token) => tokens
                    .call_with_token(&mut token, |access| {
                        let tiktok = &tiktok;
                        async move { tiktok.fetch_status(&access, publish_id).await }
                    })
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match fetched {
                Ok(s) => {
                    text.push_str(&format!("\ntiktok:     {}", s.status.as_str()));
                    if let Some(reason) = &s.fail_reason {
                        text.push_str(&format!(
                            " ({}: {})",
                            reason.as_str(),
                            reason.human_message()
                        ));
                    }
                    if let Some(n) = s.uploaded_bytes {
                        text.push_str(&format!(", {n} bytes uploaded"));
                    }
                    tiktok_json = json!({
                        "status": s.status.as_str(),
                        "fail_reason": s.fail_reason.as_ref().map(|f| f.as_str().to_owned()),
                        "post_ids": s.post_ids.iter().map(|id| id.to_string()).collect::<Vec<_>>(),
                        "uploaded_bytes": s.uploaded_bytes,
                        "downloaded_bytes": s.downloaded_bytes,
                    });
                }
                Err(e) => {
                    text.push_str(&format!("\ntiktok:     could not ask TikTok: {e}"));
                    tiktok_error = Some(e);
                }
            }
        }
        _ => text.push_str("\ntiktok:     not sent to TikTok yet (no publish_id)"),
    }
    let mut out = Output::new(
        text,
        json!({"job": job_json(&job), "tiktok": tiktok_json, "tiktok_error": tiktok_error}),
    );
    out.failed = tiktok_error.is_some();
    Ok(out)
}

fn describe(job: &Job) -> String {
    let mut lines = vec![
        format!("job:        {}", job.id),
        format!("kind:       {}", job.kind.as_str()),
        format!("status:     {}", job.status),
        format!("account:    {}", job.alias.as_deref().unwrap_or("-")),
        format!(
            "source:     {}",
            if job.upload.is_local_file() {
                job.upload.key.clone()
            } else {
                format!("s3://{}/{}", job.upload.bucket, job.upload.key)
            }
        ),
        format!("size:       {} bytes", job.upload.size),
        format!("publish_id: {}", job.publish_id().unwrap_or("-")),
        format!("created:    {}", when(Some(job.created_at))),
        format!("updated:    {}", when(Some(job.updated_at))),
    ];
    if let Some(caption) = &job.caption {
        lines.push(format!("caption:    {caption}"));
    }
    if let Some(e) = job.current_error() {
        lines.push(format!("error:      {}: {}", e.code, e.message));
    }
    if let Some(e) = job.earlier_error() {
        lines.push(format!(
            "earlier:    {}: {} (an earlier attempt; the job got past it)",
            e.code, e.message
        ));
    }
    for note in &job.notes {
        lines.push(format!("note:       {note}"));
    }
    lines.join("\n")
}

#[derive(clap::Args)]
pub struct JobsArgs {
    /// Only jobs of this account alias.
    #[arg(long)]
    account: Option<String>,
    /// Only jobs in this status (claimed, uploading, processing, inbox,
    /// published, queued, retry_wait, failed, stuck, cancelled).
    #[arg(long)]
    status: Option<String>,
    /// At most this many jobs, newest first.
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

/// `jobs`: unfinished statuses by the index, anything else by a scan.
pub async fn list(d: &Deployment, args: JobsArgs) -> CliResult<Output> {
    let status = match args.status.as_deref() {
        None => None,
        Some(s) => Some(JobStatus::parse(s.trim()).ok_or_else(|| {
            let names: Vec<&str> = ALL_STATUSES.iter().map(|s| s.as_str()).collect();
            Fail::new(format!(
                "--status {s:?} is not a job status; use one of {}",
                names.join(", ")
            ))
        })?),
    };
    let jobs = d.jobs()?;
    let mut found = match status {
        Some(status) if status.is_unfinished() => unfinished(&jobs, status).await?,
        _ => scan(d, status, args.account.as_deref(), args.limit).await?,
    };
    if let Some(alias) = &args.account {
        found.retain(|j| j.alias.as_deref() == Some(alias.as_str()));
    }
    found.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
    found.truncate(args.limit);
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|j| {
            vec![
                j.id.as_str()[..12].to_owned(),
                j.kind.as_str().to_owned(),
                j.status.to_string(),
                j.alias.clone().unwrap_or_else(|| "-".into()),
                j.publish_id()
                    .map(str::to_owned)
                    .unwrap_or_else(|| "-".into()),
                when(Some(j.created_at)),
                source_name(j),
            ]
        })
        .collect();
    let text = if found.is_empty() {
        "No jobs.".to_owned()
    } else {
        table(
            &[
                "JOB",
                "KIND",
                "STATUS",
                "ACCOUNT",
                "PUBLISH_ID",
                "CREATED",
                "SOURCE",
            ],
            &rows,
        )
    };
    Ok(Output::new(
        text,
        Value::Array(found.iter().map(job_json).collect()),
    ))
}

fn source_name(job: &Job) -> String {
    if job.upload.is_local_file() {
        job.upload.key.clone()
    } else {
        format!("s3://{}/{}", job.upload.bucket, job.upload.key)
    }
}

/// Every unfinished job in `status`: a Query of each shard of the index.
async fn unfinished(jobs: &Jobs, status: JobStatus) -> CliResult<Vec<Job>> {
    let mut out = Vec::new();
    for shard in 0..UNFINISHED_SHARDS {
        let mut start = None;
        loop {
            let page = jobs
                .unfinished(shard, 100, start)
                .await
                .ctx("cannot read the unfinished jobs")?;
            out.extend(page.jobs.into_iter().filter(|j| j.status == status));
            match page.next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
    }
    Ok(out)
}

/// A scan of the table for job items (filtered on the server, but DynamoDB
/// reads and bills every item), then each job read in full.
async fn scan(
    d: &Deployment,
    status: Option<JobStatus>,
    alias: Option<&str>,
    limit: usize,
) -> CliResult<Vec<Job>> {
    let table_name = d.settings.table()?;
    let jobs = d.jobs()?;
    let mut filter = vec!["#sk = :job".to_owned()];
    let mut names: HashMap<String, String> = HashMap::new();
    names.insert("#sk".into(), "sk".into());
    let mut values: HashMap<String, AttributeValue> = HashMap::new();
    values.insert(":job".into(), AttributeValue::S("JOB".into()));
    if let Some(status) = status {
        filter.push("#status = :status".into());
        names.insert("#status".into(), "status".into());
        values.insert(":status".into(), AttributeValue::S(status.as_str().into()));
    }
    if let Some(alias) = alias {
        filter.push("#alias = :alias".into());
        names.insert("#alias".into(), "alias".into());
        values.insert(":alias".into(), AttributeValue::S(alias.into()));
    }
    let mut ids = Vec::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        names.insert("#job_id".into(), "job_id".into());
        names.insert("#created_at".into(), "created_at".into());
        let page = d
            .aws
            .dynamodb
            .scan()
            .table_name(table_name)
            .filter_expression(filter.join(" AND "))
            .projection_expression("#job_id, #created_at")
            .set_expression_attribute_names(Some(names.clone()))
            .set_expression_attribute_values(Some(values.clone()))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| {
                Fail::new(format!(
                    "cannot scan the table {table_name}: {}",
                    shared::aws::describe_sdk_error(&e)
                ))
            })?;
        for item in page.items() {
            if let Some(AttributeValue::S(id)) = item.get("job_id")
                && let Ok(id) = JobId::parse(id)
            {
                let created = match item.get("created_at") {
                    Some(AttributeValue::S(c)) => c.clone(),
                    _ => String::new(),
                };
                ids.push((created, id));
            }
        }
        match page.last_evaluated_key {
            Some(next) if !next.is_empty() => start = Some(next),
            _ => break,
        }
    }
    // Times are fixed-width RFC 3339, so text order is time order: only the
    // newest `limit` jobs are read in full.
    ids.sort_by(|a, b| b.cmp(a));
    ids.truncate(limit);
    let mut out = Vec::with_capacity(ids.len());
    for (_, id) in ids {
        if let Some(job) = jobs.get(&id).await.ctx("cannot read a job")? {
            out.push(job);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use shared::jobs::{JobKind, LastError, NewJob, ObjectVersion, PostTarget, Upload};

    use super::*;

    fn job_that_failed_once(status: JobStatus) -> Job {
        let mut job = Job::new(
            NewJob {
                upload: Upload {
                    bucket: "drops".into(),
                    key: "uploads/alice/clip.mp4".into(),
                    version: ObjectVersion::etag("0123"),
                    size: 1000,
                },
                alias: Some("alice".into()),
                open_id: Some("open-alice".into()),
                kind: JobKind::Video,
                post: PostTarget::Draft,
                caption: None,
            },
            Utc::now(),
        );
        job.status = status;
        job.last_error = Some(LastError {
            code: "internal".into(),
            message: "TikTok had an internal problem".into(),
        });
        job
    }

    #[test]
    fn a_job_that_got_past_an_error_shows_it_as_history_only() {
        for status in [
            JobStatus::Inbox,
            JobStatus::Published,
            JobStatus::Claimed,
            JobStatus::Processing,
        ] {
            let job = job_that_failed_once(status);
            let text = describe(&job);
            assert!(!text.contains("\nerror:"), "{status}: {text}");
            assert!(text.contains("earlier:    internal:"), "{status}: {text}");
            let json = job_json(&job);
            assert!(json["error"].is_null(), "{status}: {json}");
            assert_eq!(json["earlier_error"]["code"], "internal", "{status}");
        }
        for status in [JobStatus::Failed, JobStatus::RetryWait, JobStatus::Stuck] {
            let job = job_that_failed_once(status);
            let text = describe(&job);
            assert!(text.contains("\nerror:      internal:"), "{status}: {text}");
            assert!(!text.contains("earlier:"), "{status}: {text}");
            assert_eq!(job_json(&job)["error"]["code"], "internal", "{status}");
        }
    }
}
