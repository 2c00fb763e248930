//! Benchmark: a streamed FILE_UPLOAD of a generated video to the TikTok
//! simulator, printing wall time, throughput and the peak RSS of this process
//! (the simulator runs as a separate process so its memory is not counted).
//!
//! Target: peak RSS during the upload <= 2 x chunk size + 64 MiB, never a
//! function of the video's size. Exits non-zero when the target is missed or
//! the simulator's SHA-256 differs from the file's.
//!
//!     make bench                       # 300 MB, 10,000,000-byte chunks
//!     upload-bench --size-mb 1000 --chunk-bytes 20000000

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Instant;

use sha2::{Digest as _, Sha256};
use shared::tiktok::chunk_plan::DEFAULT_CHUNK_SIZE;
use shared::tiktok::upload::{FileSource, RetryPolicy, Uploader, VideoContentType};
use shared::tiktok::{AppCredentials, ChunkPlan, Endpoints, TikTokClient, VideoSource};

const MIB: u64 = 1024 * 1024;

struct Args {
    size_bytes: u64,
    chunk_bytes: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        size_bytes: 300 * 1_000_000,
        chunk_bytes: DEFAULT_CHUNK_SIZE,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .parse::<u64>()
            .map_err(|e| format!("{flag}: {e}"))?;
        match flag.as_str() {
            "--size-mb" => args.size_bytes = value * 1_000_000,
            "--chunk-bytes" => args.chunk_bytes = value,
            other => {
                return Err(format!(
                    "unknown flag {other}; use --size-mb N --chunk-bytes N"
                ));
            }
        }
    }
    Ok(args)
}

/// Kills the simulator when the bench ends, however it ends.
struct SimProcess(Child);

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sim(state_dir: &Path) -> Result<(SimProcess, String), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let sim_bin = exe.with_file_name("tiktok-sim");
    if !sim_bin.exists() {
        return Err(format!(
            "{} not found: build it first (make bench does)",
            sim_bin.display()
        ));
    }
    let mut child = Command::new(&sim_bin)
        .args(["--bind", "127.0.0.1:0", "--state-dir"])
        .arg(state_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", sim_bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let sim = SimProcess(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .ok_or_else(|| format!("unexpected first line from tiktok-sim: {line:?}"))?
        .to_owned();
    Ok((sim, url))
}

/// Writes `size` bytes that start like an MP4, in 1 MiB blocks, and returns
/// their SHA-256; memory stays at one block.
fn generate_video(path: &Path, size: u64) -> Result<String, String> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| e.to_string())?);
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    while written < size {
        let len = (size - written).min(MIB) as usize;
        // Only the first block carries the `ftyp` header.
        let block = if written == 0 {
            tiktok_drafts_tests::fake_mp4(len, seed)
        } else {
            tiktok_drafts_tests::noise(len, seed)
        };
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        hasher.update(&block);
        file.write_all(&block).map_err(|e| e.to_string())?;
        written += len as u64;
    }
    file.flush().map_err(|e| e.to_string())?;
    Ok(hex::encode(hasher.finalize()))
}

/// VmHWM (peak resident set) of this process, in bytes.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets VmHWM to the current RSS, so the figure covers the upload only.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

async fn run(args: Args) -> Result<bool, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let video_path: PathBuf = dir.path().join("bench.mp4");
    println!(
        "generating {} bytes ({:.0} MB) at {}",
        args.size_bytes,
        args.size_bytes as f64 / 1e6,
        video_path.display()
    );
    let expected_sha = generate_video(&video_path, args.size_bytes)?;
    let (_sim, base_url) = start_sim(&dir.path().join("sim"))?;

    let control = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        control.post(format!("{base_url}{path}")).json(&body).send()
    };
    post(
        "/_sim/users",
        serde_json::json!({"open_id": "bench", "username": "bench", "display_name": "Bench"}),
    )
    .await
    .map_err(|e| e.to_string())?;
    let tokens: shared::tiktok::oauth::TokenResponse = post(
        "/_sim/tokens",
        serde_json::json!({"open_id": "bench", "scopes": ["user.info.basic", "video.upload"]}),
    )
    .await
    .map_err(|e| e.to_string())?
    .json()
    .await
    .map_err(|e| e.to_string())?;

    let http =
        shared::tiktok::config::http_client(Default::default()).map_err(|e| e.to_string())?;
    let client = TikTokClient::new(
        http,
        Endpoints::for_base_url(&base_url).map_err(|e| e.to_string())?,
        AppCredentials {
            client_key: "sim-client-key".into(),
            client_secret: "sim-client-secret".into(),
        },
    );
    let source = FileSource::open(&video_path)
        .await
        .map_err(|e| e.to_string())?;
    let plan = ChunkPlan::new(source.len(), args.chunk_bytes).map_err(|e| e.to_string())?;
    let init = client
        .init_inbox_video(&tokens.access_token, &VideoSource::FileUpload(plan))
        .await
        .map_err(|e| e.to_string())?;
    let upload_url = init.upload_url.ok_or("no upload_url")?;

    let rss_before = peak_rss().unwrap_or(0);
    reset_peak_rss();
    let started = Instant::now();
    let report = Uploader::new(reqwest::Client::new(), RetryPolicy::default())
        .upload(
            upload_url.expose(),
            &plan,
            VideoContentType::Mp4,
            &source,
            0,
            &mut (),
        )
        .await
        .map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    let peak = peak_rss().unwrap_or(0);

    let record: serde_json::Value = control
        .get(format!("{base_url}/_sim/publishes/{}", init.publish_id))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let sim_sha = record["sha256"].as_str().unwrap_or_default();

    let bound = 2 * plan.chunk_size + 64 * MIB;
    let mb = |b: u64| b as f64 / MIB as f64;
    println!(
        "video            {:.1} MiB, {} chunks of {} bytes (last {} bytes)",
        mb(plan.video_size),
        plan.total_chunk_count,
        plan.chunk_size,
        plan.last_chunk_len()
    );
    println!("wall time        {:.2} s", elapsed.as_secs_f64());
    println!(
        "throughput       {:.1} MB/s",
        plan.video_size as f64 / 1e6 / elapsed.as_secs_f64()
    );
    println!(
        "peak RSS before  {:.1} MiB (process start to upload start)",
        mb(rss_before)
    );
    println!("peak RSS upload  {:.1} MiB", mb(peak));
    println!(
        "target           <= {:.1} MiB (2 x chunk + 64 MiB)",
        mb(bound)
    );
    println!("retries/resyncs  {}/{}", report.retries, report.resyncs);
    println!("sha256 file      {expected_sha}");
    println!("sha256 sim       {sim_sha}");
    let ok_mem = peak > 0 && peak <= bound;
    let ok_sha = sim_sha == expected_sha;
    println!(
        "result           memory {}, bytes {}",
        if ok_mem { "PASS" } else { "FAIL" },
        if ok_sha { "PASS" } else { "FAIL" }
    );
    Ok(ok_mem && ok_sha)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("upload-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("upload-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("upload-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
