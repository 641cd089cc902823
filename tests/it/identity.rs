//! Integration tests for `xmatch::identity`: normalizer cases, property tests,
//! golden token vectors and an (ignored) throughput benchmark.
//! Every person here is made up.

use std::path::PathBuf;
use std::time::Instant;

use chrono::NaiveDate;
use proptest::prelude::*;
use serde_json::{Value, json};
use xmatch::identity::blocking::{self, BLOCK_KINDS, BlockKind};
use xmatch::identity::{
    IdentityFields, RULE_SET_VERSION, RULES, RawIdentity, Reason, Rule, Sex, Tokenizer, bloom,
    demo, dob, name, normalize_record, ssn,
};

const TEST_KEY_ID: &str = "test-key-0";

fn test_key() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 30).unwrap()
}

fn full_raw() -> RawIdentity<'static> {
    RawIdentity {
        ssn: Some("212-67-4431"),
        first: Some("Zebulon"),
        last: Some("Quackenbush"),
        dob: Some("1983-04-05"),
        sex: Some("M"),
        zip: Some("65101"),
    }
}

// ---------------------------------------------------------------------------
// Normalizer cases: one per rule and per reason.
// ---------------------------------------------------------------------------

#[test]
fn every_reason_is_reachable_through_normalize_record() {
    let cases: [(Reason, &str, &'static str); 16] = [
        (Reason::SsnMissing, "ssn", "REFUSED"),
        (Reason::SsnNonNumeric, "ssn", "212-67-44x1"),
        (Reason::SsnBadLength, "ssn", "21267"),
        (Reason::SsnInvalidArea, "ssn", "666-67-4431"),
        (Reason::SsnItin, "ssn", "912-70-4431"),
        (Reason::SsnInvalidGroup, "ssn", "212-00-4431"),
        (Reason::SsnInvalidSerial, "ssn", "212-67-0000"),
        (Reason::SsnKnownFake, "ssn", "078-05-1120"),
        (Reason::NameMissing, "first", ""),
        (Reason::NamePlaceholder, "last", "Unknown"),
        (Reason::NameNoLetters, "first", "12"),
        (Reason::DobMissing, "dob", " "),
        (Reason::DobUnparseable, "dob", "4/5/83"),
        (Reason::DobOutOfRange, "dob", "2099-01-01"),
        (Reason::ZipMissing, "zip", ""),
        (Reason::ZipInvalid, "zip", "00000"),
    ];
    let cases = cases.map(|(reason, field, value)| {
        let mut raw = full_raw();
        *match field {
            "ssn" => &mut raw.ssn,
            "first" => &mut raw.first,
            "last" => &mut raw.last,
            "dob" => &mut raw.dob,
            _ => &mut raw.zip,
        } = Some(value);
        (reason, raw)
    });
    for (i, (want, raw)) in cases.into_iter().enumerate() {
        assert_eq!(want, Reason::ALL[i], "cases follow Reason::ALL");
        let (_, reasons) = normalize_record(raw, today());
        assert_eq!(reasons, vec![want]);
        // Messages never echo the raw value.
        let msg = want.to_string();
        for v in [raw.ssn, raw.first, raw.last, raw.dob, raw.zip]
            .into_iter()
            .flatten()
        {
            if v.trim().len() > 1 {
                assert!(!msg.contains(v.trim()), "{} echoes input", want.as_str());
            }
        }
    }
}

#[test]
fn absent_columns_give_no_reason_but_empty_ones_do() {
    let (f, reasons) = normalize_record(RawIdentity::default(), today());
    assert_eq!(f, IdentityFields::default());
    assert!(reasons.is_empty());
    let empty = RawIdentity {
        ssn: Some(""),
        first: Some(""),
        last: Some(""),
        dob: Some(""),
        sex: Some(""),
        zip: Some(""),
    };
    let (f, reasons) = normalize_record(empty, today());
    assert_eq!(f, IdentityFields::default());
    assert_eq!(
        reasons,
        vec![
            Reason::SsnMissing,
            Reason::NameMissing,
            Reason::NameMissing,
            Reason::DobMissing,
            Reason::ZipMissing
        ]
    );
}

#[test]
fn full_record_normalizes() {
    let (f, reasons) = normalize_record(full_raw(), today());
    assert!(reasons.is_empty());
    assert_eq!(f.ssn.unwrap().digits(), b"212674431");
    assert_eq!(f.first.as_deref(), Some("ZEBULON"));
    assert_eq!(f.last.as_deref(), Some("QUACKENBUSH"));
    assert_eq!(f.dob, NaiveDate::from_ymd_opt(1983, 4, 5));
    assert_eq!(f.sex, Some(Sex::M));
    assert_eq!(f.zip.unwrap().as_str(), "65101");
}

#[test]
fn ssn_rules() {
    assert_eq!(
        ssn::normalize("212 67 4431").unwrap().digits(),
        b"212674431"
    );
    assert_eq!(
        ssn::normalize("212.67.4431").unwrap().digits(),
        b"212674431"
    );
    let s = ssn::normalize("41234567").unwrap();
    assert_eq!((s.digits(), s.repaired()), (b"041234567", true));
    assert_eq!(ssn::normalize("123-45-6789"), Err(Reason::SsnKnownFake));
    assert_eq!(ssn::normalize("219-09-9999"), Err(Reason::SsnKnownFake));
    assert_eq!(ssn::normalize("457-55-5462"), Err(Reason::SsnKnownFake));
    assert_eq!(ssn::normalize("555-55-5555"), Err(Reason::SsnKnownFake));
    assert_eq!(ssn::normalize("012-34-5678"), Err(Reason::SsnKnownFake));
    assert_eq!(ssn::normalize("987-65-4321"), Err(Reason::SsnKnownFake));
    assert_eq!(ssn::normalize("000-67-4431"), Err(Reason::SsnInvalidArea));
    assert_eq!(ssn::normalize("955-67-4431"), Err(Reason::SsnItin));
    for w in ["", "  ", "REFUSED", "none", "N/A"] {
        assert_eq!(ssn::normalize(w), Err(Reason::SsnMissing), "{w:?}");
    }
    let s = ssn::normalize("212-67-4431").unwrap();
    assert_eq!(s.masked(), "***-**-4431");
    assert_eq!(format!("{s} {s:?}"), "***-**-4431 Ssn(***-**-4431)");
}

#[test]
fn name_rules() {
    let n = |s| name::normalize(s).unwrap();
    assert_eq!(n("José"), "JOSE");
    assert_eq!(n("García-López"), "GARCIALOPEZ");
    assert_eq!(n("O'Brien"), "OBRIEN");
    assert_eq!(n("Mr. Øyvind Jr."), "OYVIND");
    assert_eq!(n("Strauß III"), "STRAUSS");
    assert_eq!(n("Prof Łucja"), "LUCJA");
    assert_eq!(n("Œdipa"), "OEDIPA");
    assert_eq!(n("Þóra"), "THORA");
    assert_eq!(n("Æsa"), "AESA");
    assert_eq!(n("Đurić"), "DURIC");
    assert_eq!(n("Quist 3rd"), "QUIST");
    assert_eq!(name::first_initial("ZEBULON"), Some('Z'));
    for p in [
        "UNK",
        "Babygirl",
        "NONE",
        "null",
        "xx",
        "Anonymous",
        "NOT PROVIDED",
        "Rev.",
    ] {
        assert_eq!(name::normalize(p), Err(Reason::NamePlaceholder), "{p}");
    }
}

#[test]
fn dob_rules() {
    let want = NaiveDate::from_ymd_opt(1975, 7, 14);
    for s in [
        "1975-07-14",
        "19750714",
        "07/14/1975",
        "7/14/1975",
        "07-14-1975",
        "1975/07/14",
    ] {
        assert_eq!(dob::parse(s, today()).ok(), want, "{s}");
    }
    assert_eq!(dob::parse("1975-07-14T00:00:00", today()).ok(), want);
    assert_eq!(dob::parse("1975-07-14 00:00:00", today()).ok(), want);
    assert_eq!(dob::parse("7/14/75", today()), Err(Reason::DobUnparseable));
    assert_eq!(
        dob::parse("1899-12-31", today()),
        Err(Reason::DobOutOfRange)
    );
    assert_eq!(
        dob::parse("2025-07-01", today()),
        Err(Reason::DobOutOfRange)
    );
    assert_eq!(&dob::encode(want.unwrap()), b"19750714");
}

#[test]
fn sex_and_zip_rules() {
    assert_eq!(demo::sex("1"), Some(Sex::M));
    assert_eq!(demo::sex("female"), Some(Sex::F));
    assert_eq!(demo::sex("9"), None);
    assert_eq!(demo::zip("02134-1234").unwrap().as_str(), "02134");
    assert_eq!(demo::zip("2134").unwrap().as_str(), "02134");
    assert_eq!(demo::zip("021341234").unwrap().zip3(), *b"021");
    assert_eq!(demo::zip("00000"), Err(Reason::ZipInvalid));
}

#[test]
fn tokenizer_basics() {
    let t = Tokenizer::new(&test_key(), TEST_KEY_ID);
    assert_eq!(t.key_id(), TEST_KEY_ID);
    assert_eq!(RULE_SET_VERSION, 4);
    let names: Vec<_> = RULES.iter().map(|r| r.name()).collect();
    assert_eq!(
        names,
        [
            "ssn",
            "ssn_dob",
            "name_dob",
            "name_init_sex_dob",
            "name_dob_zip3"
        ]
    );
    let (f, _) = normalize_record(full_raw(), today());
    let set = t.tokens(&f);
    assert_eq!(set.count(), 5);
    for r in RULES {
        assert_eq!(set.get(r).copied(), t.token(r, &f));
    }
    // All five tokens differ (domain separation).
    let mut all: Vec<_> = set.tokens.iter().flatten().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 5);
    let dbg = format!("{set:?} {t:?}");
    assert!(!dbg.contains(&hex::encode(set.get(Rule::Ssn).unwrap())[..8]));
}

