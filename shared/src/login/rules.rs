//! The login's decisions, without I/O: may this grant connect this account
//! under this alias, and what becomes of a grant the login will not use.
//!
//! ```text
//!             code exchanged (a new grant of open_id O)
//!                              |
//!        check(): invitation unused?  alias free or O's (or rebind)?
//!                 O not connected under another alias (or move)?
//!               /                                   \
//!            refused                               allowed
//!               |                                     |
//!      unused_grant(O connected here?)      tokens saved, then one
//!         yes / unknown -> Drop             transaction uses the
//!         no            -> Revoke           invitation and binds
//! ```
//!
//! Why never revoke when O is connected: TikTok's revoke ends the user's
//! whole grant to the app, so revoking the new token also kills the tokens
//! stored for her. A dropped grant costs nothing: it is simply never used.

use chrono::{DateTime, Utc};

use crate::accounts::{Account, AccountError, AliasBinding, AliasPermits, UsedInvitation};

/// What the table said before the login wrote anything.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Whose grant the code exchange returned.
    pub open_id: &'a str,
    /// The alias the invitation names.
    pub alias: &'a str,
    /// What the invitation allows: taking the alias from its holder
    /// (rebind), moving the account from its current alias.
    pub permits: AliasPermits,
    /// The account of `open_id`, if connected here before.
    pub existing: Option<&'a Account>,
    /// Who used the invitation, if anyone did.
    pub invitation_used: Option<&'a UsedInvitation>,
    /// Who holds the alias, if anyone does.
    pub alias_holder: Option<&'a AliasBinding>,
}

/// Why the login may not connect, the same answers the account transaction
/// gives (it checks again, atomically: these reads can be overtaken).
pub fn check(facts: &Facts<'_>) -> Result<(), AccountError> {
    if facts.invitation_used.is_some() {
        return Err(AccountError::InvitationUsed);
    }
    if let Some(holder) = facts.alias_holder
        && holder.open_id != facts.open_id
        && !facts.permits.rebind
    {
        return Err(AccountError::AliasTaken {
            alias: facts.alias.to_owned(),
        });
    }
    if let Some(current) = facts.existing.and_then(|a| a.alias.as_deref())
        && current != facts.alias
        && !facts.permits.move_alias
    {
        return Err(AccountError::MoveNotAllowed {
            from: current.to_owned(),
            to: facts.alias.to_owned(),
        });
    }
    Ok(())
}

/// Whether `/auth/start` should refuse an invitation because its alias was
/// bound to a TikTok account after the invitation was made: the operator
/// invited for a free alias, and someone connected it meanwhile (another
/// link for the same alias). An alias bound before the invitation was made
/// is a reconnect invitation and goes on to TikTok; the callback then sees
/// who logs in. Unknown times (links or bindings from before these were
/// recorded) refuse nothing here; the callback still checks.
pub fn bound_after_invitation(
    bound_at: Option<DateTime<Utc>>,
    issued_at: Option<DateTime<Utc>>,
    permits: AliasPermits,
) -> bool {
    match (bound_at, issued_at) {
        (Some(bound), Some(issued)) => bound > issued && !permits.rebind,
        _ => false,
    }
}

/// What to do with a grant the login will not use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnusedGrant {
    /// Forget it; it is never used, and the user's connection (if any)
    /// stays as it is.
    Drop,
    /// End it at TikTok, so a first-time user who could not connect does not
    /// keep the app in her list of connected apps.
    Revoke,
}

