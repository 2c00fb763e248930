//! `tiktok-sim --bind 127.0.0.1:9300 --state-dir DIR [--settings settings.json]`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use tiktok_sim::{Settings, SimConfig};

const USAGE: &str = "usage: tiktok-sim [--bind ADDR:PORT] [--state-dir DIR] [--settings FILE.json]";

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}\n{USAGE}")]
    Usage(String),
    #[error("cannot read settings file {path}: {source}")]
    SettingsRead {
        path: String,
        source: std::io::Error,
    },
    #[error("settings file {path} is not valid: {source}")]
    SettingsParse {
        path: String,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Sim(#[from] tiktok_sim::SimError),
    #[error("cannot listen for signals: {0}")]
    Signal(std::io::Error),
}

fn parse_args() -> Result<SimConfig, CliError> {
    let mut config = SimConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 9300)),
        ..SimConfig::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| CliError::Usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--bind" => {
                let v = value("--bind")?;
                config.bind = v
                    .parse()
                    .map_err(|_| CliError::Usage(format!("--bind {v} is not ADDR:PORT")))?;
            }
            "--state-dir" => config.state_dir = Some(PathBuf::from(value("--state-dir")?)),
            "--settings" => {
                let path = value("--settings")?;
                let text = std::fs::read(&path).map_err(|source| CliError::SettingsRead {
                    path: path.clone(),
                    source,
                })?;
                config.settings = serde_json::from_slice::<Settings>(&text)
                    .map_err(|source| CliError::SettingsParse { path, source })?;
            }
            "-h" | "--help" => {
                return Err(CliError::Usage(
                    "tiktok-sim: a strict TikTok API simulator".to_owned(),
                ));
            }
            other => return Err(CliError::Usage(format!("unknown argument {other}"))),
        }
    }
    Ok(config)
}

async fn wait_for_stop_signal() -> Result<(), CliError> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(CliError::Signal)?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.map_err(CliError::Signal),
        _ = term.recv() => Ok(()),
    }
}

async fn run() -> Result<(), CliError> {
    let config = parse_args()?;
    let handle = tiktok_sim::start(config).await?;
    // Scripts wait for this exact line before they start.
    println!("tiktok-sim listening on {}", handle.base_url());
    let waited = wait_for_stop_signal().await;
    tracing::info!("stop signal received");
    handle.shutdown().await;
    waited
}

#[tokio::main]
async fn main() -> ExitCode {
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours for a terminal only; a log file gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tiktok-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
