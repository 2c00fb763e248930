//! Seeded publishes behave like ones made through the API.

use crate::common::Sim;
use serde_json::json;

#[tokio::test]
async fn seeded_publishes_answer_status_fetch_and_unknown_users_are_refused() {
    let sim = Sim::start().await;
    sim.user("open-seed").await;
    let token = sim.token("open-seed", &["video.upload"]).await;
    let seeded = sim
        .post_control(
            "/_sim/publishes/seed",
            json!({"open_id": "open-seed", "count": 3}),
        )
        .await;
    let ids = seeded["publish_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 3);
    let first = ids[0].as_str().unwrap();
    assert_eq!(
        sim.status(&token, first).await["status"],
        "PROCESSING_UPLOAD"
    );

    let response = reqwest::Client::new()
        .post(sim.url("/_sim/publishes/seed"))
        .json(&json!({"open_id": "open-nobody", "count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = reqwest::Client::new()
        .post(sim.url("/_sim/publishes/seed"))
        .json(&json!({"open_id": "open-seed", "count": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}
