//! (in progress)

use axum::Router;

use crate::web::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
}
