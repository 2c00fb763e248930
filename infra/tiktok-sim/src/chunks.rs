//! TikTok's FILE_UPLOAD chunk maths, read the strictest way the project's clients must
//! survive (see ARCHITECTURE.md, "Decisions on the API's open points").

/// Largest single chunk, and largest chunk of a multi-chunk upload: "64 MB" read as 10^6.
pub const MAX_CHUNK: u64 = 64_000_000;
/// Smallest chunk of a multi-chunk upload: "5 MB" read as 2^20.
pub const MIN_CHUNK: u64 = 5 * 1024 * 1024;
/// The last chunk absorbs the remainder and may grow up to this.
pub const MAX_LAST_CHUNK: u64 = 128_000_000;
pub const MAX_CHUNKS: u64 = 1000;

/// The message real TikTok sends with `invalid_params` for any chunk problem.
pub const CHUNK_ERROR_MESSAGE: &str = "The chunk size is invalid";

/// A validated chunk plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPlan {
    pub video_size: u64,
    pub chunk_size: u64,
    pub total_chunk_count: u64,
}

impl ChunkPlan {
    /// Checks an init's numbers. The reason is for logs; TikTok only says
    /// [`CHUNK_ERROR_MESSAGE`].
    pub fn validate(
        video_size: i64,
        chunk_size: i64,
        total_chunk_count: i64,
        max_video_bytes: u64,
    ) -> Result<Self, &'static str> {
        let (Ok(video_size), Ok(chunk_size), Ok(total_chunk_count)) = (
            u64::try_from(video_size),
            u64::try_from(chunk_size),
            u64::try_from(total_chunk_count),
        ) else {
            return Err("negative size or count");
        };
        if video_size == 0 || video_size > max_video_bytes {
            return Err("video_size out of range");
        }
        if chunk_size == 0 || chunk_size > video_size {
            return Err("chunk_size out of range");
        }
        if total_chunk_count != video_size / chunk_size {
            return Err("total_chunk_count is not floor(video_size / chunk_size)");
        }
        if total_chunk_count == 1 {
            if chunk_size != video_size {
                return Err("a single chunk must be the whole video");
            }
            if video_size > MAX_CHUNK {
                return Err("a single chunk is larger than 64,000,000 bytes");
            }
        } else {
            if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk_size) {
                return Err("chunk_size outside 5 MiB..=64,000,000 bytes");
            }
            if chunk_size + video_size % chunk_size > MAX_LAST_CHUNK {
                return Err("last chunk larger than 128,000,000 bytes");
            }
            if total_chunk_count > MAX_CHUNKS {
                return Err("more than 1000 chunks");
            }
        }
        Ok(Self {
            video_size,
            chunk_size,
            total_chunk_count,
        })
    }

    /// Length of the chunk that must start at `offset` (a multiple of `chunk_size`); the last
    /// chunk takes the remainder.
    pub fn chunk_len_at(&self, offset: u64) -> u64 {
        let index = offset / self.chunk_size;
        if index + 1 >= self.total_chunk_count {
            self.video_size - offset
        } else {
            self.chunk_size
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = 4_000_000_000;

    fn ok(size: i64, chunk: i64, count: i64) -> bool {
        ChunkPlan::validate(size, chunk, count, MAX).is_ok()
    }

    #[test]
    fn accept_reject_table() {
        // (video_size, chunk_size, total_chunk_count, accepted)
        let table: &[(i64, i64, i64, bool)] = &[
            (1, 1, 1, true),
            (5 * 1024 * 1024 - 1, 5 * 1024 * 1024 - 1, 1, true),
            (64_000_000, 64_000_000, 1, true),
            (64_000_001, 64_000_001, 1, false),
            (300_000_000, 10_000_000, 30, true),
            (50_000_123, 10_000_000, 5, true),
            (50_000_123, 10_000_000, 6, false), // ceil instead of floor
            (10_000_000, 5_000_000, 2, false),  // chunk below 5 MiB
            (20_000_000, 10_000_000, 1, false), // wrong count
            (1000, 500, 2, false),              // small chunks
            (100_000_000, 64_000_000, 1, false), // one chunk above 64 MB
            (0, 0, 0, false),
            (-1, 1, 1, false),
            (4_000_000_001, 10_000_000, 400, false),
            (10_000_000_000, 10_000_000, 1000, false), // above max video size
            (127_000_000, 63_500_000, 2, true),
        ];
        for &(size, chunk, count, expected) in table {
            assert_eq!(ok(size, chunk, count), expected, "{size} {chunk} {count}");
        }
    }

    #[test]
    fn more_than_1000_chunks_rejected() {
        // 1000 chunks of 5 MiB exceed 4 GB, so lift the size limit for this check.
        let chunk = MIN_CHUNK as i64;
        let max = 10_000_000_000;
        assert!(ChunkPlan::validate(chunk * 1000, chunk, 1000, max).is_ok());
        assert!(ChunkPlan::validate(chunk * 1001, chunk, 1001, max).is_err());
    }

    #[test]
    fn last_chunk_absorbs_remainder() {
        let plan = ChunkPlan::validate(50_000_123, 10_000_000, 5, MAX).expect("valid plan");
        assert_eq!(plan.chunk_len_at(0), 10_000_000);
        assert_eq!(plan.chunk_len_at(30_000_000), 10_000_000);
        assert_eq!(plan.chunk_len_at(40_000_000), 10_000_123);
    }
}
