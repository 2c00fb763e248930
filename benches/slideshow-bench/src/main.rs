//! Slideshow conversion benchmark.
//!
//! Generates photo-like 12 MP PNGs (4000 × 3000, gradients, shapes and
//! noise; every fourth with transparency) and times, in one run, three ways
//! of turning them into TikTok-ready JPEGs (fit inside 1080 × 1920, q90):
//!
//! - (a) ours: `shared::media::convert_all`, workers capped at the cores;
//! - (b) Pillow: decode, flatten, LANCZOS resize, JPEG q90, one image after
//!   another in one Python process (what a simple script would do);
//! - (c) libvips: one `vipsthumbnail -s 1080x1920 -o out.jpg[Q=90]` per file.
//!
//! It prints wall times, the speed-up ratios against the targets (ours at
//! least 4× Pillow and 2× vipsthumbnail) and our peak RSS during (a)
//! (VmHWM after resetting it through /proc/self/clear_refs; target at most
//! 256 MiB), marks each target PASS or FAIL and exits non-zero on a FAIL.
//! Run it through `run.sh`, which installs Pillow and vipsthumbnail.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};
use rayon::prelude::*;
use shared::media::{PhotoFile, PhotoLimits, convert_all};

const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;
const PILLOW_TARGET: f64 = 4.0;
const VIPS_TARGET: f64 = 2.0;
const PEAK_RSS_TARGET_MIB: f64 = 256.0;

const PILLOW_SCRIPT: &str = r#"
import os, sys
from PIL import Image

out_dir = sys.argv[1]
for path in sys.argv[2:]:
    with Image.open(path) as im:
        im.load()
        if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            background = Image.new("RGB", im.size, (255, 255, 255))
            background.paste(im, mask=im.getchannel("A"))
            im = background
        else:
            im = im.convert("RGB")
        w, h = im.size
        scale = min(1080 / w, 1920 / h, 1.0)
        if scale < 1.0:
            im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
        im.save(os.path.join(out_dir, os.path.basename(path) + ".jpg"), "JPEG", quality=90)
"#;

