//! The main job end to end: `make demo`.
//!
//! On the local stack (AWS on moto, TikTok simulated) it needs no account;
//! with `--aws real --tiktok real` the same flow runs against your AWS
//! account and your TikTok app (see the README, "The demo on real AWS and
//! TikTok").
//!
//! 1. makes the deployment: bucket (versioned, `uploads/` notifying the
//!    upload queue), queue and dead-letter queue, table, app secret and
//!    invitation key;
//! 2. starts the four functions, each its real binary under cargo-lambda's
//!    Lambda Runtime API emulator, and a local HTTP API in front of the
//!    login and webhook functions (the template's routes);
//! 3. connects an account: `tiktok-drafts invite` makes the link, which a
//!    browser follows through `/auth/start`, TikTok's authorize page and
//!    `/auth/callback` (state, PKCE, code exchange, tokens into Secrets
//!    Manager);
//! 4. drops a video and a PNG slideshow into `uploads/`; S3 notifies the
//!    queue, and the queue's batches go to the upload function as Lambda's
//!    event source mapping hands them over (failed items stay queued);
//! 5. runs the status checker on its schedule until TikTok reports
//!    `SEND_TO_USER_INBOX` for every job;
//! 6. on the simulator, the creator posts the video draft and TikTok's
//!    signed webhooks reach the webhook function through the HTTP API;
//! 7. checks what TikTok holds (bytes, JPEGs), lists the jobs with the CLI,
//!    and takes everything down again.

mod event_source;
mod events;
mod functions;
mod gateway;
mod media;
mod stack;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use clap::{Parser, ValueEnum};
use shared::accounts::Accounts;
use shared::aws::describe_sdk_error;
use shared::tokens::TokenManager;

use crate::events::{CreatedObject, s3_notification, scheduled_event};
use crate::functions::{Functions, MediaAccess, TikTokTarget, invoke};
use crate::gateway::Gateway;
use crate::stack::{Made, Stack, StackSettings};

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
    /// Images for the slideshow, in order (by default three generated PNGs).
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

/// How a run that did not succeed ended.
enum Ended {
    Failed(String),
    Interrupted(Interrupt),
}

impl From<String> for Ended {
    fn from(message: String) -> Self {
        Self::Failed(message)
    }
}

/// A signal that stops the demo.
#[derive(Clone, Copy)]
struct Interrupt {
    name: &'static str,
    /// 128 + the signal's number, as a shell reports a process it ended.
    exit_code: u8,
}

/// SIGINT (Ctrl-C) and SIGTERM, listened for from the start: a stream
/// made once keeps a signal that arrives between two waits on it, where a
/// fresh `tokio::signal::ctrl_c()` per wait would miss it (and, once any
/// handler is installed, the default of dying is gone too).
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> DemoResult<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| format!("listen for {name}: {e}"))
        };
        Ok(Self {
            interrupt: listen(SignalKind::interrupt(), "SIGINT")?,
            terminate: listen(SignalKind::terminate(), "SIGTERM")?,
        })
    }

    async fn recv(&mut self) -> Interrupt {
        tokio::select! {
            Some(()) = self.interrupt.recv() => Interrupt { name: "SIGINT", exit_code: 130 },
            Some(()) = self.terminate.recv() => Interrupt { name: "SIGTERM", exit_code: 143 },
            // Both streams closed: no signal can come any more.
            else => std::future::pending().await,
        }
    }
}

/// What the run leaves for the cleanup, filled in as it goes so that an
/// error or a signal part-way still finds it.
#[derive(Default)]
struct Leftovers {
    /// The simulator, shut down (its temporary folder removed) at the end.
    sim: Option<tiktok_sim::SimHandle>,
    /// Where TikTok is, once known: the account connected there is
    /// disconnected at the end.
    tiktok: Option<TikTokTarget>,
    /// The keys the demo put into S3.
    written: Vec<String>,
}

