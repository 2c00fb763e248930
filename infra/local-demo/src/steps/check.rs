//! Step 7: what TikTok holds (the video's bytes, the photos as JPEGs that
//! fit), and nothing in the dead-letter queue.

use shared::aws::describe_sdk_error;

use super::drop_media::Dropped;
use crate::DemoResult;
use crate::cli::JobView;
use crate::sim_control::SimControl;
use crate::stack::Stack;

/// What TikTok (the simulator) holds: the video's exact bytes; the
/// photos as JPEGs that fit 1080 × 1920.
pub async fn check_what_tiktok_holds(
    sim: &SimControl,
    stack: &Stack,
    jobs: &[JobView],
    dropped: &Dropped,
) -> DemoResult<()> {
    println!("== what TikTok holds");
    for job in jobs {
        let publish_id = job
            .publish_id
            .as_deref()
            .ok_or("a job without a publish_id")?;
        let record = sim
            .call(
                reqwest::Method::GET,
                &format!("/_sim/publishes/{publish_id}"),
                None,
            )
            .await?;
        if job.key == dropped.video_key {
            if record["sha256"].as_str() != Some(dropped.video_sha256.as_str()) {
                return Err(format!(
                    "TikTok holds other bytes than s3://{}/{}: {} != {}",
                    stack.bucket, job.key, record["sha256"], dropped.video_sha256
                ));
            }
            println!(
                "    video             {} chunk(s); SHA-256 equals the S3 object's",
                record["total_chunk_count"]
            );
        } else {
            let images = record["images"].as_array().cloned().unwrap_or_default();
            for image in &images {
                let (w, h) = (
                    image["width"].as_u64().unwrap_or(0),
                    image["height"].as_u64().unwrap_or(0),
                );
                if image["format"] != "jpeg" || w > 1080 || h > 1920 {
                    return Err(format!("TikTok pulled a photo it would refuse: {image}"));
                }
            }
            let sizes: Vec<String> = images
                .iter()
                .map(|i| format!("{}x{}", i["width"], i["height"]))
                .collect();
            println!(
                "    photos            {} JPEG(s) pulled: {}",
                images.len(),
                sizes.join(", ")
            );
        }
    }
    Ok(())
}

/// Nothing ended in the dead-letter queue.
pub async fn dead_letters(stack: &Stack) -> DemoResult<()> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let attributes = stack
        .sqs
        .get_queue_attributes()
        .queue_url(&stack.dead_letter_queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(|e| format!("read the dead-letter queue: {}", describe_sdk_error(&e)))?;
    let count = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
        .cloned()
        .unwrap_or_default();
    if count != "0" {
        return Err(format!("{count} message(s) ended in the dead-letter queue"));
    }
    println!("    dead-letter queue empty");
    Ok(())
}
