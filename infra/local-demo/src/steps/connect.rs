//! Step 3: connect an account. `tiktok-drafts invite` makes the link,
//! which a browser follows through `/auth/start`, TikTok's authorize page
//! and `/auth/callback` (state, PKCE, code exchange, tokens into Secrets
//! Manager); the account then shows in the table.

use std::time::{Duration, Instant};

use shared::accounts::Accounts;

use super::Pace;
use crate::cli::Cli;
use crate::sim_control::SimControl;
use crate::stack::Stack;
use crate::{DemoResult, SIM_OPEN_ID};

/// Step 3: makes the invitation link and follows it (the simulator's
/// browser, or yours on real TikTok), then waits for the account.
pub async fn connect(
    cli: &Cli,
    stack: &Stack,
    sim: Option<&SimControl>,
    public_url: &str,
    pace: &Pace,
) -> DemoResult<()> {
    println!("== connect an account (invitation, TikTok Login v2, PKCE S256)");
    if let Some(sim) = sim {
        add_creator(sim).await?;
    }
    let link = invite(cli, stack, public_url).await?;
    if sim.is_some() {
        follow_login(&link, public_url).await?;
    } else {
        println!(
            "    Open this link in a browser and log in as the creator (waiting up to {} min):",
            pace.login.as_secs() / 60
        );
        println!("    {link}");
    }
    wait_for_account(stack, pace).await
}

/// Adds the creator who logs in to the simulator.
async fn add_creator(sim: &SimControl) -> DemoResult<()> {
    sim.call(
        reqwest::Method::POST,
        "/_sim/users",
        Some(serde_json::json!({
            "open_id": SIM_OPEN_ID,
            "username": "demo.creator",
            "display_name": "Demo Creator"
        })),
    )
    .await?;
    Ok(())
}

/// `tiktok-drafts invite` for the demo's account: gives the signed link.
async fn invite(cli: &Cli, stack: &Stack, public_url: &str) -> DemoResult<String> {
    let login_url = format!("{public_url}/auth/start");
    let invite = cli
        .json(&[
            "invite",
            "--account",
            &stack.alias,
            "--ttl",
            "1h",
            "--login-url",
            &login_url,
        ])
        .await?;
    let link = invite["link"]
        .as_str()
        .ok_or_else(|| format!("tiktok-drafts invite printed no link: {invite}"))?
        .to_owned();
    println!(
        "    tiktok-drafts invite --account {}: a signed link, single use, until {}",
        stack.alias,
        invite["expires_at"].as_str().unwrap_or("?")
    );
    Ok(link)
}

/// The creator's browser on the simulator: follows each redirect from the
/// link by hand, so that every hop shows, sending the login's own cookies
/// (the start binds the login to this browser) back to the login only.
async fn follow_login(link: &str, public_url: &str) -> DemoResult<()> {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("browser: {}", e.without_url()))?;
    let mut url = link.to_owned();
    let mut cookies: Vec<String> = Vec::new();
    for _ in 0..4 {
        let mut request = browser.get(&url);
        if url.starts_with(public_url) && !cookies.is_empty() {
            request = request.header("cookie", cookies.join("; "));
        }
        let res = request
            .send()
            .await
            // reqwest's errors name the full URL, here with the
            // invitation token or the OAuth code and state in it.
            .map_err(|e| format!("GET {}: {}", without_query(&url), e.without_url()))?;
        for set in res.headers().get_all("set-cookie") {
            if let Some(pair) = set.to_str().ok().and_then(|v| v.split(';').next()) {
                cookies.push(pair.trim().to_owned());
            }
        }
        let status = res.status();
        if status.is_redirection() {
            let next = res
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| format!("{} redirected nowhere", without_query(&url)))?
                .to_owned();
            if next.contains("/v2/auth/authorize/") {
                println!("    browser           to TikTok's authorize page (the creator approves)");
            }
            url = next;
            continue;
        }
        if status != reqwest::StatusCode::OK {
            let page = res.text().await.unwrap_or_default();
            return Err(format!(
                "the login ended at {} with {status}: {}",
                without_query(&url),
                page.chars().take(400).collect::<String>()
            ));
        }
        break;
    }
    Ok(())
}

/// Waits (up to the login pace) for the account to show in the table, then
/// reports it and where its tokens are.
async fn wait_for_account(stack: &Stack, pace: &Pace) -> DemoResult<()> {
    let accounts = Accounts::new(stack.aws.dynamodb.clone(), &stack.table);
    let until = Instant::now() + pace.login;
    let account = loop {
        if let Some(account) = accounts
            .get_by_alias(&stack.alias)
            .await
            .map_err(|e| format!("read the account: {e}"))?
        {
            break account;
        }
        if Instant::now() > until {
            return Err(format!(
                "no account was connected as {:?} in time",
                stack.alias
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "    connected         {} (open_id {}, scopes {}, state {})",
        account.display_name.as_deref().unwrap_or("?"),
        account.open_id,
        account.scopes.join(","),
        account.state
    );
    println!(
        "    tokens            in Secrets Manager as {}/accounts/{}",
        stack.secrets_prefix, account.open_id
    );
    Ok(())
}

/// The URL without its query, which may hold a token, a code or a state.
fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}
