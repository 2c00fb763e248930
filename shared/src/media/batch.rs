//! Converting a slideshow's photos together: lazily opened sources, a
//! capped worker pool, and a pixel-memory budget the workers share.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Seek};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

use rayon::prelude::*;
use thiserror::Error;

use super::convert::{
    ConvertError, ConvertedPhoto, PIXEL_BUDGET_BYTES, PhotoLimits, convert_within,
};

/// The shared pixel budget of a [`convert_all`] batch.
pub(super) struct PixelBudget {
    available: Mutex<u64>,
    freed: Condvar,
}

/// Bytes taken from a [`PixelBudget`], given back when dropped.
pub(super) struct Reservation<'a> {
    budget: &'a PixelBudget,
    bytes: u64,
}

impl PixelBudget {
    fn new(bytes: u64) -> Self {
        PixelBudget {
            available: Mutex::new(bytes),
            freed: Condvar::new(),
        }
    }

    /// Waits until `bytes` are free and takes them. A request is never
    /// larger than the budget ([`MAX_PIXEL_BYTES`] is checked first), so
    /// it is always met once the other workers finish.
    pub(super) fn reserve(&self, bytes: u64) -> Reservation<'_> {
        let bytes = bytes.min(PIXEL_BUDGET_BYTES);
        // A worker that panicked while holding the lock changed nothing
        // but the counter, which its reservation's drop restores.
        let mut available = self.available.lock().unwrap_or_else(|e| e.into_inner());
        while *available < bytes {
            available = self
                .freed
                .wait(available)
                .unwrap_or_else(|e| e.into_inner());
        }
        *available -= bytes;
        Reservation {
            budget: self,
            bytes,
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut available = self
            .budget
            .available
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *available += self.bytes;
        self.budget.freed.notify_all();
    }
}

/// A buffered, seekable reader of an encoded image, as the decoders need.
pub trait PhotoReader: BufRead + Seek + Send {}

impl<T: BufRead + Seek + Send> PhotoReader for T {}

/// Something [`convert_all`] can convert: a name for messages and a way to
/// read the bytes when a worker is ready for them.
///
/// Opening lazily matters: 35 photo-like 12 MP PNGs are about 1 GB encoded,
/// far more than the conversion itself needs; a worker that opens its input
/// just before converting it keeps only the images in flight in memory, and
/// a file source streams through the decoder instead of being read whole.
pub trait PhotoSource {
    /// The name used in errors (the manifest's file name).
    fn name(&self) -> &str;
    /// Opens the encoded image, positioned at its start.
    fn open(&self) -> Result<Box<dyn PhotoReader + '_>, std::io::Error>;
}

/// An image already in memory.
#[derive(Debug, Clone)]
pub struct PhotoBytes {
    /// How the image is named in errors: its file name or key.
    pub name: String,
    /// The encoded image (JPEG, PNG, HEIC, …), as uploaded.
    pub bytes: Vec<u8>,
}

impl PhotoSource for PhotoBytes {
    fn name(&self) -> &str {
        &self.name
    }
    fn open(&self) -> Result<Box<dyn PhotoReader + '_>, std::io::Error> {
        Ok(Box::new(Cursor::new(self.bytes.as_slice())))
    }
}

/// An image in a local file (for example one downloaded to Lambda's /tmp),
/// opened when a worker takes it and streamed through the decoder.
#[derive(Debug, Clone)]
pub struct PhotoFile {
    /// How the image is named in errors: its file name or key.
    pub name: String,
    /// Where the encoded image is on disk.
    pub path: PathBuf,
}

/// Read buffer for [`PhotoFile`]: large enough that the decoder's small
/// reads do not each become a system call.
const FILE_BUFFER_BYTES: usize = 256 * 1024;

