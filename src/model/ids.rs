//! The primary keys of runs and task instances as their own types, so that one is never
//! passed where the other is meant, and a key keeps its type from the store to the web.
//!
//! Pure: plain values. The store encodes and decodes them as the BIGINT they are
//! (`store/ids.rs`); JSON and text show the bare number.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }
    };
}

id_type! {
    /// Primary key of a DAG run (`dag_run.id`; `run_pk` where other tables refer to it).
    RunPk
}

id_type! {
    /// Primary key of a task instance (`task_instance.id`; `ti_id` where other tables refer
    /// to it).
    TiId
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_show_and_serialize_as_their_number() {
        assert_eq!(RunPk(42).to_string(), "42");
        assert_eq!(serde_json::to_string(&TiId(7)).expect("json"), "7");
        assert_eq!(serde_json::from_str::<TiId>("7").expect("json"), TiId(7));
        assert_eq!(i64::from(RunPk(3)), 3);
    }
}
