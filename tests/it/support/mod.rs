//! What the integration tests share: the store and engine harness (`common`), the served web
//! app with a logged-in user per role (`web`), the REST API client over it (`api`), tasks built
//! from YAML (`operators`), the receivers of notifications (`receivers`: a webhook server and
//! the test SMTP server's saved mail), the clients of the real Kafka, Cassandra and S3 servers
//! (`streaming`), a streaming task in its own `updraft` process (`streaming_run`), and the SQL
//! databases of the table source and sink (`tables`).
#![allow(dead_code)]

pub mod api;
pub mod common;
pub mod lineage;
pub mod operators;
pub mod receivers;
pub mod sql;
pub mod streaming;
pub mod streaming_run;
pub mod tables;
pub mod web;
