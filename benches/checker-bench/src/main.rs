//! Load bench of the status checker (prints figures; not a timed test).
//!
//! Sets up 1,000 connected accounts and 10,000 unfinished jobs that TikTok
//! (the simulator) knows, runs the checker, then adds 50,000 finished jobs
//! and runs it again. Prints, per run: jobs checked per second, status
//! requests per token per minute (TikTok allows 30), index entries read and
//! the read units they cost. The read cost must not grow with history.
//!
//! Needs local AWS (moto): `make bench-checker` starts it.

use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt as _, TryStreamExt as _};
use shared::accounts::Accounts;
use shared::aws::AwsClients;
use shared::jobs::{Job, JobKind, JobStatus, Jobs, NewJob, ObjectVersion, PostTarget, Upload};
use shared::tiktok::Endpoints;
use shared::tokens::{Clock, TokenManager};
use status_checker::checker::RunReport;
use status_checker::config::CheckerConfig;
use tiktok_drafts_tests::{
    DeploymentStores, TestSim, connect_account, deployment_stores, local_aws, unique_name,
};

/// Sizes, from `--accounts N --per-account N --finished N` (defaults: the
/// issue's 1,000 × 10 and 50,000).
struct Sizes {
    accounts: usize,
    per_account: usize,
    finished: usize,
}

