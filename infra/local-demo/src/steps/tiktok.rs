//! Step 2, first half: where TikTok is. The simulator, started in this
//! process with the demo's app and redirect URI, or TikTok itself with
//! your app.

use crate::functions::{MediaAccess, TikTokTarget};
use crate::lifecycle::Leftovers;
use crate::stack::Stack;
use crate::{Args, DemoResult, SIM_CLIENT_KEY, SIM_CLIENT_SECRET, TikTokChoice};

/// TikTok for this run.
pub struct TikTokSide {
    /// The simulator's base URL (None: real TikTok).
    pub sim_base: Option<String>,
    pub target: TikTokTarget,
    /// How TikTok reaches the converted photos.
    pub media: MediaAccess,
}

/// Starts the simulator (or finds TikTok's endpoints), recording what the
/// cleanup needs in `left` as soon as it exists.
pub async fn start(
    args: &Args,
    stack: &Stack,
    endpoint: &Option<String>,
    redirect_uri: &str,
    left: &mut Leftovers,
) -> DemoResult<TikTokSide> {
    let real_tiktok = args.tiktok == TikTokChoice::Real;
    let (sim_base, tiktok, media) = if real_tiktok {
        let media = match (&args.media_base_url, &args.bucket) {
            (Some(base), Some(_)) => MediaAccess::BaseUrl(base.clone()),
            _ => MediaAccess::Unavailable,
        };
        let endpoints = shared::tiktok::Endpoints::from_lookup(|_| None)
            .map_err(|e| format!("TikTok's endpoints: {e}"))?;
        (
            None,
            TikTokTarget {
                api_base_url: endpoints.api_base_url.to_string(),
                auth_url: endpoints.auth_url.to_string(),
                upload_base_url: None,
            },
            media,
        )
    } else {
        let endpoint = endpoint
            .as_deref()
            .unwrap_or_default()
            .trim_end_matches('/');
        let sim = tiktok_sim::start(tiktok_sim::SimConfig {
            settings: tiktok_sim::Settings {
                client_key: SIM_CLIENT_KEY.into(),
                client_secret: SIM_CLIENT_SECRET.into(),
                redirect_uris: vec![redirect_uri.to_owned()],
                pkce: tiktok_sim::PkceMode::Required,
                // The bucket's media/ "verified" with the simulated app; on
                // loopback it is plain http.
                verified_url_prefixes: vec![format!("{endpoint}/{}/media/", stack.bucket)],
                allow_http_pull: true,
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .map_err(|e| format!("start the TikTok simulator: {e}"))?;
        let base = sim.base_url();
        left.sim = Some(sim);
        let tiktok = TikTokTarget {
            api_base_url: base.clone(),
            auth_url: format!("{base}/v2/auth/authorize/"),
            upload_base_url: Some(base.clone()),
        };
        (Some(base), tiktok, MediaAccess::Presigned)
    };
    match &sim_base {
        Some(base) => println!("    TikTok            {base} (simulator)"),
        None => println!("    TikTok            {} (your app)", tiktok.api_base_url),
    }
    left.tiktok = Some(tiktok.clone());
    Ok(TikTokSide {
        sim_base,
        target: tiktok,
        media,
    })
}
