//! Segments in the console: the saved segments, a builder whose count
//! follows the expression as it is typed (a mistake is shown at its column),
//! and one segment's page with its members (masked phones), a CSV export
//! and delete. Same application calls as `/api/v1/segments`.

use super::frame::{redirect, render, Chrome, FieldErrors, Lang, Staff};
use crate::app::segments::{self, SegmentInput};
use crate::app::AppError;
use crate::http::ApiState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use regulars_core::access::Action;
use regulars_core::segment::ParseError;
use serde::Deserialize;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console/segments", get(list).post(save))
        .route("/console/segments/count", get(live_count))
        .route("/console/segments/{id}", get(detail))
        .route("/console/segments/{id}/export.csv", get(export))
        .route("/console/segments/{id}/delete", post(delete))
}

/// A parse error as the reader's sentence, with the column it failed at.
fn parse_message(lang: Lang, e: &ParseError) -> String {
    match lang {
        Lang::En => {
            let mut chars = e.message.chars();
            let message: String = match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            };
            format!("Column {}: {message}", e.column)
        }
        Lang::Zh => {
            let expected = match e.expected.as_str() {
                "a field name" => "字段名".to_string(),
                "a field name, \"not\" or \"(\"" => "字段名、not 或 (".to_string(),
                "an operator (=, !=, <, <=, >, >=, in or not in)" => {
                    "运算符（=、!=、<、<=、>、>=、in 或 not in）".to_string()
                }
                "a value" => "一个值".to_string(),
                "text" => "文本（加引号）".to_string(),
                other => other.replace(" or ", " 或 "),
            };
            let found = if e.found == "end of input" {
                "结尾（表达式不完整）".to_string()
            } else {
                e.found.clone()
            };
            format!(
                "第 {} 列有误：这里应为 {expected}，实际是 {found}",
                e.column
            )
        }
    }
}

/// The expression split around the failing character, to point at it.
pub(super) struct Pointer {
    before: String,
    at: String,
    after: String,
}

fn pointer(expression: &str, e: &ParseError) -> Pointer {
    let chars: Vec<char> = expression.chars().collect();
    let at = e.position.min(chars.len());
    let end = (at + 1).min(chars.len());
    Pointer {
        before: chars[..at].iter().collect(),
        at: if at < chars.len() {
            chars[at..end].iter().collect()
        } else {
            " ".into()
        },
        after: chars[end..].iter().collect(),
    }
}

/// The live count under the builder's field.
#[derive(Template)]
#[template(path = "segments/count.html")]
struct CountFragment {
    lang: Lang,
    empty: bool,
    count: i64,
    canonical: String,
    error: Option<String>,
    pointer: Option<Pointer>,
}

impl CountFragment {
    fn blank(lang: Lang) -> CountFragment {
        CountFragment {
            lang,
            empty: true,
            count: 0,
            canonical: String::new(),
            error: None,
            pointer: None,
        }
    }
}

