//! Load bench of the status checker (prints figures; not a timed test).
//!
//! Sets up 1,000 connected accounts and runs the checker three times, a
//! minute apart (the checker's clock and the simulator's are moved on; no
//! sleeping):
//!
//! 1. over 5,000 unfinished jobs (5 per account) that TikTok knows;
//! 2. over 10,000 (5 more per account): index reads grow with the backlog;
//! 3. over the same 10,000 plus 50,000 finished jobs, written as the store
//!    writes finished jobs (no index entry): index reads do not change.
//!
//! For each run it prints jobs checked per second (status requests answered
//! over the run's wall time), the index's read units, and the status
//! requests per token in any sliding minute as the simulator logged them
//! (TikTok's side, not the checker's own count). The checker runs with the
//! production settings (`CHECK_CONCURRENCY` default). DynamoDB's own read
//! units are asked for (`ReturnConsumedCapacity=TOTAL`); where the local
//! DynamoDB answers a fixed figure per query instead of metering, the bench
//! says so and the read units come from the item sizes (DynamoDB's rule: 4 KB
//! per unit, half for eventually consistent reads).
//!
//! Needs local AWS (moto): `make bench-checker` starts it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt as _, TryStreamExt as _};
use shared::accounts::Accounts;
use shared::aws::AwsClients;
use shared::clock::Clock;
use shared::jobs::{
    Job, JobKind, JobStatus, Jobs, NewJob, ObjectVersion, PostTarget, Upload, UploadAttempt,
};
use shared::tokens::TokenManager;
use status_checker::checker::RunReport;
use status_checker::config::{CheckerConfig, STATUS_REQUESTS_PER_MINUTE};
use tiktok_drafts_tests::{
    DeploymentStores, TestSim, connect_account, deployment_stores, local_aws, unique_name,
};

/// Sizes, from `--accounts N --per-account N --finished N --deadline-secs N`
/// (defaults: 1,000 accounts, 5 then 10 unfinished jobs each, 50,000
/// finished, 600 s per run).
struct Sizes {
    accounts: usize,
    per_account: usize,
    finished: usize,
    /// Each run's deadline. Lambda gives the checker 120 s; the local
    /// DynamoDB (moto, one Python process whose queries slow down as the
    /// table grows) is far slower than DynamoDB, so the bench gives runs
    /// longer, to compare whole walks of the index.
    deadline: Duration,
}