// ---------------------------------------------------------------------------
// Property tests.
// ---------------------------------------------------------------------------

/// A structurally valid, non-fake SSN as 9 ASCII digits.
fn valid_ssn() -> impl Strategy<Value = String> {
    (1u32..=899, 1u32..=99, 1u32..=9999)
        .prop_filter("not 666", |(a, _, _)| *a != 666)
        .prop_map(|(a, g, s)| format!("{a:03}{g:02}{s:04}"))
        .prop_filter("not a known fake", |d| ssn::normalize(d).is_ok())
}

/// A name of A–Z letters that normalizes to itself.
fn base_name() -> impl Strategy<Value = String> {
    "[A-Z]{2,12}".prop_filter("not a placeholder/title", |s| {
        name::normalize(s).as_deref() == Ok(s.as_str())
    })
}

fn accent(c: char) -> char {
    match c {
        'A' => 'á',
        'E' => 'É',
        'I' => 'ï',
        'O' => 'ô',
        'U' => 'Ù',
        'N' => 'ñ',
        'C' => 'ç',
        c => c.to_ascii_lowercase(),
    }
}

/// Spelling variants of a normalized name that must all normalize back to it.
fn name_variants(base: &str, hyphen_at: usize) -> Vec<String> {
    let lower = base.to_lowercase();
    let accented: String = base.chars().map(accent).collect();
    let mut hyphenated = base.to_string();
    hyphenated.insert(hyphen_at.clamp(1, base.len() - 1), '-');
    vec![
        base.to_string(),
        lower.clone(),
        format!("  {lower}  "),
        accented.clone(),
        format!("Mr. {accented} Jr."),
        format!("{base}, III"),
        hyphenated.clone(),
        format!("Dr {}", hyphenated.replace('-', "'")),
    ]
}

