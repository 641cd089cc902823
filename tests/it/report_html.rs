//! `xmatch report html`: the suppressed performance report as one self-contained HTML page,
//! on a generated state (2,000 participants): nothing fetched, no count under the
//! small-cell threshold, the numbers those of the suppressed report, and the page
//! rendered by a real headless browser (Chromium from the system packages) whose DOM text
//! is asserted and whose screenshot is taken. Without a Chromium binary the browser test
//! prints `SKIPPED …` with the reason and passes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xmatch::report::LakeSession;
use xmatch::report::dashboard;
use xmatch::report::performance::{self, Suppression};

use crate::report::generated_state;

/// Every number the page marks as a count of people (`<td class="n count">N</td>`).
fn counts(html: &str) -> Vec<u64> {
    const MARK: &str = "class=\"n count\">";
    html.match_indices(MARK)
        .map(|(i, _)| {
            let rest = &html[i + MARK.len()..];
            let end = rest.find('<').unwrap();
            rest[..end]
                .parse::<u64>()
                .unwrap_or_else(|e| panic!("count cell {:?}: {e}", &rest[..end]))
        })
        .collect()
}

/// The page's text: tags removed, entities of the escaper decoded, whitespace collapsed.
fn text_of(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The page, written once and shared like the state it reports on: two tests writing it
/// at once raced, each reading the other's page (its own time stamp, and rows that tie
/// in no fixed order) against its own lineage record.
async fn written_page() -> (PathBuf, String, u64) {
    static PAGE: tokio::sync::OnceCell<(PathBuf, String, u64)> = tokio::sync::OnceCell::const_new();
    PAGE.get_or_init(|| async {
        let (_, ws) = generated_state();
        let out = dashboard::write_html_report(ws, 2024).await.unwrap();
        let html = std::fs::read_to_string(&out.path).unwrap();
        (out.path, html, out.threshold)
    })
    .await
    .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn report_html_is_self_contained_and_holds_no_small_cell() {
    let (_, ws) = generated_state();
    let (path, html, t) = written_page().await;
    assert!(path.starts_with(ws.reports_dir()), "{}", path.display());
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Nothing that would make a browser fetch: no scripts, no external references, and
    // a policy forbidding fetches besides.
    assert!(
        html.contains(
            "http-equiv=\"Content-Security-Policy\" content=\"default-src &#39;none&#39;"
        )
    );
    for needle in [
        "<script", "src=", "href=", "url(", "@import", "https://", "<link", "<iframe",
    ] {
        assert!(!html.contains(needle), "{needle} in the page");
    }
    assert_eq!(
        html.matches("http://").count(),
        html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(),
        "only the SVG namespace may name a URL"
    );
    // No count of people under the threshold, anywhere on the page.
    let shown = counts(&html);
    assert!(
        shown.len() > 20,
        "too few published counts to mean anything: {shown:?}"
    );
    assert!(
        shown.iter().all(|&n| n >= t),
        "a count under {t}: {shown:?}"
    );
    // The numbers are the suppressed report's: every published total is on the page,
    // every suppressed one is not.
    let session = LakeSession::open(&ws.lake_dir()).await.unwrap();
    let perf = performance::performance(&session, 2024, Suppression::Threshold(t))
        .await
        .unwrap();
    let mut published = 0;
    for c in perf
        .cells
        .iter()
        .filter(|c| c.breakdown == "Total" && !c.is_median())
    {
        let row = format!(
            "<td>{}</td><td>{}</td><td>Total</td>",
            c.program, c.indicator
        );
        let at = html.find(&row).unwrap_or_else(|| panic!("no row {row}"));
        let rest = &html[at + row.len()..];
        if c.suppressed {
            assert!(rest.starts_with("<td>suppressed</td>"), "{c:?}");
        } else {
            published += 1;
            assert!(
                rest.starts_with(&format!(
                    "<td class=\"n count\">{}</td><td class=\"n count\">{}</td>",
                    c.numerator, c.denominator
                )),
                "{c:?}"
            );
        }
    }
    assert!(published > 0);
    // The quarterly cells and the notes are there.
    assert!(html.contains("By exit quarter") && html.contains("Employer penetration rate"));
    // Lineage: the file, with no persons.
    let store = ws.open_store().await.unwrap();
    let lineage = store.lineage_by_dataset(dashboard::DATASET).await.unwrap();
    // The newest record of the path is the file as it is now.
    let rec = lineage
        .iter()
        .rev()
        .find(|f| path.ends_with(&f.path))
        .expect("the page is in lineage");
    assert_eq!(rec.person_count, 0);
    assert_eq!(rec.sha256, xmatch::ingest::sha256_file(&path).unwrap());
    store.close().await;
}

/// A Chromium binary: `$XMATCH_CHROMIUM`, else the Debian package's.
fn chromium() -> Option<PathBuf> {
    std::env::var_os("XMATCH_CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
                .into_iter()
                .map(PathBuf::from),
        )
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `page` with `extra` arguments, stdout to `out`; fails the
/// test after two minutes.
fn headless(browser: &Path, profile: &Path, extra: &[String], page: &Path, out: &Path) {
    let url = format!("file://{}", page.display());
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium {extra:?} exited with {status}");
            return;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {extra:?} did not finish within two minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn report_html_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED report_html_renders_in_headless_chromium: no Chromium binary ($XMATCH_CHROMIUM, /usr/bin/chromium or /usr/bin/chromium-browser); install the Debian package `chromium` to run it"
        );
        return;
    };
    let (page, html, t) = written_page().await;
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("profile");
    let dom_path = tmp.path().join("dom.html");
    headless(&browser, &profile, &["--dump-dom".into()], &page, &dom_path);
    let dom = std::fs::read_to_string(&dom_path).unwrap();
    let text = text_of(&dom);
    for needle in [
        "WIOA performance, program year 2024",
        "Indicators by program",
        "Employment rate Q2",
        "Median earnings Q2",
        "Measurable skill gains rate",
        "Retention with same employer",
        "By exit quarter",
        "Breakdowns",
        "Co-enrolment (Missouri P13)",
        "Data quality",
        "Adult",
        "Dislocated Worker",
        "Youth",
        "Wagner-Peyser",
        "suppressed",
        "Employer penetration rate (TEGL 10-16) is not computed",
    ] {
        assert!(text.contains(needle), "the rendered page lacks {needle:?}");
    }
    // The browser built the charts: every SVG of the file is in its DOM, with bars.
    let svgs = html.matches("<svg").count();
    assert!(svgs >= 10, "{svgs} charts");
    assert_eq!(dom.matches("<svg").count(), svgs);
    assert!(dom.matches("<rect").count() >= 2 * svgs);
    // What the browser shows holds no count under the threshold either.
    let shown = counts(&dom);
    assert_eq!(shown, counts(&html));
    assert!(shown.iter().all(|&n| n >= t));

    let shot = tmp.path().join("page.png");
    headless(
        &browser,
        &profile,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2400".into(),
            "--hide-scrollbars".into(),
        ],
        &page,
        &tmp.path().join("screenshot.log"),
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "a {} byte screenshot is blank",
        png.len()
    );
}
