//! The integration tests: one crate (one binary to link), one module per area. Tests of a
//! server that was not started skip with a note, and fail in CI (see `support`).
//!
//! Run one area with `cargo test --test it scheduler::` (the module path is the filter).

mod support;

mod api;
mod api_boundary;
mod api_conf;
mod api_schemathesis;
mod asset_watchers;
mod assets;
mod backfills;
mod browser;
mod claim_race;
mod cli;
mod cli_users;
mod crash_recovery;
mod dag_files;
mod deadlines;
mod distributed;
mod first_start;
mod kafka_to_sql;
mod lineage;
mod notifications;
mod operators;
mod pipelines;
mod pipelines_sql;
mod scheduler;
mod schema_registry;
mod sql;
mod sql_to_kafka;
mod stop_requests;
mod streaming;
mod streaming_avro;
mod streaming_objects;
mod streaming_recovery;
mod task_secrets;
mod template_escaping;
mod web_admin;
mod web_authz;
mod web_pages;
mod web_security;
mod web_trigger;
mod web_workers;
