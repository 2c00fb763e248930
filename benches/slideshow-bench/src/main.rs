//! Slideshow conversion benchmark.
//!
//! Three runs, each on 35 generated photo-like 12 MP inputs, each timing in
//! the same run three ways of turning them into TikTok-ready JPEGs (fit
//! inside 1080 × 1920, q90):
//!
//! - PNG: 4000 × 3000, gradients, shapes and noise; every fourth with
//!   transparency;
//! - JPEG: the same pictures as camera-like JPEGs (q92, 4:2:0), which ours
//!   decodes at reduced scale (shrink on load);
//! - HEIC: iPhone-style 4032 × 3024 grids of 512 × 512 10-bit HEVC tiles
//!   (made by heif-enc, laid out by test_media), Display P3, turned by irot.
//!
//! The ways: (a) ours, `shared::media::convert_all`, workers capped at the
//! cores; (b) Pillow (with pillow-heif for HEIC): decode, flatten, LANCZOS
//! resize, JPEG q90, one image after another in one Python process; (c)
//! libvips: one `vipsthumbnail -s 1080x1920 -o out.jpg[Q=90]` per file.
//!
//! It prints wall and CPU time per way and run, marks each target PASS or
//! FAIL and exits non-zero on a FAIL: on PNGs ours at least 4× Pillow and
//! 2× vipsthumbnail in wall time and at most 256 MiB peak RSS; on JPEGs at
//! least 2.5× less CPU than vipsthumbnail. Run it through `run.sh`, which
//! installs Pillow, pillow-heif and vipsthumbnail.

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
use test_media::picture::XorShift;

const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;
const PILLOW_TARGET: f64 = 4.0;
const VIPS_TARGET: f64 = 2.0;
const PEAK_RSS_TARGET_MIB: f64 = 256.0;
/// On JPEGs: vipsthumbnail's CPU time over ours.
const JPEG_VIPS_CPU_TARGET: f64 = 2.5;

const PILLOW_SCRIPT: &str = r#"
import os, sys
from PIL import Image
try:
    import pillow_heif
    pillow_heif.register_heif_opener()
