//! The viewer page at `/ui/`: static files compiled into the binary (no build step, nothing
//! fetched from elsewhere). It needs no token to load; it reads the API with the token the
//! user pastes or gives in the address (`/ui/#access_token=...`).

use poem::error::ResponseError;
use poem::http::{header, StatusCode};
use poem::{handler, web::Path, Response};

/// `(name, content type, content)` of each file under `/ui/`.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../ui/style.css"),
    ),
];

fn file(name: &str) -> Response {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, content)) => Response::builder()
            .content_type(*content_type)
            // Revalidated: a new binary may bring a new page.
            .header(header::CACHE_CONTROL, "no-cache")
            .header(
                "content-security-policy",
                "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:",
            )
            .header("x-content-type-options", "nosniff")
            .body(*content),
        None => super::error::ApiError::NotFound("no such file in the viewer".into()).as_response(),
    }
}

/// `/ui/`: the page.
#[handler]
pub fn index() -> Response {
    file("index.html")
}

/// `/ui/:name`: its scripts and styles.
#[handler]
pub fn asset(Path(name): Path<String>) -> Response {
    file(&name)
}

/// `/ui`: to `/ui/`, so that the page's relative links resolve.
#[handler]
pub fn redirect() -> Response {
    Response::builder()
        .status(StatusCode::PERMANENT_REDIRECT)
        .header(header::LOCATION, "/ui/")
        .finish()
}
