//! TLS for Updraft's HTTP clients (the `http` task types, the schema registry client, S3 through
//! object_store): rustls on the ring crypto provider, installed process-wide before any client
//! is built. One reqwest (0.13, shared with object_store) with no provider of its own: its
//! default (aws-lc) would compile a large C library for the same job.

/// Installs ring as rustls's process-wide crypto provider; a no-op when one is installed (an
/// earlier call, or a program embedding Updraft that chose its own).
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A reqwest client builder whose TLS works: every HTTP client starts here.
pub fn http_client() -> reqwest::ClientBuilder {
    install_provider();
    reqwest::Client::builder()
}
