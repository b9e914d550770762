//! (in progress)

use axum::Router;

use super::AppState;

/// Routes of the API.
pub fn router() -> Router<AppState> {
    Router::new()
}
