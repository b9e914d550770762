//! The seam between the web and the use-case layer (`crate::actions`): who the caller is, as an
//! [`Actor`], and how an [`ActionError`] becomes a [`WebError`] (and so a status code).
//!
//! Invariant: the mapping is the only place an action's refusal gets its HTTP status: not
//! found 404, invalid input or conf 400, conflict 409, anything else a 500 whose cause is
//! logged and not shown.

use super::auth::Principal;
use super::error::WebError;
use crate::actions::{ActionError, Actor};

impl Principal {
    /// The caller as the actions layer records them.
    pub fn actor(&self) -> Actor {
        Actor::user(self.user_id, &self.username)
    }
}

impl From<ActionError> for WebError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::NotFound(m) => WebError::NotFound(m),
            ActionError::Invalid(m) => WebError::BadRequest(m),
            ActionError::Conf(errs) => WebError::BadRequest(errs.to_string()),
            ActionError::Conflict(m) => WebError::Conflict(m),
            ActionError::Internal(m) => WebError::Internal(m),
        }
    }
}