struct Args {
    python: String,
    count: usize,
    /// Keep the generated PNGs here (and reuse those already there) instead
    /// of a fresh temporary folder.
    dir: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        python: "python3".to_string(),
        count: 35,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--python" => args.python = it.next().ok_or("--python needs a path")?,
            "--count" => {
                let value = it.next().ok_or("--count needs a number")?;
                args.count = value
                    .parse()
                    .map_err(|_| format!("--count: {value:?} is not a number"))?;
            }
            "--dir" => args.dir = Some(PathBuf::from(it.next().ok_or("--dir needs a path")?)),
            "-h" | "--help" => {
                return Err(
                    "usage: slideshow-bench [--python PATH] [--count N] [--dir PATH]".to_string(),
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

/// Small deterministic PRNG: the images must be the same on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// A photo-like image: two gradients, a few soft discs, per-pixel noise;
/// with `alpha`, a vignette that fades to fully transparent at the corners.
fn generate_png(path: &Path, seed: u64, alpha: bool) -> Result<(), String> {
    let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let discs: Vec<(f32, f32, f32, [f32; 3])> = (0..6)
        .map(|_| {
            let x = (rng.next() % u64::from(WIDTH)) as f32;
            let y = (rng.next() % u64::from(HEIGHT)) as f32;
            let r = 200.0 + (rng.next() % 800) as f32;
            let c = [
                (rng.next() % 256) as f32,
                (rng.next() % 256) as f32,
                (rng.next() % 256) as f32,
            ];
            (x, y, r, c)
        })
        .collect();
    let channels = if alpha { 4 } else { 3 };
    let mut pixels = Vec::with_capacity((WIDTH * HEIGHT) as usize * channels);
    let (cx, cy) = (WIDTH as f32 / 2.0, HEIGHT as f32 / 2.0);
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let (fx, fy) = (x as f32, y as f32);
            let mut c = [
                255.0 * fx / WIDTH as f32,
                255.0 * fy / HEIGHT as f32,
                128.0 + 100.0 * ((fx + fy) / 700.0).sin(),
            ];
            for &(dx, dy, r, colour) in &discs {
                let d = ((fx - dx).powi(2) + (fy - dy).powi(2)).sqrt();
                if d < r {
                    let w = 0.6 * (1.0 - d / r);
                    for i in 0..3 {
                        c[i] = c[i] * (1.0 - w) + colour[i] * w;
                    }
                }
            }
            let noise = rng.next();
            for (i, value) in c.iter().enumerate() {
                let n = ((noise >> (i * 8)) & 0x1F) as f32 - 16.0;
                pixels.push((value + n).clamp(0.0, 255.0) as u8);
            }
            if alpha {
                let d = (((fx - cx) / cx).powi(2) + ((fy - cy) / cy).powi(2)).sqrt();
                pixels.push((255.0 * (1.3 - d).clamp(0.0, 1.0)) as u8);
            }
        }
    }
    // Written beside and renamed, so an interrupted run never leaves a
    // half-written PNG for `--dir` to reuse.
    let partial = path.with_extension("partial");
    let file = File::create(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
    let mut writer = BufWriter::new(file);
    let colour = if alpha {
        ExtendedColorType::Rgba8
    } else {
        ExtendedColorType::Rgb8
    };
    PngEncoder::new_with_quality(&mut writer, CompressionType::Fast, FilterType::Adaptive)
        .write_image(&pixels, WIDTH, HEIGHT, colour)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    writer
        .flush()
        .map_err(|e| format!("{}: {e}", partial.display()))?;
    drop(writer);
    std::fs::rename(&partial, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Peak resident set size of this process, in KiB.
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets VmHWM to the current RSS (Linux >= 4.0).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// CPU seconds used so far by this process (all threads) and by its
/// waited-for children, from /proc/self/stat (clock ticks of 1/100 s, the
/// Linux x86_64 and arm64 value). CPU time does not grow when other work
/// on the machine takes cores away, so it shows the cost of each pipeline
/// even on a busy machine, where wall times do not.
fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14..=17 of stat(5); `fields[0]` is field 3.
    let tick = |i: usize| -> Option<f64> { fields.get(i)?.parse::<f64>().ok().map(|t| t / 100.0) };
    Some((tick(11)? + tick(12)?, tick(13)? + tick(14)?))
}

fn cpu_self() -> f64 {
    cpu_seconds().map_or(0.0, |(own, _)| own)
}

fn cpu_children() -> f64 {
    cpu_seconds().map_or(0.0, |(_, children)| children)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

fn run() -> Result<bool, String> {
    let args = parse_args()?;
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let inputs_dir = args.dir.clone().unwrap_or_else(|| dir.path().join("in"));
    std::fs::create_dir_all(&inputs_dir).map_err(|e| e.to_string())?;

    println!(
        "slideshow-bench: {} PNGs of {WIDTH}x{HEIGHT} -> JPEG q90 inside 1080x1920, {cores} cores",
        args.count
    );
    let started = Instant::now();
    let paths: Vec<PathBuf> = (0..args.count)
        .map(|i| inputs_dir.join(format!("{:02}.png", i + 1)))
        .collect();
    paths
        .par_iter()
        .enumerate()
        .filter(|(_, path)| args.dir.is_none() || !path.exists())
        .try_for_each(|(i, path)| generate_png(path, i as u64 + 1, i % 4 == 3))?;
    let total_bytes: u64 = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "generated in {:.1} s, {:.0} MB of PNG ({} with alpha)",
        secs(started.elapsed()),
        total_bytes as f64 / 1e6,
        args.count / 4
    );

    let sources: Vec<PhotoFile> = paths
        .iter()
        .map(|p| PhotoFile {
            name: p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: p.clone(),
        })
        .collect();
    let limits = PhotoLimits::default();

    // (a) ours, with the peak RSS of this process.
    let rss_reset = reset_peak_rss();
    let rss_before = vm_hwm_kib();
    let load_before = load_average();
    let cpu_before = cpu_self();
    let started = Instant::now();
    let results = convert_all(&sources, &limits, cores);
    let ours = started.elapsed();
    let ours_cpu = cpu_self() - cpu_before;
    let peak_kib = vm_hwm_kib();
    let mut jpeg_bytes = 0usize;
    for result in &results {
        match result {
            Ok(photo) => {
                if photo.width > 1080 || photo.height > 1920 {
                    return Err(format!("output {}x{} too large", photo.width, photo.height));
                }
                jpeg_bytes += photo.jpeg.len();
            }
            Err(error) => return Err(format!("our conversion failed: {error}")),
        }
    }
    drop(results);
    println!(
        "(a) ours convert_all, {cores} threads: {:.2} s ({:.0} ms/image), CPU {ours_cpu:.2} s, \
         {:.1} MB of JPEG (1-min load average before: {load_before})",
        secs(ours),
        secs(ours) * 1000.0 / args.count as f64,
        jpeg_bytes as f64 / 1e6
    );

    // For reference only: ours on one thread.
    let started = Instant::now();
    let single = convert_all(&sources, &limits, 1);
    let ours_single = started.elapsed();
    if let Some(Err(error)) = single.iter().find(|r| r.is_err()) {
        return Err(format!("our conversion failed: {error}"));
    }
    drop(single);
    println!(
        "    ours on 1 thread (reference): {:.2} s ({:.0} ms/image)",
        secs(ours_single),
        secs(ours_single) * 1000.0 / args.count as f64
    );

    // (b) Pillow.
    let pillow_out = dir.path().join("pillow");
    std::fs::create_dir_all(&pillow_out).map_err(|e| e.to_string())?;
    let script = dir.path().join("pillow_convert.py");
    std::fs::write(&script, PILLOW_SCRIPT).map_err(|e| e.to_string())?;
    let children_before = cpu_children();
    let started = Instant::now();
    let pillow_status = Command::new(&args.python)
        .arg(&script)
        .arg(&pillow_out)
        .args(&paths)
        .stdin(Stdio::null())
        .status();
    let pillow = started.elapsed();
    let pillow_cpu = cpu_children() - children_before;
    let pillow_ok = matches!(pillow_status, Ok(s) if s.success());
    if pillow_ok {
        println!(
            "(b) Pillow, one after another: {:.2} s ({:.0} ms/image), CPU {pillow_cpu:.2} s",
            secs(pillow),
            secs(pillow) * 1000.0 / args.count as f64
        );
    } else {
        println!(
            "(b) Pillow: could not run {} ({pillow_status:?}); run run.sh to install it",
            args.python
        );
    }

    // (c) vipsthumbnail, one process per file.
    let vips_out = dir.path().join("vips");
    std::fs::create_dir_all(&vips_out).map_err(|e| e.to_string())?;
    let children_before = cpu_children();
    let started = Instant::now();
    let mut vips_ok = true;
    for path in &paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let output = vips_out.join(format!("{name}.jpg[Q=90]"));
        let status = Command::new("vipsthumbnail")
            .arg(path)
            .arg("-s")
            .arg("1080x1920")
            .arg("-o")
            .arg(&output)
            .stdin(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            println!("(c) vipsthumbnail failed on {name}: {status:?}; run run.sh to install it");
            vips_ok = false;
            break;
        }
    }
    let vips = started.elapsed();
    let vips_cpu = cpu_children() - children_before;
    if vips_ok {
        println!(
            "(c) vipsthumbnail, one per file: {:.2} s ({:.0} ms/image), CPU {vips_cpu:.2} s",
            secs(vips),
            secs(vips) * 1000.0 / args.count as f64
        );
    }

    if ours_cpu > 0.0 {
        println!(
            "CPU-time ratios (load-independent, for information): Pillow/ours {:.2}x, vips/ours {:.2}x",
            pillow_cpu / ours_cpu,
            vips_cpu / ours_cpu
        );
    }
    println!();
    let mut all_pass = true;
    if pillow_ok {
        let ratio = secs(pillow) / secs(ours);
        let pass = ratio >= PILLOW_TARGET;
        all_pass &= pass;
        println!(
            "speed-up vs Pillow:        {ratio:.2}x (target >= {PILLOW_TARGET}x)  {}",
            verdict(pass)
        );
    } else {
        all_pass = false;
        println!("speed-up vs Pillow:        not measured  FAIL");
    }
    if vips_ok {
        let ratio = secs(vips) / secs(ours);
        let pass = ratio >= VIPS_TARGET;
        all_pass &= pass;
        println!(
            "speed-up vs vipsthumbnail: {ratio:.2}x (target >= {VIPS_TARGET}x)  {}",
            verdict(pass)
        );
    } else {
        all_pass = false;
        println!("speed-up vs vipsthumbnail: not measured  FAIL");
    }
    match (rss_reset, peak_kib) {
        (true, Some(kib)) => {
            let mib = kib as f64 / 1024.0;
            let pass = mib <= PEAK_RSS_TARGET_MIB;
            all_pass &= pass;
            let before = rss_before.map_or(0.0, |k| k as f64 / 1024.0);
            println!(
                "peak RSS during (a):       {mib:.0} MiB (RSS at reset {before:.0} MiB; target <= {PEAK_RSS_TARGET_MIB} MiB)  {}",
                verdict(pass)
            );
        }
        _ => {
            all_pass = false;
            println!(
                "peak RSS during (a):       could not be measured (/proc/self/clear_refs)  FAIL"
            );
        }
    }
    Ok(all_pass)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => {
            println!("slideshow-bench: all targets PASS");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!("slideshow-bench: some targets FAIL");
            ExitCode::FAILURE
        }
        Err(message) => {
            eprintln!("slideshow-bench: {message}");
            ExitCode::from(2)
        }
    }
}
