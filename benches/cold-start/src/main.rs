//! Cold start of each function of template.yaml: its release binary under
//! cargo-lambda's Lambda Runtime API emulator, with the environment the
//! template's stack gives it (made on the local moto, as `make demo` makes
//! it), next to a bare lambda_runtime echo function in the same run.
//!
//! For each binary, `--runs` fresh processes: the time from starting the
//! process to the answer of its first invocation (an empty event: the
//! function's init, then a handler that refuses it at once), and of a
//! second one (warm). Init is the first minus the second. Lambda adds its
//! own sandbox start to both (the same for every function); on a Lambda
//! with 256 MB a function gets a fraction of a core, so its figures there
//! are several times these; the ratios between the rows hold.
//!
//!     benches/cold-start/run.sh            (builds, then runs under infra/with-local-stack.sh)

use std::time::{Duration, Instant};

use tiktok_drafts_tests::lambda::LambdaFunction;
use tiktok_drafts_tests::template_stack::{LocalOverrides, TemplateStack, template_path};
use tiktok_drafts_tests::{SIM_CLIENT_KEY, SIM_CLIENT_SECRET, unique_name, workspace_binary};

/// One binary's runs.
struct Figures {
    name: String,
    size: u64,
    cold: Vec<Duration>,
    warm: Vec<Duration>,
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

async fn measure(name: &str, env: &[(String, String)], runs: usize) -> Result<Figures, String> {
    let binary = workspace_binary(name)?;
    let size = std::fs::metadata(&binary)
        .map_err(|e| format!("{}: {e}", binary.display()))?
        .len();
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let mut figures = Figures {
        name: name.to_owned(),
        size,
        cold: Vec::new(),
        warm: Vec::new(),
    };
    for _ in 0..runs {
        let mut function = LambdaFunction::try_start(&binary, &env).await?;
        // Any answer will do (a function refuses the empty event at once);
        // a process that died on its init fails here.
        function.try_invoke(&serde_json::json!({})).await?;
        figures.cold.push(function.started_at().elapsed());
        let sent = Instant::now();
        function.try_invoke(&serde_json::json!({})).await?;
        figures.warm.push(sent.elapsed());
    }
    Ok(figures)
}

async fn run(runs: usize) -> Result<Vec<Figures>, String> {
    let stack = TemplateStack::create(
        &template_path(),
        &unique_name("cold-start"),
        &[("RedirectUri", "https://drafts.example.com/auth/callback")],
        None,
    )
    .await?;
    let result = async {
        // The app's credentials, as after a deploy (every function reads
        // them in its init).
        let secrets = aws_sdk_secretsmanager::Client::new(&stack.sdk_config().await);
        secrets
            .put_secret_value()
            .secret_id(stack.output("AppSecretArn")?)
            .secret_string(
                serde_json::json!({"client_key": SIM_CLIENT_KEY, "client_secret": SIM_CLIENT_SECRET})
                    .to_string(),
            )
            .send()
            .await
            .map_err(|e| shared::aws::describe_sdk_error(&e))?;
        let mut all = vec![measure("lambda-echo", &[], runs).await?];
        let overrides = LocalOverrides {
            replace: Vec::new(),
            // Never called in an init; not where the code's defaults point.
            add: vec![
                ("TIKTOK_API_BASE_URL", "http://127.0.0.1:9".to_owned()),
                ("TIKTOK_AUTH_URL", "http://127.0.0.1:9/v2/auth/authorize/".to_owned()),
            ],
        };
        for (id, function) in &stack.functions {
            let name = function
                .binary
                .as_deref()
                .ok_or_else(|| format!("{id}: no binary"))?;
            all.push(measure(name, &function.local_env(id, &overrides)?, runs).await?);
        }
        Ok::<_, String>(all)
    }
    .await;
    stack.delete().await?;
    result
}

fn main() -> std::process::ExitCode {
    let runs = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10usize);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cold-start-bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(runs)) {
        Ok(all) => {
            println!(
                "cold start under the Lambda emulator, {runs} fresh processes each (median, min-max; ms)"
            );
            println!(
                "{:<16} {:>10} {:>22} {:>10} {:>10}",
                "binary", "size", "first invocation", "warm", "init"
            );
            let echo_init = median(&all[0].cold).saturating_sub(median(&all[0].warm));
            for f in &all {
                let (cold, warm) = (median(&f.cold), median(&f.warm));
                let init = cold.saturating_sub(warm);
                let range = format!(
                    "{} ({}-{})",
                    ms(cold),
                    ms(*f.cold.iter().min().unwrap_or(&cold)),
                    ms(*f.cold.iter().max().unwrap_or(&cold))
                );
                println!(
                    "{:<16} {:>8.1}MB {:>22} {:>10} {:>10}{}",
                    f.name,
                    f.size as f64 / 1e6,
                    range,
                    ms(warm),
                    ms(init),
                    if f.name == "lambda-echo" {
                        " (baseline)".to_owned()
                    } else {
                        format!(" (+{} over echo)", ms(init.saturating_sub(echo_init)))
                    }
                );
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cold-start-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
