//! The job store against local AWS: exactly-once claims, never two inits,
//! optimistic concurrency, the index of unfinished jobs, pending-draft slots
//! and the queue, and the upload URL kept out of logs and errors.
//!
//! The tests crate does not depend on chrono: `SystemTime` converts into the
//! `DateTime<Utc>` the API takes (`.into()` at each call).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::AttributeValue;
use shared::Secret;
use shared::aws::AwsClients;
use shared::jobs::UploadAttempt;
use shared::jobs::{
    Changes, Claim, Job, JobError, JobKind, JobStatus, Jobs, LastError, MAX_PENDING_DRAFTS, NewJob,
    ObjectVersion, PostTarget, SlotDecision, UNFINISHED_SHARDS, Upload,
};
use shared::tiktok::{ChunkPlan, PublishState, PublishStatus};
use tiktok_drafts_tests::{local_aws, unique_name};

// Log capture: one global subscriber for the whole test binary, writing every
// event (ours and the AWS SDK's, at debug level) into a buffer that the
// upload URL test searches.

struct Fixture {
    jobs: Jobs,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
}

async fn fixture() -> Fixture {
    tiktok_drafts_tests::capture_logs();
    let aws = AwsClients::from_config(&local_aws().await);
    let table = unique_name("jobs");
    shared::table::create_table(&aws.dynamodb, &table)
        .await
        .unwrap();
    Fixture {
        jobs: Jobs::new(aws.dynamodb.clone(), table.clone()),
        dynamodb: aws.dynamodb,
        table,
    }
}

const UPLOAD_URL: &str =
    "https://open-upload.tiktokapis.com/video/?upload_id=1&upload_token=SECRET-UPLOAD-TOKEN";
const TOKEN_PART: &str = "SECRET-UPLOAD-TOKEN";

fn now() -> SystemTime {
    SystemTime::now()
}

fn new_job(key: &str, open_id: Option<&str>) -> NewJob {
    NewJob {
        upload: Upload {
            bucket: "drops".into(),
            key: key.into(),
            version: ObjectVersion::etag("\"0123456789abcdef\""),
            size: 1_000,
        },
        alias: Some("alice".into()),
        open_id: open_id.map(str::to_owned),
        kind: JobKind::Video,
        post: PostTarget::Draft,
        caption: Some("my caption 🎉".into()),
    }
}

/// A job of `open_id`'s created at `created`, written by hand as TikTok
/// processing it under `publish_id`, for tests that need many at once.
fn processing_job(key: &str, open_id: &str, created: SystemTime, publish_id: &str) -> Job {
    let mut job = Job::new(new_job(key, Some(open_id)), created.into());
    job.status = JobStatus::Processing;
    job.attempt = UploadAttempt::Pulled {
        publish_id: publish_id.to_owned(),
    };
    job
}

async fn claim_new(f: &Fixture, key: &str, open_id: Option<&str>, at: SystemTime) -> Job {
    match f
        .jobs
        .claim(new_job(key, open_id), at.into())
        .await
        .unwrap()
    {
        Claim::New(job) => job,
        Claim::Existing(job) => panic!("{} was claimed before", job.id),
    }
}

