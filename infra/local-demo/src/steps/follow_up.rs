//! Step 5: the status checker on its schedule until TikTok reports
//! `SEND_TO_USER_INBOX` for every job.

use std::collections::BTreeMap;
use std::time::Instant;

use super::Pace;
use crate::DemoResult;
use crate::cli::{Cli, JobView, list_jobs, short_id};
use crate::functions::{Functions, invoke};
use crate::stack::Stack;
use tiktok_drafts_tests::events::scheduled_event;

/// Runs the status checker as its schedule would until every job is in
/// the creator's inbox, printing each job's moves. A job that fails or
/// gets stuck ends the demo with its reason.
pub async fn follow_up(
    cli: &Cli,
    stack: &Stack,
    functions: &Functions,
    pace: &Pace,
    expected_jobs: usize,
) -> DemoResult<Vec<JobView>> {
    println!(
        "== follow up: status-checker on its schedule (EventBridge, every 5 minutes; here back to back)"
    );
    let rule = &stack.schedule_rule_arn;
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let until = Instant::now() + pace.follow_up;
    loop {
        let jobs = list_jobs(cli, &stack.alias).await?;
        for job in &jobs {
            if seen.get(&job.id) != Some(&job.status) {
                println!(
                    "    job {} {:<9} {:<10} TikTok {:<19} {}",
                    short_id(&job.id),
                    job.kind,
                    job.status,
                    job.tiktok_status.as_deref().unwrap_or("-"),
                    job.key
                );
                seen.insert(job.id.clone(), job.status.clone());
            }
        }
        if let Some(bad) = jobs
            .iter()
            .find(|j| matches!(j.status.as_str(), "failed" | "stuck" | "cancelled"))
        {
            let detail = cli.run(&["status", &bad.id]).await.unwrap_or_default();
            return Err(format!("job {} ended {}:\n{detail}", bad.id, bad.status));
        }
        if jobs.len() >= expected_jobs
            && jobs.iter().all(|j| {
                j.tiktok_status.as_deref() == Some("SEND_TO_USER_INBOX") || j.status == "published"
            })
        {
            return Ok(jobs);
        }
        if Instant::now() > until {
            return Err(format!(
                "the jobs did not all reach the inbox within {} s",
                pace.follow_up.as_secs()
            ));
        }
        tokio::time::sleep(pace.check_every).await;
        let report = invoke(
            "status-checker",
            &functions.checker,
            &scheduled_event(rule, &stack.region, chrono::Utc::now()),
        )
        .await?
        .body;
        let moved = report["moved"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(_, n)| n.as_u64().unwrap_or(0) > 0)
                    .map(|(to, n)| format!("{n} to {to}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        if !moved.is_empty() {
            println!(
                "    status-checker    checked {} job(s): {moved}",
                report["jobs_seen"]
            );
        }
    }
}
