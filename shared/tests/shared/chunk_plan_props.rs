//! Properties of the FILE_UPLOAD chunk plan: every plan `ChunkPlan::new`
//! produces obeys every rule of TIKTOK_API.md section 3 (read the safe way, see
//! ARCHITECTURE.md), and `validate` agrees with an independent statement of
//! those rules.

use proptest::prelude::*;
use shared::tiktok::chunk_plan::{
    Chunk, ChunkPlan, ChunkPlanError, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MAX_CHUNKS,
    MAX_LAST_CHUNK, MAX_SINGLE_CHUNK, MAX_VIDEO_SIZE, MIN_CHUNK_SIZE,
};

/// The rules, written out again independently of `validate`.
fn obeys_the_rules(video_size: u64, chunk_size: u64, count: u64) -> bool {
    if video_size == 0 || video_size > MAX_VIDEO_SIZE || chunk_size == 0 {
        return false;
    }
    if count != video_size / chunk_size || !(1..=MAX_CHUNKS).contains(&count) {
        return false;
    }
    if count == 1 {
        return chunk_size == video_size && video_size <= MAX_SINGLE_CHUNK;
    }
    let last = video_size - (count - 1) * chunk_size;
    (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) && last <= MAX_LAST_CHUNK
}

/// Walks the chunks and checks they tile the video exactly.
fn check_tiling(plan: &ChunkPlan) -> Vec<Chunk> {
    let chunks: Vec<Chunk> = plan.chunks().collect();
    assert_eq!(chunks.len() as u64, plan.total_chunk_count);
    let mut expected_start = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk.index, i as u64);
        assert_eq!(chunk.start, expected_start, "chunks must be contiguous");
        assert!(!chunk.is_empty());
        assert_eq!(plan.chunk(chunk.index), Some(*chunk));
        assert_eq!(plan.chunk_at_offset(chunk.start), Some(*chunk));
        if (i as u64) + 1 < plan.total_chunk_count {
            assert_eq!(
                chunk.len(),
                plan.chunk_size,
                "only the last chunk may differ"
            );
        } else {
            assert_eq!(chunk.len(), plan.last_chunk_len());
            assert!(chunk.len() >= plan.chunk_size);
            assert!(chunk.len() < 2 * plan.chunk_size);
        }
        expected_start = chunk.end;
    }
    assert_eq!(
        expected_start, plan.video_size,
        "sizes must sum to the video size"
    );
    assert_eq!(chunks.iter().map(Chunk::len).sum::<u64>(), plan.video_size);
    assert_eq!(plan.chunk(plan.total_chunk_count), None);
    chunks
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_planned_upload_obeys_every_rule(
        video_size in 1..=MAX_VIDEO_SIZE,
        preferred in any::<u64>(),
    ) {
        let plan = ChunkPlan::new(video_size, preferred).unwrap();
        prop_assert_eq!(plan.video_size, video_size);
        prop_assert_eq!(plan.validate(), Ok(()));
        prop_assert!(obeys_the_rules(plan.video_size, plan.chunk_size, plan.total_chunk_count));
        prop_assert_eq!(plan.total_chunk_count, video_size / plan.chunk_size);
        prop_assert!((1..=MAX_CHUNKS).contains(&plan.total_chunk_count));
        prop_assert!(plan.last_chunk_len() <= MAX_LAST_CHUNK);
        if video_size <= MAX_SINGLE_CHUNK {
            prop_assert_eq!(plan.total_chunk_count, 1);
            prop_assert_eq!(plan.chunk_size, video_size);
        } else {
            prop_assert!(plan.total_chunk_count >= 2);
            prop_assert!((MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&plan.chunk_size));
        }
        check_tiling(&plan);
    }

    #[test]
    fn every_plan_with_a_size_near_the_edges_obeys_every_rule(
        video_size in prop_oneof![
            1..=MIN_CHUNK_SIZE + 10,
            MAX_SINGLE_CHUNK - 10..=MAX_SINGLE_CHUNK + 10,
            2 * MAX_CHUNK_SIZE - 10..=2 * MAX_CHUNK_SIZE + 10,
            MAX_VIDEO_SIZE - 10..=MAX_VIDEO_SIZE,
        ],
        preferred in prop_oneof![
            Just(0u64), Just(1), Just(MIN_CHUNK_SIZE - 1), Just(MIN_CHUNK_SIZE),
            Just(MAX_CHUNK_SIZE), Just(MAX_CHUNK_SIZE + 1), Just(u64::MAX), any::<u64>(),
        ],
    ) {
        let plan = ChunkPlan::new(video_size, preferred).unwrap();
        prop_assert_eq!(plan.validate(), Ok(()));
        check_tiling(&plan);
    }

    #[test]
    fn a_workable_preferred_chunk_size_is_kept(
        preferred in MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE,
        video_size in (MAX_SINGLE_CHUNK + 1)..=MAX_VIDEO_SIZE,
    ) {
        prop_assume!(preferred <= video_size / 2);
        let plan = ChunkPlan::new(video_size, preferred).unwrap();
        prop_assert_eq!(plan.chunk_size, preferred);
    }

    #[test]
    fn validate_agrees_with_the_rules(
        video_size in 1..=MAX_VIDEO_SIZE + 1000,
        chunk_size in prop_oneof![
            1..=MAX_LAST_CHUNK,
            MIN_CHUNK_SIZE - 5..=MIN_CHUNK_SIZE + 5,
            MAX_CHUNK_SIZE - 5..=MAX_CHUNK_SIZE + 5,
        ],
    ) {
        let rules = chunk_size <= video_size
            && obeys_the_rules(video_size, chunk_size, video_size / chunk_size);
        let built = ChunkPlan::with_chunk_size(video_size, chunk_size);
        prop_assert_eq!(built.is_ok(), rules, "{:?}", built);
        if let Ok(plan) = built {
            check_tiling(&plan);
        }
    }

    #[test]
    fn boundary_at_or_below_finds_the_chunk_holding_the_offset(
        video_size in 1..=MAX_VIDEO_SIZE,
        preferred in any::<u64>(),
        fraction in 0.0f64..1.2,
    ) {
        let plan = ChunkPlan::new(video_size, preferred).unwrap();
        let offset = (video_size as f64 * fraction) as u64;
        let boundary = plan.boundary_at_or_below(offset);
        if offset >= video_size {
            prop_assert_eq!(boundary, video_size);
        } else {
            prop_assert!(boundary <= offset);
            let chunk = plan.chunk_at_offset(boundary).unwrap();
            prop_assert!(offset < chunk.end);
        }
    }

    #[test]
    fn plans_survive_a_job_record(video_size in 1..=MAX_VIDEO_SIZE, preferred in any::<u64>()) {
        let plan = ChunkPlan::new(video_size, preferred).unwrap();
        let json = serde_json::to_string(&plan).unwrap();
        prop_assert_eq!(serde_json::from_str::<ChunkPlan>(&json).unwrap(), plan);
    }
}

