//! What the integration tests share: the store and engine harness (`common`), the served web
//! app with a logged-in user per role (`web`), the REST API client over it (`api`), tasks built
//! from YAML (`operators`), and the clients of the real Kafka, Cassandra and S3 servers
//! (`streaming`).
#![allow(dead_code)]

pub mod api;
pub mod common;
pub mod operators;
pub mod sql;
pub mod streaming;
pub mod web;
