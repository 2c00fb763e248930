//! Chunk plan for FILE_UPLOAD (see ARCHITECTURE.md, "Decisions on the API's
//! open points", and TIKTOK_API.md section 3).
//!
//! TikTok wants `video_size`, `chunk_size` and `total_chunk_count` at init and
//! then exactly those chunks, in order. Its documentation leaves open whether
//! "MB" means 10^6 or 2^20 bytes, and peers that sent a single chunk of 64 MiB
//! broke above 64,000,000 bytes. So every bound here takes the reading that is
//! safe under both: the *upper* bounds in 10^6 bytes, the *lower* bound in
//! 2^20 bytes.
//!
//! The plan is pure arithmetic: no I/O, so the uploader, the job record and
//! the TikTok simulator can all share it.

use serde::{Deserialize, Serialize};

/// Smallest chunk TikTok accepts when a video goes up in several chunks
/// (5 MB, read as the larger 5 MiB so both readings are satisfied).
pub const MIN_CHUNK_SIZE: u64 = 5 * 1024 * 1024;
/// Largest regular chunk (64 MB, read as the smaller 64,000,000 bytes).
pub const MAX_CHUNK_SIZE: u64 = 64_000_000;
/// Largest video sent as one single chunk. Above this TikTok demands several
/// chunks (and rejects 64–128 MB single chunks in practice).
pub const MAX_SINGLE_CHUNK: u64 = 64_000_000;
/// The last chunk absorbs the remainder and may grow up to 128 MB.
pub const MAX_LAST_CHUNK: u64 = 128_000_000;
/// At most this many chunks per upload.
pub const MAX_CHUNKS: u64 = 1000;
/// Largest video TikTok documents (4 GB).
pub const MAX_VIDEO_SIZE: u64 = 4_000_000_000;
/// Chunk size used when the caller has no preference: the size of the docs'
/// own example, small enough that a retried chunk is cheap.
pub const DEFAULT_CHUNK_SIZE: u64 = 10_000_000;

/// Why a chunk plan cannot be built, or why a given plan breaks TikTok's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkPlanError {
    /// A zero-byte video.
    #[error("the video is empty; TikTok needs at least one byte")]
    Empty,
    /// The video is over [`MAX_VIDEO_SIZE`].
    #[error("the video is {video_size} bytes; TikTok accepts at most {MAX_VIDEO_SIZE}")]
    TooLarge {
        /// The video's size in bytes.
        video_size: u64,
    },
    /// A plan with a chunk size of zero.
    #[error("the chunk size is zero")]
    ZeroChunkSize,
    /// The chunk size exceeds the video, so no whole chunk fits.
    #[error("the chunk size ({chunk_size}) is larger than the video ({video_size} bytes)")]
    ChunkLargerThanVideo {
        /// The chunk size in bytes.
        chunk_size: u64,
        /// The video's size in bytes.
        video_size: u64,
    },
    /// The plan's chunk count is not `floor(video_size / chunk_size)`.
    #[error(
        "total_chunk_count is {actual} but floor(video_size / chunk_size) is {expected}; \
         TikTok computes it with floor"
    )]
    CountMismatch {
        /// `floor(video_size / chunk_size)`.
        expected: u64,
        /// The count the plan has.
        actual: u64,
    },
    /// Zero chunks, or more than [`MAX_CHUNKS`].
    #[error("{count} chunks; TikTok accepts 1 to {MAX_CHUNKS}")]
    ChunkCount {
        /// The number of chunks the plan would have.
        count: u64,
    },
    /// A one-chunk plan whose chunk size is not the video's size.
    #[error(
        "a single chunk must carry the whole video (chunk_size {chunk_size}, video {video_size} bytes)"
    )]
    SingleChunkNotWhole {
        /// The chunk size in bytes.
        chunk_size: u64,
        /// The video's size in bytes.
        video_size: u64,
    },
    /// A one-chunk plan for a video over [`MAX_SINGLE_CHUNK`].
    #[error(
        "the video is {video_size} bytes; above {MAX_SINGLE_CHUNK} it must go up in several chunks"
    )]
    SingleChunkTooLarge {
        /// The video's size in bytes.
        video_size: u64,
    },
    /// Several chunks of less than [`MIN_CHUNK_SIZE`] each.
    #[error("chunk size {chunk_size} is below the minimum of {MIN_CHUNK_SIZE} bytes")]
    ChunkTooSmall {
        /// The chunk size in bytes.
        chunk_size: u64,
    },
    /// Several chunks of more than [`MAX_CHUNK_SIZE`] each.
    #[error("chunk size {chunk_size} is above the maximum of {MAX_CHUNK_SIZE} bytes")]
    ChunkTooLarge {
        /// The chunk size in bytes.
        chunk_size: u64,
    },
    /// The remainder would make the last chunk longer than
    /// [`MAX_LAST_CHUNK`].
    #[error("the last chunk would be {len} bytes; TikTok accepts at most {MAX_LAST_CHUNK}")]
    LastChunkTooLarge {
        /// The last chunk's length in bytes.
        len: u64,
    },
}

