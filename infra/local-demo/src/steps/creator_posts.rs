//! Step 6 (on the simulator): the creator posts the video draft, and
//! TikTok's signed webhooks reach the webhook function through the HTTP API.

use std::time::{Duration, Instant};

use super::Pace;
use crate::DemoResult;
use crate::cli::{Cli, JobView, short_id};
use crate::sim_control::SimControl;

/// The creator posts the video draft in the TikTok app; TikTok's signed
/// webhooks reach the webhook function through the HTTP API.
pub async fn creator_posts_the_video(
    sim: &SimControl,
    cli: &Cli,
    jobs: &[JobView],
    public_url: &str,
    pace: &Pace,
) -> DemoResult<()> {
    println!("== the creator posts the video draft; TikTok's webhooks -> tiktok-webhook");
    let video = jobs
        .iter()
        .find(|j| j.kind == "video")
        .ok_or("no video job")?;
    let publish_id = video
        .publish_id
        .clone()
        .ok_or("the video job has no publish_id")?;
    let mut settings = sim
        .call(reqwest::Method::GET, "/_sim/settings", None)
        .await?;
    settings["webhook_url"] = serde_json::Value::String(format!("{public_url}/webhooks/tiktok"));
    sim.call(reqwest::Method::PUT, "/_sim/settings", Some(settings))
        .await?;
    sim.call(
        reqwest::Method::POST,
        &format!("/_sim/publishes/{publish_id}/status"),
        Some(serde_json::json!({"status": "PUBLISH_COMPLETE"})),
    )
    .await?;
    let until = Instant::now() + pace.follow_up;
    loop {
        let job = cli.json(&["status", &video.id]).await?;
        if job["job"]["status"] == "published"
            && !job["job"]["post_ids"].as_array().is_none_or(Vec::is_empty)
        {
            println!(
                "    job {} video     published  post id {}",
                short_id(&video.id),
                job["job"]["post_ids"][0].as_str().unwrap_or("?")
            );
            return Ok(());
        }
        if Instant::now() > until {
            let deliveries = sim
                .call(reqwest::Method::GET, "/_sim/webhooks", None)
                .await?;
            return Err(format!(
                "the webhooks did not mark the video published: {deliveries}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
