//! No SSN, name or full date of birth in anything a run prints, logs, rejects or stores.

use std::process::Command;

use crate::pipeline::{generated_workspace, raw_pii};
use crate::support::xmatch_bin;

#[tokio::test(flavor = "multi_thread")]
async fn stdout_stderr_logs_rejects_and_the_store_hold_no_ssn_name_or_dob() {
    let (_dir, ws) = generated_workspace(800, 21).await;
    let out = Command::new(xmatch_bin())
        .args([
            "-w",
            ws.root().to_str().unwrap(),
            "--log",
            "debug",
            "run",
            "nightly-crossmatch",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ssns, names, dobs) = raw_pii(&ws.incoming_dir());

    let mut texts: Vec<(String, String)> = vec![
        (
            "stdout".into(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ),
        (
            "stderr".into(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
    ];
    // The review listing (probable links with their field weights) is shown to clerks;
    // `runs show` prints the linkage model's self-report.
    for args in [["review", "list", "--all"], ["runs", "show", "1"]] {
        let out = Command::new(xmatch_bin())
            .args(["-w", ws.root().to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        texts.push((
            args.join(" "),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ));
    }
    assert!(
        texts.last().unwrap().1.contains("probabilistic linkage"),
        "runs show prints the self-report"
    );
    assert!(
        texts[1].1.contains("DEBUG") || texts[1].1.contains("INFO"),
        "logging was on"
    );
    // Reject files (secure zone) carry reasons, row numbers and masked SSNs only.
    for entry in std::fs::read_dir(ws.secure_dir().join("runs/1/rejects")).unwrap() {
        let p = entry.unwrap().path();
        texts.push((
            p.display().to_string(),
            crate::support::read_secure_text(&ws, &p),
        ));
    }
    // The store file, as bytes read as text (tokens are binary and cannot spell these).
    // Committed pages may still be in the write-ahead log rather than the main file.
    for file in ["xmatch.db", "xmatch.db-wal"] {
        if let Ok(bytes) = std::fs::read(ws.root().join("state").join(file)) {
            texts.push((
                format!("store ({file})"),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }

    for (what, text) in &texts {
        let upper = text.to_uppercase();
        for s in &ssns {
            // Bare 9-digit SSNs and their dashed forms; the zero-stripped integer forms are
            // short enough to occur inside counts and timings, so only long ones count.
            if s.len() >= 9 {
                assert!(find_number(text, s).is_none(), "an SSN in {what}");
            }
        }
        for n in &names {
            if let Some(i) = find_word(&upper, n) {
                panic!(
                    "a name ({n}) in {what}: …{:?}…",
                    around(&upper, i, n.len(), 60)
                );
            }
        }
        for d in &dobs {
            if let Some(i) = find_number(text, d) {
                panic!(
                    "a date of birth in {what}: …{:?}…",
                    around(text, i, d.len(), 40)
                );
            }
        }
    }
}

/// `pad` characters either side of `hay[i..i + len]`: the people are generated, so the
/// context can be shown, and it tells which part of the output spelled the value.
fn around(hay: &str, i: usize, len: usize, pad: usize) -> &str {
    let lo = hay.floor_char_boundary(i.saturating_sub(pad));
    let hi = hay.ceil_char_boundary((i + len + pad).min(hay.len()));
    &hay[lo..hi]
}

/// Where `needle` occurs with no byte of `part_of` right before or after it.
fn find_alone(hay: &str, needle: &str, part_of: impl Fn(u8) -> bool) -> Option<usize> {
    let bytes = hay.as_bytes();
    hay.match_indices(needle).map(|(i, _)| i).find(|&i| {
        let before = i == 0 || !part_of(bytes[i - 1]);
        let after = i + needle.len() >= bytes.len() || !part_of(bytes[i + needle.len()]);
        before && after
    })
}

/// Where `needle` occurs as a whole word: not inside a longer run of letters, and not
/// part of an identifier (`wagner_peyser`, a column name, is not the surname Wagner).
fn find_word(hay: &str, needle: &str) -> Option<usize> {
    find_alone(hay, needle, |b| b.is_ascii_alphabetic() || b == b'_')
}

/// Where `needle` (digits, perhaps with separators) occurs on its own: not inside a
/// longer run of digits or letters. The store holds model parameters at full float
/// precision and SHA-256 hashes in hex, whose long digit runs spell some generated `YYYYMMDD` birth
/// date or nine-digit SSN by chance in a few runs in a hundred (each run draws its own
/// keys); a leaked value stands apart from its neighbours.
fn find_number(hay: &str, needle: &str) -> Option<usize> {
    find_alone(hay, needle, |b| b.is_ascii_alphanumeric())
}

#[test]
fn a_number_inside_a_longer_one_is_not_a_leak() {
    assert_eq!(find_number("0.05432550319850312433", "19850312"), None);
    assert_eq!(find_number("{\"dob\":\"19850312\"}", "19850312"), Some(8));
    assert_eq!(find_number("19850312", "19850312"), Some(0));
    assert_eq!(find_number("9f19850312e0", "19850312"), None);
    assert_eq!(find_number("dob=19850312,", "19850312"), Some(4));
}

#[test]
fn a_column_name_is_not_a_name_but_a_value_is() {
    assert_eq!(find_word("{\"NAME\":\"WAGNER_PEYSER\"}", "WAGNER"), None);
    assert_eq!(find_word("{\"NAME\":\"WAGNER\"}", "WAGNER"), Some(9));
    assert_eq!(find_word("ROW 12,WAGNER,", "WAGNER"), Some(7));
    assert_eq!(find_word("SCHWAGNER", "WAGNER"), None);
}