except ImportError:
    pass

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
    /// Which runs, in order (`--only png,jpeg,heic`).
    kinds: Vec<Kind>,
    /// Keep the generated PNGs here (and reuse those already there) instead
    /// of a fresh temporary folder.
    dir: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        python: "python3".to_string(),
        count: 35,
        kinds: vec![Kind::Png, Kind::Jpeg, Kind::Heic],
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
            "--only" => {
                let value = it.next().ok_or("--only needs png, jpeg and/or heic")?;
                args.kinds = value
                    .split(',')
                    .map(|k| match k {
                        "png" => Ok(Kind::Png),
                        "jpeg" => Ok(Kind::Jpeg),
                        "heic" => Ok(Kind::Heic),
                        other => Err(format!("--only: unknown run {other:?}")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "-h" | "--help" => {
                return Err(
                    "usage: slideshow-bench [--python PATH] [--count N] [--dir PATH] [--only png,jpeg,heic]".to_string(),
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

/// A photo-like image: two gradients, a few soft discs, per-pixel noise;
/// with `alpha`, a vignette that fades to fully transparent at the corners.
fn photo_pixels(seed: u64, alpha: bool) -> Vec<u8> {
    let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let discs: Vec<(f32, f32, f32, [f32; 3])> = (0..6)
        .map(|_| {
            let x = (rng.next_u64() % u64::from(WIDTH)) as f32;
            let y = (rng.next_u64() % u64::from(HEIGHT)) as f32;
            let r = 200.0 + (rng.next_u64() % 800) as f32;
            let c = [
                (rng.next_u64() % 256) as f32,
                (rng.next_u64() % 256) as f32,
                (rng.next_u64() % 256) as f32,
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
            let noise = rng.next_u64();
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
    pixels
}

/// Writes `bytes` beside `path` and renames, so an interrupted run never
/// leaves a half-written input for `--dir` to reuse.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), String>,
) -> Result<(), String> {
    let partial = path.with_extension("partial");
    let file = File::create(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
    let mut writer = BufWriter::new(file);
    write(&mut writer).map_err(|e| format!("{}: {e}", path.display()))?;
    writer
        .flush()
        .map_err(|e| format!("{}: {e}", partial.display()))?;
    drop(writer);
    std::fs::rename(&partial, path).map_err(|e| format!("{}: {e}", path.display()))
}

fn generate_png(path: &Path, seed: u64, alpha: bool) -> Result<(), String> {
    let pixels = photo_pixels(seed, alpha);
    let colour = if alpha {
        ExtendedColorType::Rgba8
    } else {
        ExtendedColorType::Rgb8
    };
    write_atomically(path, |w| {
        PngEncoder::new_with_quality(w, CompressionType::Fast, FilterType::Adaptive)
            .write_image(&pixels, WIDTH, HEIGHT, colour)
            .map_err(|e| e.to_string())
    })
}

/// A camera-like JPEG: q92, 4:2:0, as phones and cameras write them.
fn generate_jpeg(path: &Path, seed: u64) -> Result<(), String> {
    let pixels = photo_pixels(seed, false);
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 92);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    encoder
        .encode(
            &pixels,
            WIDTH as u16,
            HEIGHT as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .map_err(|e| e.to_string())?;
    write_atomically(path, |w| w.write_all(&out).map_err(|e| e.to_string()))
}

/// An iPhone-style 12 MP HEIC: a 4032 × 3024 grid of 8 × 6 tiles of 512
/// (the committed 10-bit tiles, repeated), Display P3, turned by irot.
fn generate_heic(path: &Path) -> Result<(), String> {
    use test_media::heif::{Primary, iphone_grid, tile};
    let mut heif = iphone_grid(10);
    heif.primary = Primary::Grid {
        tiles: (0..48).map(|i| tile(10, (i / 8) % 3, i % 4)).collect(),
        columns: 8,
        rows: 6,
        width: 4032,
        height: 3024,
    };
    let bytes = heif.to_bytes();
    write_atomically(path, |w| w.write_all(&bytes).map_err(|e| e.to_string()))
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

/// Wall and CPU time of one way over one run.
#[derive(Debug, Clone, Copy)]
struct Measure {
    wall: Duration,
    cpu: f64,
}

/// The inputs of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Png,
    Jpeg,
    Heic,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Png => "PNG",
            Kind::Jpeg => "JPEG",
            Kind::Heic => "HEIC",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Kind::Png => "png",
            Kind::Jpeg => "jpg",
            Kind::Heic => "heic",
        }
    }

    fn generate(self, path: &Path, i: usize) -> Result<(), String> {
        match self {
            Kind::Png => generate_png(path, i as u64 + 1, i % 4 == 3),
            Kind::Jpeg => generate_jpeg(path, i as u64 + 1),
            Kind::Heic => generate_heic(path),
        }
    }
}

/// What one run measured.
struct RunResult {
    kind: Kind,
    count: usize,
    ours: Measure,
    ours_single: Measure,
    pillow: Option<Measure>,
    vips: Option<Measure>,
    /// Peak RSS of this process during (a), in KiB, when measurable.
    peak_kib: Option<u64>,
}

fn time_ours(sources: &[PhotoFile], threads: usize) -> Result<Measure, String> {
    let cpu_before = cpu_self();
    let started = Instant::now();
    let results = convert_all(sources, &PhotoLimits::default(), threads);
    let wall = started.elapsed();
    let cpu = cpu_self() - cpu_before;
    for result in &results {
        match result {
            Ok(photo) if photo.width > 1080 || photo.height > 1920 => {
                return Err(format!("output {}x{} too large", photo.width, photo.height));
            }
            Ok(_) => {}
            Err(error) => return Err(format!("our conversion failed: {error}")),
        }
    }
    Ok(Measure { wall, cpu })
}

fn time_pillow(python: &str, script: &Path, out: &Path, paths: &[PathBuf]) -> Option<Measure> {
    std::fs::create_dir_all(out).ok()?;
    let children_before = cpu_children();
    let started = Instant::now();
    let status = Command::new(python)
        .arg(script)
        .arg(out)
        .args(paths)
        .stdin(Stdio::null())
        .status();
    let wall = started.elapsed();
    if !matches!(status, Ok(s) if s.success()) {
        println!("    Pillow could not run with {python} ({status:?}); run run.sh to install it");
        return None;
    }
    Some(Measure {
        wall,
        cpu: cpu_children() - children_before,
    })
}

fn time_vips(out: &Path, paths: &[PathBuf]) -> Option<Measure> {
    std::fs::create_dir_all(out).ok()?;
    let children_before = cpu_children();
    let started = Instant::now();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let output = out.join(format!("{name}.jpg[Q=90]"));
        let status = Command::new("vipsthumbnail")
            .arg(path)
            .arg("-s")
            .arg("1080x1920")
            .arg("-o")
            .arg(&output)
            .stdin(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            println!("    vipsthumbnail failed on {name}: {status:?}; run run.sh to install it");
            return None;
        }
    }
    Some(Measure {
        wall: started.elapsed(),
        cpu: cpu_children() - children_before,
    })
}

fn one_run(args: &Args, kind: Kind, work: &Path, cores: usize) -> Result<RunResult, String> {
    let inputs_dir = match &args.dir {
        Some(dir) => dir.join(kind.extension()),
        None => work.join(kind.extension()),
    };
    std::fs::create_dir_all(&inputs_dir).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let paths: Vec<PathBuf> = (0..args.count)
        .map(|i| inputs_dir.join(format!("{:02}.{}", i + 1, kind.extension())))
        .collect();
    paths
        .par_iter()
        .enumerate()
        .filter(|(_, path)| args.dir.is_none() || !path.exists())
        .try_for_each(|(i, path)| kind.generate(path, i))?;
    let total_bytes: u64 = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "{}: {} inputs generated in {:.1} s, {:.0} MB",
        kind.name(),
        args.count,
        secs(started.elapsed()),
        total_bytes as f64 / 1e6
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
    let rss_reset = reset_peak_rss();
    let ours = time_ours(&sources, cores)?;
    let peak_kib = if rss_reset { vm_hwm_kib() } else { None };
    let ours_single = time_ours(&sources, 1)?;
    let script = work.join("pillow_convert.py");
    std::fs::write(&script, PILLOW_SCRIPT).map_err(|e| e.to_string())?;
    let out = work.join(format!("out-{}", kind.extension()));
    let pillow = time_pillow(&args.python, &script, &out.join("pillow"), &paths);
    let vips = time_vips(&out.join("vips"), &paths);
    Ok(RunResult {
        kind,
        count: args.count,
        ours,
        ours_single,
        pillow,
        vips,
        peak_kib,
    })
}

fn print_table(results: &[RunResult], cores: usize) {
    println!();
    println!(
        "{:<5} {:<26} {:>8} {:>9} {:>8} {:>9}",
        "run", "way", "wall s", "ms/image", "CPU s", "CPU ms/im"
    );
    for r in results {
        let n = r.count as f64;
        let ours_label = format!("ours ({cores} threads)");
        let rows: [(&str, Option<Measure>); 4] = [
            (&ours_label, Some(r.ours)),
            ("ours (1 thread)", Some(r.ours_single)),
            ("Pillow", r.pillow),
            ("vipsthumbnail", r.vips),
        ];
        for (way, measure) in rows {
            match measure {
                Some(m) => println!(
                    "{:<5} {:<26} {:>8.2} {:>9.0} {:>8.2} {:>9.0}",
                    r.kind.name(),
                    way,
                    secs(m.wall),
                    secs(m.wall) * 1000.0 / n,
                    m.cpu,
                    m.cpu * 1000.0 / n
                ),
                None => println!("{:<5} {:<26} {:>8}", r.kind.name(), way, "n/a"),
            }
        }
    }
    println!();
}

fn run() -> Result<bool, String> {
    let args = parse_args()?;
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    println!(
        "slideshow-bench: {} inputs per run -> JPEG q90 inside 1080x1920, {cores} cores, \
         1-min load average {}",
        args.count,
        load_average()
    );
    let mut results = Vec::new();
    for kind in &args.kinds {
        results.push(one_run(&args, *kind, dir.path(), cores)?);
    }
    print_table(&results, cores);

    let mut all_pass = true;
    for r in &results {
        let name = r.kind.name();
        match (r.kind, r.pillow, r.vips) {
            (Kind::Png, pillow, vips) => {
                let checks = [
                    ("Pillow", pillow, PILLOW_TARGET),
                    ("vipsthumbnail", vips, VIPS_TARGET),
                ];
                for (way, measure, target) in checks {
                    match measure {
                        Some(m) => {
                            let ratio = secs(m.wall) / secs(r.ours.wall);
                            let pass = ratio >= target;
                            all_pass &= pass;
                            println!(
                                "{name}: wall-time speed-up vs {way}: {ratio:.2}x (target >= {target}x)  {}",
                                verdict(pass)
                            );
                        }
                        None => {
                            all_pass = false;
                            println!("{name}: speed-up vs {way}: not measured  FAIL");
                        }
                    }
                }
                match r.peak_kib {
                    Some(kib) => {
                        let mib = kib as f64 / 1024.0;
                        let pass = mib <= PEAK_RSS_TARGET_MIB;
                        all_pass &= pass;
                        println!(
                            "{name}: peak RSS during ours: {mib:.0} MiB (target <= {PEAK_RSS_TARGET_MIB} MiB)  {}",
                            verdict(pass)
                        );
                    }
                    None => {
                        all_pass = false;
                        println!(
                            "{name}: peak RSS could not be measured (/proc/self/clear_refs)  FAIL"
                        );
                    }
                }
            }
            (Kind::Jpeg, _, Some(vips)) => {
                let ratio = vips.cpu / r.ours.cpu.max(1e-9);
                let pass = ratio >= JPEG_VIPS_CPU_TARGET;
                all_pass &= pass;
                println!(
                    "{name}: CPU time of vipsthumbnail / ours: {ratio:.2}x (target >= {JPEG_VIPS_CPU_TARGET}x)  {}",
                    verdict(pass)
                );
            }
            (Kind::Jpeg, _, None) => {
                all_pass = false;
                println!("{name}: vipsthumbnail not measured  FAIL");
            }
            (Kind::Heic, pillow, vips) => {
                for (way, measure) in [("Pillow + pillow-heif", pillow), ("vipsthumbnail", vips)] {
                    if let Some(m) = measure {
                        println!(
                            "{name}: CPU time of {way} / ours: {:.2}x, wall {:.2}x (no target)",
                            m.cpu / r.ours.cpu.max(1e-9),
                            secs(m.wall) / secs(r.ours.wall)
                        );
                    }
                }
            }
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
