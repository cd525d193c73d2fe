//! The web dashboard `sluice serve` answers at `/`: server-rendered HTML
//! (maud), htmx for the parts that update while a run goes on, and uPlot for
//! charts — all compiled into the binary (`static/`), nothing fetched from
//! elsewhere at view time, under a Content-Security-Policy that allows only
//! this server.
//!
//! Pages and their roles: the overview, asset, explorer and model pages are
//! for `reader`s (an asset's rows for `operator`s, as in the API); runs, their logs and every
//! button are for `operator`s. A page a viewer may not see says so; a button
//! they may not press is not drawn. Every POST carries the session's CSRF token
//! (`session.rs`).

mod asset;
mod explore;
mod graph;
mod models;
mod overview;
mod runs;
mod search;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use sluice_store::Role;

use crate::AppState;
use crate::error::ApiError;

pub(crate) use session::{Sessions, Viewer};

/// The dashboard's routes.
pub(crate) fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(overview::page))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/assets/{name}", get(asset::page))
        .route("/assets/{name}/backfill", post(runs::backfill))
        .route("/explore", get(explore::list))
        .route("/explore/{name}", get(explore::page))
        .route("/explore/{name}/suggest", get(explore::suggest))
        .route("/models", get(models::list))
        .route("/models/{name}", get(models::page))
        .route("/models/{name}/backtest", post(models::backtest))
        .route("/search/{name}", get(search::page))
        .route("/runs", get(runs::list))
        .route("/runs/{id}", get(runs::page))
        .route("/runs/{id}/live", get(runs::live))
        .route("/runs/{id}/cancel", post(runs::cancel))
        .route("/runs/{id}/rerun", post(runs::rerun))
        .route("/actions/{name}", post(runs::action))
        .route_layer(middleware::from_fn_with_state(state, with_viewer))
        .route("/static/{*file}", get(static_file))
}

/// Finds the viewer of every page request and sets a new session's cookie and
/// the security headers on its response.
async fn with_viewer(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let viewer = match state.sessions.viewer(&state, req.headers()) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let cookie = viewer.set_cookie.clone();
    req.extensions_mut().insert(viewer);
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    if let Some(c) = cookie
        && !headers.contains_key(header::SET_COOKIE)
    {
        headers.insert(header::SET_COOKIE, c);
    }
    secure(headers);
    response
}