/// Count an expression; a refusal becomes a sentence with its column.
async fn count_of(
    state: &ApiState,
    staff: &Staff,
    expression: &str,
) -> (StatusCode, CountFragment) {
    let lang = staff.lang;
    let mut fragment = CountFragment::blank(lang);
    if expression.trim().is_empty() {
        return (StatusCode::OK, fragment);
    }
    fragment.empty = false;
    match segments::count(&state.regulars, staff.principal(), expression).await {
        Ok(c) => {
            fragment.count = c.count;
            fragment.canonical = c.canonical;
            (StatusCode::OK, fragment)
        }
        Err(AppError::BadSegment(e)) => {
            fragment.error = Some(parse_message(lang, &e));
            fragment.pointer = Some(pointer(expression, &e));
            (StatusCode::OK, fragment)
        }
        Err(e) => {
            let status = match e {
                AppError::Forbidden(_) => StatusCode::FORBIDDEN,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            if status.is_server_error() {
                tracing::error!(error = %e, "segment count failed");
            }
            let (_, message) = super::frame::explain(lang, &e, status);
            fragment.error = Some(message);
            (status, fragment)
        }
    }
}

pub(super) struct SavedRow {
    id: String,
    name: String,
    expression: String,
    description: String,
    by: String,
}

/// One field of the language, for the help table.
pub(super) struct FieldHelp {
    name: String,
    label: String,
    kind: String,
    values: String,
    example: String,
}

#[derive(Template)]
#[template(path = "segments/list.html")]
struct ListPage {
    c: Chrome,
    saved: Vec<SavedRow>,
    fields: Vec<FieldHelp>,
    may_save: bool,
    name: String,
    expression: String,
    description: String,
    errors: FieldErrors,
    count: CountFragment,
}

#[derive(Deserialize, Default)]
pub(super) struct BuilderQuery {
    #[serde(default)]
    expression: String,
}

async fn list_view(
    state: &ApiState,
    staff: &Staff,
    name: String,
    expression: String,
    description: String,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    let saved = match segments::list(&state.regulars, staff.principal()).await {
        Ok(s) => s,
        Err(e) => return staff.fail(e),
    };
    let fields = match segments::fields(staff.principal()) {
        Ok(f) => f,
        Err(e) => return staff.fail(e),
    };
    let (_, count) = count_of(state, staff, &expression).await;
    render(
        status,
        ListPage {
            c: staff.chrome(),
            saved: saved
                .into_iter()
                .map(|s| SavedRow {
                    id: s.id,
                    name: s.name,
                    expression: s.expression,
                    description: s.description.unwrap_or_default(),
                    by: s.created_by,
                })
                .collect(),
            fields: fields
                .into_iter()
                .map(|f| FieldHelp {
                    label: if staff.lang.is_en() {
                        f.description.clone()
                    } else {
                        f.label_zh.clone()
                    },
                    values: f.values.join(" · "),
                    name: f.name,
                    kind: f.kind,
                    example: f.example,
                })
                .collect(),
            may_save: staff.may(Action::SegmentManage),
            name,
            expression,
            description,
            errors,
            count,
        },
    )
}

async fn list(
    State(state): State<ApiState>,
    staff: Staff,
    Query(query): Query<BuilderQuery>,
) -> Response {
    list_view(
        &state,
        &staff,
        String::new(),
        query.expression,
        String::new(),
        FieldErrors::default(),
        StatusCode::OK,
    )
    .await
}

/// The fragment htmx swaps in under the field as the expression changes.
async fn live_count(
    State(state): State<ApiState>,
    staff: Staff,
    Query(query): Query<BuilderQuery>,
) -> Response {
    let (status, fragment) = count_of(&state, &staff, &query.expression).await;
    render(status, fragment)
}

#[derive(Deserialize)]
pub(super) struct SaveForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    expression: String,
    #[serde(default)]
    description: String,
}

async fn save(State(state): State<ApiState>, staff: Staff, Form(form): Form<SaveForm>) -> Response {
    if let Some(refused) = staff.csrf_refusal(&form.csrf) {
        return refused;
    }
    let lang = staff.lang;
    let name = form.name.trim().to_string();
    let expression = form.expression.trim().to_string();
    let description = form.description.trim().to_string();
    let mut errors = FieldErrors::default();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add(
            "name",
            lang.t(
                "请填写分群名称（1–100 字）",
                "Enter a name (1–100 characters)",
            ),
        );
    }
    if expression.is_empty() {
        errors.add(
            "expression",
            lang.t("请填写筛选条件", "Enter a filter expression"),
        );
    }
    if description.chars().count() > 500 {
        errors.add(
            "description",
            lang.t(
                "说明最多 500 字",
                "The description is at most 500 characters",
            ),
        );
    }
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    if !errors.is_empty() {
        return list_view(
            &state,
            &staff,
            name,
            expression,
            description,
            errors,
            status,
        )
        .await;
    }
    let input = SegmentInput {
        name: name.clone(),
        expression: expression.clone(),
        description: (!description.is_empty()).then(|| description.clone()),
    };
    match segments::save(&state.regulars, staff.principal(), input).await {
        Ok(saved) => redirect(&format!("/console/segments/{}", saved.id)),
        Err(e) => {
            let mut errors = FieldErrors::default();
            match &e {
                // The live count already shows where it fails.
                AppError::BadSegment(_) => {}
                AppError::Conflict {
                    code: "segment_exists",
                    ..
                } => errors.add(
                    "name",
                    lang.t("已有同名分群", "A segment with this name exists"),
                ),
                AppError::Unprocessable { .. } => errors.add(
                    "name",
                    lang.t(
                        "名称 1–100 字，说明最多 500 字",
                        "Name 1–100 characters, description at most 500",
                    ),
                ),
                _ => return staff.fail(e),
            }
            list_view(
                &state,
                &staff,
                name,
                expression,
                description,
                errors,
                status,
            )
            .await
        }
    }
}

