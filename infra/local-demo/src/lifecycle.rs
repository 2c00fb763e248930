//! The demo's lifecycle: the signals it listens for from the start, how a
//! run ends (success, failure, interruption), and the cleanup every run
//! ends with, whatever stopped it.
//!
//! A first SIGINT or SIGTERM stops the run after the step under way and
//! cleans up; a second one stops the cleanup at once.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use crate::functions::TikTokTarget;
use crate::stack::{Made, Stack, StackSettings};
use crate::steps::disconnect::disconnect;
use crate::{Args, DemoResult};

/// How a run that did not succeed ended.
pub enum Ended {
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
pub struct Interrupt {
    pub name: &'static str,
    /// 128 + the signal's number, as a shell reports a process it ended.
    pub exit_code: u8,
}

/// SIGINT (Ctrl-C) and SIGTERM, listened for from the start: a stream
/// made once keeps a signal that arrives between two waits on it, where a
/// fresh `tokio::signal::ctrl_c()` per wait would miss it (and, once any
/// handler is installed, the default of dying is gone too).
pub struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> DemoResult<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| format!("listen for {name}: {e}"))
        };
        Ok(Self {
            interrupt: listen(SignalKind::interrupt(), "SIGINT")?,
            terminate: listen(SignalKind::terminate(), "SIGTERM")?,
        })
    }

    pub async fn recv(&mut self) -> Interrupt {
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
pub struct Leftovers {
    /// The simulator, shut down (its temporary folder removed) at the end.
    pub sim: Option<tiktok_sim::SimHandle>,
    /// Where TikTok is, once known: the account connected there is
    /// disconnected at the end.
    pub tiktok: Option<TikTokTarget>,
    /// The keys the demo put into S3.
    pub written: Vec<String>,
}

/// Makes the deployment while listening for signals: a first one asks
/// `Stack::create` to stop after the step under way (see there), a second
/// one stops at once. Whatever was made before a failure or a signal is
/// taken down again before this returns the error.
pub async fn create_stack(
    signals: &mut Signals,
    made: &mut Made,
    settings: StackSettings,
) -> Result<Stack, Ended> {
    let (stop, stop_asked) = watch::channel(false);
    let mut interrupted = None;
    let created = {
        let create = Stack::create(made, settings, &stop_asked);
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
    match created {
        Ok(stack) => Ok(stack),
        Err(ended) => {
            // What was made before the failure or the signal (the app
            // secret among it) goes, --keep or not: a half-made deployment
            // is of no use.
            if let Err(d) = made.delete(&[]).await {
                eprintln!("local-demo: taking the half-made deployment down: {d}");
            }
            Err(ended)
        }
    }
}

/// Runs `steps` until they end or a signal comes, whichever is first (the
/// steps are dropped on a signal: what they started stops with them).
pub async fn until_signal(
    signals: &mut Signals,
    steps: impl Future<Output = DemoResult<()>>,
) -> Result<(), Ended> {
    let result = tokio::select! {
        biased;
        signal = signals.recv() => Err(Ended::Interrupted(signal)),
        result = steps => result.map_err(Ended::Failed),
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
    result
}

/// Cleans up after the run ended with `result` (a second signal stops the
/// cleanup at once), and says how the whole run ended: a cleanup that
/// failed after a run that succeeded fails it; after a run that failed,
/// its failures are printed and the run's own error stands.
pub async fn finish(
    signals: &mut Signals,
    result: Result<(), Ended>,
    args: &Args,
    stack: &Stack,
    made: &Made,
    left: &mut Leftovers,
) -> Result<(), Ended> {
    let failures = tokio::select! {
        biased;
        signal = signals.recv() => {
            eprintln!(
                "local-demo: {} again: stopped cleaning up; what is named {}* may be left in AWS, and the account connected",
                signal.name, stack.name
            );
            return Err(Ended::Interrupted(signal));
        }
        failures = clean_up(args, stack, made, left) => failures,
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
