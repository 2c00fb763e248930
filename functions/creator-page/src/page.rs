//! The HTML: the list of uploads, and the pages that say why there is none
//! to show. Plain code: values in, markup out, every value escaped.
//!
//! The page works without JavaScript (captions are plain selectable text);
//! the one script only adds the Copy buttons. It and the style sheet are
//! inline, allowed by their hashes in the Content-Security-Policy
//! ([`crate::assets`]), so the page is one request and nothing else runs.

use chrono::{DateTime, Utc};
use shared::accounts::Account;
use shared::html::escape;
use shared::jobs::{Job, JobKind, PostTarget};
use shared::plain_words::{self, JobWords, Standing};

use crate::assets::{SCRIPT, STYLE};

/// What the list page shows.
pub struct ListView<'a> {
    pub account: &'a Account,
    /// Newest first.
    pub jobs: &'a [Job],
    /// The cursor of the next (older) page, when there is one.
    pub next: Option<&'a str>,
    /// Whether this is a later page (reached through a cursor).
    pub later_page: bool,
    pub window_days: i64,
    pub now: DateTime<Utc>,
}

/// The list of uploads.
pub fn list_page(view: &ListView<'_>) -> String {
    let account = view.account;
    let name = account
        .display_name
        .as_deref()
        .or(account.alias.as_deref())
        .unwrap_or("your account");
    let mut body = String::new();
    body.push_str(&format!(
        "<header><h1>Your uploads</h1><p class=\"lead\">{} · the last {} days, newest first. As of {}.</p></header>\n",
        escape(name),
        view.window_days,
        escape(&when(view.now)),
    ));
    if let Some(trouble) = plain_words::account_trouble(account) {
        body.push_str(&format!(
            "<section class=\"notice\" role=\"alert\"><p><strong>{}</strong></p><p>{}</p></section>\n",
            escape(&trouble.sentence()),
            escape(&trouble.hint)
        ));
    }
    if view.jobs.is_empty() {
        body.push_str(if view.later_page {
            "<p class=\"empty\">No older uploads.</p>\n"
        } else {
            "<p class=\"empty\">No uploads in this time yet. Anything sent to TikTok for you shows up here.</p>\n"
        });
    } else {
        body.push_str("<ol class=\"uploads\">\n");
        for (index, job) in view.jobs.iter().enumerate() {
            body.push_str(&upload_item(index, job));
        }
        body.push_str("</ol>\n");
    }
    if view.later_page || view.next.is_some() {
        body.push_str("<nav aria-label=\"More uploads\">");
        if view.later_page {
            body.push_str("<a href=\"?\">Newest uploads</a>");
        }
        if let Some(next) = view.next {
            if view.later_page {
                body.push_str(" · ");
            }
            body.push_str(&format!(
                "<a href=\"?after={}\" rel=\"next\">Older uploads</a>",
                escape(next)
            ));
        }
        body.push_str("</nav>\n");
    }
    document("Your uploads", &body, true)
}

fn upload_item(index: usize, job: &Job) -> String {
    let words: JobWords = plain_words::job_words(job);
    let mut item = format!(
        "<li class=\"upload is-{}\"><h2>{}</h2><p class=\"meta\">{} · {}</p><p class=\"status\">{}</p>",
        words.standing.as_str(),
        escape(&plain_words::upload_name(job)),
        kind_words(job),
        escape(&when(job.created_at)),
        escape(&words.label),
    );
    // The label says it all for a plain failure; the detail adds nothing.
    if words.standing != Standing::Failed {
        item.push_str(&format!(
            "<p class=\"detail\">{}</p>",
            escape(&words.detail)
        ));
    }
    if let Some(hint) = words
        .hint
        .as_deref()
        .filter(|_| words.standing == Standing::Failed)
    {
        item.push_str(&format!("<p class=\"hint\">{}</p>", escape(hint)));
    }
    // What the upload's video probe noted (HDR, longer than 3 minutes):
    // the creator may have to trim or check it in the app.
    for note in &job.notes {
        item.push_str(&format!("<p class=\"note\">{}</p>", escape(note)));
    }
    // Links are built from TikTok's post ids; only https ones are shown,
    // whatever a stored record says.
    for link in job.share_urls.iter().filter(|l| l.starts_with("https://")) {
        item.push_str(&format!(
            "<p><a href=\"{}\" rel=\"noopener noreferrer\">See the post on TikTok</a></p>",
            escape(link)
        ));
    }
    // Inbox videos lose their caption at TikTok: the creator pastes it.
    let wants_caption = job.post == PostTarget::Draft && job.kind == JobKind::Video;
    if let Some(caption) = job
        .caption
        .as_deref()
        .filter(|c| wants_caption && !c.is_empty())
    {
        item.push_str(&format!(
            "<div class=\"caption\"><h3 id=\"caption-{index}-label\">Caption</h3>\
             <p class=\"caption-text\" id=\"caption-{index}\">{}</p>\
             <button type=\"button\" data-copy=\"caption-{index}\" data-status=\"caption-{index}-status\" aria-describedby=\"caption-{index}-label\" hidden>Copy caption</button>\
             <span class=\"copied\" id=\"caption-{index}-status\" role=\"status\" aria-live=\"polite\"></span></div>",
            escape(caption)
        ));
    }
    item.push_str("</li>\n");
    item
}

