//! `serve --allow-actions`: buttons on a movie's page ("retry now",
//! "reset", "restore", "complete"), each carried out by the process that
//! holds the store, through its control socket (`movie_queue::Control`),
//! as if the application had made the call: the change is its writer's,
//! in the journal, and reaches every page through the live feed like any
//! other. Without the flag, or without a holder that answers, there are
//! no buttons and no route that changes anything.
//!
//! An action is a `POST /api/action` with a JSON body `{"action","id"}`,
//! carrying the server's CSRF token in the `X-CSRF-Token` header (the
//! movie page holds it; a page of another origin cannot read it, and a
//! JSON body with that header cannot be sent across origins without the
//! preflight this server never grants), under the same token and `Host`
//! checks as every request.

use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use movie_queue::{Control, Place};
use serde::Deserialize;
use serde_json::json;

use super::App;

/// The header an action's request carries the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What `--allow-actions` adds: the token an action must carry.
#[derive(Debug)]
pub struct Actions {
    csrf: String,
}

impl Actions {
    /// A fresh token: 32 random bytes from the kernel, in hex.
    ///
    /// # Errors
    /// `/dev/urandom` cannot be read.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Actions {
            csrf: super::security::random_hex()?,
        })
    }

    /// The token the movie page hands its script.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// One button: what it does and its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Button {
    pub action: &'static str,
    pub label: &'static str,
}

/// The buttons of a movie in `place` (as the pages name places), when
/// actions are allowed and a holder answers on the control socket.
pub fn buttons(app: &App, place: &str) -> Vec<Button> {
    let button = |action, label| Button { action, label };
    let wanted = match place {
        "failed" => vec![
            button("retry", "retry now"),
            button("reset", "reset"),
            button("complete", "complete"),
        ],
        "removed" => vec![button("restore", "restore")],
        "pending" | "in_flight" => vec![button("complete", "complete")],
        _ => Vec::new(),
    };
    if wanted.is_empty() || app.actions.is_none() || !holder_answers(&app.dir) {
        return Vec::new();
    }
    wanted
}

fn holder_answers(dir: &Path) -> bool {
    movie_queue::Layout::new(dir).control_socket().exists() && Control::connect(dir).is_ok()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionRequest {
    action: String,
    id: String,
}

/// `POST /api/action`.
pub async fn act(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(actions) = &app.actions else {
        return refuse(StatusCode::NOT_FOUND, "no such page");
    };
    let given = headers.get(CSRF_HEADER).map(axum::http::HeaderValue::as_bytes);
    if !given.is_some_and(|given| super::security::same(given, actions.csrf.as_bytes())) {
        return refuse(
            StatusCode::FORBIDDEN,
            "an action carries the page's token in the X-CSRF-Token header",
        );
    }
    // A browser names the page a request comes from: it must be this server's.
    let origin = headers.get(header::ORIGIN).and_then(|value| value.to_str().ok());
    let host = headers.get(header::HOST).and_then(|value| value.to_str().ok());
    if let Some(origin) = origin
        && host.is_none_or(|host| origin != format!("http://{host}"))
    {
        return refuse(StatusCode::FORBIDDEN, "an action comes from the dashboard's own pages");
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !json {
        return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "an action is a JSON body");
    }
    let request: ActionRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return refuse(StatusCode::BAD_REQUEST, &format!("not an action: {error}")),
    };
    let dir = app.dir.clone();
    match tokio::task::spawn_blocking(move || perform(&dir, &request)).await {
        Ok(Ok(message)) => Json(json!({ "ok": true, "message": message })).into_response(),
        Ok(Err((status, message))) => refuse(status, &message),
        Err(error) => refuse(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message, "status": status.as_u16() }))).into_response()
}

/// Carries out one action through the holder; its words, or the status
/// and why not.
fn perform(dir: &Path, request: &ActionRequest) -> Result<String, (StatusCode, String)> {
    let failed = |error: &movie_queue::Error| crate::describe(error);
    let mut control = Control::connect(dir).map_err(|error| {
        let why = match &error {
            movie_queue::Error::ControlUnavailable { reason, .. } => format!(
                "no process holding the store answers on its control socket ({reason}); the application carries \
                 out actions while it runs, or use the movie-queue command"
            ),
            other => failed(other),
        };
        (StatusCode::SERVICE_UNAVAILABLE, why)
    })?;
    let id = request.id.as_str();
    let done = match request.action.as_str() {
        "retry" => control.move_failed_to_pending(id),
        "reset" => control.reset_failed_movie(id),
        "restore" => control.restore_removed_movie(id),
        "complete" => match control.get(id) {
            Ok(Some((place, entry))) if place != Place::Completed => control.add_to_completed(&entry.movie),
            Ok(_) => Ok(false),
            Err(error) => Err(error),
        },
        other => {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("unknown action {}", crate::output::quoted(other)),
            ));
        }
    }
    .map_err(|error| (StatusCode::BAD_GATEWAY, failed(&error)))?;
    if done {
        Ok(format!("{} {}: done", request.action, crate::output::show_id(id)))
    } else {
        Err((
            StatusCode::CONFLICT,
            format!(
                "nothing changed: movie {} is not where `{}` needs it",
                crate::output::quoted(id),
                request.action
            ),
        ))
    }
}
