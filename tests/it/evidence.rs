//! `xmatch evidence`: the monitor's printout of one participant, on a generated state
//! (2,000 participants, one nightly run): its content against the lake, the SSN masked
//! to the case record's last four digits, the secure-zone file, lineage, the audit row,
//! and the refusal without a reason.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;

use xmatch::report::LakeSession;
use xmatch::report::evidence::{self, REASON_REQUIRED};
use xmatch::report::output;

use crate::report::generated_state;
use crate::support::{read_parquet, read_secure_parquet, read_secure_text, strings};

/// Rows of a lake query as JSON objects.
async fn rows(session: &LakeSession, sql: &str) -> Vec<serde_json::Value> {
    let (_, batches) = session.query(sql).await.unwrap();
    output::json_rows(&batches).unwrap()
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        v => v.to_string(),
    }
}

fn printouts(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn evidence_printout_content_masking_audit_and_refusal() {
    let (_, ws) = generated_state();
    let session = LakeSession::open(&ws.lake_dir()).await.unwrap();
    // A person with an SSN, cross-matches and services: the richest printout.
    let pick = rows(
        &session,
        "SELECT e.person_key, count(*) AS n FROM evidence e \
         JOIN participants p ON p.person_key = e.person_key AND p.has_ssn \
         WHERE e.person_key IN (SELECT person_key FROM services) \
         GROUP BY e.person_key ORDER BY n DESC, e.person_key LIMIT 1",
    )
    .await;
    let key = text(&pick[0]["person_key"]);
    let evidence_dir = ws.secure_dir().join("evidence");
    let before = printouts(&evidence_dir);

    // Refused without a reason (or a blank one): nothing written, nothing audited.
    let store = ws.open_store().await.unwrap();
    let audit_before = store.audit_entries(100_000).await.unwrap().len();
    for reason in [None, Some("  ")] {
        let err = evidence::printout(ws, &key, reason).await.unwrap_err();
        assert_eq!(err.to_string(), REASON_REQUIRED);
    }
    let o = std::process::Command::new(crate::support::xmatch_bin())
        .arg("-w")
        .arg(ws.root())
        .args(["evidence", &key])
        .output()
        .unwrap();
    let stderr = String::from_utf8(o.stderr).unwrap();
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!("xmatch: error: {REASON_REQUIRED}")
    );
    assert_eq!(printouts(&evidence_dir), before);
    assert_eq!(
        store.audit_entries(100_000).await.unwrap().len(),
        audit_before
    );
    // A malformed key is one line too.
    let err = evidence::printout(ws, "NOT-A-KEY", Some("x"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("neither a person key") && !err.contains('\n'),
        "{err}"
    );

    // The printout.
    let reason = "state monitoring visit, participant file review";
    let out = evidence::printout(ws, &key, Some(reason)).await.unwrap();
    assert_eq!(out.person_key, key);
    assert!(out.path.starts_with(&evidence_dir));
    assert!(!out.path.to_string_lossy().contains(&key));
    for (p, mode) in [
        (&out.path, 0o600),
        (&evidence_dir, 0o700),
        (&ws.secure_dir(), 0o700),
    ] {
        assert_eq!(
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
            mode,
            "{}",
            p.display()
        );
    }
    assert!(!out.path.starts_with(ws.lake_dir()));
    let html = read_secure_text(ws, &out.path);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains(&key) && html.contains(reason));
    assert!(html.contains(&xmatch::breach::current_user()));

    // Every period, service and cross-match of the person in the lake is on it.
    let q = |sql: &str| sql.replace("{k}", &key);
    let periods = rows(
        &session,
        &q("SELECT entry_date, exit_date FROM participants WHERE person_key = '{k}'"),
    )
    .await;
    let services = rows(
        &session,
        &q("SELECT service_code, service_date FROM services WHERE person_key = '{k}'"),
    )
    .await;
    let matches = rows(
        &session,
        &q("SELECT source, program, determination_date, period_start, period_end, benefit_type, match_pass, match_score, verdict FROM evidence WHERE person_key = '{k}'"),
    )
    .await;
    assert!(!periods.is_empty() && !services.is_empty() && !matches.is_empty());
    assert_eq!(
        (out.periods, out.services, out.cross_matches),
        (periods.len(), services.len(), matches.len())
    );
    assert!(html.contains(&format!("Participation periods ({})", periods.len())));
    assert!(html.contains(&format!("Services ({})", services.len())));
    assert!(html.contains(&format!("Cross-matches ({})", matches.len())));
    for p in &periods {
        assert!(html.contains(&text(&p["entry_date"])), "{p}");
    }
    for s in &services {
        assert!(
            html.contains(&format!(
                "<td>{}</td><td>{}</td>",
                text(&s["service_date"]),
                text(&s["service_code"])
            )),
            "{s}"
        );
    }
    for m in &matches {
        let row = format!(
            "<td>{}</td><td>{}</td><td>{}</td>",
            text(&m["source"]),
            text(&m["program"]),
            text(&m["determination_date"])
                .chars()
                .take(10)
                .collect::<String>(),
        );
        let row = if text(&m["determination_date"]).is_empty() {
            format!(
                "<td>{}</td><td>{}</td><td>—</td>",
                text(&m["source"]),
                text(&m["program"])
            )
        } else {
            row
        };
        assert!(html.contains(&row), "{row} for {m}");
        assert!(html.contains(&format!("{} (", text(&m["verdict"]))), "{m}");
        assert!(html.contains(&text(&m["match_pass"])), "{m}");
    }

    // The SSN: masked to the last four digits of the person's case records, never whole.
    let cw = read_secure_parquet(
        ws,
        &ws.secure_dir()
            .join("runs")
            .join(session.run_id().to_string())
            .join("crosswalk.parquet"),
    );
    let records: Vec<String> = strings(&cw, "person_key")
        .into_iter()
        .zip(strings(&cw, "individual_id"))
        .filter(|(k, _)| k.as_deref() == Some(key.as_str()))
        .filter_map(|(_, id)| id)
        .collect();
    assert!(!records.is_empty());
    let raw = read_parquet(&ws.incoming_dir().join("participants.parquet"));
    let raw_ssn: HashMap<String, Option<String>> = strings(&raw, "individual_id")
        .into_iter()
        .zip(strings(&raw, "ssn"))
        .filter_map(|(id, ssn)| Some((id?, ssn)))
        .collect();
    let mut masked_seen = 0;
    for id in &records {
        assert!(
            html.contains(id.as_str()),
            "case record {id} not on the printout"
        );
        let Some(Some(ssn)) = raw_ssn.get(id) else {
            continue;
        };
        // Junk in the SSN field ("REFUSED") has no last four digits to show.
        let Some(last4) = xmatch::identity::ssn::Last4::of(ssn) else {
            continue;
        };
        assert!(html.contains(&format!("***-**-{}", &*last4)), "{ssn}");
        masked_seen += 1;
        if let Ok(n) = xmatch::identity::ssn::normalize(ssn) {
            let d = String::from_utf8(n.digits().to_vec()).unwrap();
            for form in [d.clone(), format!("{}-{}-{}", &d[..3], &d[3..5], &d[5..])] {
                assert!(!html.contains(&form), "the whole SSN is on the printout");
            }
        }
        assert!(
            !html.contains(ssn.trim()),
            "the SSN as entered is on the printout"
        );
    }
    assert!(masked_seen > 0);

    // Lineage: the file, its one person, its PII classes.
    let store = ws.open_store().await.unwrap();
    let lineage = store.lineage_by_dataset(evidence::DATASET).await.unwrap();
    let rec = lineage
        .iter()
        .find(|f| out.path.ends_with(&f.path))
        .expect("the printout is in lineage");
    assert_eq!(rec.zone, xmatch::lake::Zone::Secure);
    assert_eq!(rec.sha256, xmatch::ingest::sha256_file(&out.path).unwrap());
    assert_eq!(rec.person_count, 1);
    assert!(
        rec.columns
            .iter()
            .any(|c| c.name == "individual_id" && c.pii == xmatch::schema::PiiClass::Direct)
    );
    assert!(rec.columns.iter().any(|c| c.name == "ssn_masked"));

    // The audit row: the OS user, the reason, the person (internal id), the file.
    let id = store
        .persons_by_key(std::slice::from_ref(&key))
        .await
        .unwrap()[0]
        .1;
    let audit = store.audit_entries(20).await.unwrap();
    let entry = audit
        .iter()
        .map(|(_, e)| e)
        .find(|e| {
            e.action == "evidence.printout" && e.detail["path"] == out.path.display().to_string()
        })
        .expect("an audit row for the printout");
    assert_eq!(entry.actor, xmatch::breach::current_user());
    assert_eq!(entry.reason.as_deref(), Some(reason));
    assert_eq!(entry.detail["person"], id);
    assert_eq!(entry.detail["cross_matches"], matches.len());
    assert!(!entry.detail.to_string().contains(&key));

    // By temporary ID: a person known without an SSN, printed under their person key.
    let temp: Vec<(String, String)> = strings(&cw, "temp_id")
        .into_iter()
        .zip(strings(&cw, "person_key"))
        .filter_map(|(t, k)| Some((t?, k?)))
        .collect();
    let (temp_id, temp_key) = temp
        .first()
        .cloned()
        .expect("a temporary ID in the crosswalk");
    let typed = format!("{}-{}", &temp_id[..5].to_lowercase(), &temp_id[5..]);
    let by_temp = evidence::printout(ws, &typed, Some(reason)).await.unwrap();
    assert_eq!(by_temp.person_key, temp_key);
    let html = read_secure_text(ws, &by_temp.path);
    assert!(
        html.contains(&format!("temporary ID {temp_id}")),
        "requested as"
    );
    assert!(html.contains(&temp_id));
    store.close().await;
}
