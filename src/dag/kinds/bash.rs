//! `type: bash`: the settings of a shell command.
//!
//! Schema only: the command is a template rendered (and shell-escaped) at run time.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::yes;

fn default_skip_codes() -> Vec<i32> {
    // Airflow's BashOperator skips the task when the command exits with 99.
    vec![99]
}

/// `type: bash`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BashTask {
    /// Shell command (templated), run with `bash -c` in its own process group.
    pub command: String,
    /// Extra environment variables (values templated).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Keep the environment of the Updraft process (true) or start from an empty one.
    #[serde(default = "yes")]
    pub append_env: bool,
    /// Working directory (templated); a fresh temporary folder when absent.
    pub cwd: Option<String>,
    /// Exit codes that mark the task skipped instead of failed.
    #[serde(default = "default_skip_codes")]
    pub skip_on_exit_code: Vec<i32>,
}