/// A page that explains why there is no list: a refused link, a damaged
/// page link, a store that cannot be reached.
pub fn message_page(title: &str, paragraphs: &[&str]) -> String {
    let body: String = paragraphs
        .iter()
        .map(|p| format!("<p>{}</p>\n", escape(p)))
        .collect();
    document(title, &format!("<h1>{}</h1>\n{body}", escape(title)), false)
}

fn document(title: &str, body: &str, with_script: bool) -> String {
    let script = if with_script {
        format!("<script>{SCRIPT}</script>")
    } else {
        String::new()
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex, nofollow\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body><main>\n{body}</main>{script}</body></html>\n",
        escape(title)
    )
}

fn kind_words(job: &Job) -> &'static str {
    match job.kind {
        JobKind::Video => "Video",
        JobKind::Slideshow => "Photos",
    }
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%-d %b %Y, %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use shared::accounts::AccountState;
    use shared::jobs::{JobStatus, LastError, NewJob, ObjectVersion, Upload};

    use super::*;

    fn account() -> Account {
        Account {
            open_id: "open-alice".into(),
            alias: Some("alice".into()),
            former_alias: None,
            display_name: Some("Alice <3".into()),
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

    fn job(key: &str, status: JobStatus, caption: Option<&str>) -> Job {
        let mut job = Job::new(
            NewJob {
                upload: Upload {
                    bucket: "b".into(),
                    key: key.into(),
                    version: ObjectVersion::etag(key),
                    size: 1,
                },
                alias: Some("alice".into()),
                open_id: Some("open-alice".into()),
                kind: JobKind::Video,
                post: PostTarget::Draft,
                caption: caption.map(str::to_owned),
            },
            Utc::now(),
        );
        job.status = status;
        job
    }

    fn view<'a>(account: &'a Account, jobs: &'a [Job]) -> ListView<'a> {
        ListView {
            account,
            jobs,
            next: None,
            later_page: false,
            window_days: 30,
            now: Utc::now(),
        }
    }

    #[test]
    fn captions_names_and_file_names_are_text_never_markup() {
        let account = account();
        let jobs = [job(
            "uploads/alice/<img src=x onerror=alert(1)>.mp4",
            JobStatus::Inbox,
            Some("<script>alert('x')</script> & \"quotes\""),
        )];
        let html = list_page(&view(&account, &jobs));
        assert!(!html.contains("<img src=x"));
        assert!(!html.contains("<script>alert"));
        assert!(
            html.contains(
                "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;"
            )
        );
        assert!(html.contains("Alice &lt;3"));
        // The only script is ours.
        assert_eq!(html.matches("<script>").count(), 1);
    }

    #[test]
    fn inbox_videos_get_their_caption_with_a_copy_button_and_others_do_not() {
        let account = account();
        let mut photo = job(
            "uploads/alice/trip/slideshow.json",
            JobStatus::Inbox,
            Some("Trip"),
        );
        photo.kind = JobKind::Slideshow;
        let jobs = [
            job(
                "uploads/alice/a.mp4",
                JobStatus::Inbox,
                Some("First line\nsecond"),
            ),
            photo,
            job("uploads/alice/b.mp4", JobStatus::Inbox, None),
        ];
        let mut jobs = jobs;
        jobs[2].notes = vec!["4 min 5 s (245 s) long: <trim> it".into()];
        let html = list_page(&view(&account, &jobs));
        assert_eq!(html.matches("data-copy=").count(), 1, "{html}");
        assert!(html.contains("<p class=\"note\">4 min 5 s (245 s) long: &lt;trim&gt; it</p>"));
        assert!(html.contains("id=\"caption-0\">First line\nsecond</p>"));
        assert!(html.contains("<h2>trip</h2>"));
        assert!(html.contains("In your TikTok inbox"));
        assert!(html.contains("Open TikTok, tap the inbox, finish and post."));
        // Hidden until the script shows it: no dead button without JavaScript.
        assert!(html.contains("hidden>Copy caption</button>"));
    }

    #[test]
    fn statuses_read_in_plain_words_with_links_and_what_to_do() {
        let account = account();
        let mut posted = job("uploads/alice/p.mp4", JobStatus::Published, None);
        posted.share_urls = vec!["https://www.tiktok.com/@alice/video/7459287841546292488".into()];
        let mut failed = job("uploads/alice/f.mp4", JobStatus::Failed, None);
        failed.last_error = Some(LastError {
            code: "frame_rate_check_failed".into(),
            message: "x".into(),
        });
        let jobs = [
            posted,
            failed,
            job("uploads/alice/q.mp4", JobStatus::Queued, None),
            job("uploads/alice/s.mp4", JobStatus::Uploading, None),
        ];
        let html = list_page(&view(&account, &jobs));
        for expected in [
            "<p class=\"status\">Posted</p>",
            "href=\"https://www.tiktok.com/@alice/video/7459287841546292488\" rel=\"noopener noreferrer\"",
            "Failed: the video&#39;s frame rate is outside what TikTok accepts",
            "Export it at 30 or 60 frames per second",
            "Waiting: you have 5 drafts open in TikTok",
            "Sending to TikTok",
            "class=\"upload is-failed\"",
        ] {
            assert!(html.contains(expected), "missing {expected:?} in {html}");
        }
    }

    #[test]
    fn pages_link_onwards_and_back_and_an_empty_list_says_so() {
        let account = account();
        let jobs = [job("uploads/alice/a.mp4", JobStatus::Inbox, None)];
        let mut v = view(&account, &jobs);
        v.next = Some("abc_-");
        let html = list_page(&v);
        assert!(html.contains("href=\"?after=abc_-\" rel=\"next\">Older uploads"));
        assert!(!html.contains("Newest uploads"));
        let none: [Job; 0] = [];
        let mut later = view(&account, &none);
        later.later_page = true;
        let html = list_page(&later);
        assert!(html.contains("No older uploads") && html.contains("href=\"?\""));
        assert!(list_page(&view(&account, &none)).contains("No uploads in this time yet"));
    }

    #[test]
    fn account_trouble_is_said_first() {
        let mut account = account();
        account.state = AccountState::NeedsReconnect;
        let none: [Job; 0] = [];
        let html = list_page(&view(&account, &none));
        assert!(html.contains("role=\"alert\""));
        assert!(html.contains("TikTok needs you to connect your account again."));
    }

    #[test]
    fn every_page_is_private_and_mobile_ready() {
        let account = account();
        let none: [Job; 0] = [];
        for html in [
            list_page(&view(&account, &none)),
            message_page("This link no longer works", &["<b>x</b>"]),
        ] {
            assert!(html.starts_with("<!doctype html>"));
            assert!(html.contains("<meta name=\"robots\" content=\"noindex, nofollow\">"));
            assert!(html.contains("<meta name=\"referrer\" content=\"no-referrer\">"));
            assert!(html.contains("name=\"viewport\""));
            assert!(html.contains("<html lang=\"en\">"));
        }
        assert!(message_page("t", &["<b>x</b>"]).contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(
            !message_page("t", &[]).contains("<script>"),
            "no script where nothing needs it"
        );
    }
}
