//! Updraft: an Airflow-style workflow orchestrator with YAML DAGs.
//!
//! Crate map, lowest layer first; a layer uses only the layers above it in this list:
//!
//! - [`config`]: settings read once from the environment and flags, passed down.
//! - [`dag`]: YAML file -> validated [`dag::Dag`]. Pure: no tokio, no database, no network.
//! - [`model`]: task and run states, trigger rules, retry maths. The only code that decides a
//!   state change. Pure.
//! - [`secrets`]: encryption of connections at rest, random tokens and their hashes.
//! - [`metrics`]: lock-free counters and histograms the scheduler records, `/metrics` exports.
//! - [`store`]: the metadata database (SQLite or PostgreSQL). The only SQL in the crate.
//! - [`operators`]: the code of each task type; the only code that talks to user systems.
//! - [`lineage`]: OpenLineage events of runs and tries, with the datasets of the task types,
//!   queued without waiting and sent by a task of its own; off unless `UPDRAFT_LINEAGE_URL`.
//! - [`worker`]: runs one queued task instance: running -> operator -> final state.
//! - [`executor`]: how queued task instances get a worker slot (sequential, local).
//! - [`scheduler`]: creates runs, decides what is ready, queues it. Never runs task code itself.
//! - [`actions`]: the use cases (trigger, pause, clear, mark, users, tokens, connections,
//!   variables, pools), each with its audit entry; called by the web and the CLI alike.
//! - [`web`]: the web UI and `/api/v1` (axum + askama). Talks to the store only: a trigger is
//!   a row the scheduler picks up.
//! - [`cli`]: the `updraft` command line.
//!
//! Invariants that hold across modules:
//! - Every state change is committed to the store before anything acts on it.
//! - A task instance moves queued -> running and running -> final only by a compare-and-set on
//!   (state, try_number) in the store, so two processes can never run the same try.

pub mod actions;
pub mod cli;
pub mod config;
pub mod dag;
pub mod executor;
pub mod lineage;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod operators;
pub mod scheduler;
pub mod secrets;
pub mod store;
pub mod tls;
pub mod web;
pub mod worker;
