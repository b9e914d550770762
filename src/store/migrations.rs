//! The SQL migrations of each backend, embedded in the binary at build time (see `build.rs`)
//! and applied through sqlx's migrator.
//!
//! This file owns how a migration file becomes an sqlx `Migration`: the same reading as sqlx's
//! own (`<version>_<description>.sql`, `_` in the description read as a space, `-- no-transaction`
//! on the first line), so the checksums recorded in `_sqlx_migrations` by earlier builds, which
//! used sqlx's `migrate!` macro, still match. It must not change a migration's text or version.

use futures::future::BoxFuture;
use sqlx::AnyPool;
use sqlx::error::BoxDynError;
use sqlx::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};

use super::Backend;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// Applies the migrations of `backend` not yet applied (idempotent).
pub(super) async fn run(backend: Backend, pool: &AnyPool) -> Result<(), MigrateError> {
    let files = match backend {
        Backend::Sqlite => embedded::SQLITE,
        Backend::Postgres => embedded::POSTGRES,
    };
    Migrator::new(Embedded(files)).await?.run(pool).await
}

/// The newest migration version this build has, and the newest the database has applied
/// (None: none, or no migrations table).
pub(super) async fn versions(
    backend: Backend,
    pool: &AnyPool,
) -> Result<(i64, Option<i64>), sqlx::Error> {
    let files = match backend {
        Backend::Sqlite => embedded::SQLITE,
        Backend::Postgres => embedded::POSTGRES,
    };
    let ours = files
        .iter()
        .filter_map(|(name, _)| name.split_once('_')?.0.parse::<i64>().ok())
        .max()
        .unwrap_or(0);
    let applied: Result<Option<i64>, sqlx::Error> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await;
    match applied {
        Ok(v) => Ok((ours, v)),
        // No migrations table: nothing applied yet.
        Err(sqlx::Error::Database(_)) => Ok((ours, None)),
        Err(e) => Err(e),
    }
}

/// Migration files as (file name, SQL).
#[derive(Debug)]
struct Embedded(&'static [(&'static str, &'static str)]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move { self.0.iter().map(|(name, sql)| migration(name, sql)).collect() })
    }
}

fn migration(file_name: &str, sql: &'static str) -> Result<Migration, BoxDynError> {
    let Some((version, rest)) = file_name.split_once('_') else {
        return Err(
            format!("migration `{file_name}` is not named <version>_<description>.sql").into()
        );
    };
    let version: i64 = version
        .parse()
        .map_err(|_| format!("migration `{file_name}` does not start with a whole number"))?;
    let kind = MigrationType::from_filename(rest);
    let description = rest.trim_end_matches(kind.suffix()).replace('_', " ");
    let no_tx = sql.starts_with("-- no-transaction");
    Ok(Migration::new(version, description.into(), kind, sql.into(), no_tx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_embedded_in_order() {
        for (files, dir) in [(embedded::SQLITE, "sqlite"), (embedded::POSTGRES, "postgres")] {
            let folder =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dir);
            let mut on_disk: Vec<String> = std::fs::read_dir(&folder)
                .expect("migrations folder")
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".sql"))
                .collect();
            on_disk.sort();
            let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
            assert_eq!(names, on_disk, "{dir}");
            let versions: Vec<i64> =
                files.iter().map(|(n, s)| migration(n, s).expect("valid").version).collect();
            assert!(versions.windows(2).all(|w| w[0] < w[1]), "{dir}: {versions:?}");
        }
    }

    #[test]
    fn a_migration_reads_as_sqlx_reads_it() {
        let m = migration("0007_add_try_pgid.sql", "ALTER TABLE t ADD x BIGINT;").expect("valid");
        assert_eq!((m.version, m.description.as_ref()), (7, "add try pgid"));
        assert_eq!(m.migration_type, MigrationType::Simple);
        assert!(!m.no_tx);
        assert!(migration("initial.sql", "").is_err());
        assert!(migration("v1_initial.sql", "").is_err());
    }
}