/// How a video is cut into chunks: the three numbers sent at init.
///
/// `total_chunk_count` is `floor(video_size / chunk_size)` and the last chunk
/// takes the remainder, so it is between `chunk_size` and `2 * chunk_size - 1`
/// bytes long.
///
/// The fields are public because they are what init sends, but build plans
/// with [`ChunkPlan::new`] (our policy) or [`ChunkPlan::with_chunk_size`]
/// (TikTok's rules); deserialising checks the arithmetic so that a corrupted
/// job record cannot produce a plan whose chunks do not add up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawChunkPlan")]
pub struct ChunkPlan {
    /// The whole video, in bytes.
    pub video_size: u64,
    /// The length of every chunk but the last, in bytes.
    pub chunk_size: u64,
    /// How many chunks: `floor(video_size / chunk_size)`.
    pub total_chunk_count: u64,
}

/// The serialised shape of [`ChunkPlan`], checked on the way in.
#[derive(Deserialize)]
struct RawChunkPlan {
    video_size: u64,
    chunk_size: u64,
    total_chunk_count: u64,
}

impl TryFrom<RawChunkPlan> for ChunkPlan {
    type Error = ChunkPlanError;

    fn try_from(raw: RawChunkPlan) -> Result<Self, Self::Error> {
        let plan = ChunkPlan {
            video_size: raw.video_size,
            chunk_size: raw.chunk_size,
            total_chunk_count: raw.total_chunk_count,
        };
        plan.check_structure()?;
        Ok(plan)
    }
}

/// One chunk of a plan: bytes `start..end` (end exclusive) of the video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Chunk {
    /// Zero-based position of the chunk in the plan.
    pub index: u64,
    /// Offset of the chunk's first byte.
    pub start: u64,
    /// Offset just past the chunk's last byte.
    pub end: u64,
}

impl Chunk {
    /// Number of bytes in the chunk (what goes in `Content-Length`).
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the chunk has no bytes; never true for chunks of a valid plan.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `Content-Range` request header for this chunk:
    /// `bytes {first}-{last}/{total}` with `last` inclusive and `total` the
    /// whole video size (two early peers sent the chunk length as the total).
    pub fn content_range(&self, total: u64) -> String {
        format!(
            "bytes {}-{}/{}",
            self.start,
            self.end.saturating_sub(1),
            total
        )
    }
}