/// `connected_here`: whether `open_id` has an account in this deployment,
/// read after the failure (`None`: the read failed, or the grant names no
/// usable open_id). Only a known "no" allows a revoke.
pub fn unused_grant(connected_here: Option<bool>) -> UnusedGrant {
    match connected_here {
        Some(false) => UnusedGrant::Revoke,
        Some(true) | None => UnusedGrant::Drop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::AccountState;

    fn account(open_id: &str, alias: Option<&str>) -> Account {
        Account {
            open_id: open_id.into(),
            alias: alias.map(Into::into),
            former_alias: None,
            display_name: None,
            avatar_url: None,
            scopes: vec![],
            access_expires_at: None,
            refresh_expires_at: None,
            state: AccountState::Active,
            state_reason: None,
            attention: None,
            username: None,
            created_at: Utc::now(),
            connected_at: None,
            updated_at: Utc::now(),
            link_version: 0,
        }
    }

    fn facts<'a>(
        existing: Option<&'a Account>,
        used: Option<&'a UsedInvitation>,
        holder: Option<&'a AliasBinding>,
        permits: AliasPermits,
    ) -> Facts<'a> {
        Facts {
            open_id: "o-me",
            alias: "b",
            permits,
            existing,
            invitation_used: used,
            alias_holder: holder,
        }
    }

    const NONE: AliasPermits = AliasPermits {
        rebind: false,
        move_alias: false,
    };
    const MOVE: AliasPermits = AliasPermits {
        rebind: false,
        move_alias: true,
    };
    const REBIND: AliasPermits = AliasPermits {
        rebind: true,
        move_alias: false,
    };

    #[test]
    fn first_logins_and_reconnects_are_allowed() {
        assert!(check(&facts(None, None, None, NONE)).is_ok());
        let me = account("o-me", Some("b"));
        let mine = AliasBinding {
            open_id: "o-me".into(),
            bound_at: None,
        };
        assert!(check(&facts(Some(&me), None, Some(&mine), NONE)).is_ok());
        // An account that lost its alias takes a new one: not a move.
        let bare = account("o-me", None);
        assert!(check(&facts(Some(&bare), None, None, NONE)).is_ok());
    }

    #[test]
    fn a_used_invitation_is_refused_whoever_comes() {
        let used = UsedInvitation {
            alias: "b".into(),
            open_id: "o-me".into(),
        };
        let me = account("o-me", Some("b"));
        for permits in [NONE, MOVE, REBIND] {
            assert!(matches!(
                check(&facts(Some(&me), Some(&used), None, permits)),
                Err(AccountError::InvitationUsed)
            ));
            assert!(matches!(
                check(&facts(None, Some(&used), None, permits)),
                Err(AccountError::InvitationUsed)
            ));
        }
    }

    #[test]
    fn another_holder_needs_a_rebind() {
        let theirs = AliasBinding {
            open_id: "o-other".into(),
            bound_at: None,
        };
        assert!(matches!(
            check(&facts(None, None, Some(&theirs), NONE)),
            Err(AccountError::AliasTaken { alias }) if alias == "b"
        ));
        assert!(matches!(
            check(&facts(None, None, Some(&theirs), MOVE)),
            Err(AccountError::AliasTaken { .. })
        ));
        assert!(check(&facts(None, None, Some(&theirs), REBIND)).is_ok());
    }

    #[test]
    fn a_move_needs_its_permit_and_names_both_aliases() {
        let me = account("o-me", Some("a"));
        assert!(matches!(
            check(&facts(Some(&me), None, None, NONE)),
            Err(AccountError::MoveNotAllowed { from, to }) if from == "a" && to == "b"
        ));
        assert!(matches!(
            check(&facts(Some(&me), None, None, REBIND)),
            Err(AccountError::MoveNotAllowed { .. })
        ));
        assert!(check(&facts(Some(&me), None, None, MOVE)).is_ok());
    }

    #[test]
    fn an_alias_bound_after_the_invitation_was_made_stops_it_at_the_start() {
        let t = |secs: i64| DateTime::from_timestamp(1_700_000_000 + secs, 0);
        assert!(bound_after_invitation(t(10), t(0), NONE));
        assert!(bound_after_invitation(t(10), t(0), MOVE));
        assert!(!bound_after_invitation(t(10), t(0), REBIND));
        // Bound before: a reconnect invitation.
        assert!(!bound_after_invitation(t(0), t(10), NONE));
        assert!(!bound_after_invitation(t(0), t(0), NONE));
        // Unknown times refuse nothing.
        assert!(!bound_after_invitation(None, t(0), NONE));
        assert!(!bound_after_invitation(t(10), None, NONE));
    }

    #[test]
    fn only_a_grant_known_to_be_nobodys_here_is_revoked() {
        assert_eq!(unused_grant(Some(false)), UnusedGrant::Revoke);
        assert_eq!(unused_grant(Some(true)), UnusedGrant::Drop);
        assert_eq!(unused_grant(None), UnusedGrant::Drop);
    }
}
