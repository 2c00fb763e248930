//! The main job end to end: `make demo`.
//!
//! On the local stack (AWS on moto, TikTok simulated) it needs no account;
//! with `--aws real --tiktok real` the same flow runs against your AWS
//! account and your TikTok app (see the README, "The demo on real AWS and
//! TikTok").
//!
//! 1. makes the deployment: on the local stack template.yaml itself, on
//!    moto's CloudFormation; on real AWS by hand, what the functions use:
//!    bucket (versioned, `uploads/` notifying the upload queue), queue and
//!    dead-letter queue, table, app secret and invitation key (`stack`,
//!    `steps::deployment`);
//! 2. starts the functions, each its real binary under cargo-lambda's
//!    Lambda Runtime API emulator, and a local HTTP API in front of the
//!    login, webhook and creator-page functions (the template's routes) (`steps::tiktok`,
//!    `functions`, `gateway`);
//! 3. connects an account: `tiktok-drafts invite` makes the link, which a
//!    browser follows through `/auth/start`, TikTok's authorize page and
//!    `/auth/callback` (state, PKCE, code exchange, tokens into Secrets
//!    Manager) (`steps::connect`);
//! 4. drops a video and a slideshow (a phone JPEG, an iPhone HEIC, a PNG)
//!    into `uploads/`; S3 notifies the queue, and the queue's batches go to
//!    the upload function as Lambda's event source mapping hands them over
//!    (failed items stay queued) (`steps::drop_media`, `event_source`);
//! 5. runs the status checker on its schedule until TikTok reports
//!    `SEND_TO_USER_INBOX` for every job (`steps::follow_up`);
//! 6. on the simulator, the creator posts the video draft and TikTok's
//!    signed webhooks reach the webhook function through the HTTP API
//!    (`steps::creator_posts`);
//! 7. checks what TikTok holds (bytes, JPEGs), lists the jobs with the CLI
//!    (`steps::check`);
//! 8. on the local stack, runs the events function on the table's stream
//!    as Lambda's DynamoDB Streams event source mapping would, prints the
//!    events that reached the stack's bus, and replays the stream to show
//!    it publishes nothing twice (`steps::events_out`);
//! 9. on the local stack, prints the creator's link (`tiktok-drafts link`)
//!    and opens her page through the HTTP API (`steps::creator_page`);
//! 10. takes everything down again, the account disconnected first
//!     (`lifecycle`, `steps::disconnect`).
//!
//! This file is the program: its options, and [`run`], which checks them
//! and runs the steps ([`steps::run`]) inside the lifecycle (signals and
//! cleanup, [`lifecycle`]).

mod cli;
mod event_source;
mod functions;
mod gateway;
mod lifecycle;
mod media;
mod sim_control;
mod stack;
mod steps;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use crate::lifecycle::{Ended, Leftovers, Signals};
use crate::stack::{Made, StackSettings};
use crate::steps::{Pace, deployment};

type DemoResult<T> = Result<T, String>;

