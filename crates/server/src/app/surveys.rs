//! Surveys: post-visit NPS and the monthly satisfaction survey (question
//! sets as data), one answer per member per survey and period, results by
//! store, region and month. A detractor's answer (NPS 0–6, or a dimension
//! rated 1–2) enters the complaint queue as feedback, so someone calls back.

use super::feedback::{receive_in, Arrival, SubmitFeedback};
use super::ledger::rfc3339;
use super::{AppError, AppResult, Regulars};
use chrono::TimeZone;
use regulars_core::access::{Action, Principal};
use regulars_core::feedback::{ClassifierRules, FeedbackChannel};
use regulars_core::survey::{net_promoter_score, SurveyDefinition, SurveyKind};
use regulars_core::DomainError;
use regulars_store::feedback::{self as repo, NewResponse, SurveyRow};
use regulars_store::{chain, commit, now_ms, orders, staff};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct SurveyView {
    pub id: String,
    pub active: bool,
    #[serde(flatten)]
    pub definition: SurveyDefinition,
    pub created_at: String,
}

fn view(app: &Regulars, row: &SurveyRow) -> AppResult<SurveyView> {
    let questions = serde_json::from_str(&row.questions_json).map_err(|e| {
        AppError::Store(regulars_store::StoreError::Corrupt(format!(
            "survey {}: {e}",
            row.id
        )))
    })?;
    Ok(SurveyView {
        id: row.id.clone(),
        active: row.active != 0,
        definition: SurveyDefinition {
            name: row.name.clone(),
            kind: SurveyKind::parse(&row.kind).unwrap_or(SurveyKind::PostVisit),
            questions,
        },
        created_at: rfc3339(app, row.created_at),
    })
}

/// `POST /api/v1/surveys`
pub async fn create(
    app: &Regulars,
    caller: &Principal,
    definition: SurveyDefinition,
) -> AppResult<SurveyView> {
    caller.check(Action::RulesManage, None)?;
    definition.validate()?;
    let row = SurveyRow {
        id: uuid::Uuid::now_v7().to_string(),
        name: definition.name.trim().to_string(),
        kind: definition.kind.as_str().into(),
        questions_json: serde_json::to_string(&definition.questions)
            .map_err(|e| AppError::unprocessable("invalid_survey", e.to_string()))?,
        active: 1,
        created_at: now_ms(),
    };
    let mut tx = app.db.begin().await?;
    repo::insert_survey(&mut tx, &row).await?;
    staff::audit(
        &mut tx,
        &caller.actor,
        "survey.create",
        &format!("survey:{}", row.id),
        &row.name,
        row.created_at,
    )
    .await?;
    commit(tx).await?;
    view(app, &row)
}

/// `GET /api/v1/surveys`
pub async fn list(app: &Regulars, caller: &Principal) -> AppResult<Vec<SurveyView>> {
    caller.check(Action::FeedbackRead, None)?;
    let mut conn = app.db.reader().await?;
    repo::list_surveys(&mut conn)
        .await?
        .iter()
        .map(|r| view(app, r))
        .collect()
}

/// `POST /api/v1/surveys/{id}/responses`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Respond {
    pub member_id: String,
    pub store_code: String,
    /// Required for a post-visit survey: the visit it is about.
    pub pos_order_id: Option<String>,
    /// Question id → answer (a number or text).
    pub answers: BTreeMap<String, Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResponseReceipt {
    pub id: String,
    pub nps: Option<i64>,
    /// `promoter`, `passive` or `detractor`, for an NPS answer.
    pub nps_group: Option<&'static str>,
    /// A detractor's answer became feedback in the complaint queue.
    pub feedback_id: Option<String>,
}

