//! The schema files are the single source of truth; these tests keep them honest.

use std::collections::BTreeSet;

use xmatch::schema::{Catalog, Deid, IdentityRole, PiiClass, SchemaError, SourceKind};

fn catalog() -> Catalog {
    Catalog::builtin().expect("the shipped schemas are valid")
}

#[test]
fn every_file_in_schemas_is_compiled_in() {
    let on_disk: BTreeSet<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .collect();
    let built_in: BTreeSet<String> = xmatch::schema::builtin_file_names()
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(on_disk, built_in);
}

#[test]
fn the_five_sources_have_the_roles_matching_needs() {
    let c = catalog();
    let names: Vec<&str> = c.sources().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "participants",
            "public_assistance",
            "taa",
            "ui_claims",
            "ui_wages"
        ]
    );
    for s in c.sources() {
        assert!(s.identity_column(IdentityRole::Ssn).is_some(), "{}", s.name);
        // Direct identifiers never reach the de-identified zone.
        for col in &s.columns {
            if col.pii == PiiClass::Direct {
                assert_ne!(col.deid, Deid::Keep, "{}.{}", s.name, col.name);
            }
        }
        assert_eq!(
            s.evidence.is_some(),
            s.kind == SourceKind::Evidence,
            "{}",
            s.name
        );
    }
    let p = c.source("participants").unwrap();
    assert_eq!(p.column("dob").unwrap().deid, Deid::BirthYear);
    assert_eq!(p.column("zip").unwrap().deid, Deid::Zip3);
    assert_eq!(p.column("individual_id").unwrap().pirl, Some(100));
    assert_eq!(
        c.source("ui_wages")
            .unwrap()
            .column("employer_id")
            .unwrap()
            .deid,
        Deid::Token
    );
}

#[test]
fn severity_order_names_the_highest_category() {
    let c = catalog();
    assert_eq!(c.categories()[0].name, "ssn");
    assert_eq!(
        c.most_severe(["education", "public_assistance", "dob"])
            .unwrap()
            .name,
        "public_assistance"
    );
    assert_eq!(c.most_severe(["dob", "ssn"]).unwrap().name, "ssn");
    assert!(c.most_severe(["nothing"]).is_none());
}

#[test]
fn the_thirteen_informational_services_do_not_trigger_participation() {
    let c = catalog();
    let non_triggering = c
        .services()
        .iter()
        .filter(|s| !s.triggers_participation)
        .count();
    assert_eq!(non_triggering, 13);
    assert!(c.service("T01").unwrap().triggers_participation);
}

#[test]
fn an_unknown_source_names_the_known_ones() {
    let err = catalog().source("wages").unwrap_err().to_string();
    assert!(err.contains("ui_wages"), "{err}");
}

fn try_schema(columns: &str, extra: &str) -> Result<Catalog, SchemaError> {
    let text = format!(
        "name = \"x\"\nkind = \"wages\"\ndescription = \"d\"\ncolumns = [\n  {{ name = \"ssn\", type = \"string\", pii = \"direct\", identity = \"ssn\" }},\n{columns}\n]\n{extra}"
    );
    Catalog::from_texts(
        &[("x.toml".into(), text)],
        include_str!("../../schemas/sensitivity.toml"),
        include_str!("../../schemas/services.toml"),
    )
}

#[test]
fn broken_schemas_are_refused_naming_file_and_column() {
    let cases = [
        (
            "{ name = \"dob\", type = \"string\", pii = \"quasi\" }",
            "",
            "column `dob`",
        ),
        (
            "{ name = \"nm\", type = \"string\", pii = \"direct\", deid = \"keep\" }",
            "",
            "cannot be kept",
        ),
        (
            "{ name = \"w\", type = \"decimal\", pii = \"none\", sensitive = \"salary\" }",
            "",
            "unknown sensitive category",
        ),
        (
            "{ name = \"c\", type = \"code\", pii = \"none\" }",
            "",
            "allowed",
        ),
        (
            "{ name = \"s2\", type = \"string\", pii = \"direct\", identity = \"ssn\" }",
            "",
            "already played",
        ),
        (
            "{ name = \"Bad Name\", type = \"string\", pii = \"none\" }",
            "",
            "lower_snake_case",
        ),
        (
            "{ name = \"q\", type = \"string\", pii = \"none\", colour = 1 }",
            "",
            "x.toml",
        ),
        (
            "",
            "[evidence]\nprogram = \"UI\"\ndetermination_date = \"a\"\nperiod_start = \"a\"\nperiod_end = \"a\"\nbenefit_type = \"a\"",
            "only an `evidence` source",
        ),
    ];
    for (cols, extra, expect) in cases {
        let err = try_schema(cols, extra).unwrap_err().to_string();
        assert!(err.contains("x.toml"), "{err}");
        assert!(err.contains(expect), "expected `{expect}` in: {err}");
    }
}

#[test]
fn arrow_schemas_follow_the_declared_columns() {
    let c = catalog();
    for s in c.sources() {
        let arrow = s.arrow_schema();
        let names: Vec<&str> = arrow.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, s.column_names().collect::<Vec<_>>());
    }
}
