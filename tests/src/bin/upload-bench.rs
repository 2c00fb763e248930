//! Benchmark: a streamed FILE_UPLOAD of a generated video to the TikTok
//! simulator, printing wall time, throughput and the peak RSS of this process
//! (the simulator runs as a separate process so its memory is not counted).
//!
//! `--source file` (the default) uploads a local file through `FileSource`.
//! Target: peak RSS during the upload <= 2 x chunk size + 64 MiB, never a
//! function of the video's size.
//!
//! `--source s3` forwards the video from S3 (moto, reached through
//! `AWS_ENDPOINT_URL`) to the simulator and, in the same run, measures the two
//! halves of that work on their own, so the forward can be judged against them:
//!
//! 1. read: ranged GETs of the object, one chunk after another, hashed;
//! 2. write: a second FILE_UPLOAD of the same size, fed from the local file;
//! 3. forward: `S3Object` as the `ChunkSource` of `Uploader::upload`, which
//!    reads chunk n+1 while it PUTs chunk n.
//!
//! Each of the three runs in a process of its own (this binary again, with
//! `--phase`), as the upload function does one forward per process: a phase
//! never starts from heap an earlier one left behind.
//!
//! Targets: forward peak RSS <= 2 x chunk + 64 MiB, and forward wall time <=
//! 1.15 x max(read, write), i.e. the overlap hides the cheaper half.
//!
//! Exits non-zero when a target is missed or the simulator's SHA-256 differs
//! from the video's.
//!
//!     make bench                       # file, 300 MB, 10,000,000-byte chunks
//!     make bench-forward               # s3, 1000 MB, under infra/with-local-stack.sh
//!     upload-bench --size-mb 1000 --chunk-bytes 20000000
//!     upload-bench --source s3         # needs AWS_ENDPOINT_URL (moto); 1000 MB

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use shared::aws::describe_sdk_error;
use shared::secret::Secret;
use shared::storage::ChunkSource;
use shared::storage::FileSource;
use shared::storage::S3Object;
use shared::tiktok::chunk_plan::DEFAULT_CHUNK_SIZE;
use shared::tiktok::upload::{
    ChunkRetryPolicy, UploadHosts, UploadReport, Uploader, VideoContentType,
};
use shared::tiktok::{AppCredentials, ChunkPlan, Endpoints, TikTokClient, VideoSource};
use tokio::io::AsyncReadExt as _;

const MIB: u64 = 1024 * 1024;

/// Size of the parts of the multipart upload that puts the video into S3:
/// above S3's 5 MiB minimum, and small enough that only one part is ever in
/// memory.
const PART_BYTES: u64 = 16 * MIB;

/// Forward wall time may exceed the slower of read and write by this factor.
const FORWARD_SLACK: f64 = 1.15;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    File,
    S3,
}

struct Args {
    source: Source,
    size_bytes: u64,
    chunk_bytes: u64,
    /// Set in the child processes of `--source s3`: the one phase to run.
    phase: Option<PhaseArgs>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum PhaseKind {
    Read,
    Write,
    Forward,
}

impl PhaseKind {
    fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Forward => "forward",
        }
    }
}

/// What a phase's process is told: where the video is (the bucket and key
/// in moto, the local file) and where the simulator is. The simulator's
/// token comes in the environment (`UPLOAD_BENCH_TOKEN`), not the command
/// line.
#[derive(Clone, Debug, Default)]
struct PhaseArgs {
    kind: Option<PhaseKind>,
    bucket: String,
    key: String,
    file: PathBuf,
    sim_url: String,
}

const TOKEN_VAR: &str = "UPLOAD_BENCH_TOKEN";

