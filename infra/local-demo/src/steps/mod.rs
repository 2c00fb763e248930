//! The demo's steps, in the order they run (see the crate's doc). Each
//! module is one step; [`run`] runs them once the deployment exists.

pub mod check;
pub mod connect;
pub mod creator_page;
pub mod creator_posts;
pub mod deployment;
pub mod disconnect;
pub mod drop_media;
pub mod events_out;
pub mod follow_up;
pub mod tiktok;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::Cli;
use crate::functions::Functions;
use crate::gateway::Gateway;
use crate::lifecycle::Leftovers;
use crate::sim_control::SimControl;
use crate::stack::Stack;
use crate::{Args, DemoResult, REAL_TIKTOK_PORT, TikTokChoice, event_source};

/// How long the demo waits for things, and how often it looks.
pub struct Pace {
    pub login: Duration,
    pub upload: Duration,
    pub follow_up: Duration,
    pub check_every: Duration,
}

impl Pace {
    /// Minutes for a person and real TikTok; seconds for the simulator.
    pub fn for_tiktok(choice: TikTokChoice) -> Self {
        match choice {
            TikTokChoice::Real => Self {
                login: Duration::from_secs(600),
                upload: Duration::from_secs(1800),
                follow_up: Duration::from_secs(1200),
                check_every: Duration::from_secs(15),
            },
            TikTokChoice::Sim => Self {
                login: Duration::from_secs(30),
                upload: Duration::from_secs(180),
                follow_up: Duration::from_secs(60),
                check_every: Duration::from_millis(500),
            },
        }
    }
}

/// Everything after the deployment exists. What needs undoing goes into
/// `left` as soon as it exists: the caller cleans up after this ends or is
/// dropped (on a signal).
pub async fn run(
    args: &Args,
    stack: &Stack,
    bin_dir: &Path,
    pace: &Pace,
    endpoint: &Option<String>,
    left: &mut Leftovers,
) -> DemoResult<()> {
    let real_tiktok = args.tiktok == TikTokChoice::Real;
    let port = args
        .port
        .unwrap_or(if real_tiktok { REAL_TIKTOK_PORT } else { 0 });
    let (listener, local_url) = Gateway::bind(port).await?;
    let public_url = args
        .public_url
        .clone()
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| local_url.clone());
    let redirect_uri = format!("{public_url}/auth/callback");

    let tiktok::TikTokSide {
        sim_base,
        target: tiktok,
        media,
    } = tiktok::start(args, stack, endpoint, &redirect_uri, left).await?;

    println!("== the functions (real binaries under cargo-lambda's Lambda Runtime API emulator)");
    let functions =
        Arc::new(Functions::start(bin_dir, stack, &tiktok, &redirect_uri, &media).await?);
    let page_route = if functions.page.is_some() {
        println!(
            "    oauth-callback, s3-upload, status-checker, tiktok-webhook, events, creator-page: started"
        );
        ", GET /creator/{token}"
    } else {
        println!("    oauth-callback, s3-upload, status-checker, tiktok-webhook: started");
        ""
    };
    let gateway = Gateway::serve(listener, public_url.clone(), functions.clone());
    println!(
        "    HTTP API          {} (GET /auth/start, GET /auth/callback, POST /webhooks/tiktok{page_route})",
        gateway.base_url
    );
    // Before any job changes: the bus's rule must be there for the first event.
    let mut events_out = events_out::EventsOut::watch(stack).await?;
    let sim_control = sim_base.map(|base| SimControl {
        base,
        http: reqwest::Client::new(),
    });

    let result = async {
        let cli = Cli::new(bin_dir, stack, &tiktok);
        connect::connect(&cli, stack, sim_control.as_ref(), &public_url, pace).await?;
        let dropped = drop_media::drop_media(args, stack, &media, &mut left.written).await?;
        println!("== S3 -> SQS -> s3-upload (as Lambda's event source mapping delivers)");
        let delivered = event_source::drain(stack, &functions, pace.upload).await?;
        println!(
            "    {} message(s) delivered, {} retried",
            delivered.messages, delivered.retried
        );
        let jobs =
            follow_up::follow_up(&cli, stack, &functions, pace, dropped.expected_jobs).await?;
        if let Some(sim) = &sim_control {
            creator_posts::creator_posts_the_video(sim, &cli, &jobs, &public_url, pace).await?;
            check::check_what_tiktok_holds(sim, stack, &jobs, &dropped).await?;
        } else {
            println!("== webhooks: TikTok sends them to your app's callback URL; with --public-url, set it to {public_url}/webhooks/tiktok");
        }
        println!("== the jobs (tiktok-drafts jobs --account {})", stack.alias);
        println!("{}", cli.run(&["jobs", "--account", &stack.alias]).await?);
        if let (Some(events_out), Some(function)) = (&mut events_out, &functions.events) {
            events_out.publish(function).await?;
        }
        if functions.page.is_some() {
            creator_page::open_the_creator_page(&cli, stack, &public_url, &jobs).await?;
        }
        check::dead_letters(stack).await?;
        println!("== done: every upload is in the creator's TikTok drafts");
        Ok::<(), String>(())
    }
    .await;
    gateway.stop();
    if result.is_err() {
        functions.print_logs().await;
    }
    result
}
