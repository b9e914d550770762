//! Web UI and API.
