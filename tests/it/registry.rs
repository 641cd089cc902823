//! Person resolution: temporary IDs, later SSNs, merges, review, order independence.

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use xmatch::identity::registry::{Registry, RowIdentity};
use xmatch::identity::{RawIdentity, Rule, Tokenizer, normalize_record};

fn tokenizer() -> Tokenizer {
    Tokenizer::new(&[7u8; 32], "test-key")
}

/// A participant row of a generated person.
fn row(t: &Tokenizer, ssn: &str, first: &str, last: &str, dob: &str, record: &str) -> RowIdentity {
    let today = NaiveDate::from_ymd_opt(2025, 9, 30).unwrap();
    let (fields, _) = normalize_record(
        RawIdentity {
            ssn: Some(ssn),
            first: Some(first),
            last: Some(last),
            dob: Some(dob),
            sex: Some("F"),
            zip: Some("65101"),
        },
        today,
    );
    let set = t.tokens(&fields);
    RowIdentity {
        ssn: set.get(Rule::Ssn).copied(),
        name_dob: set.get(Rule::NameDob).copied(),
        tokens: set.iter().filter_map(|(r, t)| t.map(|t| (r, *t))).collect(),
        record: Some(t.record_token("participants", record)),
        temp_id: None,
    }
}

fn resolve(reg: &mut Registry, rows: &[RowIdentity]) -> xmatch::identity::registry::Resolution {
    reg.resolve(rows).unwrap()
}

#[test]
fn a_person_without_ssn_keeps_one_temp_id_across_runs_and_a_later_ssn_links_to_it() {
    let t = tokenizer();
    let mut reg = Registry::default();
    let first_visit = vec![row(&t, "", "Ada", "Quill", "1990-02-03", "C1")];
    let r1 = resolve(&mut reg, &first_visit);
    assert_eq!(r1.stats.new_persons, 1);
    assert_eq!(r1.stats.new_temp_ids, 1);
    let person = r1.person_of_row[0];

    for _ in 0..2 {
        let again = resolve(&mut reg, &first_visit);
        assert_eq!(again.person_of_row[0], person);
        assert_eq!(
            again.stats.new_persons + again.stats.new_temp_ids + again.stats.merges,
            0
        );
    }

    // A later visit under a new case record, now with an SSN: the strong name+DOB token
    // names the temp-ID person, who gets the SSN.
    let later = vec![row(&t, "212-67-4431", "Ada", "Quill", "1990-02-03", "C2")];
    let r = resolve(&mut reg, &later);
    assert_eq!(r.person_of_row[0], person);
    assert_eq!(r.stats.ssn_linked, 1);
    assert_eq!(r.stats.new_persons, 0);
}

#[test]
fn a_carried_temp_id_with_an_ssn_of_a_known_person_merges_by_pointer() {
    let t = tokenizer();
    let mut reg = Registry::default();
    let known = resolve(
        &mut reg,
        &[row(&t, "212-67-4431", "Bea", "Rook", "1985-05-06", "K1")],
    );
    let temp = resolve(&mut reg, &[row(&t, "", "Bee", "Rooke", "1985-05-06", "K2")]);
    assert_ne!(known.person_of_row[0], temp.person_of_row[0]);
    let temp_id = temp.changes.new_temp_ids[0].0.clone();

    let mut carried = row(&t, "212-67-4431", "Bee", "Rooke", "1985-05-06", "K3");
    carried.temp_id = Some(temp_id);
    let r = resolve(&mut reg, &[carried]);
    assert_eq!(r.changes.merges.len(), 1);
    assert_eq!(r.changes.merges[0].from, temp.person_of_row[0]);
    assert_eq!(r.changes.merges[0].into, known.person_of_row[0]);
    // The merged person still exists and points to the survivor.
    assert_eq!(reg.survivor(temp.person_of_row[0]), known.person_of_row[0]);
    assert_eq!(
        reg.person_key(temp.person_of_row[0]),
        reg.person_key(known.person_of_row[0])
    );
}

#[test]
fn twins_with_different_ssns_stay_two_people() {
    let t = tokenizer();
    let mut reg = Registry::default();
    let rows = [
        row(&t, "212-67-4431", "Michael", "Okafor", "2001-07-08", "T1"),
        row(&t, "212-67-4432", "Matthew", "Okafor", "2001-07-08", "T2"),
    ];
    let r = resolve(&mut reg, &rows);
    assert_ne!(r.person_of_row[0], r.person_of_row[1]);
    assert!(r.changes.reviews.is_empty());
}

#[test]
fn an_ssn_and_a_name_dob_that_point_at_different_people_go_to_review() {
    let t = tokenizer();
    let mut reg = Registry::default();
    // The same name and birthday under two SSNs: a typo'd SSN, or two people.
    let rows = [
        row(&t, "212-67-4431", "Cleo", "Vance", "1979-11-12", "V1"),
        row(&t, "212-76-4431", "Cleo", "Vance", "1979-11-12", "V2"),
    ];
    let r = resolve(&mut reg, &rows);
    assert_ne!(
        r.person_of_row[0], r.person_of_row[1],
        "nothing is linked automatically"
    );
    assert_eq!(r.changes.reviews.len(), 1);
    assert_eq!(r.changes.merges.len(), 0);
    // Re-running finds the same pair and adds nothing new.
    let again = resolve(&mut reg, &rows);
    assert_eq!(
        again.stats.reviews + again.stats.new_persons + again.stats.merges,
        0
    );
}

#[test]
fn resolution_does_not_depend_on_row_order() {
    let t = tokenizer();
    let base: Vec<RowIdentity> = vec![
        row(&t, "212-67-4431", "Ann", "Ames", "1990-01-01", "A1"),
        row(&t, "212674431", "Ann", "Ames", "01/01/1990", "A2"),
        row(&t, "", "Ann", "Ames", "1990-01-01", "A3"),
        row(&t, "", "Bo", "Birch", "1991-02-02", "B1"),
        row(&t, "", "Bo", "Birch", "1991-02-02", "B2"),
        row(&t, "REFUSED", "Cy", "Cole", "1992-03-03", "C1"),
        row(&t, "345-12-9876", "Di", "Dunn", "1993-04-04", "D1"),
        row(&t, "", "Di", "Dunn", "1993-04-04", "D2"),
        row(&t, "456-23-1987", "Ed", "Eng", "1994-05-05", "E1"),
    ];
    // Partition of rows into persons, expressed by record labels.
    let partition = |order: &[usize]| -> BTreeSet<BTreeSet<usize>> {
        let rows: Vec<RowIdentity> = order.iter().map(|&i| base[i].clone()).collect();
        let mut reg = Registry::default();
        let r = reg.resolve(&rows).unwrap();
        let mut by_person: HashMap<i64, BTreeSet<usize>> = HashMap::new();
        for (pos, &i) in order.iter().enumerate() {
            by_person.entry(r.person_of_row[pos]).or_default().insert(i);
        }
        by_person.into_values().collect()
    };
    let forward: Vec<usize> = (0..base.len()).collect();
    let expected = partition(&forward);
    assert_eq!(expected.len(), 5, "{expected:?}");
    let mut order = forward.clone();
    for seed in 0..20u64 {
        // A small deterministic shuffle.
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        for i in (1..order.len()).rev() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            order.swap(i, (state >> 33) as usize % (i + 1));
        }
        assert_eq!(partition(&order), expected, "order {order:?}");
    }
}