impl ChunkPlan {
    /// Plans an upload the way this project sends it.
    ///
    /// Up to [`MAX_SINGLE_CHUNK`] bytes the video goes up whole, as one chunk
    /// of `video_size` bytes (that satisfies every reading of the docs,
    /// including the claim that a lone chunk must equal the video size).
    /// Above it, `preferred_chunk_size` is clamped to
    /// [`MIN_CHUNK_SIZE`]..=[`MAX_CHUNK_SIZE`], lowered if needed to give at
    /// least two chunks and raised if needed to stay within [`MAX_CHUNKS`].
    pub fn new(video_size: u64, preferred_chunk_size: u64) -> Result<ChunkPlan, ChunkPlanError> {
        check_video_size(video_size)?;
        if video_size <= MAX_SINGLE_CHUNK {
            return Ok(ChunkPlan {
                video_size,
                chunk_size: video_size,
                total_chunk_count: 1,
            });
        }

        let mut chunk_size = preferred_chunk_size.clamp(MIN_CHUNK_SIZE, MAX_CHUNK_SIZE);
        // floor(size / c) <= MAX_CHUNKS  <=>  c > size / (MAX_CHUNKS + 1).
        let fewest_bytes_for_count = video_size / (MAX_CHUNKS + 1) + 1;
        chunk_size = chunk_size.max(fewest_bytes_for_count);
        // floor(size / c) >= 2  <=>  c <= size / 2. Above MAX_SINGLE_CHUNK,
        // size / 2 is over 32 MB, so this never goes below MIN_CHUNK_SIZE.
        chunk_size = chunk_size.min(video_size / 2);

        let plan = ChunkPlan {
            video_size,
            chunk_size,
            total_chunk_count: video_size / chunk_size,
        };
        // The bounds above cannot conflict for sizes up to MAX_VIDEO_SIZE; the
        // check keeps that claim honest instead of trusting it.
        plan.validate()?;
        Ok(plan)
    }

    /// Plans an upload with exactly `chunk_size`-byte chunks, accepting any
    /// plan TikTok's rules allow (see [`ChunkPlan::validate`]); unlike
    /// [`ChunkPlan::new`] it may cut a video of 64,000,000 bytes or less into
    /// several chunks, as the docs' worked example does.
    pub fn with_chunk_size(video_size: u64, chunk_size: u64) -> Result<ChunkPlan, ChunkPlanError> {
        let plan = Self::with_chunk_size_unchecked(video_size, chunk_size)?;
        plan.validate()?;
        Ok(plan)
    }

    /// Builds a plan with `chunk_size`-byte chunks, checking only that the
    /// arithmetic holds (a non-empty video, `0 < chunk_size <= video_size`),
    /// not TikTok's size limits.
    ///
    /// For tests and benchmarks, which need plans of a few kilobytes; never
    /// send such a plan to TikTok.
    pub fn with_chunk_size_unchecked(
        video_size: u64,
        chunk_size: u64,
    ) -> Result<ChunkPlan, ChunkPlanError> {
        if video_size == 0 {
            return Err(ChunkPlanError::Empty);
        }
        if chunk_size == 0 {
            return Err(ChunkPlanError::ZeroChunkSize);
        }
        if chunk_size > video_size {
            return Err(ChunkPlanError::ChunkLargerThanVideo {
                chunk_size,
                video_size,
            });
        }
        Ok(ChunkPlan {
            video_size,
            chunk_size,
            total_chunk_count: video_size / chunk_size,
        })
    }