/// The raw job item, to check attributes the API does not show.
async fn raw_job(f: &Fixture, job: &Job) -> HashMap<String, AttributeValue> {
    f.dynamodb
        .get_item()
        .table_name(&f.table)
        .key("pk", AttributeValue::S(format!("JOB#{}", job.id)))
        .key("sk", AttributeValue::S("JOB".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap()
}

/// Every unfinished job over all shards, following pages; and how many index
/// entries DynamoDB read to find them.
async fn all_unfinished(f: &Fixture) -> (Vec<Job>, u32) {
    let mut jobs = Vec::new();
    let mut scanned = 0;
    for shard in 0..UNFINISHED_SHARDS {
        let mut start = None;
        loop {
            let page = f.jobs.unfinished(shard, 2, start).await.unwrap();
            scanned += page.scanned_count;
            jobs.extend(page.jobs);
            match page.next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
    }
    (jobs, scanned)
}

/// Takes a job from `claimed` through init to `processing`.
async fn init_and_send(f: &Fixture, job: &Job) -> Job {
    let plan = ChunkPlan::new(1_000, 10_000_000).unwrap();
    let publish_id = format!("v_inbox_file~v2.{}", &job.id.as_str()[..8]);
    let uploading = f
        .jobs
        .save_init(
            &job.id,
            &publish_id,
            Some(&Secret::new(UPLOAD_URL)),
            Some(&plan),
            now().into(),
        )
        .await
        .unwrap();
    f.jobs
        .transition(
            &uploading,
            JobStatus::Processing,
            Changes::default(),
            now().into(),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn ten_claims_of_one_upload_make_exactly_one_job() {
    let f = fixture().await;
    let key = "uploads/alice/clip.mp4";
    let mut handles = Vec::new();
    for _ in 0..5 {
        let jobs = f.jobs.clone();
        handles.push(tokio::spawn(async move {
            jobs.claim(new_job(key, None), SystemTime::now().into())
                .await
        }));
    }
    let mut claims = Vec::new();
    for handle in handles {
        claims.push(handle.await.unwrap().unwrap());
    }
    for _ in 0..5 {
        claims.push(
            f.jobs
                .claim(new_job(key, None), now().into())
                .await
                .unwrap(),
        );
    }
    assert_eq!(claims.iter().filter(|c| c.is_new()).count(), 1);
    let id = claims[0].job().id.clone();
    assert!(claims.iter().all(|c| c.job().id == id));
    let stored = f.jobs.get(&id).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Claimed);
    assert_eq!(stored.caption.as_deref(), Some("my caption 🎉"));
    // The same key with another version is another upload.
    let mut other = new_job(key, None);
    other.upload.version = ObjectVersion::VersionId("v2".into());
    assert!(f.jobs.claim(other, now().into()).await.unwrap().is_new());
}

#[tokio::test]
async fn a_second_init_is_refused_and_the_first_is_kept_for_resuming() {
    let f = fixture().await;
    let job = claim_new(&f, "uploads/alice/a.mp4", Some("open-a"), now()).await;
    let plan = ChunkPlan::new(200_000_000, 10_000_000).unwrap();
    let saved = f
        .jobs
        .save_init(
            &job.id,
            "v_inbox_file~v2.first",
            Some(&Secret::new(UPLOAD_URL)),
            Some(&plan),
            now().into(),
        )
        .await
        .unwrap();
    assert_eq!(saved.status, JobStatus::Uploading);
    assert_eq!(saved.chunk_plan(), Some(plan));
    assert_eq!(saved.next_offset(), 0);

    let second = f
        .jobs
        .save_init(&job.id, "v_inbox_file~v2.second", None, None, now().into())
        .await
        .unwrap_err();
    match &second {
        JobError::AlreadyInitialised { publish_id, .. } => {
            assert_eq!(publish_id, "v_inbox_file~v2.first")
        }
        other => panic!("expected AlreadyInitialised, got {other:?}"),
    }

    // Progress only moves forward, and only while uploading.
    f.jobs
        .save_progress(&job.id, 20_000_000, now().into())
        .await
        .unwrap();
    let back = f
        .jobs
        .save_progress(&job.id, 10_000_000, now().into())
        .await
        .unwrap_err();
    assert!(matches!(back, JobError::Conflict { .. }), "{back:?}");

    // What a resume needs is all there.
    let resumed = f.jobs.get(&job.id).await.unwrap().unwrap();
    assert_eq!(resumed.publish_id(), Some("v_inbox_file~v2.first"));
    assert_eq!(resumed.upload_url().map(Secret::expose), Some(UPLOAD_URL));
    assert_eq!(resumed.chunk_plan(), Some(plan));
    assert_eq!(resumed.next_offset(), 20_000_000);

    // Webhooks find the job by its publish_id; the refused init left no
    // pointer behind.
    let found = f
        .jobs
        .by_publish_id("v_inbox_file~v2.first")
        .await
        .unwrap()
        .expect("the saved publish_id points at the job");
    assert_eq!(found.id, job.id);
    assert!(
        f.jobs
            .by_publish_id("v_inbox_file~v2.second")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_stale_writer_gets_a_conflict_and_illegal_moves_are_refused() {
    let f = fixture().await;
    let job = claim_new(&f, "uploads/alice/b.mp4", Some("open-b"), now()).await;
    let processing = init_and_send(&f, &job).await;
    assert_eq!(processing.status, JobStatus::Processing);

    // Two checkers read the same job; the first moves it.
    let stale = processing.clone();
    let inbox = f
        .jobs
        .transition(
            &processing,
            JobStatus::Inbox,
            Changes::default(),
            now().into(),
        )
        .await
        .unwrap();
    assert_eq!(inbox.status, JobStatus::Inbox);
    let err = f
        .jobs
        .transition(&stale, JobStatus::Failed, Changes::default(), now().into())
        .await
        .unwrap_err();
    match err {
        JobError::Conflict {
            expected, found, ..
        } => {
            assert_eq!(expected, JobStatus::Processing);
            assert_eq!(found, Some(JobStatus::Inbox));
        }
        other => panic!("expected Conflict, got {other:?}"),
    }

    let illegal = f
        .jobs
        .transition(&inbox, JobStatus::Claimed, Changes::default(), now().into())
        .await
        .unwrap_err();
    assert!(
        matches!(illegal, JobError::IllegalTransition { .. }),
        "{illegal:?}"
    );
    assert_eq!(
        f.jobs.get(&job.id).await.unwrap().unwrap().status,
        JobStatus::Inbox
    );
}

#[tokio::test]
async fn unfinished_jobs_are_indexed_and_finished_ones_leave_the_index() {
    let f = fixture().await;
    let job = claim_new(&f, "uploads/alice/c.mp4", Some("open-c"), now()).await;
    let raw = raw_job(&f, &job).await;
    assert_eq!(
        raw.get("gsi1pk"),
        Some(&AttributeValue::S(format!("UNFINISHED#{}", job.id.shard())))
    );
    let (found, _) = all_unfinished(&f).await;
    assert_eq!(
        found.iter().map(|j| &j.id).collect::<Vec<_>>(),
        vec![&job.id]
    );

    // A retry re-sorts the job by its not_before.
    let later = now() + Duration::from_secs(600);
    let waiting = f
        .jobs
        .transition(
            &job,
            JobStatus::RetryWait,
            Changes {
                attempts: Some(1),
                not_before: Some(later.into()),
                last_error: Some(LastError {
                    code: "internal_error".into(),
                    message: "TikTok had an internal error".into(),
                }),
                ..Changes::default()
            },
            now().into(),
        )
        .await
        .unwrap();
    assert_eq!(waiting.attempts, 1);
    assert!(waiting.not_before.is_some());
    let raw = raw_job(&f, &waiting).await;
    let Some(AttributeValue::S(sort)) = raw.get("gsi1sk") else {
        panic!("no gsi1sk")
    };
    assert!(sort.ends_with(job.id.as_str()));

    let failed = f
        .jobs
        .transition(
            &waiting,
            JobStatus::Failed,
            Changes::default(),
            now().into(),
        )
        .await
        .unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.last_error.as_ref().unwrap().code, "internal_error");
    let raw = raw_job(&f, &failed).await;
    assert!(!raw.contains_key("gsi1pk"), "{raw:?}");
    assert!(!raw.contains_key("gsi1sk"), "{raw:?}");
    let (found, scanned) = all_unfinished(&f).await;
    assert!(found.is_empty());
    assert_eq!(scanned, 0);
}

#[tokio::test]
async fn history_does_not_grow_what_the_checker_reads() {
    let f = fixture().await;
    for i in 0..30 {
        let job = claim_new(&f, &format!("uploads/alice/done-{i}.mp4"), None, now()).await;
        let to = if i % 2 == 0 {
            JobStatus::Failed
        } else {
            JobStatus::Cancelled
        };
        f.jobs
            .transition(&job, to, Changes::default(), now().into())
            .await
            .unwrap();
    }
    let mut open = Vec::new();
    for i in 0..3 {
        open.push(claim_new(&f, &format!("uploads/alice/open-{i}.mp4"), None, now()).await);
    }
    let (found, scanned) = all_unfinished(&f).await;
    let mut found: Vec<_> = found.into_iter().map(|j| j.id).collect();
    let mut expected: Vec<_> = open.iter().map(|j| j.id.clone()).collect();
    found.sort();
    expected.sort();
    assert_eq!(found, expected);
    assert_eq!(scanned, 3, "only unfinished jobs are read");
    assert!(matches!(
        f.jobs.unfinished(UNFINISHED_SHARDS, 10, None).await,
        Err(JobError::BadShard { .. })
    ));
}

#[tokio::test]
async fn five_pending_drafts_make_the_sixth_wait_until_one_clears() {
    let f = fixture().await;
    let open_id = unique_name("open");
    let mut jobs = Vec::new();
    for i in 0..7 {
        jobs.push(
            claim_new(
                &f,
                &format!("uploads/alice/d{i}.mp4"),
                Some(&open_id),
                now(),
            )
            .await,
        );
    }
    for (i, job) in jobs.iter().take(5).enumerate() {
        let decision = f.jobs.take_draft_slot(job, now().into()).await.unwrap();
        assert_eq!(
            decision,
            SlotDecision::Granted {
                pending: i as u32 + 1
            }
        );
    }
    // Asking again keeps the slot instead of taking a second one.
    assert_eq!(
        f.jobs
            .take_draft_slot(&jobs[0], now().into())
            .await
            .unwrap(),
        SlotDecision::Granted { pending: 5 }
    );
    assert_eq!(
        f.jobs.pending_drafts(&open_id, now().into()).await.unwrap(),
        MAX_PENDING_DRAFTS
    );
    // The sixth and seventh are told to queue.
    for job in &jobs[5..] {
        assert_eq!(
            f.jobs.take_draft_slot(job, now().into()).await.unwrap(),
            SlotDecision::Full { pending: 5 }
        );
    }
    let sixth = f
        .jobs
        .transition(
            &jobs[5],
            JobStatus::Queued,
            Changes::default(),
            now().into(),
        )
        .await
        .unwrap();
    let seventh = f
        .jobs
        .transition(
            &jobs[6],
            JobStatus::Queued,
            Changes::default(),
            now().into(),
        )
        .await
        .unwrap();

    // One draft goes all the way to published: its slot frees.
    let processing = init_and_send(&f, &jobs[0]).await;
    let inbox = f
        .jobs
        .transition(
            &processing,
            JobStatus::Inbox,
            Changes::default(),
            now().into(),
        )
        .await
        .unwrap();
    assert_eq!(
        f.jobs.pending_drafts(&open_id, now().into()).await.unwrap(),
        5,
        "a draft in the inbox still counts"
    );
    let published = f
        .jobs
        .transition(
            &inbox,
            JobStatus::Published,
            Changes::default().with_tiktok_status(&PublishStatus {
                status: PublishState::PublishComplete,
                fail_reason: None,
                post_ids: vec![7_459_287_841_546_292_488],
                uploaded_bytes: None,
                downloaded_bytes: None,
            }),
            now().into(),
        )
        .await
        .unwrap();
    assert_eq!(published.post_ids, vec![7_459_287_841_546_292_488]);
    assert_eq!(published.tiktok_status, Some(PublishState::PublishComplete));
    assert_eq!(
        f.jobs.pending_drafts(&open_id, now().into()).await.unwrap(),
        4
    );

    // The oldest held job is released first and gets the slot.
    let queued = f.jobs.queued_for_account(&open_id, 10).await.unwrap();
    assert_eq!(
        queued.iter().map(|j| &j.id).collect::<Vec<_>>(),
        vec![&sixth.id, &seventh.id]
    );
    let released = f
        .jobs
        .transition(
            &queued[0],
            JobStatus::Claimed,
            Changes::default(),
            now().into(),
        )
        .await
        .unwrap();
    assert_eq!(
        f.jobs
            .take_draft_slot(&released, now().into())
            .await
            .unwrap(),
        SlotDecision::Granted { pending: 5 }
    );
    assert_eq!(
        f.jobs
            .queued_for_account(&open_id, 10)
            .await
            .unwrap()
            .iter()
            .map(|j| &j.id)
            .collect::<Vec<_>>(),
        vec![&seventh.id]
    );

    // A draft that fails frees its slot too.
    f.jobs
        .transition(
            &jobs[1],
            JobStatus::Failed,
            Changes::default(),
            now().into(),
        )
        .await
        .unwrap();
    assert_eq!(
        f.jobs.pending_drafts(&open_id, now().into()).await.unwrap(),
        4
    );
    // Slots older than 24 hours stop counting.
    let tomorrow = now() + Duration::from_secs(24 * 3600 + 1);
    assert_eq!(
        f.jobs
            .pending_drafts(&open_id, tomorrow.into())
            .await
            .unwrap(),
        0
    );
    // A direct post takes no inbox slot.
    let mut direct = new_job("uploads/alice/direct.mp4", Some(&open_id));
    direct.post = PostTarget::Direct {
        privacy_level: shared::tiktok::PrivacyLevel::SelfOnly,
    };
    let direct = f.jobs.claim(direct, now().into()).await.unwrap();
    assert_eq!(
        f.jobs
            .take_draft_slot(direct.job(), now().into())
            .await
            .unwrap(),
        SlotDecision::NotNeeded
    );
}

#[tokio::test]
async fn concurrent_uploads_cannot_overfill_the_pending_slots() {
    let f = fixture().await;
    let open_id = unique_name("open");
    let mut jobs = Vec::new();
    for i in 0..8 {
        jobs.push(
            claim_new(
                &f,
                &format!("uploads/alice/r{i}.mp4"),
                Some(&open_id),
                now(),
            )
            .await,
        );
    }
    let mut handles = Vec::new();
    for job in jobs {
        let store = f.jobs.clone();
        handles.push(tokio::spawn(async move {
            store.take_draft_slot(&job, SystemTime::now().into()).await
        }));
    }
    let (mut granted, mut full, mut busy) = (0, 0, 0);
    for handle in handles {
        match handle.await.unwrap() {
            Ok(SlotDecision::Granted { .. }) => granted += 1,
            Ok(SlotDecision::Full { .. }) => full += 1,
            Err(JobError::Busy { .. }) => busy += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(granted <= 5, "{granted} slots granted");
    // Losers re-read and retry; only a run of bad luck ends in Busy.
    if busy == 0 {
        assert_eq!((granted, full), (5, 3));
    }
    assert_eq!(
        f.jobs.pending_drafts(&open_id, now().into()).await.unwrap(),
        granted
    );
}

#[tokio::test]
async fn queued_jobs_come_back_oldest_first() {
    let f = fixture().await;
    let open_id = unique_name("open");
    let start = now() - Duration::from_secs(60);
    let mut jobs = Vec::new();
    for i in 0..4 {
        let created = start + Duration::from_secs(i * 10);
        jobs.push(
            claim_new(
                &f,
                &format!("uploads/alice/q{i}.mp4"),
                Some(&open_id),
                created,
            )
            .await,
        );
    }
    // Queued in another order than they were created.
    for i in [2, 0, 3, 1] {
        f.jobs
            .transition(
                &jobs[i],
                JobStatus::Queued,
                Changes::default(),
                now().into(),
            )
            .await
            .unwrap();
    }
    let queued = f.jobs.queued_for_account(&open_id, 10).await.unwrap();
    let ids: Vec<_> = queued.iter().map(|j| j.id.clone()).collect();
    let expected: Vec<_> = jobs.iter().map(|j| j.id.clone()).collect();
    assert_eq!(ids, expected);
    assert!(queued.iter().all(|j| j.status == JobStatus::Queued));
    let first_two = f.jobs.queued_for_account(&open_id, 2).await.unwrap();
    assert_eq!(
        first_two.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
        expected[..2].to_vec()
    );
    assert!(
        f.jobs
            .queued_for_account(&open_id, 0)
            .await
            .unwrap()
            .is_empty()
    );
    // A job without an account can neither take a slot nor be queued ...
    let orphan = claim_new(&f, "uploads/nobody/x.mp4", None, now()).await;
    assert!(matches!(
        f.jobs.take_draft_slot(&orphan, now().into()).await,
        Err(JobError::NoAccount { .. })
    ));
    assert!(matches!(
        f.jobs
            .transition(&orphan, JobStatus::Queued, Changes::default(), now().into())
            .await,
        Err(JobError::NoAccount { .. })
    ));
    // ... until its alias is resolved; after that the account is fixed.
    let resolved = f
        .jobs
        .set_account(&orphan, &open_id, now().into())
        .await
        .unwrap();
    assert_eq!(resolved.open_id.as_deref(), Some(open_id.as_str()));
    assert!(matches!(
        f.jobs
            .set_account(&resolved, "someone-else", now().into())
            .await,
        Err(JobError::Conflict { .. })
    ));
    let queued_too = f
        .jobs
        .transition(
            &resolved,
            JobStatus::Queued,
            Changes::default(),
            now().into(),
        )
        .await
        .unwrap();
    let all = f.jobs.queued_for_account(&open_id, 10).await.unwrap();
    assert_eq!(all.last().map(|j| &j.id), Some(&queued_too.id));
}

#[tokio::test]
async fn the_upload_url_never_shows_in_debug_output_or_errors() {
    let f = fixture().await;
    let job = claim_new(&f, "uploads/alice/secret.mp4", Some("open-s"), now()).await;
    let uploading = f
        .jobs
        .save_init(
            &job.id,
            "v_inbox_file~v2.s",
            Some(&Secret::new(UPLOAD_URL)),
            None,
            now().into(),
        )
        .await
        .unwrap();
    let mut texts = vec![
        format!("{uploading:?}"),
        format!("{:?}", f.jobs.get(&job.id).await.unwrap()),
        format!(
            "{:?}",
            f.jobs
                .claim(new_job("uploads/alice/secret.mp4", None), now().into())
                .await
        ),
    ];
    let errors = [
        f.jobs
            .save_init(
                &job.id,
                "v_inbox_file~v2.t",
                Some(&Secret::new(UPLOAD_URL)),
                None,
                now().into(),
            )
            .await
            .unwrap_err(),
        f.jobs
            .transition(&job, JobStatus::Failed, Changes::default(), now().into())
            .await
            .unwrap_err(),
        f.jobs
            .transition(
                &uploading,
                JobStatus::Claimed,
                Changes::default(),
                now().into(),
            )
            .await
            .unwrap_err(),
    ];
    for err in &errors {
        texts.push(err.to_string());
        texts.push(format!("{err:?}"));
    }
    for text in &texts {
        assert!(!text.contains(TOKEN_PART), "leaked: {text}");
    }
    let logs = tiktok_drafts_tests::captured_logs();
    assert!(logs.contains("init saved"), "the log capture works");
    assert!(
        !logs.contains(TOKEN_PART),
        "the upload URL appears in the logs:\n{}",
        logs.lines()
            .filter(|l| l.contains(TOKEN_PART))
            .collect::<Vec<_>>()
            .join("\n")
            .replace(TOKEN_PART, "<THE TOKEN>")
    );
    // Once the bytes are sent, the URL is not kept at rest any longer.
    let processing = f
        .jobs
        .transition(
            &uploading,
            JobStatus::Processing,
            Changes::default(),
            now().into(),
        )
        .await
        .unwrap();
    assert!(processing.upload_url().is_none());
    assert!(!raw_job(&f, &processing).await.contains_key("upload_url"));
}

#[tokio::test]
async fn paging_the_unfinished_index_returns_every_job_once_in_due_order() {
    let f = fixture().await;
    let start = now() - Duration::from_secs(3600);
    let jobs: Vec<Job> = (0..600)
        .map(|n| {
            processing_job(
                &format!("uploads/alice/{n}.mp4"),
                "open-a",
                start + Duration::from_secs(n),
                &format!("v_inbox_file~v2.{n}"),
            )
        })
        .collect();
    f.jobs.put_many(&jobs).await.unwrap();
    let mut seen = std::collections::HashSet::new();
    for shard in 0..UNFINISHED_SHARDS {
        let mut page_key = None;
        let mut last_due = None;
        loop {
            let page = f.jobs.unfinished(shard, 50, page_key).await.unwrap();
            for job in &page.jobs {
                assert!(seen.insert(job.id.clone()), "{} twice", job.id);
                assert!(last_due <= Some(job.due_at()), "due order");
                last_due = Some(job.due_at());
            }
            match page.next {
                Some(next) => page_key = Some(next),
                None => break,
            }
        }
    }
    assert_eq!(seen.len(), 600);
    // The publish pointers were written with the jobs.
    let found = f.jobs.by_publish_id("v_inbox_file~v2.7").await.unwrap();
    assert_eq!(found.map(|j| j.id), Some(jobs[7].id.clone()));
}

/// Held jobs with a `not_before` (TikTok's own pending-draft cap) are not
/// releasable before it; the plain queue listing still shows them.
#[tokio::test]
async fn held_jobs_are_releasable_only_from_their_not_before() {
    let f = fixture().await;
    let open_id = unique_name("open");
    let start = now() - Duration::from_secs(60);
    let held_until = now() + Duration::from_secs(3600);
    let mut jobs = Vec::new();
    for (i, until) in [(0, Some(held_until)), (1, None)] {
        let job = claim_new(
            &f,
            &format!("uploads/alice/held{i}.mp4"),
            Some(&open_id),
            start + Duration::from_secs(i * 10),
        )
        .await;
        let changes = Changes {
            not_before: until.map(Into::into),
            ..Changes::default()
        };
        jobs.push(
            f.jobs
                .transition(&job, JobStatus::Queued, changes, now().into())
                .await
                .unwrap(),
        );
    }
    let ids = |list: Vec<Job>| list.into_iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(
        ids(f
            .jobs
            .releasable_for_account(&open_id, 5, now().into())
            .await
            .unwrap()),
        vec![jobs[1].id.clone()],
        "the held-until job is skipped"
    );
    assert_eq!(
        ids(f.jobs.queued_for_account(&open_id, 5).await.unwrap()),
        vec![jobs[0].id.clone(), jobs[1].id.clone()]
    );
    let later = held_until + Duration::from_secs(1);
    assert_eq!(
        ids(f
            .jobs
            .releasable_for_account(&open_id, 5, later.into())
            .await
            .unwrap()),
        vec![jobs[0].id.clone(), jobs[1].id.clone()],
        "oldest first once due"
    );
    assert_eq!(
        ids(f
            .jobs
            .releasable_for_account(&open_id, 1, later.into())
            .await
            .unwrap()),
        vec![jobs[0].id.clone()]
    );
    assert!(
        f.jobs
            .releasable_for_account(&open_id, 0, later.into())
            .await
            .unwrap()
            .is_empty()
    );
}

/// The init marker: set once, only on a claimed job TikTok does not know;
/// cleared by a saved init or a recorded refusal; kept when the job is
/// flagged stuck, where it tells the operator the init is in doubt.
#[tokio::test]
async fn the_init_marker_is_set_once_and_cleared_by_an_answer() {
    let f = fixture().await;
    let open_id = unique_name("open");
    let job = claim_new(&f, "uploads/alice/marked.mp4", Some(&open_id), now()).await;
    let marked = f.jobs.mark_init_started(&job, now().into()).await.unwrap();
    assert!(marked.init_started_at().is_some());
    assert!(raw_job(&f, &job).await.contains_key("init_started_at"));
    assert!(matches!(
        f.jobs.mark_init_started(&marked, now().into()).await,
        Err(JobError::InitInDoubt { .. })
    ));
    // Flagged stuck: the marker stays, and the note can be replaced.
    let stuck = f
        .jobs
        .transition(&marked, JobStatus::Stuck, Changes::default(), now().into())
        .await
        .unwrap();
    assert!(stuck.init_started_at().is_some());
    let note = LastError {
        code: "init_unconfirmed".into(),
        message: "look in the inbox".into(),
    };
    let noted = f
        .jobs
        .record_error(&stuck, &note, now().into())
        .await
        .unwrap();
    assert_eq!(
        (noted.status, noted.last_error.clone()),
        (JobStatus::Stuck, Some(note.clone()))
    );
    assert!(matches!(
        f.jobs.record_error(&marked, &note, now().into()).await,
        Err(JobError::Conflict { .. })
    ));
    // An operator's restart clears it: a new init is allowed again.
    let restarted = f
        .jobs
        .transition(&noted, JobStatus::Claimed, Changes::default(), now().into())
        .await
        .unwrap();
    assert!(restarted.init_started_at().is_none());
    let marked = f
        .jobs
        .mark_init_started(&restarted, now().into())
        .await
        .unwrap();
    // A saved init clears it in the same write.
    let saved = f
        .jobs
        .save_init(&marked.id, "v_inbox_file~v2.m", None, None, now().into())
        .await
        .unwrap();
    assert!(saved.init_started_at().is_none());
    assert!(!raw_job(&f, &saved).await.contains_key("init_started_at"));
    assert!(matches!(
        f.jobs.mark_init_started(&marked, now().into()).await,
        Err(JobError::AlreadyInitialised { .. })
    ));
    // A recorded refusal clears it too.
    let other = claim_new(&f, "uploads/alice/refused.mp4", Some(&open_id), now()).await;
    let other = f
        .jobs
        .mark_init_started(&other, now().into())
        .await
        .unwrap();
    let waiting = f
        .jobs
        .transition(
            &other,
            JobStatus::RetryWait,
            Changes::default(),
            now().into(),
        )
        .await
        .unwrap();
    assert!(waiting.init_started_at().is_none());
}

/// A stuck upload TikTok knows goes back to `uploading` with its URL and
/// offset, so a redelivery resumes it; one TikTok does not know cannot.
#[tokio::test]
async fn a_stuck_upload_resumes_with_its_saved_url_and_offset() {
    let f = fixture().await;
    let open_id = unique_name("open");
    let job = claim_new(&f, "uploads/alice/stuck.mp4", Some(&open_id), now()).await;
    let plan = ChunkPlan::new(1_000, 10_000_000).unwrap();
    let uploading = f
        .jobs
        .save_init(
            &job.id,
            "v_inbox_file~v2.stuck",
            Some(&Secret::new(UPLOAD_URL)),
            Some(&plan),
            now().into(),
        )
        .await
        .unwrap();
    let stuck = f
        .jobs
        .transition(
            &uploading,
            JobStatus::Stuck,
            Changes::default(),
            now().into(),
        )
        .await
        .unwrap();
    let resumed = f
        .jobs
        .transition(
            &stuck,
            JobStatus::Uploading,
            Changes::default(),
            now().into(),
        )
        .await
        .unwrap();
    assert_eq!(resumed.status, JobStatus::Uploading);
    assert_eq!(resumed.upload_url().map(Secret::expose), Some(UPLOAD_URL));
    assert_eq!(resumed.next_offset(), uploading.next_offset());
    f.jobs
        .save_progress(&resumed.id, resumed.next_offset() + 1, now().into())
        .await
        .unwrap();
    let fresh = claim_new(&f, "uploads/alice/never.mp4", Some(&open_id), now()).await;
    let fresh_stuck = f
        .jobs
        .transition(&fresh, JobStatus::Stuck, Changes::default(), now().into())
        .await
        .unwrap();
    assert!(matches!(
        f.jobs
            .transition(
                &fresh_stuck,
                JobStatus::Uploading,
                Changes::default(),
                now().into()
            )
            .await,
        Err(JobError::IllegalTransition { .. })
    ));
}

#[tokio::test]
async fn a_retry_forgets_what_tiktok_said_about_the_old_attempt() {
    let f = fixture().await;
    let job = claim_new(&f, "uploads/alice/retry.mp4", Some("open-r"), now()).await;
    let processing = init_and_send(&f, &job).await;
    let first = processing.publish_id().unwrap().to_owned();
    let failed = PublishStatus {
        status: PublishState::Failed,
        fail_reason: Some(shared::tiktok::FailReason::Internal),
        post_ids: Vec::new(),
        uploaded_bytes: None,
        downloaded_bytes: None,
    };
    let waiting = f
        .jobs
        .transition(
            &processing,
            JobStatus::RetryWait,
            Changes {
                attempts: Some(1),
                not_before: Some(now().into()),
                ..Changes::default()
            }
            .with_tiktok_status(&failed),
            now().into(),
        )
        .await
        .unwrap();
    assert_eq!(waiting.status_publish_id.as_deref(), Some(first.as_str()));
    assert!(waiting.failure_recorded_for(&first));
    assert_eq!(waiting.live_publish_id(), None, "TikTok failed it");

    let claimed = f
        .jobs
        .transition(
            &waiting,
            JobStatus::Claimed,
            Changes::default(),
            now().into(),
        )
        .await
        .unwrap();
    assert_eq!(claimed.tiktok_status, None);
    assert_eq!(claimed.fail_reason, None);
    assert_eq!(claimed.status_publish_id, None);
    let raw = raw_job(&f, &claimed).await;
    for gone in [
        "tiktok_status",
        "fail_reason",
        "status_publish_id",
        "publish_id",
    ] {
        assert!(!raw.contains_key(gone), "{gone} kept: {raw:?}");
    }
    let second = f
        .jobs
        .save_init(
            &claimed.id,
            "v_inbox_file~v2.second-try",
            None,
            None,
            now().into(),
        )
        .await
        .unwrap();
    assert!(!second.failure_recorded_for("v_inbox_file~v2.second-try"));
    assert_eq!(second.live_publish_id(), Some("v_inbox_file~v2.second-try"));
}

#[tokio::test]
async fn due_reads_stop_at_now_and_a_rescheduled_job_waits_its_turn() {
    let f = fixture().await;
    let past = now() - Duration::from_secs(600);
    let jobs: Vec<Job> = (0..12)
        .map(|n| {
            let mut job = processing_job(
                &format!("uploads/alice/due-{n}.mp4"),
                "open-d",
                past + Duration::from_secs(n),
                &format!("v_inbox_file~v2.d{n}"),
            );
            if n >= 10 {
                // Not due for an hour.
                job.status = JobStatus::RetryWait;
                job.not_before = Some((now() + Duration::from_secs(3600)).into());
            }
            job
        })
        .collect();
    f.jobs.put_many(&jobs).await.unwrap();
    let due = |at: SystemTime| {
        let jobs = f.jobs.clone();
        async move {
            let mut found = Vec::new();
            for shard in 0..UNFINISHED_SHARDS {
                let mut start = None;
                loop {
                    let page = jobs
                        .due_unfinished(shard, at.into(), 3, start)
                        .await
                        .unwrap();
                    assert_eq!(page.index_due.len(), page.jobs.len());
                    found.extend(page.jobs.into_iter().map(|j| j.id));
                    match page.next {
                        Some(next) => start = Some(next),
                        None => break,
                    }
                }
            }
            found
        }
    };
    let found = due(now()).await;
    assert_eq!(found.len(), 10, "only what is due is read");
    assert!(jobs[10..].iter().all(|j| !found.contains(&j.id)));

    // Moved on by an hour, a job is not due now; a stale copy cannot move
    // a job someone changed meanwhile.
    assert!(
        f.jobs
            .reschedule(&jobs[0], (now() + Duration::from_secs(3600)).into())
            .await
            .unwrap()
    );
    let found = due(now()).await;
    assert_eq!(found.len(), 9);
    assert!(!found.contains(&jobs[0].id));
    let moved = f
        .jobs
        .transition(&jobs[1], JobStatus::Inbox, Changes::default(), now().into())
        .await
        .unwrap();
    assert!(!f.jobs.reschedule(&jobs[1], now().into()).await.unwrap());
    // A draft in the inbox stays in the index, due again 15 minutes on,
    // until it is no longer followed.
    let raw = raw_job(&f, &moved).await;
    assert!(raw.contains_key("gsi1pk"));
    assert!(!due(now()).await.contains(&moved.id));
    assert!(
        due(now() + Duration::from_secs(16 * 60))
            .await
            .contains(&moved.id)
    );
    assert!(f.jobs.stop_following(&moved).await.unwrap());
    let raw = raw_job(&f, &moved).await;
    assert!(!raw.contains_key("gsi1pk"), "{raw:?}");
    assert_eq!(
        f.jobs.get(&moved.id).await.unwrap().unwrap().status,
        JobStatus::Inbox
    );
}

#[tokio::test]
async fn held_uploads_are_listed_by_account_in_one_partition() {
    let f = fixture().await;
    let open_id = unique_name("open-held");
    assert!(
        !f.jobs
            .accounts_with_held_uploads()
            .await
            .unwrap()
            .contains(&open_id)
    );
    let job = claim_new(&f, "uploads/alice/held.mp4", Some(&open_id), now()).await;
    let held = f
        .jobs
        .transition(&job, JobStatus::Queued, Changes::default(), now().into())
        .await
        .unwrap();
    assert!(
        f.jobs
            .accounts_with_held_uploads()
            .await
            .unwrap()
            .contains(&open_id)
    );
    f.jobs
        .transition(&held, JobStatus::Claimed, Changes::default(), now().into())
        .await
        .unwrap();
    assert!(
        !f.jobs
            .accounts_with_held_uploads()
            .await
            .unwrap()
            .contains(&open_id)
    );
}

/// A retry released to `claimed` is a new attempt: it takes a slot before
/// its init like any other upload (so a full account holds it), while a
/// retry TikTok turns out to hold counts against the cap again.
#[tokio::test]
async fn a_released_retry_asks_for_a_slot_and_one_tiktok_holds_takes_it_back() {
    let f = fixture().await;
    let open_id = unique_name("open");
    let retry = claim_new(&f, "uploads/alice/retry.mp4", Some(&open_id), now()).await;
    let held = claim_new(&f, "uploads/alice/held.mp4", Some(&open_id), now()).await;
    for job in [&retry, &held] {
        assert!(matches!(
            f.jobs.take_draft_slot(job, now().into()).await.unwrap(),
            SlotDecision::Granted { .. }
        ));
    }
    let mut waiting = Vec::new();
    for job in [&retry, &held] {
        let processing = init_and_send(&f, job).await;
        waiting.push(
            f.jobs
                .transition(
                    &processing,
                    JobStatus::RetryWait,
                    Changes {
                        attempts: Some(1),
                        not_before: Some(now().into()),
                        ..Changes::default()
                    },
                    now().into(),
                )
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        f.jobs.pending_drafts(&open_id, now().into()).await.unwrap(),
        0,
        "waiting to retry, neither counts"
    );
    for i in 0..MAX_PENDING_DRAFTS {
        let other = claim_new(
            &f,
            &format!("uploads/alice/o{i}.mp4"),
            Some(&open_id),
            now(),
        )
        .await;
        f.jobs.take_draft_slot(&other, now().into()).await.unwrap();
    }
    let released = f
        .jobs
        .transition(
            &waiting[0],
            JobStatus::Claimed,
            Changes::default(),
            now().into(),
        )
        .await
        .unwrap();
    assert_eq!(
        f.jobs.pending_drafts(&open_id, now().into()).await.unwrap(),
        MAX_PENDING_DRAFTS,
        "the release took no slot by itself"
    );
    assert_eq!(
        f.jobs
            .take_draft_slot(&released, now().into())
            .await
            .unwrap(),
        SlotDecision::Full {
            pending: MAX_PENDING_DRAFTS
        }
    );
    // TikTok has the other one after all (the last chunk's answer was lost).
    f.jobs
        .transition(
            &waiting[1],
            JobStatus::Processing,
            Changes::default(),
            now().into(),
        )
        .await
        .unwrap();
    assert_eq!(
        f.jobs.pending_drafts(&open_id, now().into()).await.unwrap(),
        MAX_PENDING_DRAFTS + 1
    );
}

/// The init marker says TikTok may hold the upload: a move that would drop
/// it is refused to a caller whose copy predates the marker, so a stale
/// reading can never cancel or fail a job whose init is under way.
#[tokio::test]
async fn a_copy_read_before_the_init_marker_cannot_drop_it() {
    let f = fixture().await;
    let open_id = unique_name("open");
    let job = claim_new(&f, "uploads/alice/racing.mp4", Some(&open_id), now()).await;
    let marked = f.jobs.mark_init_started(&job, now().into()).await.unwrap();
    for to in [
        JobStatus::Cancelled,
        JobStatus::Failed,
        JobStatus::RetryWait,
    ] {
        assert!(
            matches!(
                f.jobs
                    .transition(&job, to, Changes::default(), now().into())
                    .await,
                Err(JobError::Conflict { .. })
            ),
            "{to}"
        );
    }
    assert!(raw_job(&f, &job).await.contains_key("init_started_at"));
    // Flagging keeps the marker whatever the copy; the flagged job's own
    // copy (with the marker) may then be moved on by the operator.
    let stuck = f
        .jobs
        .transition(&job, JobStatus::Stuck, Changes::default(), now().into())
        .await
        .unwrap();
    assert_eq!(stuck.init_started_at(), marked.init_started_at());
    let cancelled = f
        .jobs
        .transition(
            &stuck,
            JobStatus::Cancelled,
            Changes::default(),
            now().into(),
        )
        .await
        .unwrap();
    assert!(cancelled.init_started_at().is_none());
}
