//! `tiktok-drafts`: the operator's command line.
//!
//! It talks to the same AWS resources as the deployed functions, through the
//! same shared crate; `AWS_ENDPOINT_URL` points it at the local stack.

use std::process::ExitCode;
use std::time::Duration;

mod accounts;
mod connect;
mod context;
mod disconnect;
mod jobs;
mod link;
mod sending;
mod slideshow;
mod upload;

use clap::{Parser, Subcommand};
use shared::invite::{Invitation, SigningKey};

use crate::context::{CliResult, Deployment, Fail, Output, Settings};

#[derive(Parser)]
#[command(
    name = "tiktok-drafts",
    version,
    about = "Operate a tiktok-drafts deployment",
    after_help = "Settings come from the same environment variables as the functions (TABLE_NAME, TIKTOK_APP_SECRET_ID, SECRETS_PREFIX, TIKTOK_API_BASE_URL, TIKTOK_AUTH_URL, AWS_ENDPOINT_URL, UPLOAD_BUCKET, MEDIA_BASE_URL, ...); flags override them.\n\nExit codes: 0 done, 1 failed (the message is on stderr), 2 bad usage, 3 try again later (the account has 5 pending drafts)."
)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the link to an account's creator page (her uploads and where
    /// they stand), or with --revoke make every earlier link stop working.
    Link(link::LinkArgs),
    /// Make a login link for a creator: signed, expiring and single use.
    Invite {
        /// The account alias the creator's TikTok account will be bound to
        /// (the `<account>` in `uploads/<account>/...`).
        #[arg(long)]
        account: String,
        /// How long the link stays valid (e.g. 30m, 24h, 7d; at most 30d).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Allow this login to take the alias over from another TikTok account.
        #[arg(long)]
        rebind: bool,
        /// Allow this login to move the creator's TikTok account from the
        /// alias it is connected under to this one (without it such a login
        /// is refused; an account never changes alias silently).
        #[arg(long = "move")]
        move_alias: bool,
        /// The deployed login function's start URL (the stack's
        /// LoginStartUrl output).
        #[arg(long, env = "LOGIN_URL")]
        login_url: Option<String>,
        /// The secret holding the invitation signing key.
        #[arg(
            long,
            env = "INVITE_KEY_SECRET_ID",
            default_value = "tiktok-drafts/invite-key"
        )]
        key_secret_id: String,
    },
    /// Connect a TikTok account here, without the deployed login: a loopback
    /// redirect with PKCE (TikTok's desktop flow), or a pasted code.
    Connect(connect::ConnectArgs),
    /// List the connected accounts, their state and token expiry.
    Accounts,
    /// Disconnect an account for good: tell TikTok to end this app's access,
    /// delete its token secret and free its alias.
    Disconnect {
        /// The account alias.
        #[arg(long)]
        account: String,
        /// Go ahead (without it, the command says what it would do).
        #[arg(long)]
        yes: bool,
    },
    /// Send a local video to an account's TikTok drafts (FILE_UPLOAD).
    Upload(upload::UploadArgs),
    /// Convert local images and offer them to TikTok as a photo draft.
    Slideshow(slideshow::SlideshowArgs),
    /// A job and TikTok's current status for it.
    Status {
        /// A job id (64 hex digits) or a TikTok publish_id.
        id: String,
    },
    /// List jobs.
    ///
    /// With --status of an unfinished status (claimed, uploading, processing,
    /// queued, retry_wait, stuck) this queries the index of unfinished work,
    /// whose cost grows with the backlog only. Any other listing scans the
    /// whole table (read capacity for every item in it, accounts and history
    /// included): an operator command, not for scripts that run often.
    Jobs(jobs::JobsArgs),
    /// Refresh access tokens now: every active account, or one.
    Refresh {
        /// Only this account alias.
        #[arg(long)]
        account: Option<String>,
    },
    /// What this CLI is pointed at, and the active accounts' creator info.
    Info,
}

async fn run(cli: Cli) -> CliResult<Output> {
    let json = cli.json;
    match cli.command {
        Command::Invite {
            account,
            ttl,
            rebind,
            move_alias,
            login_url,
            key_secret_id,
        } => {
            let login_url = login_url.filter(|u| !u.trim().is_empty()).ok_or_else(|| {
                Fail::new(
                    "LOGIN_URL is not set: set it to the deployed login's /auth/start URL (the stack's LoginStartUrl output), or pass --login-url",
                )
            })?;
            let mut url = url::Url::parse(&login_url)
                .map_err(|e| Fail::new(format!("--login-url {login_url:?} is not a URL: {e}")))?;
            let invitation = Invitation::new(&account, ttl, rebind)
                .map_err(|e| Fail::new(e.to_string()))?
                .allowing_move(move_alias);
            let deployment = Deployment::connect(cli.settings).await;
            let key = SigningKey::load(&deployment.aws.secrets, &key_secret_id)
                .await
                .map_err(|e| Fail::new(e.to_string()))?;
            url.query_pairs_mut()
                .append_pair("invite", &invitation.sign(&key));
            Ok(Output::new(
                format!(
                    "Send this link to the creator of \u{201c}{}\u{201d}; it works once, until {}:\n{}",
                    invitation.alias(),
                    invitation.expires_at().format("%Y-%m-%d %H:%M UTC"),
                    url
                ),
                serde_json::json!({
                    "account": invitation.alias(),
                    "expires_at": invitation.expires_at().to_rfc3339(),
                    "rebind": invitation.rebind(),
                    "move": invitation.move_alias(),
                    "link": url.as_str(),
                }),
            ))
        }
        Command::Link(args) => link::run(&Deployment::connect(cli.settings).await, args).await,
        Command::Connect(args) => {
            connect::run(&Deployment::connect(cli.settings).await, args, json).await
        }
        Command::Accounts => accounts::run(&Deployment::connect(cli.settings).await).await,
        Command::Disconnect { account, yes } => {
            disconnect::run(&Deployment::connect(cli.settings).await, &account, yes).await
        }
        Command::Upload(args) => {
            upload::run(&Deployment::connect(cli.settings).await, args, json).await
        }
        Command::Slideshow(args) => {
            slideshow::run(&Deployment::connect(cli.settings).await, args, json).await
        }
        Command::Status { id } => jobs::status(&Deployment::connect(cli.settings).await, &id).await,
        Command::Jobs(args) => jobs::list(&Deployment::connect(cli.settings).await, args).await,
        Command::Refresh { account } => {
            accounts::refresh(&Deployment::connect(cli.settings).await, account.as_deref()).await
        }
        Command::Info => accounts::info(&Deployment::connect(cli.settings).await).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tiktok-drafts: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.json;
    match runtime.block_on(run(cli)) {
        Ok(out) => {
            if json {
                println!("{}", out.json);
            } else if !out.text.is_empty() {
                println!("{}", out.text);
            }
            if out.failed {
                ExitCode::from(context::EXIT_FAILED)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("tiktok-drafts: {}", e.message);
            e.exit_code()
        }
    }
}
