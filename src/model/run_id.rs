//! What a run id may be. Pure: the rule only; `actions::check_run_id` (every trigger through
//! the web and the CLI) and the `trigger_dag` task type both apply it.
//!
//! Invariant: an accepted run id can name a folder and be told apart from every other: 1 to
//! [`MAX_RUN_ID`] characters, no `/`, `\` or control character, no leading or trailing white
//! space, and not `.` or `..`.

/// Longest run id (the database column and Airflow's limit).
pub const MAX_RUN_ID: usize = 250;

/// The rule, in words, for messages.
pub const RUN_ID_RULE: &str = "a run id has 1 to 250 characters, no `/`, `\\` or control \
    characters, no leading or trailing space, and is not `.` or `..`";

/// Why `id` cannot be a run id, or None when it can.
pub fn run_id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("is empty")
    } else if id.chars().count() > MAX_RUN_ID {
        Some("is longer than 250 characters")
    } else if id == "." || id == ".." {
        Some("cannot be `.` or `..`")
    } else if id.contains(['/', '\\']) {
        Some("contains `/` or `\\`")
    } else if id.chars().any(char::is_control) {
        Some("contains a control character")
    } else if id.trim() != id {
        Some("starts or ends with white space")
    } else {
        None
    }
}