fn parse_args() -> Result<Args, String> {
    let mut source = Source::File;
    let mut size_mb: Option<u64> = None;
    let mut chunk_bytes = DEFAULT_CHUNK_SIZE;
    let mut phase: Option<PhaseArgs> = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--source" => {
                source = match value.as_str() {
                    "file" => Source::File,
                    "s3" => Source::S3,
                    other => return Err(format!("--source: {other:?} is neither file nor s3")),
                }
            }
            "--size-mb" => size_mb = Some(number(&value)?),
            "--chunk-bytes" => chunk_bytes = number(&value)?,
            "--phase" => {
                phase.get_or_insert_with(PhaseArgs::default).kind = Some(match value.as_str() {
                    "read" => PhaseKind::Read,
                    "write" => PhaseKind::Write,
                    "forward" => PhaseKind::Forward,
                    other => {
                        return Err(format!("--phase: {other:?} is not read, write or forward"));
                    }
                })
            }
            "--bucket" => phase.get_or_insert_with(PhaseArgs::default).bucket = value,
            "--key" => phase.get_or_insert_with(PhaseArgs::default).key = value,
            "--file" => phase.get_or_insert_with(PhaseArgs::default).file = PathBuf::from(value),
            "--sim-url" => phase.get_or_insert_with(PhaseArgs::default).sim_url = value,
            other => {
                return Err(format!(
                    "unknown flag {other}; use --source file|s3 --size-mb N --chunk-bytes N"
                ));
            }
        }
    }
    // The forward's default is the figure: a 1 GB video.
    let default_mb = match source {
        Source::File => 300,
        Source::S3 => 1000,
    };
    if let Some(p) = &phase
        && (p.kind.is_none() || p.bucket.is_empty() || p.key.is_empty() || p.sim_url.is_empty())
    {
        return Err("a phase needs --phase, --bucket, --key, --file and --sim-url".into());
    }
    Ok(Args {
        source,
        size_bytes: size_mb.unwrap_or(default_mb) * 1_000_000,
        chunk_bytes,
        phase,
    })
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

