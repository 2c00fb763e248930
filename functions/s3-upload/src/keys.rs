//! Which S3 keys mean what: the upload key layout.
//!
//! ```text
//! uploads/<account>/<name>.mp4|.mov|.webm      a video
//! uploads/<account>/<name>.json                 the video's caption sidecar (no job of its own)
//! uploads/<account>/<show>/slideshow.json       a slideshow manifest (triggers the job)
//! uploads/<account>/<show>/<image>              a slideshow image (waits for its manifest)
//! ```
//!
//! A deployment with one account may leave the account out
//! (`uploads/<name>.mp4`, `uploads/<show>/slideshow.json`). There,
//! `uploads/<x>/slideshow.json` is read as the account `x`'s slideshow
//! (its images beside it in `uploads/<x>/`) when `x` is a bound alias, never
//! as the default account's folder `x`: see [`manifest_folder_alias`]. The
//! extension only routes the key; the media type is decided later by magic
//! bytes.

use shared::invite::validate_alias;

/// The prefix every upload lives under.
pub const UPLOADS_PREFIX: &str = "uploads/";
/// The file name that makes a folder a slideshow.
pub const MANIFEST_NAME: &str = "slideshow.json";

const VIDEO_EXTENSIONS: [&str; 3] = ["mp4", "mov", "webm"];

/// What an uploaded key asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadKey {
    Video {
        account: String,
        name: String,
    },
    /// `show` is the slideshow's folder; empty for a manifest right in an
    /// account's folder.
    Slideshow {
        account: String,
        show: String,
    },
}

impl UploadKey {
    pub fn account(&self) -> &str {
        match self {
            Self::Video { account, .. } | Self::Slideshow { account, .. } => account,
        }
    }
}

/// The outcome of routing one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Start (or resume) a job.
    Job(UploadKey),
    /// Nothing to do for this key by itself (a sidecar, a slideshow image,
    /// something outside `uploads/`); the reason is for the log.
    Ignore(&'static str),
    /// The key is under `uploads/` but cannot be handled; the message says
    /// how to name it instead. The object is left as it is.
    Reject(String),
}

/// The segment `x` of `uploads/<x>/slideshow.json` in a deployment with a
/// default account: the one key whose reading depends on whether `x` is a
/// bound alias, which the caller looks up and passes to [`route`].
pub fn manifest_folder_alias<'k>(key: &'k str, default_account: Option<&str>) -> Option<&'k str> {
    default_account?;
    let rest = key.strip_prefix(UPLOADS_PREFIX)?;
    let (segment, file) = rest.split_once('/')?;
    (file == MANIFEST_NAME && !segment.is_empty()).then_some(segment)
}

/// Routes a decoded S3 key. `default_account` is the alias of a one-account
/// deployment, where keys may leave the account out; `folder_is_alias` says
/// that the folder [`manifest_folder_alias`] named is a bound alias.
pub fn route(key: &str, default_account: Option<&str>, folder_is_alias: bool) -> Route {
    let Some(rest) = key.strip_prefix(UPLOADS_PREFIX) else {
        return Route::Ignore("outside uploads/");
    };
    if key.ends_with('/') {
        return Route::Ignore("a folder marker");
    }
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Route::Reject(format!(
            "{key:?} has an empty path segment; use uploads/<account>/<name>.mp4"
        ));
    }
    let file = parts[parts.len() - 1];
    let is_manifest = file == MANIFEST_NAME;
    let (account, folders): (Option<&str>, &[&str]) = match (parts.len(), is_manifest) {
        // uploads/<account>/<show>/slideshow.json
        (3, true) => (Some(parts[0]), &parts[1..2]),
        // uploads/<account>/slideshow.json, the account a bound alias
        (2, true) if folder_is_alias => (Some(parts[0]), &[]),
        // uploads/<show>/slideshow.json in a one-account deployment
        (2, true) => (None, &parts[0..1]),
        // uploads/<account>/<name>.<ext>
        (2, false) => (Some(parts[0]), &[]),
        // uploads/<name>.<ext> in a one-account deployment
        (1, false) => (None, &[]),
        // uploads/<account>/<show>/<image>: waits for its manifest
        (3, false) => return Route::Ignore("a slideshow image; its manifest starts the job"),
        _ => {
            return Route::Reject(format!(
                "{key:?} is nested too deeply; use uploads/<account>/<name>.mp4 or uploads/<account>/<show>/slideshow.json"
            ));
        }
    };
    let account = match (account, default_account) {
        (Some(a), _) => a,
        (None, Some(d)) => d,
        (None, None) => {
            return Route::Reject(format!(
                "{key:?} names no account; use uploads/<account>/{}",
                &key[UPLOADS_PREFIX.len()..]
            ));
        }
    };
    if validate_alias(account).is_err() {
        return Route::Reject(format!(
            "{account:?} in {key:?} is not an account alias (lowercase letters, digits, '-' and '_')"
        ));
    }
    if is_manifest {
        return Route::Job(UploadKey::Slideshow {
            account: account.to_owned(),
            show: folders
                .first()
                .map_or_else(String::new, |f| (*f).to_owned()),
        });
    }
    let extension = file
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match extension.as_deref() {
        Some(ext) if VIDEO_EXTENSIONS.contains(&ext) => Route::Job(UploadKey::Video {
            account: account.to_owned(),
            name: file.to_owned(),
        }),
        Some("json") => Route::Ignore("a caption sidecar"),
        _ => Route::Ignore("not a video; slideshows need a folder with slideshow.json"),
    }
}