pub(super) struct MemberRow {
    id: String,
    code: String,
    phone: String,
    tier: String,
    store: String,
    city: String,
    points: i64,
    lifecycle: String,
}

#[derive(Template)]
#[template(path = "segments/detail.html")]
struct DetailPage {
    c: Chrome,
    id: String,
    name: String,
    expression: String,
    description: String,
    count: i64,
    members: Vec<MemberRow>,
    more: bool,
    may_manage: bool,
}

/// Members shown on a segment's page; the CSV has them all.
const PREVIEW_MEMBERS: i64 = 50;

async fn detail(State(state): State<ApiState>, staff: Staff, Path(id): Path<String>) -> Response {
    let app = &state.regulars;
    let saved = match segments::get(app, staff.principal(), &id).await {
        Ok(s) => s,
        Err(e) => return staff.fail(e),
    };
    let count = match segments::count(app, staff.principal(), &saved.expression).await {
        Ok(c) => c.count,
        Err(e) => return staff.fail(e),
    };
    let page = match segments::members(
        app,
        staff.principal(),
        &saved.expression,
        None,
        Some(PREVIEW_MEMBERS),
    )
    .await
    {
        Ok(p) => p,
        Err(e) => return staff.fail(e),
    };
    render(
        StatusCode::OK,
        DetailPage {
            c: staff.chrome(),
            more: page.next_after.is_some(),
            members: page
                .members
                .into_iter()
                .map(|m| MemberRow {
                    id: m.id,
                    code: m.member_code,
                    phone: m.phone_masked,
                    tier: m.tier,
                    store: m.home_store.unwrap_or_default(),
                    city: m.city.unwrap_or_default(),
                    points: m.points_balance,
                    lifecycle: m.lifecycle.unwrap_or_default(),
                })
                .collect(),
            id: saved.id,
            name: saved.name,
            expression: saved.expression,
            description: saved.description.unwrap_or_default(),
            count,
            may_manage: staff.may(Action::SegmentManage),
        },
    )
}

/// The segment's members as CSV (masked phones); the export is audited.
async fn export(State(state): State<ApiState>, staff: Staff, Path(id): Path<String>) -> Response {
    let app = &state.regulars;
    let saved = match segments::get(app, staff.principal(), &id).await {
        Ok(s) => s,
        Err(e) => return staff.fail(e),
    };
    match segments::export_csv(app, staff.principal(), &saved.expression).await {
        Ok(csv) => {
            let disposition = HeaderValue::from_str(&format!(
                "attachment; filename=\"segment-{}.csv\"",
                saved.id
            ))
            .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
            (
                [
                    (
                        CONTENT_TYPE,
                        HeaderValue::from_static("text/csv; charset=utf-8"),
                    ),
                    (CONTENT_DISPOSITION, disposition),
                ],
                csv,
            )
                .into_response()
        }
        Err(e) => staff.fail(e),
    }
}

#[derive(Deserialize)]
pub(super) struct DeleteForm {
    csrf: String,
}

async fn delete(
    State(state): State<ApiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<DeleteForm>,
) -> Response {
    if let Some(refused) = staff.csrf_refusal(&form.csrf) {
        return refused;
    }
    match segments::delete(&state.regulars, staff.principal(), &id).await {
        Ok(()) => redirect("/console/segments"),
        Err(e) => staff.fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_their_column_in_both_languages() {
        let e = regulars_core::segment::parse("tier >= ").err();
        let Some(e) = e else {
            panic!("an incomplete expression parses");
        };
        let zh = parse_message(Lang::Zh, &e);
        assert!(zh.starts_with(&format!("第 {} 列有误", e.column)), "{zh}");
        let en = parse_message(Lang::En, &e);
        assert!(en.starts_with(&format!("Column {}:", e.column)), "{en}");
        let p = pointer("tier >= ", &e);
        assert_eq!(p.before.chars().count(), e.position.min(8));
    }
}