pub async fn respond(
    app: &Regulars,
    caller: &Principal,
    survey_id: &str,
    input: Respond,
) -> AppResult<ResponseReceipt> {
    caller.check(Action::FeedbackSubmit, Some(&input.store_code))?;
    let now = now_ms();
    let mut tx = app.db.begin().await?;
    let survey = repo::get_survey(&mut tx, survey_id)
        .await?
        .filter(|s| s.active != 0)
        .ok_or(AppError::NotFound { what: "survey" })?;
    let definition = view(app, &survey)?.definition;
    let answers = definition.check(&input.answers)?;
    if chain::get_store(&mut tx, &input.store_code)
        .await?
        .is_none()
    {
        return Err(AppError::unprocessable(
            "unknown_store",
            format!("no store {}", input.store_code),
        ));
    }
    regulars_store::ledger::read_member(&mut tx, &input.member_id)
        .await?
        .filter(|m| m.erased_at.is_none())
        .ok_or_else(|| AppError::unprocessable("unknown_member", "no member has this member_id"))?;
    let period = match definition.kind {
        SurveyKind::PostVisit => {
            let pos = input.pos_order_id.as_deref().ok_or_else(|| {
                DomainError::invalid("pos_order_id", "a post-visit survey is about one visit")
            })?;
            let order = orders::order_by_pos_id(&mut tx, &input.store_code, pos)
                .await?
                .filter(|o| o.member_id.as_deref() == Some(input.member_id.as_str()))
                .ok_or_else(|| {
                    AppError::unprocessable(
                        "unknown_order",
                        format!("no order {pos} of this member at {}", input.store_code),
                    )
                })?;
            format!("order:{}", order.id)
        }
        SurveyKind::Monthly => app
            .timezone
            .timestamp_millis_opt(now)
            .single()
            .map(|t| t.format("%Y-%m").to_string())
            .unwrap_or_default(),
    };
    let unhappy = answers.nps.is_some_and(|n| n <= 6) || answers.scores.values().any(|s| *s <= 2);
    let id = uuid::Uuid::now_v7().to_string();
    let feedback_id = if unhappy {
        let low: Vec<String> = answers
            .scores
            .iter()
            .filter(|(_, s)| **s <= 2)
            .map(|(d, s)| format!("{d} {s}/5"))
            .collect();
        let mut text = answers.texts.join("；");
        if text.is_empty() {
            text = match answers.nps {
                Some(n) => format!("（{}）推荐度 {n} 分，未写原因", definition.name),
                None => format!("（{}）低分：{}", definition.name, low.join("，")),
            };
        }
        let rules: ClassifierRules = staff::get_setting(&mut tx, super::feedback::RULES_SETTING)
            .await?
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default();
        let input = SubmitFeedback {
            store_code: input.store_code.clone(),
            channel: FeedbackChannel::H5,
            text: text.clone(),
            rating: None,
            nps: answers.nps,
            member_id: Some(input.member_id.clone()),
            pos_order_id: input.pos_order_id.clone(),
        };
        let receipt = receive_in(
            app,
            &mut tx,
            &format!("survey:{survey_id}"),
            Arrival {
                input,
                text: super::feedback::mask_phones(&text),
                table: None,
                photos: Vec::new(),
                dedupe_key: format!("survey:{id}"),
            },
            &rules,
            now,
        )
        .await?;
        Some(receipt.id)
    } else {
        None
    };
    let stored = repo::insert_response(
        &mut tx,
        &NewResponse {
            id: &id,
            survey_id,
            member_id: &input.member_id,
            store_code: &input.store_code,
            period_key: &period,
            nps: answers.nps,
            answers_json: &serde_json::to_string(&input.answers).unwrap_or_default(),
            feedback_id: feedback_id.as_deref(),
            at: now,
        },
    )
    .await?;
    if !stored {
        return Err(AppError::Conflict {
            code: "already_answered",
            message: match definition.kind {
                SurveyKind::PostVisit => "this member already answered for this visit".into(),
                SurveyKind::Monthly => format!("this member already answered for {period}"),
            },
        });
    }
    commit(tx).await?;
    Ok(ResponseReceipt {
        id,
        nps: answers.nps,
        nps_group: answers.nps.map(regulars_core::survey::nps_group),
        feedback_id,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ResultsQuery {
    /// `store` (default), `region` or `month`.
    pub by: Option<String>,
    /// Months back from now (default 6, at most 36).
    pub months: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SurveyResults {
    pub survey_id: String,
    pub responses: usize,
    /// −100 … 100, for surveys with an NPS question.
    pub nps: Option<f64>,
    /// Dimension → average of 1–5.
    pub averages: BTreeMap<String, f64>,
    pub groups: Vec<ResultGroup>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResultGroup {
    /// The store code, region or `YYYY-MM`.
    pub key: String,
    pub responses: usize,
    pub nps: Option<f64>,
    pub promoters: usize,
    pub passives: usize,
    pub detractors: usize,
    pub averages: BTreeMap<String, f64>,
}

#[derive(Default)]
struct Tally {
    responses: usize,
    nps: Vec<i64>,
    sums: BTreeMap<String, (i64, i64)>,
}

impl Tally {
    fn add(&mut self, nps: Option<i64>, answers: &BTreeMap<String, Value>) {
        self.responses += 1;
        self.nps.extend(nps);
        for (k, v) in answers {
            if let Some(n) = v.as_i64() {
                let e = self.sums.entry(k.clone()).or_default();
                e.0 += n;
                e.1 += 1;
            }
        }
    }
    fn averages(&self) -> BTreeMap<String, f64> {
        self.sums
            .iter()
            .map(|(k, (sum, n))| (k.clone(), (*sum as f64 / *n as f64 * 100.0).round() / 100.0))
            .collect()
    }
}

/// `GET /api/v1/surveys/{id}/results`: NPS and dimension averages, by store,
/// region or month.
pub async fn results(
    app: &Regulars,
    caller: &Principal,
    survey_id: &str,
    query: ResultsQuery,
) -> AppResult<SurveyResults> {
    caller.check(Action::FeedbackRead, None)?;
    let months = query.months.unwrap_or(6);
    if !(1..=36).contains(&months) {
        return Err(DomainError::invalid("months", "1 to 36").into());
    }
    let by = query.by.as_deref().unwrap_or("store");
    if !matches!(by, "store" | "region" | "month") {
        return Err(DomainError::invalid("by", "store, region or month").into());
    }
    let now = now_ms();
    let from = now - months * 31 * 86_400_000;
    let mut conn = app.db.reader().await?;
    let survey = repo::get_survey(&mut conn, survey_id)
        .await?
        .ok_or(AppError::NotFound { what: "survey" })?;
    let nps_question = view(app, &survey)?
        .definition
        .questions
        .iter()
        .find(|q| q.kind == regulars_core::survey::QuestionKind::Nps)
        .map(|q| q.id.clone());
    let rows = repo::responses_between(&mut conn, survey_id, from, now + 1).await?;
    let scope = caller.store_scope();
    let mut all = Tally::default();
    let mut groups: BTreeMap<String, Tally> = BTreeMap::new();
    for (store, region, at, nps, answers_json) in rows {
        if scope.is_some_and(|s| s != store) {
            continue;
        }
        let mut answers: BTreeMap<String, Value> =
            serde_json::from_str(&answers_json).unwrap_or_default();
        if let Some(q) = &nps_question {
            answers.remove(q);
        }
        let key = match by {
            "region" => region,
            "month" => app
                .timezone
                .timestamp_millis_opt(at)
                .single()
                .map(|t| t.format("%Y-%m").to_string())
                .unwrap_or_default(),
            _ => store,
        };
        all.add(nps, &answers);
        groups.entry(key).or_default().add(nps, &answers);
    }
    Ok(SurveyResults {
        survey_id: survey_id.to_string(),
        responses: all.responses,
        nps: net_promoter_score(&all.nps),
        averages: all.averages(),
        groups: groups
            .into_iter()
            .map(|(key, t)| ResultGroup {
                key,
                responses: t.responses,
                nps: net_promoter_score(&t.nps),
                promoters: t.nps.iter().filter(|n| **n >= 9).count(),
                passives: t.nps.iter().filter(|n| (7..=8).contains(*n)).count(),
                detractors: t.nps.iter().filter(|n| **n <= 6).count(),
                averages: t.averages(),
            })
            .collect(),
    })
}