    /// Checks the plan against every rule of TikTok's, read the safe way:
    ///
    /// - 1 ..= [`MAX_VIDEO_SIZE`] bytes;
    /// - `total_chunk_count == floor(video_size / chunk_size)`, 1 ..= [`MAX_CHUNKS`];
    /// - one chunk: `chunk_size == video_size <= MAX_SINGLE_CHUNK`;
    /// - several chunks: [`MIN_CHUNK_SIZE`] <= `chunk_size` <= [`MAX_CHUNK_SIZE`]
    ///   and the last chunk (`chunk_size + video_size % chunk_size`) at most
    ///   [`MAX_LAST_CHUNK`].
    ///
    /// It does not insist on our own preference for a single chunk up to
    /// 64,000,000 bytes, so a strict server can use it as its reference.
    pub fn validate(&self) -> Result<(), ChunkPlanError> {
        check_video_size(self.video_size)?;
        self.check_structure()?;
        if self.total_chunk_count > MAX_CHUNKS {
            return Err(ChunkPlanError::ChunkCount {
                count: self.total_chunk_count,
            });
        }
        if self.total_chunk_count == 1 {
            if self.chunk_size != self.video_size {
                return Err(ChunkPlanError::SingleChunkNotWhole {
                    chunk_size: self.chunk_size,
                    video_size: self.video_size,
                });
            }
            if self.video_size > MAX_SINGLE_CHUNK {
                return Err(ChunkPlanError::SingleChunkTooLarge {
                    video_size: self.video_size,
                });
            }
            return Ok(());
        }
        if self.chunk_size < MIN_CHUNK_SIZE {
            return Err(ChunkPlanError::ChunkTooSmall {
                chunk_size: self.chunk_size,
            });
        }
        if self.chunk_size > MAX_CHUNK_SIZE {
            return Err(ChunkPlanError::ChunkTooLarge {
                chunk_size: self.chunk_size,
            });
        }
        let last = self.last_chunk_len();
        if last > MAX_LAST_CHUNK {
            return Err(ChunkPlanError::LastChunkTooLarge { len: last });
        }
        Ok(())
    }

    /// The arithmetic every method relies on, whatever the size limits:
    /// a non-empty video, a chunk size in `1..=video_size` and the floor count.
    pub(crate) fn check_structure(&self) -> Result<(), ChunkPlanError> {
        if self.video_size == 0 {
            return Err(ChunkPlanError::Empty);
        }
        if self.chunk_size == 0 {
            return Err(ChunkPlanError::ZeroChunkSize);
        }
        if self.chunk_size > self.video_size {
            return Err(ChunkPlanError::ChunkLargerThanVideo {
                chunk_size: self.chunk_size,
                video_size: self.video_size,
            });
        }
        let expected = self.video_size / self.chunk_size;
        if self.total_chunk_count != expected {
            return Err(ChunkPlanError::CountMismatch {
                expected,
                actual: self.total_chunk_count,
            });
        }
        Ok(())
    }

    /// Length of the last chunk: `chunk_size` plus the remainder (0 for an
    /// inconsistent hand-built plan).
    pub fn last_chunk_len(&self) -> u64 {
        self.total_chunk_count
            .checked_sub(1)
            .and_then(|index| self.chunk(index))
            .map_or(0, |chunk| chunk.len())
    }

    /// The chunk at `index`, or `None` past the end (or for an inconsistent plan).
    pub fn chunk(&self, index: u64) -> Option<Chunk> {
        if self.check_structure().is_err() || index >= self.total_chunk_count {
            return None;
        }
        let start = index * self.chunk_size;
        let end = if index + 1 == self.total_chunk_count {
            self.video_size
        } else {
            start + self.chunk_size
        };
        Some(Chunk { index, start, end })
    }

    /// All chunks, in upload order.
    pub fn chunks(&self) -> Chunks {
        Chunks {
            plan: *self,
            next: 0,
        }
    }

    /// The chunk that starts exactly at `offset`, if one does.
    pub fn chunk_at_offset(&self, offset: u64) -> Option<Chunk> {
        if self.chunk_size == 0 || !offset.is_multiple_of(self.chunk_size) {
            return None;
        }
        self.chunk(offset / self.chunk_size)
    }

    /// The largest chunk start at or below `offset`, or `video_size` when
    /// `offset >= video_size` (everything is there).
    ///
    /// The uploader resumes from here after the server reports its progress.
    pub fn boundary_at_or_below(&self, offset: u64) -> u64 {
        if offset >= self.video_size {
            return self.video_size;
        }
        if self.chunk_size == 0 || self.total_chunk_count == 0 {
            return 0;
        }
        let index = (offset / self.chunk_size).min(self.total_chunk_count - 1);
        index.saturating_mul(self.chunk_size)
    }
}