/// The sidecar key holding a video's caption: `<name>.json` beside it.
pub fn sidecar_key(video_key: &str) -> String {
    match video_key.rsplit_once('.') {
        Some((stem, _)) if !stem.ends_with('/') => format!("{stem}.json"),
        _ => format!("{video_key}.json"),
    }
}

/// The folder of a slideshow manifest (with its trailing slash), where its
/// images are.
pub fn slideshow_folder(manifest_key: &str) -> &str {
    manifest_key
        .strip_suffix(MANIFEST_NAME)
        .unwrap_or(manifest_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(account: &str, name: &str) -> Route {
        Route::Job(UploadKey::Video {
            account: account.into(),
            name: name.into(),
        })
    }

    #[test]
    fn videos_and_slideshows_are_routed() {
        assert_eq!(
            route("uploads/alice/clip.mp4", None, false),
            video("alice", "clip.mp4")
        );
        assert_eq!(
            route("uploads/alice/Holiday Clip ÉTÉ.MOV", None, false),
            video("alice", "Holiday Clip ÉTÉ.MOV")
        );
        assert_eq!(
            route("uploads/alice/x.webm", None, false),
            video("alice", "x.webm")
        );
        assert_eq!(
            route("uploads/alice/trip/slideshow.json", None, false),
            Route::Job(UploadKey::Slideshow {
                account: "alice".into(),
                show: "trip".into()
            })
        );
    }

    #[test]
    fn one_account_deployments_may_leave_the_account_out() {
        assert_eq!(
            route("uploads/clip.mp4", Some("solo"), false),
            video("solo", "clip.mp4")
        );
        assert_eq!(
            route("uploads/trip/slideshow.json", Some("solo"), false),
            Route::Job(UploadKey::Slideshow {
                account: "solo".into(),
                show: "trip".into()
            })
        );
        assert!(
            matches!(route("uploads/clip.mp4", None, false), Route::Reject(m) if m.contains("names no account"))
        );
    }

    /// In a one-account deployment, a folder named like a bound alias is
    /// that alias's, never the default account's slideshow folder.
    #[test]
    fn a_bound_alias_wins_over_the_default_accounts_folder() {
        let key = "uploads/alice/slideshow.json";
        assert_eq!(manifest_folder_alias(key, Some("solo")), Some("alice"));
        assert_eq!(manifest_folder_alias(key, None), None);
        assert_eq!(
            manifest_folder_alias("uploads/alice/trip/slideshow.json", Some("solo")),
            None
        );
        assert_eq!(
            manifest_folder_alias("uploads/alice/clip.mp4", Some("solo")),
            None
        );
        assert_eq!(
            route(key, Some("solo"), true),
            Route::Job(UploadKey::Slideshow {
                account: "alice".into(),
                show: String::new()
            })
        );
        assert_eq!(
            route(key, Some("solo"), false),
            Route::Job(UploadKey::Slideshow {
                account: "solo".into(),
                show: "alice".into()
            })
        );
    }

    #[test]
    fn other_keys_are_ignored_or_rejected_clearly() {
        assert!(matches!(
            route("media/x.jpg", None, false),
            Route::Ignore(_)
        ));
        assert!(matches!(
            route("uploads/alice/", None, false),
            Route::Ignore(_)
        ));
        assert!(matches!(
            route("uploads/alice/clip.json", None, false),
            Route::Ignore(_)
        ));
        assert!(matches!(
            route("uploads/alice/trip/1.png", None, false),
            Route::Ignore(_)
        ));
        assert!(matches!(
            route("uploads/alice/notes.txt", None, false),
            Route::Ignore(_)
        ));
        assert!(matches!(
            route("uploads/alice/a/b/c.mp4", None, false),
            Route::Reject(_)
        ));
        assert!(matches!(
            route("uploads//clip.mp4", None, false),
            Route::Reject(_)
        ));
        assert!(
            matches!(route("uploads/Alice Smith/clip.mp4", None, false), Route::Reject(m) if m.contains("not an account alias"))
        );
    }

    #[test]
    fn sidecars_and_folders() {
        assert_eq!(sidecar_key("uploads/a/clip.mp4"), "uploads/a/clip.json");
        assert_eq!(
            sidecar_key("uploads/a/my.clip.mov"),
            "uploads/a/my.clip.json"
        );
        assert_eq!(
            slideshow_folder("uploads/a/trip/slideshow.json"),
            "uploads/a/trip/"
        );
    }
}