#[test]
fn docs_worked_example() {
    // Under our policy 50,000,123 bytes go up whole...
    let ours = ChunkPlan::new(50_000_123, 10_000_000).unwrap();
    assert_eq!((ours.chunk_size, ours.total_chunk_count), (50_000_123, 1));
    // ...but the docs' explicit 10,000,000-byte plan is valid and reproduced.
    let docs = ChunkPlan::with_chunk_size(50_000_123, 10_000_000).unwrap();
    assert_eq!(docs.total_chunk_count, 5);
    let last = docs.chunk(4).unwrap();
    assert_eq!(last.len(), 10_000_123);
    assert_eq!((last.start, last.end - 1), (40_000_000, 50_000_122));
    assert_eq!(
        last.content_range(docs.video_size),
        "bytes 40000000-50000122/50000123"
    );
    assert_eq!(check_tiling(&docs).len(), 5);
}

#[test]
fn exactly_64_000_000_bytes_is_one_chunk() {
    let plan = ChunkPlan::new(64_000_000, DEFAULT_CHUNK_SIZE).unwrap();
    assert_eq!((plan.chunk_size, plan.total_chunk_count), (64_000_000, 1));
    let plan = ChunkPlan::new(64_000_000, MAX_CHUNK_SIZE).unwrap();
    assert_eq!(plan.total_chunk_count, 1);
}