/// How long the demo waits for things, and how often it looks.
struct Pace {
    login: Duration,
    upload: Duration,
    follow_up: Duration,
    check_every: Duration,
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
    let pace = if real_tiktok {
        Pace {
            login: Duration::from_secs(600),
            upload: Duration::from_secs(1800),
            follow_up: Duration::from_secs(1200),
            check_every: Duration::from_secs(15),
        }
    } else {
        Pace {
            login: Duration::from_secs(30),
            upload: Duration::from_secs(180),
            follow_up: Duration::from_secs(60),
            check_every: Duration::from_millis(500),
        }
    };
    let bin_dir = functions::binary_dir()?;
    for name in [
        "oauth-callback",
        "s3-upload",
        "status-checker",
        "tiktok-webhook",
        "tiktok-drafts",
    ] {
        if !bin_dir.join(name).is_file() {
            return Err(Ended::Failed(format!(
                "{} is not built: `make demo` builds every binary first",
                bin_dir.join(name).display()
            )));
        }
    }

    println!("== the deployment");
    let config = shared::aws::load_config().await;
    println!(
        "    AWS               {}",
        endpoint
            .as_deref()
            .map(|e| format!("{e} (moto)"))
            .unwrap_or_else(|| format!(
                "your account, region {}",
                config.region().map(|r| r.as_ref()).unwrap_or("?")
            ))
    );
    let settings = StackSettings {
        bucket: args.bucket.clone(),
        // A bucket of yours may notify a deployed stack of uploads/ too, and
        // on real AWS or TikTok a run should not meet an account an earlier
        // run left: there the alias is this run's own.
        unique_alias: args.bucket.is_some() || args.aws == AwsChoice::Real || real_tiktok,
        client_key: client_key.clone(),
        client_secret: client_secret.clone(),
    };
    let mut made = Made::new(&config);
    // A signal here asks Stack::create to stop after the step under way
    // (see there); a second one stops at once.
    let (stop, stop_asked) = tokio::sync::watch::channel(false);
    let mut interrupted = None;
    let created = {
        let create = Stack::create(&mut made, settings, &stop_asked);
        tokio::pin!(create);
        loop {
            tokio::select! {
                biased;
                signal = signals.recv() => {
                    if interrupted.is_some() {
                        eprintln!(
                            "local-demo: {} again: stopped; what is named tiktok-drafts-demo-* may be left in AWS",
                            signal.name
                        );
                        return Err(Ended::Interrupted(signal));
                    }
                    eprintln!(
                        "local-demo: {}: stopping after the step under way, then deleting what was made (send it again to stop at once)",
                        signal.name
                    );
                    interrupted = Some(signal);
                    stop.send_replace(true);
                }
                created = &mut create => break created,
            }
        }
    };
    let created = match interrupted {
        Some(signal) => Err(Ended::Interrupted(signal)),
        None => created.map_err(Ended::Failed),
    };
    let stack = match created {
        Ok(stack) => stack,
        Err(ended) => {
            // What was made before the failure or the signal (the app
            // secret among it) goes, --keep or not: a half-made deployment
            // is of no use.
            if let Err(d) = made.delete(&[]).await {
                eprintln!("local-demo: taking the half-made deployment down: {d}");
            }
            return Err(ended);
        }
    };
    println!(
        "    bucket            {}{}",
        stack.bucket,
        if stack.owns_bucket {
            " (versioned; uploads/ notifies the upload queue)"
        } else {
            " (yours: its notifications are left alone)"
        }
    );
    println!(
        "    upload queue      {} (dead-letter queue after 5 deliveries)",
        stack.queue_url
    );
    println!("    table             {}", stack.table);
    println!(
        "    secrets           {}/app, {}/invite-key",
        stack.secrets_prefix, stack.secrets_prefix
    );

