//! The store's schema migrations, embedded in the binary.
//!
//! sqlx's `migrate!` macro would embed them for us, but it is the only macro this crate
//! uses, and sqlx's `macros` feature compiles the SQLite and PostgreSQL drivers (and
//! SQLite's C library) a second time for the compiler host: minutes of a newcomer's first
//! build. The files are listed here instead and read the way `migrate!` reads them
//! (version and description from the file name, `-- no-transaction` as the first line), so
//! a store migrated by an earlier build sees the same versions and checksums. A test keeps
//! the lists equal to the folders.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};

/// `(file name, contents)` of one migration file, embedded at compile time.
macro_rules! embed {
    ($dir:literal, $file:literal) => {
        (
            $file,
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/migrations/",
                $dir,
                "/",
                $file
            )),
        )
    };
}

/// `(file name, contents)` of each SQLite migration, in `migrations/sqlite`.
pub(super) const SQLITE: &[(&str, &str)] = &[
    embed!("sqlite", "0001_workspace.sql"),
    embed!("sqlite", "0002_registry_runs.sql"),
    embed!("sqlite", "0003_lineage.sql"),
    embed!("sqlite", "0005_scheduling.sql"),
    embed!("sqlite", "0006_person_tokens_without_rowid.sql"),
    embed!("sqlite", "0007_probabilistic_linkage.sql"),
    embed!("sqlite", "0008_key_rotation.sql"),
    embed!("sqlite", "0009_link_memory.sql"),
];

/// The same for PostgreSQL, in `migrations/postgres`.
pub(super) const POSTGRES: &[(&str, &str)] = &[
    embed!("postgres", "0001_workspace.sql"),
    embed!("postgres", "0002_registry_runs.sql"),
    embed!("postgres", "0003_lineage.sql"),
    embed!("postgres", "0005_scheduling.sql"),
    embed!("postgres", "0007_probabilistic_linkage.sql"),
    embed!("postgres", "0008_key_rotation.sql"),
    embed!("postgres", "0009_link_memory.sql"),
];

/// The migrator for one backend's files.
pub(super) fn migrator(files: &[(&str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        files
            .iter()
            .map(|&(name, sql)| migration(name, sql))
            .collect(),
    )
}

/// One file as `migrate!` would resolve it: `0007_probabilistic_linkage.sql` is version 7,
/// described as "probabilistic linkage".
fn migration(name: &str, sql: &'static str) -> Migration {
    let (version, rest) = name
        .split_once('_')
        .unwrap_or_else(|| panic!("migration file {name} has no `VERSION_` prefix"));
    let version: i64 = version
        .parse()
        .unwrap_or_else(|_| panic!("migration file {name} has no numeric version"));
    let kind = MigrationType::from_filename(rest);
    let description = rest.trim_end_matches(kind.suffix()).replace('_', " ");
    Migration::new(
        version,
        Cow::Owned(description),
        kind,
        AssertSqlSafe(sql).into_sql_str(),
        sql.starts_with("-- no-transaction"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migration file added to a folder must be added to its list, or stores would
    /// silently stay at the old schema.
    #[test]
    fn the_lists_name_every_file_in_the_folders() {
        for (dir, list) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let mut on_disk: Vec<(String, String)> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "sql"))
                .map(|p| {
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    (name, std::fs::read_to_string(&p).unwrap())
                })
                .collect();
            on_disk.sort();
            let listed: Vec<(String, String)> = list
                .iter()
                .map(|&(n, s)| (n.to_string(), s.to_string()))
                .collect();
            assert_eq!(listed, on_disk, "migrations/{dir} and its list differ");
        }
    }

    #[test]
    fn versions_and_descriptions_follow_the_file_names() {
        let m = migrator(SQLITE);
        let got: Vec<(i64, String)> = m
            .iter()
            .map(|x| (x.version, x.description.to_string()))
            .collect();
        assert_eq!(got[0], (1, "workspace".to_string()));
        assert_eq!(got[4], (6, "person tokens without rowid".to_string()));
        assert_eq!(got.len(), SQLITE.len());
        assert!(m.iter().all(|x| x.migration_type == MigrationType::Simple));
    }
}