/// Writes a `size`-byte MP4 (a real `moov`, samples of noise) through a
/// 1 MiB buffer and returns its SHA-256; memory stays at one block.
fn generate_video(path: &Path, size: u64) -> Result<String, String> {
    struct Hashing<W> {
        inner: W,
        hasher: Sha256,
    }
    impl<W: std::io::Write> std::io::Write for Hashing<W> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = self.inner.write(buf)?;
            self.hasher.update(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut out = Hashing {
        inner: std::io::BufWriter::with_capacity(MIB as usize, file),
        hasher: Sha256::new(),
    };
    test_media::video::VideoSpec::default()
        .fitting(size)
        .write(&mut out, size, 0x9e37_79b9_7f4a_7c15)
        .map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    Ok(hex::encode(out.hasher.finalize()))
}

/// One `kB` field of /proc/self/status, in bytes.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// VmHWM (peak resident set) of this process, in bytes.
fn peak_rss() -> Option<u64> {
    status_bytes("VmHWM:")
}

/// VmRSS (current resident set) of this process, in bytes.
fn current_rss() -> Option<u64> {
    status_bytes("VmRSS:")
}

/// Hands heap that earlier phases freed back to the OS. glibc keeps freed
/// memory in its arenas, and resetting VmHWM resets it to the current RSS,
/// so without this a phase's peak would start from the previous phase's
/// leftovers, which the function (one forward per process) never has.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_heap() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointers and only returns free pages of
    // glibc's arenas to the OS; it is safe to call at any time.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_heap() {}

/// Resets VmHWM to the current RSS, so the next figure covers one phase only.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Wall time and RSS of one measured phase.
struct Phase {
    wall: Duration,
    /// RSS when the phase started: the floor of `peak`.
    start: u64,
    peak: u64,
}

/// Runs `work` with the peak RSS reset just before it.
async fn measure<T, F>(work: F) -> Result<(T, Phase), String>
where
    F: Future<Output = Result<T, String>>,
{
    release_free_heap();
    reset_peak_rss();
    let start = current_rss().unwrap_or(0);
    let started = Instant::now();
    let out = work.await?;
    let wall = started.elapsed();
    let peak = peak_rss().unwrap_or(0);
    Ok((out, Phase { wall, start, peak }))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

fn mb_per_s(bytes: u64, wall: Duration) -> f64 {
    bytes as f64 / 1e6 / wall.as_secs_f64()
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

/// The simulator with one creator and a token that may upload.
struct Sim {
    _process: SimProcess,
    base_url: String,
    control: reqwest::Client,
    client: TikTokClient,
    access_token: Secret,
}

impl Sim {
    async fn start(state_dir: &Path) -> Result<Self, String> {
        let (process, base_url) = start_sim(state_dir)?;
        let control = reqwest::Client::new();
        let post = |path: &str, body: serde_json::Value| {
            control.post(format!("{base_url}{path}")).json(&body).send()
        };
        post(
            "/_sim/users",
            serde_json::json!({"open_id": "bench", "username": "bench", "display_name": "Bench"}),
        )
        .await
        .map_err(|e| format!("seeding the simulator's user: {e}"))?;
        let tokens: shared::tiktok::oauth::TokenResponse = post(
            "/_sim/tokens",
            serde_json::json!({"open_id": "bench", "scopes": ["user.info.basic", "video.upload"]}),
        )
        .await
        .map_err(|e| format!("minting a simulator token: {e}"))?
        .json()
        .await
        .map_err(|e| format!("reading the simulator token: {e}"))?;

        let client = sim_client(&base_url)?;
        Ok(Self {
            _process: process,
            base_url,
            control,
            client,
            access_token: tokens.access_token,
        })
    }

    /// A new FILE_UPLOAD for `plan`: its publish_id and upload URL.
    async fn init(&self, plan: &ChunkPlan) -> Result<(String, Secret), String> {
        init_upload(&self.client, &self.access_token, plan).await
    }

    /// The SHA-256 the simulator computed over what it received.
    async fn sha256(&self, publish_id: &str) -> Result<String, String> {
        let record: serde_json::Value = self
            .control
            .get(format!("{}/_sim/publishes/{publish_id}", self.base_url))
            .send()
            .await
            .map_err(|e| format!("reading the publish record: {e}"))?
            .json()
            .await
            .map_err(|e| format!("decoding the publish record: {e}"))?;
        Ok(record["sha256"].as_str().unwrap_or_default().to_owned())
    }
}

/// The project's client, pointed at the simulator.
fn sim_client(base_url: &str) -> Result<TikTokClient, String> {
    let http =
        shared::tiktok::config::http_client(Default::default()).map_err(|e| e.to_string())?;
    Ok(TikTokClient::new(
        http,
        Endpoints::for_base_url(base_url).map_err(|e| e.to_string())?,
        AppCredentials {
            client_key: "sim-client-key".into(),
            client_secret: "sim-client-secret".into(),
        },
    ))
}

/// A new FILE_UPLOAD for `plan`: its publish_id and upload URL.
async fn init_upload(
    client: &TikTokClient,
    token: &Secret,
    plan: &ChunkPlan,
) -> Result<(String, Secret), String> {
    let init = client
        .init_inbox_video(token, &VideoSource::FileUpload(*plan))
        .await
        .map_err(|e| format!("init: {e}"))?;
    let upload_url = init.upload_url.ok_or("init answered no upload_url")?;
    Ok((init.publish_id, upload_url))
}

/// Uploads `source` to `upload_url` with a fresh uploader, as the functions do.
async fn upload<S: ChunkSource>(
    upload_url: &Secret,
    plan: &ChunkPlan,
    source: &S,
) -> Result<UploadReport, String> {
    // The simulator plays TikTok's upload host: its own URLs are taken.
    let sim = reqwest::Url::parse(upload_url.expose()).map_err(|e| e.to_string())?;
    Uploader::new(reqwest::Client::new(), ChunkRetryPolicy::default())
        .with_hosts(UploadHosts::stand_in(sim))
        .upload(
            upload_url.expose(),
            plan,
            VideoContentType::Mp4,
            source,
            0,
            &mut (),
        )
        .await
        .map_err(|e| format!("upload: {e}"))
}

async fn run(args: Args) -> Result<bool, String> {
    if let Some(phase) = &args.phase {
        return run_phase(&args, phase).await;
    }
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let video_path: PathBuf = dir.path().join("bench.mp4");
    println!(
        "generating {} bytes ({:.0} MB) at {}",
        args.size_bytes,
        args.size_bytes as f64 / 1e6,
        video_path.display()
    );
    let expected_sha = generate_video(&video_path, args.size_bytes)
        .map_err(|e| format!("cannot write {}: {e}", video_path.display()))?;
    let sim = Sim::start(&dir.path().join("sim")).await?;
    match args.source {
        Source::File => run_file(&args, &sim, &video_path, &expected_sha).await,
        Source::S3 => run_forward(&args, &sim, &video_path, &expected_sha).await,
    }
}

/// Today's benchmark: the local file to the simulator.
async fn run_file(
    args: &Args,
    sim: &Sim,
    video_path: &Path,
    expected_sha: &str,
) -> Result<bool, String> {
    let source = FileSource::open(video_path)
        .await
        .map_err(|e| e.to_string())?;
    let plan = ChunkPlan::new(source.len(), args.chunk_bytes).map_err(|e| e.to_string())?;
    let (publish_id, upload_url) = sim.init(&plan).await?;

    let rss_before = peak_rss().unwrap_or(0);
    let (report, phase) = measure(upload(&upload_url, &plan, &source)).await?;
    let sim_sha = sim.sha256(&publish_id).await?;

    let bound = 2 * plan.chunk_size + 64 * MIB;
    println!(
        "video            {:.1} MiB, {} chunks of {} bytes (last {} bytes)",
        mib(plan.video_size),
        plan.total_chunk_count,
        plan.chunk_size,
        plan.last_chunk_len()
    );
    println!("wall time        {:.2} s", phase.wall.as_secs_f64());
    println!(
        "throughput       {:.1} MB/s",
        mb_per_s(plan.video_size, phase.wall)
    );
    println!(
        "peak RSS before  {:.1} MiB (process start to upload start)",
        mib(rss_before)
    );
    println!("peak RSS upload  {:.1} MiB", mib(phase.peak));
    println!(
        "target           <= {:.1} MiB (2 x chunk + 64 MiB)",
        mib(bound)
    );
    println!("retries/resyncs  {}/{}", report.retries, report.resyncs);
    println!("sha256 file      {expected_sha}");
    println!("sha256 sim       {sim_sha}");
    let ok_mem = phase.peak > 0 && phase.peak <= bound;
    let ok_sha = sim_sha == expected_sha;
    println!(
        "result           memory {}, bytes {}",
        verdict(ok_mem),
        verdict(ok_sha)
    );
    Ok(ok_mem && ok_sha)
}

/// The forward benchmark: puts the file into S3, then measures read, write
/// and forward. The bucket is removed afterwards whatever the outcome, so a
/// moto server that outlives the run does not keep a gigabyte.
async fn run_forward(
    args: &Args,
    sim: &Sim,
    video_path: &Path,
    expected_sha: &str,
) -> Result<bool, String> {
    // Checked here rather than through the tests' `local_aws()`, which
    // panics: without it the SDK would go to real AWS.
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    if !(endpoint.starts_with("http://127.0.0.1") || endpoint.starts_with("http://localhost")) {
        return Err(format!(
            "--source s3 needs AWS_ENDPOINT_URL pointing at the local moto server (got {endpoint:?}); \
             run it with `make bench-forward`"
        ));
    }
    let s3 = shared::aws::s3_client(&shared::aws::load_config().await);
    let bucket = tiktok_drafts_tests::unique_name("upload-bench");
    let key = "bench/video.mp4";
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .map_err(|e| format!("cannot create bucket {bucket}: {}", describe_sdk_error(&e)))?;

    let outcome = forward_phases(args, sim, &s3, &bucket, key, video_path, expected_sha).await;

    // Best effort: a failure here does not change the benchmark's verdict.
    if let Err(e) = s3.delete_object().bucket(&bucket).key(key).send().await {
        eprintln!(
            "upload-bench: cannot delete s3://{bucket}/{key}: {}",
            describe_sdk_error(&e)
        );
    }
    if let Err(e) = s3.delete_bucket().bucket(&bucket).send().await {
        eprintln!(
            "upload-bench: cannot delete bucket {bucket}: {}",
            describe_sdk_error(&e)
        );
    }
    outcome
}

async fn forward_phases(
    args: &Args,
    sim: &Sim,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    video_path: &Path,
    expected_sha: &str,
) -> Result<bool, String> {
    let put_started = Instant::now();
    let parts = put_multipart(s3, bucket, key, video_path).await?;
    let put_wall = put_started.elapsed();

    let object = S3Object::open(s3.clone(), bucket, key)
        .await
        .map_err(|e| e.to_string())?;
    let plan = ChunkPlan::new(object.size(), args.chunk_bytes).map_err(|e| e.to_string())?;
    drop(object);

    let child = |kind| ChildPhase {
        kind,
        bucket,
        key,
        file: video_path,
        sim,
        chunk_bytes: args.chunk_bytes,
    };
    // 1. Read: the S3 half alone, hashed.
    let read = child(PhaseKind::Read).run().await?;
    let object_sha = read.sha256.clone().unwrap_or_default();
    // 2. Write: the simulator half alone, from the local file (just written,
    //    so it is in the page cache and the disk does not count).
    let write = child(PhaseKind::Write).run().await?;
    let write_sha = sim
        .sha256(write.publish_id.as_deref().unwrap_or_default())
        .await?;
    // 3. Forward: S3 into the uploader, as the function does it.
    let forward = child(PhaseKind::Forward).run().await?;
    let forward_sha = sim
        .sha256(forward.publish_id.as_deref().unwrap_or_default())
        .await?;
    let rss_bound = 2 * plan.chunk_size + 64 * MIB;
    let (read, write, forward) = (&read, &write, &forward);
    let slowest = read.phase.wall.max(write.phase.wall);
    let wall_bound = slowest.mul_f64(FORWARD_SLACK);
    let ok_mem = forward.phase.peak > 0 && forward.phase.peak <= rss_bound;
    let ok_wall = forward.phase.wall <= wall_bound;
    let ok_sha = object_sha == expected_sha && forward_sha == object_sha;
    let ok_write = write_sha == expected_sha;

    let size = plan.video_size;
    println!("source           s3://{bucket}/{key} (moto)");
    println!(
        "video            {} bytes ({:.1} MiB), {} chunks of {} bytes (last {} bytes)",
        size,
        mib(size),
        plan.total_chunk_count,
        plan.chunk_size,
        plan.last_chunk_len()
    );
    println!(
        "s3 put           {:.2} s ({parts} parts of {} MiB, multipart; not a target)",
        put_wall.as_secs_f64(),
        PART_BYTES / MIB
    );
    for (name, phase) in [
        ("read  S3 GETs ", &read.phase),
        ("write sim PUTs", &write.phase),
        ("forward S3>sim", &forward.phase),
    ] {
        println!(
            "{name}   {:>7.2} s  {:>6.1} MB/s  peak RSS {:>6.1} MiB (from {:.1} MiB at start)",
            phase.wall.as_secs_f64(),
            mb_per_s(size, phase.wall),
            mib(phase.peak),
            mib(phase.start)
        );
    }
    println!(
        "retries/resyncs  {}/{} (forward)",
        forward.retries, forward.resyncs
    );
    println!(
        "processes        one per phase (this binary with --phase), as the function forwards one video per process"
    );
    println!(
        "target memory    forward peak {:.1} MiB <= {:.1} MiB (2 x chunk + 64 MiB)  {}",
        mib(forward.phase.peak),
        mib(rss_bound),
        verdict(ok_mem)
    );
    println!(
        "target wall      forward {:.2} s <= {:.2} s ({FORWARD_SLACK} x max(read {:.2} s, write {:.2} s))  {}",
        forward.phase.wall.as_secs_f64(),
        wall_bound.as_secs_f64(),
        read.phase.wall.as_secs_f64(),
        write.phase.wall.as_secs_f64(),
        verdict(ok_wall)
    );
    println!("sha256 file      {expected_sha}");
    println!("sha256 object    {object_sha}");
    println!("sha256 sim write {write_sha}");
    println!("sha256 sim fwd   {forward_sha}");
    println!(
        "result           memory {}, wall {}, bytes {} (write phase {})",
        verdict(ok_mem),
        verdict(ok_wall),
        verdict(ok_sha),
        verdict(ok_write)
    );
    Ok(ok_mem && ok_wall && ok_sha && ok_write)
}

/// One phase of the forward bench, run as a child process.
struct ChildPhase<'a> {
    kind: PhaseKind,
    bucket: &'a str,
    key: &'a str,
    file: &'a Path,
    sim: &'a Sim,
    chunk_bytes: u64,
}

/// What a phase's process reports (one JSON line on its stdout).
struct PhaseResult {
    phase: Phase,
    sha256: Option<String>,
    publish_id: Option<String>,
    retries: u64,
    resyncs: u64,
}

impl ChildPhase<'_> {
    async fn run(&self) -> Result<PhaseResult, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let output = tokio::process::Command::new(exe)
            .args(["--source", "s3", "--phase", self.kind.name()])
            .args(["--chunk-bytes", &self.chunk_bytes.to_string()])
            .args(["--bucket", self.bucket, "--key", self.key])
            .arg("--file")
            .arg(self.file)
            .args(["--sim-url", &self.sim.base_url])
            .env(TOKEN_VAR, self.sim.access_token.expose())
            .stderr(Stdio::inherit())
            .output()
            .await
            .map_err(|e| format!("cannot run the {} phase: {e}", self.kind.name()))?;
        if !output.status.success() {
            return Err(format!(
                "the {} phase failed ({})",
                self.kind.name(),
                output.status
            ));
        }
        let line = String::from_utf8_lossy(&output.stdout);
        let v: serde_json::Value = serde_json::from_str(line.trim())
            .map_err(|e| format!("the {} phase printed {line:?}: {e}", self.kind.name()))?;
        let number = |name: &str| v[name].as_u64().unwrap_or(0);
        Ok(PhaseResult {
            phase: Phase {
                wall: Duration::from_nanos(number("wall_ns")),
                start: number("start"),
                peak: number("peak"),
            },
            sha256: v["sha256"].as_str().map(str::to_owned),
            publish_id: v["publish_id"].as_str().map(str::to_owned),
            retries: number("retries"),
            resyncs: number("resyncs"),
        })
    }
}

