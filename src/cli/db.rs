//! `updraft db ...`: migrations and history clean-up.

use chrono::Utc;
use clap::Subcommand;

use super::{CmdResult, Failure, engine};
use crate::config::Settings;
use crate::dag::kinds::Dur;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Creates or upgrades the metadata database schema.
    Migrate,
    /// Deletes finished runs (with their task instances, tries, XCom and logs) and the rows of
    /// stopped schedulers and workers older than a duration, in small batches that do not
    /// block the scheduler.
    Clean {
        /// Age, e.g. 30d or 12h.
        #[arg(long)]
        older_than: String,
    },
}

pub async fn run(cmd: DbCommand, settings: Settings) -> CmdResult {
    match cmd {
        DbCommand::Migrate => {
            let store = engine::open_store(&settings).await?;
            println!("Database {} is up to date", engine::redact_url(&settings.database_url));
            store.close().await;
            Ok(())
        }
        DbCommand::Clean { older_than } => {
            let age = Dur::parse(&older_than).map_err(Failure::usage)?;
            let age = chrono::Duration::from_std(age.0)
                .map_err(|_| Failure::usage("--older-than is too large"))?;
            let store = engine::open_store(&settings).await?;
            let deleted = store.clean_before(Utc::now() - age).await?;
            let logs = settings.log_dir();
            let mut folders = 0;
            for (dag_id, run_id) in &deleted {
                // Each id is one folder name, so a stored `..` cannot reach outside the logs.
                let dir = crate::operators::log_path::run_dir(&logs, dag_id, run_id);
                if std::fs::remove_dir_all(&dir).is_ok() {
                    folders += 1;
                }
            }
            println!(
                "Deleted {} run(s) and {folders} log folder(s) older than {older_than}",
                deleted.len()
            );
            store.close().await;
            Ok(())
        }
    }
}