fn fields_strategy() -> impl Strategy<Value = IdentityFields> {
    (
        valid_ssn(),
        base_name(),
        base_name(),
        0i64..45_000,
        any::<bool>(),
        (501u32..=99_998),
    )
        .prop_map(|(s, first, last, days, male, zip)| IdentityFields {
            ssn: Some(ssn::normalize(&s).unwrap()),
            first: Some(first),
            last: Some(last),
            dob: Some(dob::MIN_DOB + chrono::Days::new(days as u64)),
            sex: Some(if male { Sex::M } else { Sex::F }),
            zip: Some(demo::zip(&format!("{zip:05}")).unwrap()),
        })
}

proptest! {
    // No regression files: they would land outside this module's directories.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(256)
    })]

    #[test]
    fn ssn_normalize_is_idempotent(raw in "[0-9 .-]{0,14}") {
        if let Ok(s) = ssn::normalize(&raw) {
            let again = ssn::normalize(std::str::from_utf8(s.digits()).unwrap()).unwrap();
            prop_assert_eq!(again.digits(), s.digits());
            prop_assert!(!again.repaired());
        }
    }

    #[test]
    fn name_normalize_is_idempotent(raw in "\\PC{0,24}") {
        if let Ok(n) = name::normalize(&raw) {
            prop_assert!(n.bytes().all(|b| b.is_ascii_uppercase()));
            prop_assert_eq!(name::normalize(&n), Ok(n.clone()));
        }
    }

    #[test]
    fn name_normalize_is_idempotent_on_name_like_input(
        raw in "((Mr|Dr|Jr|III|[A-Za-zéøßŁ'-]{1,8})[ .,]{1,2}){1,4}"
    ) {
        if let Ok(n) = name::normalize(&raw) {
            prop_assert_eq!(name::normalize(&n), Ok(n.clone()));
        }
    }

    #[test]
    fn dob_parse_is_idempotent(raw in "[0-9]{1,4}[/-][0-9]{1,2}[/-][0-9]{1,4}|[0-9]{8}") {
        if let Ok(d) = dob::parse(&raw, today()) {
            let enc = dob::encode(d);
            prop_assert_eq!(dob::parse(std::str::from_utf8(&enc).unwrap(), today()), Ok(d));
        }
    }

    #[test]
    fn dob_formats_agree(days in 0u64..45_000) {
        let d = dob::MIN_DOB + chrono::Days::new(days);
        let f = |fmt: &str| dob::parse(&d.format(fmt).to_string(), today());
        for fmt in ["%Y-%m-%d", "%Y%m%d", "%m/%d/%Y", "%-m/%-d/%Y", "%m-%d-%Y", "%Y/%m/%d",
                    "%Y-%m-%dT00:00:00", "%Y-%m-%d 00:00:00"] {
            prop_assert_eq!(f(fmt), Ok(d), "{}", fmt);
        }
    }

    #[test]
    fn zip_and_sex_are_idempotent(raw in "[0-9]{3,10}|[0-9]{5}-[0-9]{4}", s in "[MFmf129UX ]{0,2}|male|FEMALE") {
        if let Ok(z) = demo::zip(&raw) {
            prop_assert_eq!(demo::zip(z.as_str()), Ok(z));
        }
        if let Some(x) = demo::sex(&s) {
            prop_assert_eq!(demo::sex(x.as_str()), Some(x));
        }
    }

    #[test]
    fn ssn_format_variants_give_one_token(d in valid_ssn(), dob in 0u64..45_000) {
        let t = Tokenizer::new(&test_key(), TEST_KEY_ID);
        let dashed = format!("{}-{}-{}", &d[0..3], &d[3..5], &d[5..9]);
        let spaced = format!(" {} {} {} ", &d[0..3], &d[3..5], &d[5..9]);
        let integer = d.trim_start_matches('0').to_string();
        let float = format!("{integer}.0");
        let mut tokens = Vec::new();
        for v in [d.clone(), dashed, spaced, integer, float] {
            let f = IdentityFields {
                ssn: Some(ssn::normalize(&v).unwrap()),
                dob: Some(dob::MIN_DOB + chrono::Days::new(dob)),
                ..IdentityFields::default()
            };
            tokens.push((t.token(Rule::Ssn, &f).unwrap(), t.token(Rule::SsnDob, &f).unwrap()));
        }
        prop_assert!(tokens.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn name_variants_give_one_token(
        first in base_name(), last in base_name(), h1 in 1usize..12, h2 in 1usize..12,
    ) {
        let t = Tokenizer::new(&test_key(), TEST_KEY_ID);
        let (fv, lv) = (name_variants(&first, h1), name_variants(&last, h2));
        let mut seen = None;
        for (fr, lr) in fv.iter().zip(lv.iter().rev()) {
            let raw = RawIdentity {
                first: Some(fr), last: Some(lr), dob: Some("1983-04-05"), sex: Some("F"),
                zip: Some("65101"), ..RawIdentity::default()
            };
            let (f, reasons) = normalize_record(raw, today());
            prop_assert!(reasons.is_empty(), "{:?}", reasons);
            let set = t.tokens(&f);
            let toks = (set.get(Rule::NameDob).copied(), set.get(Rule::NameInitSexDob).copied(),
                        set.get(Rule::NameDobZip3).copied());
            prop_assert!(toks.0.is_some() && toks.1.is_some() && toks.2.is_some());
            match seen {
                None => seen = Some(toks),
                Some(s) => prop_assert_eq!(s, toks),
            }
        }
    }

    #[test]
    fn a_missing_field_nulls_exactly_its_rules(f in fields_strategy(), drop in 0usize..6) {
        let t = Tokenizer::new(&test_key(), TEST_KEY_ID);
        prop_assert_eq!(t.tokens(&f).count(), 5);
        let mut g = f.clone();
        let field = match drop {
            0 => { g.ssn = None; "ssn" }
            1 => { g.first = None; "first" }
            2 => { g.last = None; "last" }
            3 => { g.dob = None; "dob" }
            4 => { g.sex = None; "sex" }
            _ => { g.zip = None; "zip3" }
        };
        let full = t.tokens(&f);
        let set = t.tokens(&g);
        for r in RULES {
            let uses = r.fields().iter().any(|x| *x == field || (field == "first" && *x == "first_initial"));
            if uses {
                prop_assert!(set.get(r).is_none(), "{} should be null without {}", r, field);
            } else {
                prop_assert_eq!(set.get(r), full.get(r));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Golden vectors.
// ---------------------------------------------------------------------------

/// `(case name, raw ssn, first, last, dob, sex, zip)`; `None` = column absent.
type GoldenCase = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

#[rustfmt::skip]
const GOLDEN_CASES: &[GoldenCase] = &[
    ("complete record", Some("212-67-4431"), Some("Zebulon"), Some("Quackenbush"), Some("1983-04-05"), Some("M"), Some("65101")),
    ("same person, other formats", Some(" 212 67 4431 "), Some("ZEBULON"), Some("quackenbush"), Some("04/05/1983"), Some("1"), Some("65101-0042")),
    ("accents and hyphen", Some("318-42-7765"), Some("José"), Some("García-López"), Some("1990-12-31"), Some("male"), Some("78701")),
    ("title and suffix", Some("401-23-5566"), Some("Dr. Alma"), Some("Quist, Jr."), Some("7/14/1975"), Some("F"), Some("02134")),
    ("repaired 8-digit SSN", Some("41234567"), Some("Ottoline"), Some("Brackwater"), Some("19750714"), Some("2"), Some("2134")),
    ("repaired 7-digit SSN", Some("5123456"), Some("Percival"), Some("Ambersley"), Some("1968-02-29"), Some("M"), Some("06103")),
    ("ITIN gives no SSN tokens", Some("912-70-1234"), Some("Marisol"), Some("Oyelaran"), Some("2001-09-17"), Some("F"), Some("64108")),
    ("missing DOB gives no DOB tokens", Some("523-81-9042"), Some("Thaddeus"), Some("Wimbleton"), Some(""), Some("M"), Some("63101")),
    ("DOB column absent", Some("523-81-9043"), Some("Philippa"), Some("Wimbleton"), None, Some("F"), Some("63101")),
    ("sex not self-identified", Some("287-66-1205"), Some("Rowan"), Some("Fairweather"), Some("1999-03-03"), Some("9"), Some("65201")),
    ("known fake SSN", Some("123-45-6789"), Some("Lucinda"), Some("Pemberton"), Some("1985-10-10"), Some("F"), Some("65802")),
    ("placeholder first name", Some("344-19-8830"), Some("FNU"), Some("Ostrowski"), Some("1979-06-01"), Some("M"), Some("60601")),
    ("Nordic and German letters", Some("622-10-4471"), Some("Søren"), Some("Strauß"), Some("1960-01-15"), Some("M"), Some("55401")),
    ("Polish, Ligature, Thorn", Some("233-47-1290"), Some("Łucja Þóra"), Some("Œstergaard"), Some("1955-11-30T00:00:00"), Some("FEMALE"), Some("98101")),
    ("apostrophe and two-word first", Some("145-72-3309"), Some("Mary Ann"), Some("O'Brien"), Some("1988-08-08 00:00:00"), Some("f"), Some("021341234")),
    ("two-digit year is ambiguous", Some("356-28-7741"), Some("Cornelius"), Some("Vantongeren"), Some("3/4/88"), Some("M"), Some("73301")),
    ("SSN refused", Some("REFUSED"), Some("Esperanza"), Some("Villalobos"), Some("1993-05-21"), Some("F"), Some("85001")),
    ("invalid ZIP", Some("478-90-1123"), Some("Ignatius"), Some("Hollowell"), Some("1971-12-01"), Some("M"), Some("00000")),
    ("suffix III and title Mrs", Some("509-33-6127"), Some("Mrs Henrietta"), Some("Blackwood III"), Some("1949/07/04"), Some("F"), Some("30301")),
    ("only SSN and DOB columns", Some("611-24-9085"), None, None, Some("2003-02-14"), None, None),
    ("everything empty", Some(""), Some(""), Some(""), Some(""), Some(""), Some("")),
    // Rule set 2: Soundex rules (H/W between equal codes, a first letter coded like the
    // next, zero padding), a repeated bigram, and names in each other's columns.
    ("Soundex: H between equal codes, repeated bigram", Some("267-05-3318"), Some("Barbara"), Some("Ashcraft"), Some("1992-10-03"), Some("F"), Some("64111")),
    ("Soundex: first letter coded like the next", Some("431-78-2206"), Some("Lloyd"), Some("Pfister"), Some("1958-06-21"), Some("M"), Some("50309")),
    ("Soundex: short names padded", Some("388-52-0174"), Some("Bo"), Some("Lee"), Some("2000-01-01"), Some("M"), Some("96813")),
    ("names in each other's columns", Some("212-67-4431"), Some("Quackenbush"), Some("Zebulon"), Some("1983-04-05"), Some("M"), Some("65101")),
    // An initial alone is tokenized and blocked on, but not Bloom-encoded.
    ("first name an initial", Some("519-40-2287"), Some("J."), Some("Oyelaran"), None, None, None),
];

fn golden_json() -> Value {
    let t = Tokenizer::new(&test_key(), TEST_KEY_ID);
    let cases: Vec<Value> = GOLDEN_CASES
        .iter()
        .map(|&(case, ssn, first, last, dob, sex, zip)| {
            let raw = RawIdentity { ssn, first, last, dob, sex, zip };
            let (f, reasons) = normalize_record(raw, today());
            let set = t.tokens(&f);
            let tokens: serde_json::Map<String, Value> = RULES
                .iter()
                .map(|r| (r.name().to_string(), json!(set.hex(*r))))
                .collect();
            let enc = t.encoder().encode(&f);
            let encodings: serde_json::Map<String, Value> = bloom::FIELDS
                .iter()
                .map(|&x| (x.name().to_string(), json!(enc.field_bytes(x).map(hex::encode))))
                .collect();
            let keys = t.blocker().keys(&f);
            let blocking_keys: serde_json::Map<String, Value> = BLOCK_KINDS
                .iter()
                .map(|&k| {
                    let material = blocking::material(k, &f)
                        .map(|m| String::from_utf8(m).expect("material is ASCII"));
                    let key = keys.get(k).map(|v| hex::encode(v.to_le_bytes()));
                    assert_eq!(material.is_some(), key.is_some(), "{}", k.name());
                    (
                        k.name().to_string(),
                        json!({ "material": material, "key": key }),
                    )
                })
                .collect();
            json!({
                "case": case,
                "raw": { "ssn": ssn, "first": first, "last": last, "dob": dob, "sex": sex, "zip": zip },
                "normalized": {
                    "ssn": f.ssn.map(|s| String::from_utf8(s.digits().to_vec()).unwrap()),
                    "first": f.first,
                    "last": f.last,
                    "dob": f.dob.map(|d| String::from_utf8(dob::encode(d).to_vec()).unwrap()),
                    "sex": f.sex.map(|s| s.as_str()),
                    "zip": f.zip.map(|z| z.as_str().to_string()),
                },
                "reasons": reasons.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                "tokens": tokens,
                "encodings": encodings,
                "blocking_keys": blocking_keys,
            })
        })
        .collect();
    json!({
        "description": "xmatch golden vectors: identity tokens, keyed Bloom-filter field encodings and keyed blocking keys, under the test key; see the README (Golden vectors and independent verification) and tests/golden/check_vectors.py. All people are made up.",
        "encodings_format": "encodings.<field>: the field's encoding (the m output bits of the diffusion layer) as lowercase hex of m/8 bytes, bit j (0-based) being bit j mod 8 (value 1 << (j mod 8)) of byte j div 8; the same bytes as the enc_<field> columns of tokenized files. null when the field is absent.",
        "blocking_keys_format": "blocking_keys.<kind>.key: lowercase hex of the 8 key bytes, the first 8 bytes of the HMAC in output order (the u64 key is their little-endian reading); the same bytes as the blk_<kind> columns of tokenized files. material: the HMAC input after kind || 0x00, as ASCII (0x1F separators). Both null when a field the kind needs is absent.",
        "bloom_fields": bloom::FIELDS.iter().map(|x| json!({"name": x.name(), "label": x.label(), "bits": x.bits(), "k": x.k()})).collect::<Vec<_>>(),
        "diffusion_t": bloom::DIFFUSION_T,
        "block_label": "xmatch/v2/block",
        "block_kinds": BLOCK_KINDS.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "rule_set_version": RULE_SET_VERSION,
        "key_hex": hex::encode(test_key()),
        "key_id": TEST_KEY_ID,
        "today": today().to_string(),
        "rules": RULES.iter().map(|r| json!({"name": r.name(), "label": r.label(), "fields": r.fields()})).collect::<Vec<_>>(),
        "cases": cases,
    })
}

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/token_vectors.json")
}

#[test]
fn golden_token_vectors() {
    let got = golden_json();
    let Some(want) = crate::support::recorded(&golden_path(), &got) else {
        return;
    };
    let (gc, wc) = (&got["cases"], &want["cases"]);
    assert_eq!(
        gc.as_array().map(Vec::len),
        wc.as_array().map(Vec::len),
        "case count"
    );
    for (g, w) in gc.as_array().unwrap().iter().zip(wc.as_array().unwrap()) {
        assert_eq!(
            g, w,
            "golden case {:?} changed (XMATCH_BLESS=1 regenerates)",
            w["case"]
        );
    }
    assert_eq!(got, want);
    // The vectors cover what the brief asks for.
    let cases = want["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    let has = |pred: &dyn Fn(&Value) -> bool| cases.iter().any(pred);
    assert!(has(&|c| c["reasons"]
        .as_array()
        .unwrap()
        .contains(&json!("ssn_itin"))
        && c["tokens"]["ssn"].is_null()));
    assert!(has(&|c| c["reasons"]
        .as_array()
        .unwrap()
        .contains(&json!("dob_missing"))
        && c["tokens"]["name_dob"].is_null()));
    assert!(has(&|c| c["normalized"]["first"] == json!("JOSE")));
    // Rule set 2: an encoding exists exactly for each present field, but for a name of
    // one letter (an initial).
    for c in cases {
        for field in bloom::FIELDS {
            let name = field.name();
            let value = &c["normalized"][name];
            let initial = value.as_str().is_some_and(|v| v.len() < 2);
            assert_eq!(
                c["encodings"][name].is_null(),
                value.is_null() || initial,
                "{} {name}",
                c["case"]
            );
        }
    }
    let initial = cases
        .iter()
        .find(|c| c["case"] == json!("first name an initial"))
        .unwrap();
    assert_eq!(initial["normalized"]["first"], json!("J"));
    assert!(initial["encodings"]["first"].is_null());
    assert!(
        !initial["blocking_keys"]["ssn_skip_1_3"]["key"].is_null(),
        "the initial still blocks"
    );
    // Names in each other's columns keep every key that holds both names or neither (the
    // initials are sorted), and first and last name share one position space.
    let case = |name: &str| cases.iter().find(|c| c["case"] == json!(name)).unwrap();
    let (straight, crossed) = (
        case("complete record"),
        case("names in each other's columns"),
    );
    for kind in BLOCK_KINDS {
        let same = straight["blocking_keys"][kind.name()] == crossed["blocking_keys"][kind.name()];
        let one_name = matches!(kind, BlockKind::SoundexLastDob | BlockKind::SoundexFirstDob)
            || kind.is_last_only();
        assert_eq!(same, !one_name, "{}", kind.name());
    }
    // A record without a first name keeps the SSN windows with its last initial.
    let nameless = cases
        .iter()
        .find(|c| c["normalized"]["first"].is_null() && !c["normalized"]["ssn"].is_null())
        .expect("a case with an SSN and no first name");
    for (kind, present) in [("ssn_skip_1_3", false), ("ssn_skip_1_3_last", true)] {
        assert_eq!(
            !nameless["blocking_keys"][kind]["key"].is_null(),
            present,
            "{kind} of {}",
            nameless["case"]
        );
    }
    assert_eq!(straight["encodings"]["first"], crossed["encodings"]["last"]);
}

// ---------------------------------------------------------------------------
// Throughput (run in release: --ignored --nocapture).
// ---------------------------------------------------------------------------

/// Tiny deterministic generator so the benchmark needs no RNG API.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
#[ignore = "benchmark; run in release with --ignored --nocapture"]
fn identity_throughput() {
    const N: usize = 2_000_000;
    const POOL: usize = 20_000;
    const FIRST: &[&str] = &[
        "José", "Zebulon", "Mary Ann", "Ottoline", "Søren", "Dr. Alma", "Łucja",
    ];
    const LAST: &[&str] = &[
        "García-López",
        "Quackenbush",
        "O'Brien",
        "Strauß",
        "Quist, Jr.",
        "Brackwater III",
    ];
    let mut rng = SplitMix(42);
    let pool: Vec<[String; 6]> = (0..POOL)
        .map(|_| {
            let ssn = format!(
                "{:03}-{:02}-{:04}",
                1 + rng.below(665),
                1 + rng.below(99),
                1 + rng.below(9999)
            );
            let y = 1940 + rng.below(80);
            let (m, d) = (1 + rng.below(12), 1 + rng.below(28));
            let dob = if rng.below(2) == 0 {
                format!("{y}-{m:02}-{d:02}")
            } else {
                format!("{m}/{d}/{y}")
            };
            [
                ssn,
                FIRST[rng.below(FIRST.len() as u64) as usize].to_string(),
                format!(
                    "{}{}",
                    LAST[rng.below(LAST.len() as u64) as usize],
                    ["", "son", "ova"][rng.below(3) as usize]
                ),
                dob,
                ["M", "F", "9"][rng.below(3) as usize].to_string(),
                format!("{:05}", 1000 + rng.below(98_000)),
            ]
        })
        .collect();

    let start = Instant::now();
    let mut normalized = Vec::with_capacity(POOL);
    let mut reasons = 0usize;
    for i in 0..N {
        let r = &pool[i % POOL];
        let raw = RawIdentity {
            ssn: Some(&r[0]),
            first: Some(&r[1]),
            last: Some(&r[2]),
            dob: Some(&r[3]),
            sex: Some(&r[4]),
            zip: Some(&r[5]),
        };
        let (f, why) = normalize_record(std::hint::black_box(raw), today());
        reasons += why.len();
        if i < POOL {
            normalized.push(f);
        } else {
            std::hint::black_box(f);
        }
    }
    let norm = start.elapsed();

    let t = Tokenizer::new(&test_key(), TEST_KEY_ID);
    let start = Instant::now();
    let mut tokens = 0usize;
    for i in 0..N {
        let set = t.tokens(std::hint::black_box(&normalized[i % POOL]));
        tokens += set.count();
        std::hint::black_box(&set);
    }
    let hmac = start.elapsed();

    let secs = |d: std::time::Duration| d.as_secs_f64();
    println!(
        "normalize: {N} records in {:.2}s = {:.0} records/s ({reasons} reasons)",
        secs(norm),
        N as f64 / secs(norm)
    );
    println!(
        "tokenize:  {N} records, {tokens} tokens in {:.2}s = {:.0} records/s, {:.0} ns/token",
        secs(hmac),
        N as f64 / secs(hmac),
        secs(hmac) * 1e9 / tokens as f64
    );
    assert!(tokens > N);
}
