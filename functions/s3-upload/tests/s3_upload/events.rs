//! Real event shapes (committed fixtures) to the objects the function handles.

use s3_upload::events::{EventError, Incoming, objects_in_message, objects_in_s3_event};
use s3_upload::keys::{Route, UploadKey, route};

fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_direct_s3_event_names_its_created_objects_with_decoded_keys() {
    let Incoming::S3(event) = Incoming::parse(fixture("s3-event.json")).unwrap() else {
        panic!("an S3 event")
    };
    let objects = objects_in_s3_event(&event).unwrap();
    assert_eq!(objects.len(), 1, "the delete record is skipped");
    let o = &objects[0];
    assert_eq!(o.bucket, "drafts-uploads");
    assert_eq!(o.key, "uploads/alice/holiday clip été.mp4");
    assert_eq!(o.size, Some(3_000_000));
    assert!(o.version_id.is_some());
    assert_eq!(
        route(&o.key, None, false),
        Route::Job(UploadKey::Video {
            account: "alice".into(),
            name: "holiday clip été.mp4".into()
        })
    );
}

#[test]
fn an_sqs_batch_yields_objects_skips_test_events_and_reports_bad_messages() {
    let Incoming::Sqs(event) = Incoming::parse(fixture("sqs-event.json")).unwrap() else {
        panic!("an SQS event")
    };
    assert_eq!(event.records.len(), 3);
    let first = objects_in_message(&event.records[0]).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].key, "uploads/alice/trip/slideshow.json");
    assert!(objects_in_message(&event.records[1]).unwrap().is_empty());
    let err = objects_in_message(&event.records[2]).unwrap_err();
    assert!(
        matches!(&err, EventError::BadMessage { message_id, .. } if message_id == "a5b3c0ea-1b33-4b7a-9e1d-2b1b6c0f9c11"),
        "{err}"
    );
}

#[test]
fn other_events_are_refused() {
    assert!(Incoming::parse(serde_json::json!({"Records": [{"eventSource": "aws:sns"}]})).is_err());
    assert!(Incoming::parse(serde_json::json!({"detail-type": "Scheduled Event"})).is_err());
}
