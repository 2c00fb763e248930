//! `tiktok-drafts`: the operator's command line.
//!
//! It talks to the same AWS resources as the deployed functions, through the
//! same shared crate; `AWS_ENDPOINT_URL` points it at the local stack.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use shared::aws::AwsClients;
use shared::invite::{Invitation, SigningKey};

#[derive(Parser)]
#[command(
    name = "tiktok-drafts",
    version,
    about = "Operate a tiktok-drafts deployment"
)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        /// The deployed login function's start URL.
        #[arg(long, env = "LOGIN_URL")]
        login_url: String,
        /// The secret holding the invitation signing key.
        #[arg(
            long,
            env = "INVITE_KEY_SECRET_ID",
            default_value = "tiktok-drafts/invite-key"
        )]
        key_secret_id: String,
    },
}

async fn run(cli: Cli) -> Result<String, String> {
    match cli.command {
        Command::Invite {
            account,
            ttl,
            rebind,
            login_url,
            key_secret_id,
        } => {
            let mut url = url::Url::parse(&login_url)
                .map_err(|e| format!("--login-url {login_url:?} is not a URL: {e}"))?;
            let invitation = Invitation::new(&account, ttl, rebind).map_err(|e| e.to_string())?;
            let aws = AwsClients::from_env().await;
            let key = SigningKey::load(&aws.secrets, &key_secret_id)
                .await
                .map_err(|e| e.to_string())?;
            url.query_pairs_mut()
                .append_pair("invite", &invitation.sign(&key));
            if cli.json {
                Ok(serde_json::json!({
                    "account": invitation.alias(),
                    "expires_at": invitation.expires_at().to_rfc3339(),
                    "rebind": invitation.rebind(),
                    "link": url.as_str(),
                })
                .to_string())
            } else {
                Ok(format!(
                    "Send this link to the creator of \u{201c}{}\u{201d}; it works once, until {}:\n{}",
                    invitation.alias(),
                    invitation.expires_at().format("%Y-%m-%d %H:%M UTC"),
                    url
                ))
            }
        }
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
    match runtime.block_on(run(cli)) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tiktok-drafts: {e}");
            ExitCode::FAILURE
        }
    }
}