/// The child's side: runs one phase and prints its figures as JSON.
async fn run_phase(args: &Args, phase: &PhaseArgs) -> Result<bool, String> {
    let s3 = shared::aws::s3_client(&shared::aws::load_config().await);
    let object = S3Object::open(s3, &phase.bucket, &phase.key)
        .await
        .map_err(|e| e.to_string())?;
    let plan = ChunkPlan::new(object.size(), args.chunk_bytes).map_err(|e| e.to_string())?;
    let token =
        Secret::new(std::env::var(TOKEN_VAR).map_err(|_| format!("{TOKEN_VAR} is not set"))?);
    let client = sim_client(&phase.sim_url)?;
    let mut out = serde_json::Map::new();
    let measured = match phase.kind {
        Some(PhaseKind::Read) => {
            let (sha, measured) = measure(read_all(&object, &plan)).await?;
            out.insert("sha256".into(), sha.into());
            measured
        }
        Some(kind) => {
            let (publish_id, url) = init_upload(&client, &token, &plan).await?;
            let (report, measured) = if kind == PhaseKind::Write {
                let file = FileSource::open(&phase.file)
                    .await
                    .map_err(|e| e.to_string())?;
                measure(upload(&url, &plan, &file)).await?
            } else {
                measure(upload(&url, &plan, &object)).await?
            };
            out.insert("publish_id".into(), publish_id.into());
            out.insert("retries".into(), report.retries.into());
            out.insert("resyncs".into(), report.resyncs.into());
            measured
        }
        None => return Err("no phase".into()),
    };
    out.insert(
        "wall_ns".into(),
        u64::try_from(measured.wall.as_nanos())
            .unwrap_or(u64::MAX)
            .into(),
    );
    out.insert("start".into(), measured.start.into());
    out.insert("peak".into(), measured.peak.into());
    println!("{}", serde_json::Value::Object(out));
    Ok(true)
}