/// Iterator over the chunks of a [`ChunkPlan`], from [`ChunkPlan::chunks`].
#[derive(Debug, Clone)]
pub struct Chunks {
    plan: ChunkPlan,
    next: u64,
}

impl Iterator for Chunks {
    type Item = Chunk;

    fn next(&mut self) -> Option<Chunk> {
        let chunk = self.plan.chunk(self.next)?;
        self.next += 1;
        Some(chunk)
    }
}

fn check_video_size(video_size: u64) -> Result<(), ChunkPlanError> {
    if video_size == 0 {
        return Err(ChunkPlanError::Empty);
    }
    if video_size > MAX_VIDEO_SIZE {
        return Err(ChunkPlanError::TooLarge { video_size });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_worked_example_with_explicit_chunk_size() {
        let plan = ChunkPlan::with_chunk_size(50_000_123, 10_000_000).unwrap();
        assert_eq!(plan.total_chunk_count, 5);
        let last = plan.chunk(4).unwrap();
        assert_eq!(last.len(), 10_000_123);
        assert_eq!((last.start, last.end), (40_000_000, 50_000_123));
        assert_eq!(
            last.content_range(50_000_123),
            "bytes 40000000-50000122/50000123"
        );
        assert_eq!(plan.chunk(5), None);
    }

    #[test]
    fn docs_worked_example_size_is_one_chunk_under_our_policy() {
        let plan = ChunkPlan::new(50_000_123, 10_000_000).unwrap();
        assert_eq!(plan.total_chunk_count, 1);
        assert_eq!(plan.chunk_size, 50_000_123);
    }

    #[test]
    fn boundary_and_offsets() {
        let plan = ChunkPlan::with_chunk_size_unchecked(25, 10).unwrap();
        assert_eq!(plan.total_chunk_count, 2);
        assert_eq!(plan.boundary_at_or_below(0), 0);
        assert_eq!(plan.boundary_at_or_below(9), 0);
        assert_eq!(plan.boundary_at_or_below(10), 10);
        assert_eq!(plan.boundary_at_or_below(24), 10);
        assert_eq!(plan.boundary_at_or_below(25), 25);
        assert_eq!(plan.boundary_at_or_below(u64::MAX), 25);
        assert_eq!(plan.chunk_at_offset(10).map(|c| c.end), Some(25));
        assert_eq!(plan.chunk_at_offset(20), None);
        assert_eq!(plan.chunk_at_offset(5), None);
        assert_eq!(plan.chunk_at_offset(25), None);
    }

    #[test]
    fn hand_built_inconsistent_plan_does_not_panic() {
        let bad = ChunkPlan {
            video_size: 10,
            chunk_size: 0,
            total_chunk_count: 3,
        };
        assert_eq!(bad.chunk(0), None);
        assert_eq!(bad.chunks().count(), 0);
        assert_eq!(bad.chunk_at_offset(0), None);
        assert_eq!(bad.boundary_at_or_below(5), 0);
        assert_eq!(bad.last_chunk_len(), 0);
        assert_eq!(bad.validate(), Err(ChunkPlanError::ZeroChunkSize));
    }

    #[test]
    fn deserialising_checks_the_arithmetic() {
        let good: ChunkPlan = serde_json::from_str(
            r#"{"video_size":300000000,"chunk_size":10000000,"total_chunk_count":30}"#,
        )
        .unwrap();
        assert_eq!(
            good,
            ChunkPlan::new(300_000_000, DEFAULT_CHUNK_SIZE).unwrap()
        );
        let bad = serde_json::from_str::<ChunkPlan>(
            r#"{"video_size":300000000,"chunk_size":10000000,"total_chunk_count":31}"#,
        );
        assert!(bad.is_err());
        let round = serde_json::to_string(&good).unwrap();
        assert_eq!(serde_json::from_str::<ChunkPlan>(&round).unwrap(), good);
    }
}
