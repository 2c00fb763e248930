//! Step 9 (local stack): the creator's link, as `tiktok-drafts link`
//! makes it for the operator to send her, and the page it opens, served by
//! the creator-page function through the HTTP API.

use crate::DemoResult;
use crate::cli::{Cli, JobView};
use crate::stack::Stack;

pub async fn open_the_creator_page(
    cli: &Cli,
    stack: &Stack,
    public_url: &str,
    jobs: &[JobView],
) -> DemoResult<()> {
    println!(
        "== the creator's page (tiktok-drafts link --account {})",
        stack.alias
    );
    let page_url = format!("{public_url}/creator/");
    let made = cli
        .json(&["link", "--account", &stack.alias, "--page-url", &page_url])
        .await?;
    let link = made["link"]
        .as_str()
        .ok_or_else(|| format!("tiktok-drafts link printed no link: {made}"))?;
    println!("    link              {link}");
    let response = reqwest::get(link)
        .await
        .map_err(|e| format!("open the creator's page: {e}"))?;
    let status = response.status();
    let html = response
        .text()
        .await
        .map_err(|e| format!("read the creator's page: {e}"))?;
    if !status.is_success() {
        return Err(format!("the creator's page answered {status}"));
    }
    // Each upload by its file name (a slideshow's by its folder's).
    let listed: Vec<&str> = jobs
        .iter()
        .filter_map(|job| file_name(&job.key))
        .filter(|name| html.contains(name))
        .collect();
    println!(
        "    page              {} ({} bytes), lists {} of {} upload(s): {}",
        status.as_u16(),
        html.len(),
        listed.len(),
        jobs.len(),
        listed.join(", ")
    );
    Ok(())
}

/// The name the page shows for an upload's key.
fn file_name(key: &str) -> Option<&str> {
    let mut parts = key.trim_end_matches('/').rsplit('/');
    match parts.next()? {
        "slideshow.json" => parts.next(),
        name => Some(name),
    }
}
