//! `GET /auth/start?invite=…`: check the invitation, refuse what cannot
//! succeed before the creator sees TikTok, then store the login state, bind
//! it to this browser and send the browser to TikTok.

use std::collections::HashMap;

use lambda_http::http::StatusCode;
use lambda_http::http::header::SET_COOKIE;
use lambda_http::{Body, Response};
use shared::accounts::{AccountState, AliasPermits};
use shared::invite::Invitation;
use shared::login::rules;
use shared::login_state::{DEFAULT_TTL, PendingLogin};
use shared::tiktok::oauth::scopes_for;

use crate::{LoginService, browser, pages};

impl LoginService {
    pub(crate) async fn start(&self, query: &HashMap<String, String>) -> Response<Body> {
        let Some(token) = query.get("invite").filter(|t| !t.is_empty()) else {
            return pages::page(
                StatusCode::FORBIDDEN,
                "Invitation needed",
                &[
                    "Connecting a TikTok account needs an invitation link from the operator of this service.",
                ],
            );
        };
        let now = self.clock.now();
        let invitation = match Invitation::verify(token, &self.invite_key, now) {
            Ok(inv) => inv,
            Err(err) => {
                tracing::info!(reason = %err, "login refused: bad invitation");
                return pages::page(
                    StatusCode::FORBIDDEN,
                    "Invitation not accepted",
                    &[&err.to_string()],
                );
            }
        };
        match self.refusal_before_tiktok(&invitation).await {
            Ok(Some(page)) => return page,
            Ok(None) => {}
            Err(err) => {
                tracing::error!(alias = invitation.alias(), error = %err, "cannot check the invitation");
                return pages::unavailable();
            }
        }
        let permits = AliasPermits {
            rebind: invitation.rebind(),
            move_alias: invitation.move_alias(),
        };
        let mut login = PendingLogin::new(
            invitation.alias(),
            invitation.id(),
            permits,
            &self.config.redirect_uri,
            now,
            DEFAULT_TTL,
        );
        let nonce = login.bind_to_browser();
        if let Err(err) = self.states.create(&login).await {
            tracing::error!(error = %err, "cannot store the login state");
            return pages::unavailable();
        }
        let scopes = scopes_for(self.config.direct_post_enabled);
        let url = self.tiktok.authorize_url(
            &scopes,
            &self.config.redirect_uri,
            &login.state,
            Some((&login.verifier, self.config.pkce_encoding)),
        );
        tracing::info!(alias = invitation.alias(), "login started");
        let mut response = pages::redirect(url.as_str());
        if let Some(cookie) = browser::set_cookie(&login.state, nonce.expose(), DEFAULT_TTL) {
            response.headers_mut().append(SET_COOKIE, cookie);
        }
        response
    }

    /// A page for an invitation that cannot lead to a connection, so the
    /// creator is not sent through TikTok (and no grant is made) for nothing:
    /// a used invitation, or an alias connected after the invitation was made.
    async fn refusal_before_tiktok(
        &self,
        invitation: &Invitation,
    ) -> Result<Option<Response<Body>>, shared::accounts::AccountError> {
        let alias = invitation.alias();
        if let Some(used) = self.accounts.invitation_use(invitation.id()).await? {
            let account = self.accounts.get(&used.open_id).await?;
            // Named only while that account still holds the alias the link
            // was for: then whoever opens the link learns who it connected.
            let connected = account.filter(|a| {
                a.state == AccountState::Active && a.alias.as_deref() == Some(used.alias.as_str())
            });
            tracing::info!(
                alias,
                invite_id = invitation.id(),
                used_by = %used.open_id,
                still_connected = connected.is_some(),
                "login refused at start: invitation already used"
            );
            return Ok(Some(pages::invitation_used(connected.as_ref())));
        }
        let binding = self.accounts.alias_binding(alias).await?;
        let permits = AliasPermits {
            rebind: invitation.rebind(),
            move_alias: invitation.move_alias(),
        };
        if rules::bound_after_invitation(
            binding.as_ref().and_then(|b| b.bound_at),
            invitation.issued_at(),
            permits,
        ) {
            tracing::info!(
                alias,
                invite_id = invitation.id(),
                "login refused at start: the alias was connected after the invitation was made"
            );
            return Ok(Some(pages::page(
                StatusCode::CONFLICT,
                "Already connected",
                &[
                    &format!(
                        "\u{201c}{alias}\u{201d} was connected to a TikTok account after this link was made, so this link can no longer connect it."
                    ),
                    "If you connected it yourself, there is nothing more to do. Otherwise ask the operator for a new link.",
                ],
            )));
        }
        Ok(None)
    }
}