/// The policy every page is served under: only this server's scripts,
/// styles, images and connections; not framed; forms post here only.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The files pages load, compiled in.
const STATIC: [(&str, &str, &[u8]); 6] = [
    ("app.css", "text/css", include_bytes!("static/app.css")),
    ("app.js", "text/javascript", include_bytes!("static/app.js")),
    (
        "vendor/htmx.min.js",
        "text/javascript",
        include_bytes!("static/vendor/htmx.min.js"),
    ),
    (
        "vendor/uPlot.iife.min.js",
        "text/javascript",
        include_bytes!("static/vendor/uPlot.iife.min.js"),
    ),
    (
        "vendor/uPlot.min.css",
        "text/css",
        include_bytes!("static/vendor/uPlot.min.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("static/favicon.svg"),
    ),
];

/// Total bytes of JavaScript and CSS the pages load.
#[cfg(test)]
fn shipped_bytes() -> usize {
    STATIC
        .iter()
        .filter(|(_, ty, _)| *ty != "image/svg+xml")
        .map(|(_, _, b)| b.len())
        .sum()
}

async fn static_file(Path(file): Path<String>) -> Response {
    match STATIC.iter().find(|(name, _, _)| *name == file) {
        Some((_, ty, bytes)) => (
            [
                (header::CONTENT_TYPE, *ty),
                (header::CACHE_CONTROL, "public, max-age=3600"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// A whole page: the head, the bar with what the viewer may reach, `body`.
pub(crate) fn layout(viewer: &Viewer, state: &AppState, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false}"#;
                title { (title) " · " (state.ws.project.name) " · sluice" }
                link rel="icon" href="/static/favicon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/static/vendor/uPlot.min.css";
                link rel="stylesheet" href="/static/app.css";
                script src="/static/vendor/htmx.min.js" defer {}
                script src="/static/vendor/uPlot.iife.min.js" defer {}
                script src="/static/app.js" defer {}
            }
            body {
                header.bar {
                    a.brand href="/" { "sluice" }
                    span.project { (state.ws.project.name) }
                    nav {
                        @if viewer.may(Role::Reader) { a href="/" { "Overview" } }
                        @if viewer.may(Role::Reader) && !state.ws.project.explorers.is_empty() { a href="/explore" { "Explore" } }
                        @if viewer.may(Role::Reader) && has_models(state) { a href="/models" { "Models" } }
                        @if viewer.may(Role::Operator) { a href="/runs" { "Runs" } }
                    }
                    span.who {
                        @match viewer.role {
                            Some(role) => { span.role { (role.as_str()) } }
                            None => {}
                        }
                        @if viewer.signed_in {
                            form.inline method="post" action="/sign-out" {
                                input type="hidden" name="csrf" value=(viewer.csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// Whether the project has a model (and so a models page).
fn has_models(state: &AppState) -> bool {
    state
        .ws
        .project
        .assets
        .values()
        .any(|a| a.kind() == sluice_core::AssetKind::Model)
}

/// A page's answer: its HTML, with the status given.
pub(crate) fn respond(status: StatusCode, page: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page.into_string(),
    )
        .into_response()
}

/// What a viewer who may not see a page gets: the sign-in page when they
/// have no role, else a page saying which role it needs.
pub(crate) fn refuse(state: &AppState, viewer: &Viewer, needs: Role, next: &str) -> Response {
    if viewer.role.is_none() {
        let to = format!("/sign-in?next={}", encode(next));
        return Redirect::to(&to).into_response();
    }
    let body = html! {
        h1 { "Not for this key" }
        p { "This page needs the " code { (needs.as_str()) } " role; you are signed in as "
            code { (viewer.role.map_or("nobody", Role::as_str)) } "." }
        p.help { "Sign in with a key made by " code { "sluice keys create --role " (needs.as_str()) } "." }
    };
    respond(
        StatusCode::FORBIDDEN,
        layout(viewer, state, "Forbidden", body),
    )
}

/// A page for an error a request met.
pub(crate) fn error_page(state: &AppState, viewer: &Viewer, e: ApiError) -> Response {
    let status = e.status;
    let body = html! {
        h1 { (status.canonical_reason().unwrap_or("Error")) }
        pre.error { (e.message) }
        p { a href="/" { "Back to the overview" } }
    };
    respond(status, layout(viewer, state, "Error", body))
}

/// A path segment or query value, percent-encoded.
pub(crate) fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The form every POST of the dashboard sends: at least the CSRF token.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    /// The session's token.
    pub(crate) csrf: Option<String>,
}

/// The answer to a POST whose token is missing or wrong.
pub(crate) fn forged(state: &AppState, viewer: &Viewer) -> Response {
    let body = html! {
        h1 { "Refused" }
        p { "The form did not carry this session's token, so it was not sent from this dashboard. Nothing was done." }
        p.help { "Reload the page and press the button again." }
    };
    respond(
        StatusCode::FORBIDDEN,
        layout(viewer, state, "Refused", body),
    )
}

/// Why an operator's POST is refused, if it is: a viewer without the role
/// (`next`: where to come back after signing in), or a form without the
/// session's CSRF token.
pub(crate) fn refused(
    state: &AppState,
    viewer: &Viewer,
    form: &CsrfForm,
    next: &str,
) -> Option<Response> {
    if !viewer.may(Role::Operator) {
        return Some(refuse(state, viewer, Role::Operator, next));
    }
    if !viewer.csrf_ok(form.csrf.as_deref()) {
        return Some(forged(state, viewer));
    }
    None
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Where to go after signing in: a path of this dashboard, never elsewhere.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

async fn sign_in_page(
    State(state): State<Arc<AppState>>,
    axum::Extension(viewer): axum::Extension<Viewer>,
    axum::extract::Query(q): axum::extract::Query<NextQuery>,
) -> Response {
    sign_in_form(&state, &viewer, q.next.as_deref(), None, StatusCode::OK)
}

fn sign_in_form(
    state: &AppState,
    viewer: &Viewer,
    next: Option<&str>,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let next = safe_next(next);
    let body = html! {
        h1 { "Sign in" }
        @if let Some(msg) = problem { p.problem role="alert" { (msg) } }
        @if viewer.role.is_some() && !viewer.signed_in {
            p { "This server has no API key, so it is open on this machine: there is nothing to sign in to. "
                a href=(next) { "Go on" } }
        } @else {
            form.signin method="post" action="/sign-in" {
                input type="hidden" name="csrf" value=(viewer.csrf);
                input type="hidden" name="next" value=(next);
                label for="key" { "API key" }
                input id="key" type="password" name="key" autocomplete="current-password" required autofocus;
                button type="submit" { "Sign in" }
            }
            p.help { "An admin makes keys with " code { "sluice keys create --role reader" } " (or operator, admin)." }
        }
    };
    respond(status, layout(viewer, state, "Sign in", body))
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    csrf: Option<String>,
    key: Option<String>,
    next: Option<String>,
}

async fn sign_in(
    State(state): State<Arc<AppState>>,
    axum::Extension(viewer): axum::Extension<Viewer>,
    Form(form): Form<SignInForm>,
) -> Response {
    if !viewer.csrf_ok(form.csrf.as_deref()) {
        return forged(&state, &viewer);
    }
    let key = form.key.unwrap_or_default();
    match state.sessions.sign_in(&state, &viewer, &key) {
        Ok(Some((role, cookie))) => {
            tracing::info!(role = role.as_str(), "signed in to the dashboard");
            let mut r = Redirect::to(&safe_next(form.next.as_deref())).into_response();
            r.headers_mut().insert(header::SET_COOKIE, cookie);
            r
        }
        Ok(None) => sign_in_form(
            &state,
            &viewer,
            form.next.as_deref(),
            Some("That key is not valid: unknown, mistyped or revoked."),
            StatusCode::UNAUTHORIZED,
        ),
        Err(e) => error_page(&state, &viewer, e),
    }
}

async fn sign_out(
    State(state): State<Arc<AppState>>,
    axum::Extension(viewer): axum::Extension<Viewer>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !viewer.csrf_ok(form.csrf.as_deref()) {
        return forged(&state, &viewer);
    }
    match state.sessions.sign_out(&viewer) {
        Ok(cookie) => {
            let mut r = Redirect::to("/sign-in").into_response();
            r.headers_mut().insert(header::SET_COOKIE, cookie);
            r
        }
        Err(e) => error_page(&state, &viewer, e),
    }
}

/// A duration in words a person reads at a glance: `850 ms`, `12.3 s`,
/// `4 min 05 s`, `3 h 20 min`, `2 d 4 h`.
pub(crate) fn span(ms: u64) -> String {
    let s = ms / 1000;
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {:02} s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// A time as a person reads it at a glance: to the second, in UTC.
pub(crate) fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// [`when`] of a time written in RFC 3339 (as the reads give them); other
/// text as it is.
pub(crate) fn when_text(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t).map_or_else(|_| t.to_string(), |t| when(t.to_utc()))
}

/// A JSON value as a person reads it: text without quotes, a fraction to
/// four decimals, null as a dash.
pub(crate) fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "—".into(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) if n.is_f64() => {
            let text = format!("{:.4}", n.as_f64().unwrap_or_default());
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        other => other.to_string(),
    }
}

/// A state word as a coloured badge.
pub(crate) fn badge(word: &str) -> Markup {
    let class = match word {
        "built" | "succeeded" | "fresh" | "pass" | "up_to_date" => "ok",
        "stale" | "queued" | "warn" | "missing" => "warn",
        "failed" | "fail" | "abandoned" | "error" => "bad",
        "blocked" | "cancelled" | "skipped" => "off",
        "running" => "run",
        _ => "off",
    };
    html! { span class={ "badge " (class) } { (word) } }
}

/// A chart drawn by `static/app.js` with uPlot: lines over a shared x.
pub(crate) struct Chart {
    /// Its title, above it.
    pub(crate) title: String,
    /// Whether x is time (seconds since the epoch).
    pub(crate) time: bool,
    /// What x is, in the legend.
    pub(crate) x_label: String,
    /// The x of each point.
    pub(crate) x: Vec<f64>,
    /// Each line: its name and its values (`None`: a gap).
    pub(crate) series: Vec<(String, Vec<Option<f64>>)>,
}

/// Charts as the page carries them: a box per chart and their data in one
/// JSON island, which the script reads (a page runs no inline script).
pub(crate) fn draw_charts(charts: &[Chart]) -> Markup {
    let data: Vec<serde_json::Value> = charts
        .iter()
        .map(|c| {
            serde_json::json!({
                "title": c.title,
                "time": c.time,
                "x_label": c.x_label,
                "x": c.x,
                "series": c.series.iter().map(|(name, ys)| serde_json::json!({"label": name, "values": ys})).collect::<Vec<_>>(),
            })
        })
        .collect();
    html! {
        @for (i, c) in charts.iter().enumerate() {
            figure.chart-box {
                figcaption { (c.title) }
                div.chart data-chart=(i) {}
            }
        }
        (json_island("charts", &serde_json::Value::Array(data)))
    }
}

/// JSON for a page's script, escaped so that it cannot close its `<script>`.
pub(crate) fn json_island(id: &str, value: &serde_json::Value) -> Markup {
    let text = value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    html! { script type="application/json" id=(id) { (PreEscaped(text)) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_sign_in_only_a_local_path_is_followed() {
        assert_eq!(safe_next(Some("/runs/3")), "/runs/3");
        assert_eq!(safe_next(Some("//evil.example.com")), "/");
        assert_eq!(safe_next(Some("https://evil.example.com")), "/");
        assert_eq!(safe_next(Some("/\\evil")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn spans_and_islands_read_well_and_stay_inside_their_script() {
        assert_eq!(span(850), "850 ms");
        assert_eq!(span(12_340), "12.3 s");
        assert_eq!(span(245_000), "4 min 05 s");
        assert_eq!(span(12_000_000), "3 h 20 min");
        assert_eq!(show(&serde_json::json!(0.27647058823529413)), "0.2765");
        assert_eq!(show(&serde_json::json!(2.0)), "2");
        assert_eq!(show(&serde_json::json!("SFN")), "SFN");
        assert_eq!(show(&serde_json::json!(28)), "28");
        let island = json_island("d", &serde_json::json!({"x": "</script><b>"})).into_string();
        assert!(!island.contains("</script><b>"), "{island}");
    }

    #[test]
    fn what_the_pages_ship_stays_under_200_kb() {
        assert!(shipped_bytes() < 200_000, "{} bytes", shipped_bytes());
    }
}