    let mut left = Leftovers::default();
    let result = tokio::select! {
        biased;
        signal = signals.recv() => Err(Ended::Interrupted(signal)),
        result = with_stack(&args, &stack, &bin_dir, &pace, &endpoint, &mut left) => {
            result.map_err(Ended::Failed)
        }
    };
    // Ctrl-C in a terminal reaches the whole process group, so the function
    // processes die of it too and the run may fail of that a moment before
    // the signal is seen here: an error right after a signal is the signal.
    let result = match result {
        Err(Ended::Failed(e)) => {
            match tokio::time::timeout(Duration::from_millis(300), signals.recv()).await {
                Ok(signal) => Err(Ended::Interrupted(signal)),
                Err(_) => Err(Ended::Failed(e)),
            }
        }
        other => other,
    };
    if let Err(Ended::Interrupted(signal)) = &result {
        eprintln!(
            "local-demo: {}: cleaning up (send it again to stop at once)",
            signal.name
        );
    }
    let failures = tokio::select! {
        biased;
        signal = signals.recv() => {
            eprintln!(
                "local-demo: {} again: stopped cleaning up; what is named {}* may be left in AWS, and the account connected",
                signal.name, stack.name
            );
            return Err(Ended::Interrupted(signal));
        }
        failures = clean_up(&args, &stack, &made, &mut left) => failures,
    };
    match result {
        Ok(()) if failures.is_empty() => Ok(()),
        Ok(()) => Err(Ended::Failed(failures.join("; "))),
        Err(ended) => {
            for failure in failures {
                eprintln!("local-demo: {failure}");
            }
            Err(ended)
        }
    }
}

/// The end of every run, whether it succeeded, failed or was interrupted:
/// disconnects the account (unless --keep), stops the simulator, and takes
/// the deployment down (unless --keep). Returns what went wrong, having
/// tried each.
async fn clean_up(args: &Args, stack: &Stack, made: &Made, left: &mut Leftovers) -> Vec<String> {
    println!("== clean up");
    let mut failures = Vec::new();
    // The revoke needs the account's token, so it comes before the
    // secrets go, and the simulator, so before it stops.
    if !args.keep
        && let Some(tiktok) = &left.tiktok
        && let Err(e) = disconnect(stack, tiktok).await
    {
        failures.push(format!("disconnecting the account: {e}"));
    }
    if let Some(sim) = left.sim.take() {
        sim.shutdown().await;
    }
    if args.keep {
        println!("== kept: everything above stays in AWS (--keep)");
    } else {
        match made.delete(&left.written).await {
            Ok(()) => println!("== taken down: bucket, queues, table and secrets deleted"),
            Err(e) => failures.push(format!("taking the deployment down: {e}")),
        }
    }
    failures
}

