//! Every chunk plan the client makes, over sizes from 1 byte to 4 GB, is one
//! the simulator's init accepts; and the simulator refuses the plans that
//! break a rule.

use proptest::prelude::*;
use shared::tiktok::ChunkPlan;
use shared::tiktok::chunk_plan::{MAX_VIDEO_SIZE, MIN_CHUNK_SIZE};

fn sim_accepts(plan: &ChunkPlan) -> Result<(), &'static str> {
    tiktok_sim::ChunkPlan::validate(
        plan.video_size as i64,
        plan.chunk_size as i64,
        plan.total_chunk_count as i64,
        MAX_VIDEO_SIZE,
    )
    .map(|_| ())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn every_plan_is_accepted_by_the_simulator(
        size in 1u64..=MAX_VIDEO_SIZE,
        preferred in 0u64..=200_000_000,
    ) {
        let plan = ChunkPlan::new(size, preferred).unwrap();
        prop_assert!(plan.validate().is_ok());
        prop_assert_eq!(sim_accepts(&plan), Ok(()), "plan {:?}", plan);
    }

    #[test]
    fn small_and_boundary_sizes_are_accepted(
        size in prop_oneof![
            1u64..=MIN_CHUNK_SIZE + 10,
            63_999_000u64..=64_001_000,
            127_999_000u64..=128_001_000,
            MAX_VIDEO_SIZE - 1000..=MAX_VIDEO_SIZE,
        ],
        preferred in prop_oneof![Just(0u64), Just(MIN_CHUNK_SIZE), Just(64_000_000u64), 1u64..=u64::MAX],
    ) {
        let plan = ChunkPlan::new(size, preferred).unwrap();
        prop_assert_eq!(sim_accepts(&plan), Ok(()), "plan {:?}", plan);
    }

    /// A count from ceil instead of floor (a bug seen in the wild) is refused.
    #[test]
    fn ceil_counts_are_refused(size in 64_000_001u64..=MAX_VIDEO_SIZE) {
        let plan = ChunkPlan::new(size, 10_000_000).unwrap();
        prop_assume!(size % plan.chunk_size != 0);
        let ceil = plan.total_chunk_count + 1;
        prop_assert!(tiktok_sim::ChunkPlan::validate(
            size as i64, plan.chunk_size as i64, ceil as i64, MAX_VIDEO_SIZE).is_err());
    }
}

#[test]
fn beyond_the_limits_there_is_no_plan() {
    assert!(ChunkPlan::new(0, 10_000_000).is_err());
    assert!(ChunkPlan::new(MAX_VIDEO_SIZE + 1, 10_000_000).is_err());
}
