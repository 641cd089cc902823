//! Clerical review end to end through the binary, on SQLite and on PostgreSQL: the
//! probabilistic pass fills the queue, decisions persist and audit, and the next run
//! honours them (an accepted link links, a rejected one never comes back).

use std::path::Path;
use std::process::Command;

use crate::pipeline::generated_workspace;
use crate::support::{PgStore, xmatch_bin};

fn xmatch(ws: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = Command::new(xmatch_bin())
        .arg("-w")
        .arg(ws)
        .args(args)
        .envs(env.iter().copied())
        .env("USER", "reviewer7")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xmatch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `(id, status)` of the `L` items a listing shows.
fn link_items(listing: &str) -> Vec<(String, String)> {
    listing
        .lines()
        .skip(1)
        .filter(|l| l.starts_with('L'))
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols[0].to_string(), cols[2].to_string())
        })
        .collect()
}

fn accepted_in_review(summary: &str) -> u64 {
    summary
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once("review_accepted ")?;
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

async fn review_round_trip(env: &[(&str, &str)]) {
    let (_dir, ws) = generated_workspace(3_000, 11).await;
    let root = ws.root();
    // At the default thresholds the pass links nearly every typo'd record of so small a
    // state; a higher link threshold leaves some for review, which this test is about.
    let nightly = root.join("pipelines/nightly-crossmatch.toml");
    let text = std::fs::read_to_string(&nightly).unwrap();
    let raised = text.replace("link_threshold = 0.0", "link_threshold = 10.0");
    assert_ne!(raised, text, "the pipeline sets link_threshold = 0.0");
    std::fs::write(&nightly, raised).unwrap();
    let first = xmatch(root, env, &["run", "nightly-crossmatch"]);
    assert_eq!(accepted_in_review(&first), 0);
    let pending = link_items(&xmatch(root, env, &["review", "list"]));
    assert!(
        pending.len() >= 2,
        "the pass queued probable links: {pending:?}"
    );
    assert!(pending.iter().all(|(_, s)| s == "pending"));
    let listing = xmatch(root, env, &["review", "list"]);
    // Masked SSNs only, field weights shown.
    assert!(
        listing.contains("***-**-") && listing.contains("dob="),
        "{listing}"
    );

    let (accept, reject) = (&pending[0].0, &pending[1].0);
    let out = xmatch(
        root,
        env,
        &[
            "review",
            "accept",
            accept,
            "--reason",
            "checked the case file",
        ],
    );
    assert_eq!(out.trim(), format!("{accept} accepted"));
    let csv = root.join("decisions.csv");
    std::fs::write(
        &csv,
        format!("id,decision,reason\n{reject},reject,a sibling\n"),
    )
    .unwrap();
    let out = xmatch(root, env, &["review", "decide", csv.to_str().unwrap()]);
    assert_eq!(out.trim(), format!("{reject} rejected"));
    // Deciding again changes nothing.
    let out = xmatch(root, env, &["review", "accept", reject, "--reason", "x"]);
    assert!(out.contains("already rejected"), "{out}");

    let second = xmatch(root, env, &["run", "nightly-crossmatch"]);
    assert!(accepted_in_review(&second) >= 1, "{second}");
    let all = link_items(&xmatch(root, env, &["review", "list", "--all"]));
    let status = |id: &str| all.iter().find(|(i, _)| i == id).map(|(_, s)| s.clone());
    assert_eq!(status(accept).as_deref(), Some("accepted"));
    assert_eq!(status(reject).as_deref(), Some("rejected"));
    let pending_now = link_items(&xmatch(root, env, &["review", "list"]));
    assert!(
        pending_now.iter().all(|(i, _)| i != accept && i != reject),
        "a decided item came back: {pending_now:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn review_decisions_round_trip_and_are_honoured_on_sqlite() {
    review_round_trip(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn review_decisions_round_trip_and_are_honoured_on_postgres() {
    let Some(pg) = PgStore::connect("review_round_trip").await else {
        return;
    };
    let url = pg.url();
    review_round_trip(&[("XMATCH_STORE_URL", url.as_str())]).await;
    pg.drop().await;
}

#[test]
fn a_decision_without_a_reason_or_with_a_bad_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let init = Command::new(xmatch_bin())
        .arg("init")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(init.status.success());
    for args in [
        vec!["review", "accept", "L1", "--reason", " "],
        vec!["review", "accept", "Z9", "--reason", "x"],
    ] {
        let out = Command::new(xmatch_bin())
            .arg("-w")
            .arg(dir.path())
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
}