fn sizes() -> Result<Sizes, BenchError> {
    let mut sizes = Sizes {
        accounts: 1_000,
        per_account: 5,
        finished: 50_000,
        deadline: Duration::from_secs(600),
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
            "--deadline-secs" => sizes.deadline = Duration::from_secs(u64::try_from(value)?),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(sizes)
}

type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// One status request as the simulator logged it.
struct Logged {
    time_ms: i64,
    token: String,
}

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
        deadline,
    } = sizes()?;
    let sdk = local_aws().await;
    let aws = AwsClients::from_config(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    // Every status request of the bench must stay in the simulator's log.
    let sim = TestSim::start(|s| {
        s.auto_advance = false;
        s.request_log_capacity = 200_000;
    })
    .await;
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
    let open_ids = stream::iter(0..accounts)
        .map(|n| connect(&sim, &aws, &prefix, &table, n))
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    println!(
        "setup: {accounts} accounts connected in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The production configuration, defaults and all.
    let env: HashMap<&str, String> = HashMap::from([
        ("TABLE_NAME", table.clone()),
        ("SECRETS_PREFIX", prefix.clone()),
        ("TIKTOK_APP_SECRET_ID", app_secret_id),
        ("UPLOAD_QUEUE_URL", queue_url),
        ("TIKTOK_API_BASE_URL", sim.base_url().to_owned()),
    ]);
    let config = CheckerConfig::from_lookup(|name| env.get(name).cloned())?;
    println!(
        "checker: concurrency {} (the CHECK_CONCURRENCY default); each run's deadline {} s (Lambda's is 120 s; the local DynamoDB is the slow part here)",
        config.concurrency,
        deadline.as_secs()
    );
    let checker = status_checker::service::build(&config, &aws, sqs, clock.clone()).await?;

    let mut runs: Vec<(String, RunReport, f64, usize)> = Vec::new();
    let mut logged = 0;
    let mut unfinished = 0;
    for round in 0..2 {
        let added = add_unfinished(&sim, &jobs, &open_ids, per_account, &clock).await?;
        unfinished += added;
        let label = format!("{unfinished} unfinished");
        println!("added {added} unfinished jobs (round {})", round + 1);
        next_minute(&sim, &clock).await;
        let (report, secs) = timed_run(&checker, deadline).await;
        let busiest = busiest_minute(&sim, &mut logged).await?;
        print_run(&label, &report, secs, busiest);
        runs.push((label, report, secs, busiest));
    }

    let finished: Vec<Job> = (0..finished_count)
        .map(|n| {
            let open_id = &open_ids[n % open_ids.len()];
            let status = [
                JobStatus::Published,
                JobStatus::Failed,
                JobStatus::Cancelled,
            ][n % 3];
            job(open_id, Some(format!("v_done~v2.{n}")), status, &clock)
        })
        .collect();
    let started = Instant::now();
    jobs.put_many(&finished).await?;
    println!(
        "added {finished_count} finished jobs (as the store leaves them: no index entry) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    next_minute(&sim, &clock).await;
    let (report, secs) = timed_run(&checker, deadline).await;
    let busiest = busiest_minute(&sim, &mut logged).await?;
    let label = format!("{unfinished} unfinished + {finished_count} finished");
    print_run(&label, &report, secs, busiest);
    runs.push((label, report, secs, busiest));

    println!();
    println!("summary:");
    for (label, report, secs, busiest) in &runs {
        println!(
            "  {label:<40} {:>6} checked, {:>5.0} jobs checked/s, {:>7.1} index read units, busiest token {busiest}/min",
            report.status_requests,
            f64::from(report.status_requests) / secs.max(f64::EPSILON),
            report.index_read_units,
        );
    }
    if runs.iter().any(|r| r.1.stopped_early) {
        println!(
            "NOTE: a run stopped at its deadline, so its index reads cover part of the index only; raise --deadline-secs"
        );
    }
    if let [small, large, history] = runs.as_slice() {
        println!(
            "index read units: {:.1} -> {:.1} as the backlog doubles ({})",
            small.1.index_read_units,
            large.1.index_read_units,
            if large.1.index_read_units > small.1.index_read_units {
                "they grow with unfinished jobs"
            } else {
                "UNEXPECTED: no growth"
            }
        );
        println!(
            "index read units with {finished_count} finished jobs: {:.1} (before: {:.1}; {})",
            history.1.index_read_units,
            large.1.index_read_units,
            if (history.1.index_read_units - large.1.index_read_units).abs() < f64::EPSILON {
                "unchanged: history is never read"
            } else {
                "CHANGED"
            }
        );
    }
    println!(
        "jobs checked per second here are bounded by the local DynamoDB: moto is one Python process whose requests slow down as the table grows (each checked job costs a status request and one small UpdateItem), so the rate falls with history here although the index reads do not grow"
    );
    let queries: u32 = runs.iter().map(|r| r.1.index_queries).sum();
    let consumed: f64 = runs.iter().map(|r| r.1.index_consumed_units).sum();
    if (consumed - f64::from(queries)).abs() < f64::EPSILON {
        println!(
            "DynamoDB's own figures: the local DynamoDB (moto) answered ReturnConsumedCapacity=TOTAL with {consumed:.1} units for {queries} queries, a fixed 1.0 per query that does not meter item sizes; the read units above are the item-size model"
        );
    } else {
        println!(
            "DynamoDB's own figures (ReturnConsumedCapacity=TOTAL): {consumed:.1} units for {queries} queries"
        );
    }
    let busiest = runs.iter().map(|r| r.3).max().unwrap_or(0);
    println!(
        "status requests per token in any sliding minute, from the simulator's log: at most {busiest} (TikTok's limit {STATUS_REQUESTS_PER_MINUTE}: {})",
        if busiest <= STATUS_REQUESTS_PER_MINUTE as usize {
            "OK"
        } else {
            "OVER"
        }
    );
    let refused = sim
        .requests("/v2/post/publish/status/fetch/")
        .await
        .iter()
        .filter(|r| r["status"] == 429)
        .count();
    println!("429 answers from the simulator: {refused}");
    sim.shutdown().await;
    Ok(())
}

/// A minute passes for the checker and for the simulator, as between two
/// scheduled runs: the next run may send status requests again.
async fn next_minute(sim: &TestSim, clock: &Clock) {
    clock.advance_secs(61);
    sim.advance_clock(61).await;
}

async fn timed_run(
    checker: &status_checker::checker::Checker,
    deadline: Duration,
) -> (RunReport, f64) {
    let started = Instant::now();
    let report = checker.run(tokio::time::Instant::now() + deadline).await;
    (report, started.elapsed().as_secs_f64())
}

/// The most status requests one token had in any sliding minute among the
/// requests logged since the last call (`seen` counts those already read).
async fn busiest_minute(sim: &TestSim, seen: &mut usize) -> Result<usize, BenchError> {
    let all = sim.requests("/v2/post/publish/status/fetch/").await;
    let new: Vec<Logged> = all
        .iter()
        .skip(*seen)
        .map(|r| {
            Ok(Logged {
                time_ms: r["time_ms"]
                    .as_i64()
                    .ok_or("a logged request without time_ms")?,
                token: r["token_sha256"].as_str().unwrap_or_default().to_owned(),
            })
        })
        .collect::<Result<_, BenchError>>()?;
    *seen = all.len();
    let mut by_token: HashMap<&str, Vec<i64>> = HashMap::new();
    for entry in &new {
        by_token
            .entry(&entry.token)
            .or_default()
            .push(entry.time_ms);
    }
    let mut busiest = 0;
    for times in by_token.values_mut() {
        times.sort_unstable();
        // The simulator (like TikTok) counts the requests in the 60 s up to
        // and including each one.
        let mut first = 0;
        for (last, t) in times.iter().enumerate() {
            while times[first] <= t - 60_000 {
                first += 1;
            }
            busiest = busiest.max(last + 1 - first);
        }
    }
    Ok(busiest)
}

fn print_run(label: &str, report: &RunReport, secs: f64, busiest: usize) {
    println!();
    println!("run with {label}:");
    println!("  wall time                 {secs:.2} s");
    println!("  due jobs read             {}", report.jobs_seen);
    println!("  jobs checked (answered)   {}", report.status_requests);
    println!(
        "  jobs checked per s        {:.0}",
        f64::from(report.status_requests) / secs.max(f64::EPSILON)
    );
    println!("  index queries             {}", report.index_queries);
    println!("  index entries read        {}", report.index_items_read);
    println!(
        "  index read units          {:.1} (item-size model)",
        report.index_read_units
    );
    println!(
        "  busiest token per minute  {busiest} (simulator's log; the checker counted {})",
        report.busiest_account_per_minute
    );
    println!("  left for the next run     {}", report.rate_limited);
    println!("  errors                    {}", report.errors);
    println!("  stopped early             {}", report.stopped_early);
}

/// A connected account.
async fn connect(
    sim: &TestSim,
    aws: &AwsClients,
    prefix: &str,
    table: &str,
    n: usize,
) -> Result<String, BenchError> {
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
    Ok(open_id)
}

/// `per_account` processing jobs per account, each for a publish TikTok
/// (the simulator) knows and keeps processing.
async fn add_unfinished(
    sim: &TestSim,
    jobs: &Jobs,
    open_ids: &[String],
    per_account: usize,
    clock: &Clock,
) -> Result<usize, BenchError> {
    let made = stream::iter(open_ids)
        .map(|open_id| async move {
            let seeded = sim
                .post(
                    "/_sim/publishes/seed",
                    serde_json::json!({"open_id": open_id, "count": per_account}),
                )
                .await;
            let ids: Vec<String> = seeded["publish_ids"]
                .as_array()
                .ok_or("no publish_ids")?
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            Ok::<_, BenchError>(
                ids.into_iter()
                    .map(|id| job(open_id, Some(id), JobStatus::Processing, clock))
                    .collect::<Vec<_>>(),
            )
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    let made: Vec<Job> = made.into_iter().flatten().collect();
    jobs.put_many(&made).await?;
    Ok(made.len())
}

fn job(open_id: &str, publish_id: Option<String>, status: JobStatus, clock: &Clock) -> Job {
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
    if let Some(publish_id) = publish_id {
        job.attempt = UploadAttempt::Pulled { publish_id };
    }
    job
}
