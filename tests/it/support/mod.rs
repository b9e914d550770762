//! What the integration tests share: the store and engine harness (`common`), the web app with
//! role sessions and tokens (`api`), tasks built from YAML (`operators`), and the clients of the
//! real Kafka, Cassandra and S3 servers (`streaming`), a streaming task in its own `updraft`
//! process (`streaming_run`), and the SQL databases of the table source and sink (`tables`).
#![allow(dead_code)]

pub mod api;
pub mod common;
pub mod operators;
pub mod streaming;
pub mod streaming_run;
pub mod tables;