fn sizes() -> Result<Sizes, BenchError> {
    let mut sizes = Sizes {
        accounts: 1_000,
        per_account: 10,
        finished: 50_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value: usize = args
            .next()
            .ok_or_else(|| format!("{flag} needs a number"))?
            .parse()?;
        match flag.as_str() {
            "--accounts" => sizes.accounts = value,
            "--per-account" => sizes.per_account = value,
            "--finished" => sizes.finished = value,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(sizes)
}

type BenchError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BenchError> {
    // Warnings and errors of the checker itself (a failed page, a refused
    // status) go to stderr, so a number that looks wrong can be explained.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let Sizes {
        accounts,
        per_account,
        finished: finished_count,
    } = sizes()?;
    let sdk = local_aws().await;
    let aws = AwsClients::from_config(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let sim = TestSim::start(|s| s.auto_advance = false).await;
    let DeploymentStores {
        table,
        prefix,
        app_secret_id,
    } = deployment_stores(&aws).await;
    let queue_url = sqs
        .create_queue()
        .queue_name(unique_name("bench-uploads"))
        .send()
        .await?
        .queue_url
        .ok_or("no queue URL")?;
    let clock = Clock::system();
    let jobs = Jobs::new(aws.dynamodb.clone(), &table);

    let started = Instant::now();
    let publish_ids = stream::iter(0..accounts)
        .map(|n| connect(&sim, &aws, &prefix, &table, n, per_account))
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    let mut unfinished = Vec::with_capacity(accounts * per_account);
    for (open_id, ids) in &publish_ids {
        for publish_id in ids {
            unfinished.push(job(
                open_id,
                Some(publish_id),
                JobStatus::Processing,
                &clock,
            ));
        }
    }
    jobs.put_many(&unfinished).await?;
    println!(
        "setup: {accounts} accounts, {} unfinished jobs in {:.1} s",
        unfinished.len(),
        started.elapsed().as_secs_f64()
    );

    let config = CheckerConfig {
        table: table.clone(),
        secrets_prefix: prefix.clone(),
        app_secret_id,
        upload_queue_url: queue_url,
        interval: Duration::from_secs(300),
        concurrency: 32,
        endpoints: Endpoints::for_base_url(sim.base_url())?,
    };
    let checker = status_checker::service::build(&config, &aws, sqs, clock.clone()).await?;

    let (first, first_secs) = timed_run(&checker).await;
    print_run(
        &format!("{} unfinished", unfinished.len()),
        &first,
        first_secs,
    );

    let finished: Vec<Job> = (0..finished_count)
        .map(|n| {
            let (open_id, _) = &publish_ids[n % accounts];
            let status = [JobStatus::Inbox, JobStatus::Published, JobStatus::Failed][n % 3];
            job(open_id, None, status, &clock)
        })
        .collect();
    let started = Instant::now();
    jobs.put_many(&finished).await?;
    println!(
        "added {finished_count} finished jobs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // A minute later, as the next scheduled run would be (the simulator's
    // rate window is a sliding minute of real time).
    tokio::time::sleep(Duration::from_secs(61)).await;
    let (second, second_secs) = timed_run(&checker).await;
    print_run(
        &format!(
            "{} unfinished + {finished_count} finished",
            unfinished.len()
        ),
        &second,
        second_secs,
    );

    println!();
    println!(
        "read units for the index: {:.1} without history, {:.1} with {finished_count} finished jobs ({})",
        first.index_read_units,
        second.index_read_units,
        if (first.index_read_units - second.index_read_units).abs() < f64::EPSILON {
            "unchanged: OK"
        } else {
            "CHANGED"
        }
    );
    let busiest = first
        .busiest_account_per_minute
        .max(second.busiest_account_per_minute);
    println!(
        "status requests per token per minute: at most {busiest} (limit 30: {})",
        if busiest <= 30 { "OK" } else { "OVER" }
    );
    let rate_limited = sim
        .requests("/v2/post/publish/status/fetch/")
        .await
        .iter()
        .filter(|r| r["status"] == 429)
        .count();
    println!("429 answers from the simulator: {rate_limited}");
    sim.shutdown().await;
    Ok(())
}

async fn timed_run<P: status_checker::upload_path::UploadPath>(
    checker: &status_checker::checker::Checker<P>,
) -> (RunReport, f64) {
    let started = Instant::now();
    let report = checker
        .run(tokio::time::Instant::now() + Duration::from_secs(120))
        .await;
    (report, started.elapsed().as_secs_f64())
}

fn print_run(label: &str, report: &RunReport, secs: f64) {
    println!();
    println!("run with {label}:");
    println!("  wall time            {secs:.2} s (Lambda timeout 120 s)");
    println!("  jobs checked         {}", report.jobs_seen);
    println!("  status requests      {}", report.status_requests);
    println!(
        "  jobs checked per s   {:.0}",
        f64::from(report.jobs_seen) / secs.max(f64::EPSILON)
    );
    println!("  index entries read   {}", report.index_items_read);
    println!("  index read units     {:.1}", report.index_read_units);
    println!("  errors               {}", report.errors);
    println!("  left for next run    {}", report.stopped_early);
}

/// A connected account with `per_account` publishes TikTok knows.
async fn connect(
    sim: &TestSim,
    aws: &AwsClients,
    prefix: &str,
    table: &str,
    n: usize,
    per_account: usize,
) -> Result<(String, Vec<String>), BenchError> {
    let open_id = format!("open-bench-{n:04}");
    sim.seed_user(&open_id, serde_json::json!({})).await;
    connect_account(
        sim,
        &TokenManager::for_deployment(aws, sim.client(), prefix, table),
        &Accounts::new(aws.dynamodb.clone(), table),
        &open_id,
        &format!("bench-{n:04}"),
        &["user.info.basic", "video.upload"],
    )
    .await;
    let seeded = sim
        .post(
            "/_sim/publishes/seed",
            serde_json::json!({"open_id": open_id, "count": per_account}),
        )
        .await;
    let ids = seeded["publish_ids"]
        .as_array()
        .ok_or("no publish_ids")?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    Ok((open_id, ids))
}

fn job(open_id: &str, publish_id: Option<&String>, status: JobStatus, clock: &Clock) -> Job {
    let key = format!("uploads/{open_id}/{}.mp4", unique_name("clip"));
    let mut job = Job::new(
        NewJob {
            upload: Upload {
                bucket: "bench-uploads".into(),
                key,
                version: ObjectVersion::etag("0123456789abcdef"),
                size: 3_000_000,
            },
            alias: Some(open_id.replace("open-", "")),
            open_id: Some(open_id.to_owned()),
            kind: JobKind::Video,
            post: PostTarget::Draft,
            caption: Some("A caption of ordinary length for a bench job #bench".into()),
        },
        clock.now(),
    );
    job.status = status;
    job.publish_id = publish_id.cloned();
    job
}