impl PhotoSource for PhotoFile {
    fn name(&self) -> &str {
        &self.name
    }
    fn open(&self) -> Result<Box<dyn PhotoReader + '_>, std::io::Error> {
        let file = File::open(&self.path)?;
        Ok(Box::new(BufReader::with_capacity(FILE_BUFFER_BYTES, file)))
    }
}

/// A conversion failure in a batch, naming the image.
#[derive(Debug, Error)]
#[error("images[{index}] {name:?}: {source}")]
pub struct PhotoError {
    /// Position in the input (and manifest) order.
    pub index: usize,
    /// The source's name.
    pub name: String,
    /// Why it could not be converted.
    #[source]
    pub source: ConvertError,
}

/// How many workers [`convert_all`] uses: `max_threads` but no more than the
/// machine's cores, and at least 1.
pub fn worker_count(max_threads: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    max_threads.min(cores).max(1)
}

/// Converts every input with
/// [`to_tiktok_jpeg`](super::convert::to_tiktok_jpeg), in parallel,
/// returning one result per input in input order.
///
/// Workers are capped at [`worker_count`]`(max_threads)`: each 12 MP image
/// needs about 70 MB while in flight, and unbounded parallelism was measured
/// at 1.8 GB, past small Lambda sizes (which also get only about one vCPU
/// per 1,769 MB, so more threads would not be faster), and their pixel
/// buffers share [`PIXEL_BUDGET_BYTES`], so two huge images are converted
/// one after the other rather than together. A failing image does
/// not stop the others; its error names it. Should the worker pool not
/// start, the images are converted one after another on this thread.
pub fn convert_all<S: PhotoSource + Sync>(
    inputs: &[S],
    limits: &PhotoLimits,
    max_threads: usize,
) -> Vec<Result<ConvertedPhoto, PhotoError>> {
    let budget = PixelBudget::new(PIXEL_BUDGET_BYTES);
    let convert_one = |(index, source): (usize, &S)| {
        let result = source
            .open()
            .map_err(ConvertError::Read)
            .and_then(|reader| convert_within(reader, limits, Some(&budget)));
        result.map_err(|error| PhotoError {
            index,
            name: source.name().to_string(),
            source: error,
        })
    };
    let threads = worker_count(max_threads);
    if threads == 1 {
        return inputs.iter().enumerate().map(convert_one).collect();
    }
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("photo-convert-{i}"))
        .build()
    {
        Ok(pool) => pool.install(|| {
            inputs
                .par_iter()
                .enumerate()
                // One image per task, so a slow image never holds a queue.
                .with_max_len(1)
                .map(convert_one)
                .collect()
        }),
        Err(error) => {
            tracing::warn!(%error, "photo worker pool did not start; converting sequentially");
            inputs.iter().enumerate().map(convert_one).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::convert::MAX_PIXEL_BYTES;

    #[test]
    fn the_pixel_budget_is_given_back_and_never_overdrawn() {
        let budget = PixelBudget::new(PIXEL_BUDGET_BYTES);
        {
            let _a = budget.reserve(MAX_PIXEL_BYTES);
            let _b = budget.reserve(MAX_PIXEL_BYTES);
            assert_eq!(*budget.available.lock().unwrap(), 0);
        }
        assert_eq!(*budget.available.lock().unwrap(), PIXEL_BUDGET_BYTES);

        // Four threads that each need more than half the budget: they must
        // take turns, whatever the scheduling.
        let in_flight = std::sync::atomic::AtomicUsize::new(0);
        let most = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        let _held = budget.reserve(PIXEL_BUDGET_BYTES / 2 + 1);
                        let now = in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                        for _ in 0..100 {
                            std::thread::yield_now();
                        }
                        in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(most.into_inner(), 1);
        assert_eq!(*budget.available.lock().unwrap(), PIXEL_BUDGET_BYTES);
    }

    #[test]
    fn worker_count_is_capped() {
        assert_eq!(worker_count(0), 1);
        assert!(worker_count(10_000) >= 1);
        assert!(worker_count(1) == 1);
    }
}