/// Everything after the deployment exists. What needs undoing goes into
/// `left` as soon as it exists: the caller cleans up after this ends or is
/// dropped (on a signal).
async fn with_stack(
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

    let (sim_base, tiktok, media) = if real_tiktok {
        let media = match (&args.media_base_url, &args.bucket) {
            (Some(base), Some(_)) => MediaAccess::BaseUrl(base.clone()),
            _ => MediaAccess::Unavailable,
        };
        let endpoints = shared::tiktok::Endpoints::from_lookup(|_| None)
            .map_err(|e| format!("TikTok's endpoints: {e}"))?;
        (
            None,
            TikTokTarget {
                api_base_url: endpoints.api_base_url.to_string(),
                auth_url: endpoints.auth_url.to_string(),
            },
            media,
        )
    } else {
        let endpoint = endpoint
            .as_deref()
            .unwrap_or_default()
            .trim_end_matches('/');
        let sim = tiktok_sim::start(tiktok_sim::SimConfig {
            settings: tiktok_sim::Settings {
                client_key: SIM_CLIENT_KEY.into(),
                client_secret: SIM_CLIENT_SECRET.into(),
                redirect_uris: vec![redirect_uri.clone()],
                pkce: tiktok_sim::PkceMode::Required,
                // The bucket's media/ "verified" with the simulated app; on
                // loopback it is plain http.
                verified_url_prefixes: vec![format!("{endpoint}/{}/media/", stack.bucket)],
                allow_http_pull: true,
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .map_err(|e| format!("start the TikTok simulator: {e}"))?;
        let base = sim.base_url();
        left.sim = Some(sim);
        let tiktok = TikTokTarget {
            api_base_url: base.clone(),
            auth_url: format!("{base}/v2/auth/authorize/"),
        };
        (Some(base), tiktok, MediaAccess::Presigned)
    };
    match &sim_base {
        Some(base) => println!("    TikTok            {base} (simulator)"),
        None => println!("    TikTok            {} (your app)", tiktok.api_base_url),
    }
    left.tiktok = Some(tiktok.clone());

    println!("== the functions (real binaries under cargo-lambda's Lambda Runtime API emulator)");
    let functions =
        Arc::new(Functions::start(bin_dir, stack, &tiktok, &redirect_uri, &media).await?);
    println!("    oauth-callback, s3-upload, status-checker, tiktok-webhook: started");
    let gateway = Gateway::serve(listener, public_url.clone(), functions.clone());
    println!(
        "    HTTP API          {} (GET /auth/start, GET /auth/callback, POST /webhooks/tiktok)",
        gateway.base_url
    );
    let sim_control = sim_base.map(|base| SimControl {
        base,
        http: reqwest::Client::new(),
    });

    let result = async {
        let cli = Cli::new(bin_dir, stack, &tiktok);
        connect(&cli, stack, sim_control.as_ref(), &public_url, pace).await?;
        let dropped = drop_media(args, stack, &media, &mut left.written).await?;
        println!("== S3 -> SQS -> s3-upload (as Lambda's event source mapping delivers)");
        let delivered = event_source::drain(stack, &functions, pace.upload).await?;
        println!(
            "    {} message(s) delivered, {} retried",
            delivered.messages, delivered.retried
        );
        let jobs = follow_up(&cli, stack, &functions, pace, dropped.expected_jobs).await?;
        if let Some(sim) = &sim_control {
            creator_posts_the_video(sim, &cli, &jobs, &public_url, pace).await?;
            check_what_tiktok_holds(sim, stack, &jobs, &dropped).await?;
        } else {
            println!("== webhooks: TikTok sends them to your app's callback URL; with --public-url, set it to {public_url}/webhooks/tiktok");
        }
        println!("== the jobs (tiktok-drafts jobs --account {})", stack.alias);
        println!("{}", cli.run(&["jobs", "--account", &stack.alias]).await?);
        dead_letters(stack).await?;
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

/// The operator's CLI, pointed at the demo's deployment.
struct Cli {
    binary: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Cli {
    fn new(bin_dir: &Path, stack: &Stack, tiktok: &TikTokTarget) -> Self {
        Self {
            binary: bin_dir.join("tiktok-drafts"),
            env: vec![
                ("TABLE_NAME", stack.table.clone()),
                ("SECRETS_PREFIX", stack.secrets_prefix.clone()),
                ("TIKTOK_APP_SECRET_ID", stack.app_secret_id.clone()),
                ("INVITE_KEY_SECRET_ID", stack.invite_key_secret_id.clone()),
                ("UPLOAD_BUCKET", stack.bucket.clone()),
                ("TIKTOK_API_BASE_URL", tiktok.api_base_url.clone()),
                ("TIKTOK_AUTH_URL", tiktok.auth_url.clone()),
            ],
        }
    }

    /// Runs `tiktok-drafts <args>` and returns what it printed.
    async fn run(&self, args: &[&str]) -> DemoResult<String> {
        let output = tokio::process::Command::new(&self.binary)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            // A run dropped on a signal leaves no CLI behind.
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| format!("run tiktok-drafts: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "tiktok-drafts {} failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_owned())
    }

    async fn json(&self, args: &[&str]) -> DemoResult<serde_json::Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.run(&all).await?;
        serde_json::from_str(&text).map_err(|e| format!("tiktok-drafts {}: {e}", args.join(" ")))
    }
}

/// The simulator's control API: what the creator does in the TikTok app.
struct SimControl {
    base: String,
    http: reqwest::Client,
}

impl SimControl {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> DemoResult<serde_json::Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let res = request
            .send()
            .await
            .map_err(|e| format!("simulator {path}: {}", e.without_url()))?;
        let status = res.status();
        let value: serde_json::Value = res
            .json()
            .await
            .map_err(|e| format!("simulator {path}: {}", e.without_url()))?;
        if !status.is_success() {
            return Err(format!("simulator {path} answered {status}: {value}"));
        }
        Ok(value)
    }
}

async fn connect(
    cli: &Cli,
    stack: &Stack,
    sim: Option<&SimControl>,
    public_url: &str,
    pace: &Pace,
) -> DemoResult<()> {
    println!("== connect an account (invitation, TikTok Login v2, PKCE S256)");
    if let Some(sim) = sim {
        sim.call(
            reqwest::Method::POST,
            "/_sim/users",
            Some(serde_json::json!({
                "open_id": SIM_OPEN_ID,
                "username": "demo.creator",
                "display_name": "Demo Creator"
            })),
        )
        .await?;
    }
    let login_url = format!("{public_url}/auth/start");
    let invite = cli
        .json(&[
            "invite",
            "--account",
            &stack.alias,
            "--ttl",
            "1h",
            "--login-url",
            &login_url,
        ])
        .await?;
    let link = invite["link"]
        .as_str()
        .ok_or_else(|| format!("tiktok-drafts invite printed no link: {invite}"))?
        .to_owned();
    println!(
        "    tiktok-drafts invite --account {}: a signed link, single use, until {}",
        stack.alias,
        invite["expires_at"].as_str().unwrap_or("?")
    );
    if sim.is_some() {
        // The creator's browser: follows each redirect by hand, so that
        // every hop shows.
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("browser: {}", e.without_url()))?;
        let mut url = link;
        // The login's own cookies (the start binds the login to this
        // browser), sent back to the login only.
        let mut cookies: Vec<String> = Vec::new();
        for _ in 0..4 {
            let mut request = browser.get(&url);
            if url.starts_with(public_url) && !cookies.is_empty() {
                request = request.header("cookie", cookies.join("; "));
            }
            let res = request
                .send()
                .await
                // reqwest's errors name the full URL, here with the
                // invitation token or the OAuth code and state in it.
                .map_err(|e| format!("GET {}: {}", without_query(&url), e.without_url()))?;
            for set in res.headers().get_all("set-cookie") {
                if let Some(pair) = set.to_str().ok().and_then(|v| v.split(';').next()) {
                    cookies.push(pair.trim().to_owned());
                }
            }
            let status = res.status();
            if status.is_redirection() {
                let next = res
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| format!("{} redirected nowhere", without_query(&url)))?
                    .to_owned();
                if next.contains("/v2/auth/authorize/") {
                    println!(
                        "    browser           to TikTok's authorize page (the creator approves)"
                    );
                }
                url = next;
                continue;
            }
            if status != reqwest::StatusCode::OK {
                let page = res.text().await.unwrap_or_default();
                return Err(format!(
                    "the login ended at {} with {status}: {}",
                    without_query(&url),
                    page.chars().take(400).collect::<String>()
                ));
            }
            break;
        }
    } else {
        println!(
            "    Open this link in a browser and log in as the creator (waiting up to {} min):",
            pace.login.as_secs() / 60
        );
        println!("    {link}");
    }
    let accounts = Accounts::new(stack.aws.dynamodb.clone(), &stack.table);
    let until = Instant::now() + pace.login;
    let account = loop {
        if let Some(account) = accounts
            .get_by_alias(&stack.alias)
            .await
            .map_err(|e| format!("read the account: {e}"))?
        {
            break account;
        }
        if Instant::now() > until {
            return Err(format!(
                "no account was connected as {:?} in time",
                stack.alias
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "    connected         {} (open_id {}, scopes {}, state {})",
        account.display_name.as_deref().unwrap_or("?"),
        account.open_id,
        account.scopes.join(","),
        account.state
    );
    println!(
        "    tokens            in Secrets Manager as {}/accounts/{}",
        stack.secrets_prefix, account.open_id
    );
    Ok(())
}

fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// What the demo put under `uploads/`.
struct Dropped {
    video_key: String,
    video_sha256: String,
    /// How many jobs the uploads make (the video, and the slideshow when
    /// photos can reach TikTok).
    expected_jobs: usize,
}

async fn drop_media(
    args: &Args,
    stack: &Stack,
    media_access: &MediaAccess,
    written: &mut Vec<String>,
) -> DemoResult<Dropped> {
    println!("== drop media into S3");
    let video = media::video(args.video.as_deref())?;
    let video_key = format!("uploads/{}/{}", stack.alias, video.name);
    let caption = "Holiday clip 🌴 from tiktok-drafts #demo";
    put(
        stack,
        &video_key,
        video.bytes.clone(),
        &[("caption", caption)],
        written,
    )
    .await?;
    println!(
        "    s3://{}/{video_key} ({}, caption in its metadata)",
        stack.bucket,
        size(video.bytes.len())
    );
    let video_sha256 = tiktok_drafts_tests::sha256_hex(&video.bytes);
    drop(video);

    if matches!(media_access, MediaAccess::Unavailable) {
        println!(
            "    slideshow         skipped: photo drafts are pulled by TikTok from a verified URL prefix; pass --bucket and --media-base-url"
        );
        return Ok(Dropped {
            video_key,
            video_sha256,
            expected_jobs: 1,
        });
    }
    let images = media::images(&args.images)?;
    let show = format!("uploads/{}/trip", stack.alias);
    let mut names = Vec::new();
    for image in images {
        let key = format!("{show}/{}", image.name);
        put(stack, &key, image.bytes.clone(), &[], written).await?;
        println!(
            "    s3://{}/{key} ({}, {})",
            stack.bucket,
            image.description,
            size(image.bytes.len())
        );
        names.push(image.name);
    }
    // The manifest goes last: it starts the job (a missing image would be
    // waited for).
    let manifest = serde_json::json!({
        "caption": "Summer trip 🌊 three photos, converted to JPEG on the way",
        "title": "Summer trip",
        "images": names,
        "cover_index": 0,
    });
    let manifest_key = format!("{show}/slideshow.json");
    put(
        stack,
        &manifest_key,
        manifest.to_string().into_bytes(),
        &[],
        written,
    )
    .await?;
    println!(
        "    s3://{}/{manifest_key} (the manifest: caption, title, order, cover)",
        stack.bucket
    );
    Ok(Dropped {
        video_key,
        video_sha256,
        expected_jobs: 2,
    })
}

fn size(bytes: usize) -> String {
    if bytes >= 1_000_000 {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else {
        format!("{:.1} kB", bytes as f64 / 1e3)
    }
}

async fn put(
    stack: &Stack,
    key: &str,
    bytes: Vec<u8>,
    metadata: &[(&str, &str)],
    written: &mut Vec<String>,
) -> DemoResult<()> {
    let size = bytes.len() as u64;
    let mut request = stack
        .aws
        .s3
        .put_object()
        .bucket(&stack.bucket)
        .key(key)
        .body(ByteStream::from(bytes));
    for (name, value) in metadata {
        request = request.metadata(*name, *value);
    }
    let put = request
        .send()
        .await
        .map_err(|e| format!("put {key}: {}", describe_sdk_error(&e)))?;
    written.push(key.to_owned());
    if !stack.owns_bucket {
        // The bucket is not the demo's to configure: send the message S3
        // would have sent.
        let body = s3_notification(
            &stack.region,
            &CreatedObject {
                bucket: &stack.bucket,
                key,
                size,
                etag: put.e_tag().unwrap_or_default(),
                version_id: put.version_id(),
            },
            chrono::Utc::now(),
        );
        stack
            .sqs
            .send_message()
            .queue_url(&stack.queue_url)
            .message_body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("notify the queue of {key}: {}", describe_sdk_error(&e)))?;
    }
    Ok(())
}

/// The first 12 characters of a job id, as the CLI shows it. The id comes
/// from the CLI's output, so a shorter one (or one not in ASCII) must not
/// panic.
fn short_id(id: &str) -> &str {
    id.char_indices().nth(12).map_or(id, |(end, _)| &id[..end])
}

/// One job as the CLI lists it.
#[derive(Clone)]
struct JobView {
    id: String,
    kind: String,
    status: String,
    key: String,
    publish_id: Option<String>,
    tiktok_status: Option<String>,
}

impl JobView {
    fn from_json(job: &serde_json::Value) -> Self {
        let text = |name: &str| job[name].as_str().map(str::to_owned);
        Self {
            id: text("job_id").unwrap_or_default(),
            kind: text("kind").unwrap_or_default(),
            status: text("status").unwrap_or_default(),
            key: text("key").unwrap_or_default(),
            publish_id: text("publish_id"),
            tiktok_status: text("tiktok_status"),
        }
    }
}

async fn list_jobs(cli: &Cli, alias: &str) -> DemoResult<Vec<JobView>> {
    let listed = cli.json(&["jobs", "--account", alias]).await?;
    Ok(listed
        .as_array()
        .into_iter()
        .flatten()
        .map(JobView::from_json)
        .collect())
}

/// Runs the status checker as its schedule would until every job is in
/// the creator's inbox, printing each job's moves. A job that fails or
/// gets stuck ends the demo with its reason.
async fn follow_up(
    cli: &Cli,
    stack: &Stack,
    functions: &Functions,
    pace: &Pace,
    expected_jobs: usize,
) -> DemoResult<Vec<JobView>> {
    println!(
        "== follow up: status-checker on its schedule (EventBridge, every 5 minutes; here back to back)"
    );
    let rule = format!(
        "arn:aws:events:{}:123456789012:rule/{}-check",
        stack.region, stack.name
    );
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
            &scheduled_event(&rule, &stack.region, chrono::Utc::now()),
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

/// The creator posts the video draft in the TikTok app; TikTok's signed
/// webhooks reach the webhook function through the HTTP API.
async fn creator_posts_the_video(
    sim: &SimControl,
    cli: &Cli,
    jobs: &[JobView],
    public_url: &str,
    pace: &Pace,
) -> DemoResult<()> {
    println!("== the creator posts the video draft; TikTok's webhooks -> tiktok-webhook");
    let video = jobs
        .iter()
        .find(|j| j.kind == "video")
        .ok_or("no video job")?;
    let publish_id = video
        .publish_id
        .clone()
        .ok_or("the video job has no publish_id")?;
    let mut settings = sim
        .call(reqwest::Method::GET, "/_sim/settings", None)
        .await?;
    settings["webhook_url"] = serde_json::Value::String(format!("{public_url}/webhooks/tiktok"));
    sim.call(reqwest::Method::PUT, "/_sim/settings", Some(settings))
        .await?;
    sim.call(
        reqwest::Method::POST,
        &format!("/_sim/publishes/{publish_id}/status"),
        Some(serde_json::json!({"status": "PUBLISH_COMPLETE"})),
    )
    .await?;
    let until = Instant::now() + pace.follow_up;
    loop {
        let job = cli.json(&["status", &video.id]).await?;
        if job["job"]["status"] == "published"
            && !job["job"]["post_ids"].as_array().is_none_or(Vec::is_empty)
        {
            println!(
                "    job {} video     published  post id {}",
                short_id(&video.id),
                job["job"]["post_ids"][0].as_str().unwrap_or("?")
            );
            return Ok(());
        }
        if Instant::now() > until {
            let deliveries = sim
                .call(reqwest::Method::GET, "/_sim/webhooks", None)
                .await?;
            return Err(format!(
                "the webhooks did not mark the video published: {deliveries}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What TikTok (the simulator) holds: the video's exact bytes; the
/// photos as JPEGs that fit 1080 × 1920.
async fn check_what_tiktok_holds(
    sim: &SimControl,
    stack: &Stack,
    jobs: &[JobView],
    dropped: &Dropped,
) -> DemoResult<()> {
    println!("== what TikTok holds");
    for job in jobs {
        let publish_id = job
            .publish_id
            .as_deref()
            .ok_or("a job without a publish_id")?;
        let record = sim
            .call(
                reqwest::Method::GET,
                &format!("/_sim/publishes/{publish_id}"),
                None,
            )
            .await?;
        if job.key == dropped.video_key {
            if record["sha256"].as_str() != Some(dropped.video_sha256.as_str()) {
                return Err(format!(
                    "TikTok holds other bytes than s3://{}/{}: {} != {}",
                    stack.bucket, job.key, record["sha256"], dropped.video_sha256
                ));
            }
            println!(
                "    video             {} chunk(s); SHA-256 equals the S3 object's",
                record["total_chunk_count"]
            );
        } else {
            let images = record["images"].as_array().cloned().unwrap_or_default();
            for image in &images {
                let (w, h) = (
                    image["width"].as_u64().unwrap_or(0),
                    image["height"].as_u64().unwrap_or(0),
                );
                if image["format"] != "jpeg" || w > 1080 || h > 1920 {
                    return Err(format!("TikTok pulled a photo it would refuse: {image}"));
                }
            }
            let sizes: Vec<String> = images
                .iter()
                .map(|i| format!("{}x{}", i["width"], i["height"]))
                .collect();
            println!(
                "    photos            {} JPEG(s) pulled: {}",
                images.len(),
                sizes.join(", ")
            );
        }
    }
    Ok(())
}

/// Nothing ended in the dead-letter queue.
async fn dead_letters(stack: &Stack) -> DemoResult<()> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let attributes = stack
        .sqs
        .get_queue_attributes()
        .queue_url(&stack.dead_letter_queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(|e| format!("read the dead-letter queue: {}", describe_sdk_error(&e)))?;
    let count = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
        .cloned()
        .unwrap_or_default();
    if count != "0" {
        return Err(format!("{count} message(s) ended in the dead-letter queue"));
    }
    println!("    dead-letter queue empty");
    Ok(())
}

/// Revokes the account's authorization before its secret is deleted, so
/// that nothing is left connected to the demo.
async fn disconnect(stack: &Stack, tiktok: &TikTokTarget) -> DemoResult<()> {
    let accounts = Accounts::new(stack.aws.dynamodb.clone(), &stack.table);
    let Some(account) = accounts
        .get_by_alias(&stack.alias)
        .await
        .map_err(|e| format!("read the account: {e}"))?
    else {
        return Ok(());
    };
    let client = shared::app_secret::tiktok_client(
        &stack.aws.secrets,
        &stack.app_secret_id,
        shared::tiktok::Endpoints::from_lookup(|name| match name {
            "TIKTOK_API_BASE_URL" => Some(tiktok.api_base_url.clone()),
            "TIKTOK_AUTH_URL" => Some(tiktok.auth_url.clone()),
            _ => None,
        })
        .map_err(|e| format!("TikTok's endpoints: {e}"))?,
    )
    .await
    .map_err(|e| format!("the TikTok client: {e}"))?;
    let tokens = TokenManager::for_deployment(
        &stack.aws,
        client.clone(),
        &stack.secrets_prefix,
        &stack.table,
    );
    let token = tokens
        .get_fresh_token(&account.open_id)
        .await
        .map_err(|e| format!("the account's token: {e}"))?;
    client
        .revoke(&token.access_token)
        .await
        .map_err(|e| format!("revoke the authorization: {e}"))?;
    println!("    authorization     revoked (the demo's account is disconnected)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::short_id;

    #[test]
    fn short_ids_never_split_or_overrun() {
        assert_eq!(short_id("7f72c2ae43c2aa11"), "7f72c2ae43c2");
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(short_id(""), "");
        assert_eq!(short_id("ééééééééééééé"), "éééééééééééé");
    }
}