#[test]
fn one_byte_more_needs_several_chunks() {
    let plan = ChunkPlan::new(64_000_001, DEFAULT_CHUNK_SIZE).unwrap();
    assert_eq!((plan.chunk_size, plan.total_chunk_count), (10_000_000, 6));
    assert_eq!(plan.last_chunk_len(), 14_000_001);
    // Asking for the biggest chunks still gives two.
    let plan = ChunkPlan::new(64_000_001, u64::MAX).unwrap();
    assert_eq!((plan.chunk_size, plan.total_chunk_count), (32_000_000, 2));
    assert_eq!(plan.last_chunk_len(), 32_000_001);
    plan.validate().unwrap();
}

#[test]
fn three_hundred_megabytes_with_the_default() {
    let plan = ChunkPlan::new(300_000_000, DEFAULT_CHUNK_SIZE).unwrap();
    assert_eq!((plan.chunk_size, plan.total_chunk_count), (10_000_000, 30));
    assert_eq!(plan.last_chunk_len(), 10_000_000);
}

#[test]
fn four_gigabytes() {
    let plan = ChunkPlan::new(4_000_000_000, DEFAULT_CHUNK_SIZE).unwrap();
    assert_eq!((plan.chunk_size, plan.total_chunk_count), (10_000_000, 400));
    let plan = ChunkPlan::new(4_000_000_000, MAX_CHUNK_SIZE).unwrap();
    assert_eq!((plan.chunk_size, plan.total_chunk_count), (64_000_000, 62));
    assert_eq!(plan.last_chunk_len(), 96_000_000);
    let plan = ChunkPlan::new(4_000_000_000, 1).unwrap();
    assert_eq!(
        (plan.chunk_size, plan.total_chunk_count),
        (MIN_CHUNK_SIZE, 762)
    );
    assert_eq!(
        ChunkPlan::new(4_000_000_001, DEFAULT_CHUNK_SIZE),
        Err(ChunkPlanError::TooLarge {
            video_size: 4_000_000_001
        })
    );
}

#[test]
fn empty_and_inconsistent_plans_are_refused() {
    assert_eq!(
        ChunkPlan::new(0, DEFAULT_CHUNK_SIZE),
        Err(ChunkPlanError::Empty)
    );
    assert_eq!(
        ChunkPlan::with_chunk_size(100, 0),
        Err(ChunkPlanError::ZeroChunkSize)
    );
    assert!(matches!(
        ChunkPlan::with_chunk_size(100, 101),
        Err(ChunkPlanError::ChunkLargerThanVideo { .. })
    ));
    // A lone chunk must be the whole video (5 MB..64 MB with a smaller chunk).
    assert!(matches!(
        ChunkPlan::with_chunk_size(9_000_000, 5_300_000),
        Err(ChunkPlanError::SingleChunkNotWhole { .. })
    ));
    assert!(matches!(
        ChunkPlan::with_chunk_size(64_000_001, 64_000_001),
        Err(ChunkPlanError::SingleChunkTooLarge { .. })
    ));
    assert!(matches!(
        ChunkPlan::with_chunk_size(100_000_000, 4_000_000),
        Err(ChunkPlanError::ChunkTooSmall { .. })
    ));
    assert!(matches!(
        ChunkPlan::with_chunk_size(200_000_000, 65_000_000),
        Err(ChunkPlanError::ChunkTooLarge { .. })
    ));
    assert!(matches!(
        ChunkPlan::with_chunk_size(4_000_000_000, 1_000_000),
        Err(ChunkPlanError::ChunkCount { count: 4000 })
    ));
    // A ceil-style count, as two early peers sent.
    let ceil = ChunkPlan {
        video_size: 50_000_123,
        chunk_size: 10_000_000,
        total_chunk_count: 6,
    };
    assert_eq!(
        ceil.validate(),
        Err(ChunkPlanError::CountMismatch {
            expected: 5,
            actual: 6
        })
    );
    assert_eq!(ceil.chunk(0), None);
}

#[test]
fn the_last_chunk_absorbs_the_remainder_up_to_128_megabytes() {
    // With 64,000,000-byte chunks the remainder is below 64,000,000, so the
    // last chunk stays under MAX_LAST_CHUNK: the largest one possible.
    let plan = ChunkPlan::with_chunk_size(191_999_999, 64_000_000).unwrap();
    assert_eq!(plan.total_chunk_count, 2);
    assert_eq!(plan.last_chunk_len(), 127_999_999);
    assert!(plan.last_chunk_len() <= MAX_LAST_CHUNK);
}