/// The account alias the demo connects and uploads for on the local stack
/// (see `StackSettings::unique_alias` for the others).
const ALIAS: &str = "demo";
const SIM_CLIENT_KEY: &str = "demo-client-key";
const SIM_CLIENT_SECRET: &str = "demo-client-secret";
const SIM_OPEN_ID: &str = "open-demo-creator";
/// The local HTTP API's port with real TikTok. TikTok redirects only to a
/// registered URI, and takes `http://127.0.0.1:<port>/...` only as a
/// Desktop redirect URI (a Web app's must be https: then --public-url with
/// a tunnel), so the port is fixed for the registration to match.
const REAL_TIKTOK_PORT: u16 = 8770;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AwsChoice {
    /// moto on loopback, as `make demo` starts it (AWS_ENDPOINT_URL).
    Local,
    /// Your AWS account, from the usual AWS settings (profile, keys, region).
    Real,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TikTokChoice {
    /// The project's TikTok simulator, started in this process.
    Sim,
    /// TikTok itself, with your app's TIKTOK_CLIENT_KEY and TIKTOK_CLIENT_SECRET.
    Real,
}

#[derive(Parser)]
#[command(
    name = "local-demo",
    about = "tiktok-drafts end to end: S3 uploads into a creator's TikTok drafts"
)]
struct Args {
    /// Where AWS is.
    #[arg(long, value_enum, default_value = "local")]
    aws: AwsChoice,
    /// Where TikTok is.
    #[arg(long, value_enum, default_value = "sim")]
    tiktok: TikTokChoice,
    /// The TikTok app's client key (with --tiktok real).
    #[arg(long, env = "TIKTOK_CLIENT_KEY", hide_env_values = true)]
    client_key: Option<String>,
    /// The TikTok app's client secret (with --tiktok real).
    #[arg(long, env = "TIKTOK_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// A video to send (MP4, MOV or WebM). Needed with --tiktok real, which
    /// checks that it plays; by default 75 MB of generated MP4-like bytes.
    #[arg(long)]
    video: Option<PathBuf>,
    /// Images for the slideshow, in order (by default three generated ones:
    /// a phone JPEG, an iPhone-style HEIC and a PNG).
    #[arg(long, num_args = 1..)]
    images: Vec<PathBuf>,
    /// With --tiktok real: a URL prefix verified with your TikTok app under
    /// which the keys of --bucket are served (photo drafts need one).
    #[arg(long, env = "DEMO_MEDIA_BASE_URL")]
    media_base_url: Option<String>,
    /// An existing bucket to use instead of a new one: its notification
    /// settings are left alone (the demo sends S3's notifications to the
    /// queue itself) and only what the demo wrote is deleted.
    #[arg(long)]
    bucket: Option<String>,
    /// Port of the local HTTP API (login and webhooks); 0 for any. Default:
    /// any with the simulator, 8770 with real TikTok (register
    /// http://127.0.0.1:<port>/auth/callback as a Desktop redirect URI).
    #[arg(long)]
    port: Option<u16>,
    /// The HTTP API's public https URL, when a tunnel forwards to it (then
    /// the redirect URI, registered as a Web one, is <url>/auth/callback, and
    /// TikTok's webhooks can reach <url>/webhooks/tiktok).
    #[arg(long)]
    public_url: Option<String>,
    /// Keep what the demo made in AWS (and the account's authorization).
    #[arg(long)]
    keep: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("local-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Ended::Failed(e)) => {
            eprintln!("local-demo: {e}");
            ExitCode::FAILURE
        }
        Err(Ended::Interrupted(signal)) => {
            eprintln!("local-demo: stopped by {}", signal.name);
            ExitCode::from(signal.exit_code)
        }
    }
}

async fn run(args: Args) -> Result<(), Ended> {
    let mut signals = Signals::install()?;
    let real_tiktok = args.tiktok == TikTokChoice::Real;
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|e| !e.is_empty());
    match (args.aws, &endpoint) {
        (AwsChoice::Local, None) => {
            return Err(Ended::Failed("AWS_ENDPOINT_URL is not set: run the demo with `make demo` (it starts moto), or pass --aws real".into()));
        }
        (AwsChoice::Real, Some(e)) => {
            return Err(Ended::Failed(format!(
                "--aws real, but AWS_ENDPOINT_URL points at {e}: unset it"
            )));
        }
        _ => {}
    }
    let (client_key, client_secret) = if real_tiktok {
        match (args.client_key.clone(), args.client_secret.clone()) {
            (Some(k), Some(s)) => (k, s),
            _ => {
                return Err(Ended::Failed(
                    "--tiktok real needs TIKTOK_CLIENT_KEY and TIKTOK_CLIENT_SECRET".into(),
                ));
            }
        }
    } else {
        (SIM_CLIENT_KEY.to_owned(), SIM_CLIENT_SECRET.to_owned())
    };
    if real_tiktok && args.video.is_none() {
        return Err(Ended::Failed(
            "--tiktok real needs --video: TikTok checks that the video plays".into(),
        ));
    }
    let pace = Pace::for_tiktok(args.tiktok);
    let bin_dir = functions::binary_dir()?;
    for name in [
        "oauth-callback",
        "s3-upload",
        "status-checker",
        "tiktok-webhook",
        "events",
        "creator-page",
        "tiktok-drafts",
    ] {
        if !bin_dir.join(name).is_file() {
            return Err(Ended::Failed(format!(
                "{} is not built: `make demo` builds every binary first",
                bin_dir.join(name).display()
            )));
        }
    }

    let config = shared::aws::load_config().await;
    deployment::announce(&endpoint, &config);
    let settings = StackSettings {
        from_template: args.aws == AwsChoice::Local,
        bucket: args.bucket.clone(),
        // A bucket of yours may notify a deployed stack of uploads/ too, and
        // on real AWS or TikTok a run should not meet an account an earlier
        // run left: there the alias is this run's own.
        unique_alias: args.bucket.is_some() || args.aws == AwsChoice::Real || real_tiktok,
        client_key: client_key.clone(),
        client_secret: client_secret.clone(),
    };
    let mut made = Made::new(&config);
    let stack = lifecycle::create_stack(&mut signals, &mut made, settings).await?;
    deployment::describe(&stack);

    let mut left = Leftovers::default();
    let result = lifecycle::until_signal(
        &mut signals,
        steps::run(&args, &stack, &bin_dir, &pace, &endpoint, &mut left),
    )
    .await;
    lifecycle::finish(&mut signals, result, &args, &stack, &made, &mut left).await
}