/// Puts the file into S3 with a multipart upload, one part in memory at a
/// time, and returns the number of parts. The upload is aborted on failure so
/// moto does not keep the parts.
async fn put_multipart(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    path: &Path,
) -> Result<usize, String> {
    let created = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .content_type("video/mp4")
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot start the multipart upload: {}",
                describe_sdk_error(&e)
            )
        })?;
    let upload_id = created
        .upload_id()
        .ok_or("the multipart upload has no upload id")?
        .to_owned();
    match put_parts(s3, bucket, key, &upload_id, path).await {
        Ok(n) => Ok(n),
        Err(e) => {
            let _ = s3
                .abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
            Err(e)
        }
    }
}

async fn put_parts(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    path: &Path,
) -> Result<usize, String> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let size = file
        .metadata()
        .await
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?
        .len();
    let mut completed = Vec::new();
    let mut offset = 0u64;
    let mut part_number = 1i32;
    while offset < size {
        let len = (size - offset).min(PART_BYTES) as usize;
        let mut buf = vec![0u8; len];
        file.read_exact(&mut buf)
            .await
            .map_err(|e| format!("cannot read {} at {offset}: {e}", path.display()))?;
        let part = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number)
            .body(ByteStream::from(buf))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "cannot upload part {part_number}: {}",
                    describe_sdk_error(&e)
                )
            })?;
        completed.push(
            CompletedPart::builder()
                .part_number(part_number)
                .set_e_tag(part.e_tag().map(str::to_owned))
                .build(),
        );
        offset += len as u64;
        part_number += 1;
    }
    let parts = completed.len();
    s3.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot complete the multipart upload: {}",
                describe_sdk_error(&e)
            )
        })?;
    Ok(parts)
}

/// Reads the object chunk by chunk, one GET after another as the uploader
/// would without its overlap, and returns the SHA-256 of what came back.
/// Hashing runs on its own thread, one chunk behind, so the figure is the
/// GETs' and not the hash's; it is there to prove the bytes were all read.
async fn read_all(object: &S3Object, plan: &ChunkPlan) -> Result<String, String> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let hasher = std::thread::spawn(move || {
        let mut hasher = Sha256::new();
        while let Some(chunk) = rx.blocking_recv() {
            hasher.update(&chunk);
        }
        hex::encode(hasher.finalize())
    });
    for chunk in plan.chunks() {
        let bytes = object
            .read_range(chunk.start, chunk.end)
            .await
            .map_err(|e| format!("GET of chunk {}: {}", chunk.index, e.message()))?;
        if tx.send(bytes).await.is_err() {
            // Only possible if the hashing thread panicked; join says why.
            break;
        }
    }
    drop(tx);
    hasher
        .join()
        .map_err(|_| "the hashing thread panicked".to_owned())
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
