//! Campaigns in the console: the list with a status filter, the builder
//! (the same definition as `POST /api/v1/campaigns`), submission, HQ's
//! approval, pause / resume / end, and one campaign's results: the funnel
//! per arm, the uplift over the control group, the budget spent and the
//! sends with their dead letters.

use super::frame::{redirect, render, Chrome, FieldErrors, Lang, Staff};
use crate::app::campaign_results::{self, CampaignResults};
use crate::app::campaigns::{self, CampaignView, StatusRequest};
use crate::app::{coupons, segments, AppError};
use crate::http::ApiState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::TimeZone;
use regulars_core::access::Action;
use regulars_core::campaign::{
    self as core_campaign, CampaignSpec, CampaignStatus, DeliveryChannel, Trigger, Variant,
};
use serde::Deserialize;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console/campaigns", get(list))
        .route("/console/campaigns/new", get(new_form).post(create))
        .route("/console/campaigns/{id}", get(detail))
        .route("/console/campaigns/{id}/status", post(change_status))
        .route("/console/campaigns/{id}/sends/{send}/retry", post(retry))
}

// ---------------------------------------------------------------- words

fn status_label(lang: Lang, status: CampaignStatus) -> &'static str {
    match status {
        CampaignStatus::Draft => lang.t("草稿", "Draft"),
        CampaignStatus::PendingApproval => lang.t("待审批", "Awaiting approval"),
        CampaignStatus::Active => lang.t("进行中", "Active"),
        CampaignStatus::Paused => lang.t("已暂停", "Paused"),
        CampaignStatus::Ended => lang.t("已结束", "Ended"),
    }
}

/// The ten triggers, as the builder offers them.
const TRIGGERS: [(&str, &str, &str); 10] = [
    ("scheduled", "定时发送", "Scheduled"),
    ("welcome", "入会欢迎", "Welcome"),
    ("birthday", "生日关怀", "Birthday"),
    ("anniversary", "入会周年", "Anniversary"),
    ("dormant", "沉睡唤醒", "Win-back (dormant)"),
    ("vip_decline", "VIP 消费下滑", "VIP decline"),
    ("tier_upgrade", "等级升级", "Tier upgrade"),
    ("points_expiring", "积分即将过期", "Points expiring"),
    ("post_visit", "消费后回访", "After a visit"),
    ("new_dish", "新品推荐", "New dish"),
];

/// The trigger with its parameter, in one line.
fn trigger_text(lang: Lang, trigger: &Trigger) -> String {
    let name = TRIGGERS
        .iter()
        .find(|(k, _, _)| *k == trigger.kind())
        .map(|(_, zh, en)| lang.t(zh, en))
        .unwrap_or("—");
    let detail = match trigger {
        // Shown at its own offset, as it was entered: "2026-12-21 10:00".
        Trigger::Scheduled { send_at } => Some(
            chrono::DateTime::parse_from_rfc3339(send_at)
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|_| send_at.clone()),
        ),
        Trigger::Birthday { days_before } => Some(match lang {
            Lang::Zh => format!("生日前 {days_before} 天"),
            Lang::En => format!("{days_before} days before"),
        }),
        Trigger::Dormant { days } => Some(match lang {
            Lang::Zh => format!("{days} 天未到店"),
            Lang::En => format!("away {days} days"),
        }),
        Trigger::PointsExpiring { days_before } => Some(match lang {
            Lang::Zh => format!("过期前 {days_before} 天"),
            Lang::En => format!("{days_before} days before expiry"),
        }),
        Trigger::PostVisit { hours_after } => Some(match lang {
            Lang::Zh => format!("消费后 {hours_after} 小时"),
            Lang::En => format!("{hours_after} hours after"),
        }),
        Trigger::NewDish { sku } => Some(sku.clone()),
        _ => None,
    };
    match detail {
        Some(d) => format!("{name} · {d}"),
        None => name.to_string(),
    }
}

/// Channels in the order the builder offers them (its order is the
/// preference).
const CHANNELS: [(&str, &str, &str); 4] = [
    ("wechat", "微信", "WeChat"),
    ("sms", "短信", "SMS"),
    ("email", "邮件", "E-mail"),
    ("inbox", "站内信", "H5 inbox"),
];

fn channel_label(lang: Lang, channel: &str) -> String {
    CHANNELS
        .iter()
        .find(|(k, _, _)| *k == channel)
        .map(|(_, zh, en)| lang.t(zh, en).to_string())
        .unwrap_or_else(|| channel.to_string())
}

fn date_time(ms: i64, tz: chrono_tz::Tz) -> String {
    match tz.timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        None => "—".to_string(),
    }
}

/// A user as the pages name them: `user:lin` → `lin`.
fn who(actor: &str) -> String {
    actor.strip_prefix("user:").unwrap_or(actor).to_string()
}

fn yuan(fen: f64) -> String {
    let sign = if fen < 0.0 { "-" } else { "" };
    format!("{sign}¥{:.2}", fen.abs() / 100.0)
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

// ---------------------------------------------------------------- list

struct ListRow {
    id: String,
    name: String,
    trigger: String,
    status: &'static str,
    status_code: &'static str,
    audience: String,
    approval: String,
    sent: String,
}

#[derive(Template)]
#[template(path = "campaigns/list.html")]
struct ListPage {
    c: Chrome,
    filters: Vec<(&'static str, &'static str)>,
    status: String,
    rows: Vec<ListRow>,
    may_create: bool,
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
}

async fn list(
    State(state): State<ApiState>,
    staff: Staff,
    Query(query): Query<ListQuery>,
) -> Response {
    let lang = staff.lang;
    // Anything but a status ("all", nothing) lists every campaign.
    let wanted = query.status.as_deref().and_then(CampaignStatus::parse);
    let found = match campaigns::list(&state.regulars, staff.principal(), wanted).await {
        Ok(v) => v,
        Err(e) => return staff.fail(e),
    };
    let names = segment_names(&state, &staff).await;
    let mut rows = Vec::with_capacity(found.len());
    for v in found {
        // Only a campaign that has run has sends to count.
        let sent = if matches!(
            v.status,
            CampaignStatus::Draft | CampaignStatus::PendingApproval
        ) {
            "—".to_string()
        } else {
            match campaign_results::results(&state.regulars, staff.principal(), &v.id).await {
                Ok(r) => {
                    let delivered: u64 = r.arms.iter().map(|a| a.delivered).sum();
                    let members: u64 = r.arms.iter().map(|a| a.members).sum();
                    format!("{delivered} / {members}")
                }
                Err(e) => return staff.fail(e),
            }
        };
        rows.push(ListRow {
            trigger: trigger_text(lang, &v.spec.trigger),
            status: status_label(lang, v.status),
            status_code: v.status.as_str(),
            audience: audience_text(lang, &v, &names),
            approval: approval_text(lang, &v),
            sent,
            name: v.spec.name,
            id: v.id,
        });
    }
    let mut filters = vec![("all", lang.t("全部", "All"))];
    filters.extend(
        CampaignStatus::ALL
            .iter()
            .map(|s| (s.as_str(), status_label(lang, *s))),
    );
    render(
        StatusCode::OK,
        ListPage {
            c: staff.chrome(),
            filters,
            status: wanted.map(|s| s.as_str()).unwrap_or("all").to_string(),
            rows,
            may_create: staff.may(Action::CampaignManage),
        },
    )
}

/// Saved segments by id, for naming a campaign's audience; a role that may
/// not read segments sees ids.
async fn segment_names(state: &ApiState, staff: &Staff) -> Vec<(String, String)> {
    segments::list(&state.regulars, staff.principal())
        .await
        .map(|list| list.into_iter().map(|s| (s.id, s.name)).collect())
        .unwrap_or_default()
}

fn audience_text(lang: Lang, v: &CampaignView, names: &[(String, String)]) -> String {
    let who = match &v.spec.segment_id {
        None => lang.t("全部会员", "All members").to_string(),
        Some(id) => names
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| id.clone()),
    };
    if v.audience_estimate > 0 {
        match lang {
            Lang::Zh => format!("{who}（{} 人）", v.audience_estimate),
            Lang::En => format!("{who} ({} members)", v.audience_estimate),
        }
    } else {
        who
    }
}

fn approval_text(lang: Lang, v: &CampaignView) -> String {
    match (&v.approved_by, v.status) {
        (Some(by), _) => match lang {
            Lang::Zh => format!("已批准 · {}", who(by)),
            Lang::En => format!("Approved by {}", who(by)),
        },
        (None, CampaignStatus::PendingApproval) => {
            lang.t("等待 HQ 审批", "Waiting for HQ").to_string()
        }
        (None, CampaignStatus::Draft) => lang.t("未提交", "Not submitted").to_string(),
        (None, _) => lang.t("无需审批", "Not needed").to_string(),
    }
}

// ---------------------------------------------------------------- builder

/// The builder's fields, as typed (numbers are parsed here so a bad number
/// is a message next to its field).
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct BuilderForm {
    csrf: String,
    name: String,
    segment_id: String,
    trigger: String,
    send_at: String,
    birthday_days: String,
    dormant_days: String,
    expiring_days: String,
    hours_after: String,
    sku: String,
    ch_wechat: String,
    ch_sms: String,
    ch_email: String,
    ch_inbox: String,
    a_zh: String,
    a_en: String,
    b_zh: String,
    b_en: String,
    control_pct: String,
    reward: String,
    coupon_template_id: String,
    bonus_points: String,
    budget_points: String,
    budget_coupons: String,
    attribution_days: String,
}

impl BuilderForm {
    fn blank() -> BuilderForm {
        BuilderForm {
            trigger: "scheduled".into(),
            birthday_days: "3".into(),
            dormant_days: "60".into(),
            expiring_days: "14".into(),
            hours_after: "24".into(),
            ch_inbox: "on".into(),
            control_pct: "10".into(),
            reward: "none".into(),
            attribution_days: "14".into(),
            ..BuilderForm::default()
        }
    }

    fn channel_on(&self, channel: &str) -> bool {
        let value = match channel {
            "wechat" => &self.ch_wechat,
            "sms" => &self.ch_sms,
            "email" => &self.ch_email,
            _ => &self.ch_inbox,
        };
        !value.is_empty()
    }
}

#[derive(Template)]
#[template(path = "campaigns/new.html")]
struct BuilderPage {
    c: Chrome,
    f: BuilderForm,
    triggers: Vec<(&'static str, &'static str)>,
    channels: Vec<(&'static str, &'static str)>,
    segments: Vec<(String, String)>,
    coupon_templates: Vec<(String, String)>,
    variables: String,
    errors: FieldErrors,
}

async fn builder_page(
    state: &ApiState,
    staff: &Staff,
    f: BuilderForm,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    let lang = staff.lang;
    let segments = match segments::list(&state.regulars, staff.principal()).await {
        Ok(list) => list.into_iter().map(|s| (s.id, s.name)).collect(),
        Err(e) => return staff.fail(e),
    };
    let coupon_templates = match coupons::list_templates(&state.regulars, staff.principal()).await {
        Ok(list) => list
            .into_iter()
            .filter(|t| t.active)
            .map(|t| (t.id, format!("{} · {}", t.template.name, t.summary)))
            .collect(),
        Err(e) => return staff.fail(e),
    };
    render(
        status,
        BuilderPage {
            c: staff.chrome(),
            f,
            triggers: TRIGGERS
                .iter()
                .map(|(k, zh, en)| (*k, lang.t(zh, en)))
                .collect(),
            channels: CHANNELS
                .iter()
                .map(|(k, zh, en)| (*k, lang.t(zh, en)))
                .collect(),
            segments,
            coupon_templates,
            variables: core_campaign::TEMPLATE_VARIABLES
                .iter()
                .map(|v| format!("{{{v}}}"))
                .collect::<Vec<_>>()
                .join(" "),
            errors,
        },
    )
}

async fn new_form(State(state): State<ApiState>, staff: Staff) -> Response {
    if !staff.may(Action::CampaignManage) {
        return staff.fail(AppError::Forbidden(regulars_core::access::Denied::Role {
            role: staff.principal().role,
            action: Action::CampaignManage,
        }));
    }
    builder_page(
        &state,
        &staff,
        BuilderForm::blank(),
        FieldErrors::default(),
        StatusCode::OK,
    )
    .await
}

/// What the application refuses, worded next to the builder's fields.
const WORDING: [(&str, &str, &str); 8] = [
    (
        "name",
        "请填写活动名称（1–100 字）",
        "Enter a name (1–100 characters)",
    ),
    (
        "channels",
        "请至少选择一个渠道",
        "Choose at least one channel",
    ),
    (
        "variants",
        "每个版本需要不同的名称和大于 0 的权重",
        "Each variant needs its own name and a weight above 0",
    ),
    (
        "control_permille",
        "对照组比例须在 0 到 99.9% 之间",
        "The control group must be 0 to 99.9%",
    ),
    (
        "bonus_points",
        "赠送积分须在 0 到 100,000 之间",
        "Bonus points must be 0 to 100,000",
    ),
    (
        "budget_points",
        "预算不能为负数",
        "A budget must not be negative",
    ),
    (
        "budget_coupons",
        "预算不能为负数",
        "A budget must not be negative",
    ),
    (
        "attribution_days",
        "归因天数须在 1 到 90 之间",
        "Attribution must be 1 to 90 days",
    ),
];

/// A whole number in `low..=high`, or a message on `field`.
fn number(
    errors: &mut FieldErrors,
    lang: Lang,
    field: &str,
    text: &str,
    low: i64,
    high: i64,
) -> Option<i64> {
    match text.trim().parse::<i64>() {
        Ok(n) if (low..=high).contains(&n) => Some(n),
        _ => {
            errors.add(
                field,
                match lang {
                    Lang::Zh => format!("请输入 {low} 到 {high} 之间的整数"),
                    Lang::En => format!("Enter a whole number from {low} to {high}"),
                },
            );
            None
        }
    }
}

/// An optional budget: empty is none.
fn budget(errors: &mut FieldErrors, lang: Lang, field: &str, text: &str) -> Option<i64> {
    if text.trim().is_empty() {
        return None;
    }
    number(errors, lang, field, text, 0, 100_000_000)
}

/// The definition the form describes, or the messages for its fields.
fn spec_of_form(
    f: &BuilderForm,
    lang: Lang,
    tz: chrono_tz::Tz,
) -> Result<CampaignSpec, FieldErrors> {
    let mut errors = FieldErrors::default();
    let name = f.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add(
            "name",
            lang.t(
                "请填写活动名称（1–100 字）",
                "Enter a name (1–100 characters)",
            ),
        );
    }
    let trigger = match f.trigger.as_str() {
        "scheduled" => {
            let parsed = chrono::NaiveDateTime::parse_from_str(f.send_at.trim(), "%Y-%m-%dT%H:%M")
                .ok()
                .and_then(|t| tz.from_local_datetime(&t).earliest());
            match parsed {
                Some(t) => Some(Trigger::Scheduled {
                    send_at: t.to_rfc3339(),
                }),
                None => {
                    errors.add(
                        "send_at",
                        lang.t("请选择发送日期和时间", "Choose the date and time to send"),
                    );
                    None
                }
            }
        }
        "welcome" => Some(Trigger::Welcome),
        "birthday" => {
            number(&mut errors, lang, "birthday_days", &f.birthday_days, 0, 30).map(|d| {
                Trigger::Birthday {
                    days_before: d as u32,
                }
            })
        }
        "anniversary" => Some(Trigger::Anniversary),
        "dormant" => number(&mut errors, lang, "dormant_days", &f.dormant_days, 14, 730)
            .map(|d| Trigger::Dormant { days: d as u32 }),
        "vip_decline" => Some(Trigger::VipDecline),
        "tier_upgrade" => Some(Trigger::TierUpgrade),
        "points_expiring" => number(&mut errors, lang, "expiring_days", &f.expiring_days, 1, 90)
            .map(|d| Trigger::PointsExpiring {
                days_before: d as u32,
            }),
        "post_visit" => number(&mut errors, lang, "hours_after", &f.hours_after, 1, 72).map(|h| {
            Trigger::PostVisit {
                hours_after: h as u32,
            }
        }),
        "new_dish" => {
            let sku = f.sku.trim();
            if sku.is_empty() || sku.chars().count() > 64 {
                errors.add(
                    "sku",
                    lang.t("请填写新品的 SKU 编码", "Enter the new dish's SKU"),
                );
                None
            } else {
                Some(Trigger::NewDish {
                    sku: sku.to_string(),
                })
            }
        }
        _ => {
            errors.add("trigger", lang.t("请选择触发方式", "Choose a trigger"));
            None
        }
    };
    let channels: Vec<DeliveryChannel> = CHANNELS
        .iter()
        .filter(|(k, _, _)| f.channel_on(k))
        .filter_map(|(k, _, _)| DeliveryChannel::ALL.into_iter().find(|c| c.as_str() == *k))
        .collect();
    if channels.is_empty() {
        errors.add(
            "channels",
            lang.t("请至少选择一个渠道", "Choose at least one channel"),
        );
    }
    let mut variants = Vec::new();
    for (label, zh, en) in [("A", &f.a_zh, &f.a_en), ("B", &f.b_zh, &f.b_en)] {
        let (zh, en) = (zh.trim(), en.trim());
        // Variant B is optional: both its texts empty means no A/B test.
        if label == "B" && zh.is_empty() && en.is_empty() {
            continue;
        }
        let prefix = label.to_lowercase();
        let mut ok = true;
        for (lang_field, text) in [("zh", zh), ("en", en)] {
            if text.is_empty() {
                errors.add(
                    &format!("{prefix}_{lang_field}"),
                    lang.t(
                        "请填写中文和英文两种文案",
                        "Write the message in both Chinese and English",
                    ),
                );
                ok = false;
            }
        }
        let template = core_campaign::Template {
            zh: zh.to_string(),
            en: en.to_string(),
        };
        if ok {
            if let Err(regulars_core::DomainError::Invalid { field, reason }) = template.validate()
            {
                let which = if field.ends_with("en") { "en" } else { "zh" };
                errors.add(
                    &format!("{prefix}_{which}"),
                    match lang {
                        Lang::Zh => format!(
                            "文案格式有误或用了未知变量（可用：{}；花括号本身写作 {{{{ }}}}）",
                            core_campaign::TEMPLATE_VARIABLES.join("、")
                        ),
                        Lang::En => {
                            let mut s = reason.clone();
                            if let Some(first) = s.get(..1) {
                                s = first.to_uppercase() + &s[1..];
                            }
                            s
                        }
                    },
                );
            }
        }
        variants.push(Variant {
            name: label.to_string(),
            weight: 1,
            template,
        });
    }
    let control_permille = match f.control_pct.trim().parse::<f64>() {
        Ok(p) if (0.0..100.0).contains(&p) => Some((p * 10.0).round() as u32),
        _ => {
            errors.add(
                "control_pct",
                lang.t(
                    "对照组比例须在 0 到 99.9% 之间",
                    "The control group must be 0 to 99.9%",
                ),
            );
            None
        }
    };
    let (coupon_template_id, bonus_points) = match f.reward.as_str() {
        "coupon" if f.coupon_template_id.trim().is_empty() => {
            errors.add(
                "coupon_template_id",
                lang.t("请选择券模板", "Choose a coupon template"),
            );
            (None, 0)
        }
        "coupon" => (Some(f.coupon_template_id.trim().to_string()), 0),
        "points" => (
            None,
            number(
                &mut errors,
                lang,
                "bonus_points",
                &f.bonus_points,
                1,
                100_000,
            )
            .unwrap_or(0),
        ),
        _ => (None, 0),
    };
    let budget_points = budget(&mut errors, lang, "budget_points", &f.budget_points);
    let budget_coupons = budget(&mut errors, lang, "budget_coupons", &f.budget_coupons);
    let attribution_days = number(
        &mut errors,
        lang,
        "attribution_days",
        &f.attribution_days,
        1,
        90,
    );
    match (trigger, control_permille, attribution_days) {
        (Some(trigger), Some(control_permille), Some(attribution_days)) if errors.is_empty() => {
            Ok(CampaignSpec {
                name: name.to_string(),
                trigger,
                segment_id: Some(f.segment_id.trim().to_string()).filter(|s| !s.is_empty()),
                channels,
                variants,
                control_permille,
                coupon_template_id,
                bonus_points,
                budget_points,
                budget_coupons,
                attribution_days: attribution_days as u32,
            })
        }
        _ => Err(errors),
    }
}

async fn create(
    State(state): State<ApiState>,
    staff: Staff,
    Form(f): Form<BuilderForm>,
) -> Response {
    if let Some(refused) = staff.csrf_refusal(&f.csrf) {
        return refused;
    }
    let spec = match spec_of_form(&f, staff.lang, state.regulars.timezone) {
        Ok(spec) => spec,
        Err(errors) => {
            return builder_page(&state, &staff, f, errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    };
    match campaigns::create(&state.regulars, staff.principal(), spec).await {
        Ok(created) => redirect(&format!("/console/campaigns/{}", created.id)),
        Err(e @ (AppError::Invalid(_) | AppError::Unprocessable { .. })) => {
            let errors = FieldErrors::from_app(staff.lang, &e, "form", &WORDING);
            builder_page(&state, &staff, f, errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => staff.fail(e),
    }
}

// ---------------------------------------------------------------- one campaign

struct ArmLine {
    arm: String,
    members: u64,
    delivered: u64,
    skipped: u64,
    waiting: u64,
    dead: u64,
    opened: u64,
    redeemed: u64,
    visitors: u64,
    visits: u64,
    spend: String,
    visit_rate: String,
}

struct UpliftLine {
    arm: String,
    visit_rate: String,
    spend: String,
    redemption: String,
}

struct SendLine {
    id: String,
    member: String,
    arm: String,
    status: String,
    dead: bool,
    channel: String,
    attempts: i64,
    note: String,
    at: String,
}

/// A status change the page offers: the request, its button's words, and
/// whether it is the main action.
struct Button {
    change: &'static str,
    label: &'static str,
    primary: bool,
}

#[derive(Template)]
#[template(path = "campaigns/detail.html")]
struct DetailPage {
    c: Chrome,
    id: String,
    name: String,
    status: &'static str,
    status_code: &'static str,
    trigger: String,
    audience: String,
    approval: String,
    channels: String,
    control: String,
    reward: String,
    budget: String,
    attribution_days: u32,
    created: String,
    variants: Vec<(String, String, String)>,
    buttons: Vec<Button>,
    waiting_note: Option<String>,
    arms: Vec<ArmLine>,
    uplift: Vec<UpliftLine>,
    chart_json: String,
    budget_used: String,
    sends: Vec<SendLine>,
    dead_count: usize,
    may_retry: bool,
    errors: FieldErrors,
}

fn buttons(staff: &Staff, v: &CampaignView) -> Vec<Button> {
    let lang = staff.lang;
    let manage = staff.may(Action::CampaignManage);
    let approve = staff.may(Action::CampaignApprove);
    let mut out = Vec::new();
    let mut add = |allowed: bool, change, zh, en, primary| {
        if allowed {
            out.push(Button {
                change,
                label: lang.t(zh, en),
                primary,
            });
        }
    };
    match v.status {
        CampaignStatus::Draft => {
            add(manage, "submit", "提交", "Submit", true);
        }
        CampaignStatus::PendingApproval => {
            add(approve, "approve", "批准", "Approve", true);
            add(approve, "reject", "退回草稿", "Reject", false);
        }
        CampaignStatus::Active => add(manage, "pause", "暂停", "Pause", false),
        CampaignStatus::Paused => add(manage, "resume", "恢复", "Resume", true),
        CampaignStatus::Ended => {}
    }
    if v.status != CampaignStatus::Ended {
        add(manage, "end", "结束", "End", false);
    }
    out
}

fn interval_pp(i: &core_campaign::Interval) -> String {
    format!(
        "{:+.1} pp [{:+.1}, {:+.1}]",
        i.estimate * 100.0,
        i.low * 100.0,
        i.high * 100.0
    )
}

/// The funnel per arm as an ECharts bar chart: stages along the axis, one
/// series per arm.
fn funnel_chart(lang: Lang, results: &CampaignResults) -> String {
    let stages = [
        lang.t("进入", "Entered"),
        lang.t("送达", "Delivered"),
        lang.t("打开", "Opened"),
        lang.t("核销", "Redeemed"),
        lang.t("到店", "Visited"),
    ];
    let series: Vec<serde_json::Value> = results
        .arms
        .iter()
        .map(|a| {
            serde_json::json!({
                "name": arm_name(lang, &a.arm),
                "type": "bar",
                "data": [a.members, a.delivered, a.opened, a.coupons_redeemed, a.visitors],
            })
        })
        .collect();
    serde_json::json!({
        "tooltip": {"trigger": "axis"},
        "legend": {},
        "grid": {"left": 40, "right": 16, "bottom": 30, "top": 40},
        "xAxis": {"type": "category", "data": stages},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": series,
    })
    .to_string()
}

fn arm_name(lang: Lang, arm: &str) -> String {
    match arm {
        "control" => lang.t("对照组", "Control").to_string(),
        "all" => lang.t("全部版本", "All variants").to_string(),
        other => match lang {
            Lang::Zh => format!("版本 {other}"),
            Lang::En => format!("Variant {other}"),
        },
    }
}

fn send_status(lang: Lang, status: &str) -> String {
    match status {
        "pending" => lang.t("待发送", "Pending"),
        "sending" => lang.t("发送中", "Sending"),
        "sent" => lang.t("已发送", "Sent"),
        "control" => lang.t("对照组（不发送）", "Control (held out)"),
        "skipped" => lang.t("已跳过", "Skipped"),
        "dead" => lang.t("失败（死信）", "Failed (dead letter)"),
        other => other,
    }
    .to_string()
}

async fn detail_page(
    state: &ApiState,
    staff: &Staff,
    id: &str,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    let lang = staff.lang;
    let app = &state.regulars;
    let v = match campaigns::get(app, staff.principal(), id).await {
        Ok(v) => v,
        Err(e) => return staff.fail(e),
    };
    let results = match campaign_results::results(app, staff.principal(), id).await {
        Ok(r) => r,
        Err(e) => return staff.fail(e),
    };
    let sends = match campaign_results::sends(app, staff.principal(), id, None, Some(200)).await {
        Ok(s) => s,
        Err(e) => return staff.fail(e),
    };
    let names = segment_names(state, staff).await;
    let spec = &v.spec;
    let sent: u64 = results.arms.iter().map(|a| a.delivered).sum();
    let coupon_name = match &spec.coupon_template_id {
        Some(t) => coupons::list_templates(app, staff.principal())
            .await
            .ok()
            .and_then(|list| list.into_iter().find(|x| &x.id == t))
            .map(|x| x.template.name)
            .or_else(|| Some(t.clone())),
        None => None,
    };
    let reward = match (&coupon_name, spec.bonus_points) {
        (Some(t), _) => match lang {
            Lang::Zh => format!("优惠券：{t}"),
            Lang::En => format!("Coupon: {t}"),
        },
        (None, p) if p > 0 => match lang {
            Lang::Zh => format!("赠送 {p} 积分"),
            Lang::En => format!("{p} bonus points"),
        },
        _ => lang.t("无", "None").to_string(),
    };
    let limit = |b: Option<i64>| {
        b.map(|n| n.to_string())
            .unwrap_or_else(|| lang.t("不限", "no limit").to_string())
    };
    let budget = match lang {
        Lang::Zh => format!(
            "积分 {} · 券 {}",
            limit(spec.budget_points),
            limit(spec.budget_coupons)
        ),
        Lang::En => format!(
            "points {} · coupons {}",
            limit(spec.budget_points),
            limit(spec.budget_coupons)
        ),
    };
    // Every delivered message gave the same reward: that is what was spent.
    let points_used = sent as i64 * spec.bonus_points;
    let coupons_used = if spec.coupon_template_id.is_some() {
        sent as i64
    } else {
        0
    };
    let budget_used = match lang {
        Lang::Zh => format!(
            "已发送 {sent} 条 · 积分 {points_used} / {} · 券 {coupons_used} / {}",
            limit(spec.budget_points),
            limit(spec.budget_coupons)
        ),
        Lang::En => format!(
            "{sent} sent · points {points_used} / {} · coupons {coupons_used} / {}",
            limit(spec.budget_points),
            limit(spec.budget_coupons)
        ),
    };
    let waiting_note = (v.status == CampaignStatus::PendingApproval).then(|| {
        match lang {
            Lang::Zh => format!(
                "受众 {} 人，超过总部的审批线，需由提交人以外的总部管理员批准后才会发送。",
                v.audience_estimate
            ),
            Lang::En => format!(
                "The audience ({} members) is above HQ's line: an HQ admin other than the submitter must approve it before anything is sent.",
                v.audience_estimate
            ),
        }
    });
    let dead_count = sends.iter().filter(|s| s.status == "dead").count();
    let tz = app.timezone;
    render(
        status,
        DetailPage {
            c: staff.chrome(),
            buttons: buttons(staff, &v),
            status: status_label(lang, v.status),
            status_code: v.status.as_str(),
            trigger: trigger_text(lang, &spec.trigger),
            audience: audience_text(lang, &v, &names),
            approval: approval_text(lang, &v),
            channels: spec
                .channels
                .iter()
                .map(|c| channel_label(lang, c.as_str()))
                .collect::<Vec<_>>()
                .join(" → "),
            control: format!("{:.1}%", f64::from(spec.control_permille) / 10.0),
            reward,
            budget,
            attribution_days: spec.attribution_days,
            created: format!("{} · {}", who(&v.created_by), date_time(v.created_at, tz)),
            variants: spec
                .variants
                .iter()
                .map(|x| {
                    (
                        arm_name(lang, &x.name),
                        x.template.zh.clone(),
                        x.template.en.clone(),
                    )
                })
                .collect(),
            waiting_note,
            chart_json: funnel_chart(lang, &results),
            arms: results
                .arms
                .iter()
                .map(|a| ArmLine {
                    arm: arm_name(lang, &a.arm),
                    members: a.members,
                    delivered: a.delivered,
                    skipped: a.skipped,
                    waiting: a.waiting,
                    dead: a.dead,
                    opened: a.opened,
                    redeemed: a.coupons_redeemed,
                    visitors: a.visitors,
                    visits: a.visits,
                    spend: yuan(a.spend_fen as f64),
                    visit_rate: percent(a.visit_rate),
                })
                .collect(),
            uplift: results
                .uplift
                .iter()
                .map(|u| UpliftLine {
                    arm: arm_name(lang, &u.arm),
                    visit_rate: interval_pp(&u.visit_rate),
                    spend: u
                        .spend_per_member_fen
                        .as_ref()
                        .map(|i| {
                            format!("{} [{}, {}]", yuan(i.estimate), yuan(i.low), yuan(i.high))
                        })
                        .unwrap_or_else(|| "—".into()),
                    redemption: interval_pp(&u.coupon_redemption_rate),
                })
                .collect(),
            budget_used,
            sends: sends
                .into_iter()
                .map(|s| SendLine {
                    dead: s.status == "dead",
                    status: send_status(lang, &s.status),
                    member: s
                        .member_id
                        .chars()
                        .rev()
                        .take(8)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect(),
                    arm: if s.arm == "control" {
                        arm_name(lang, "control")
                    } else {
                        s.arm
                            .parse::<usize>()
                            .ok()
                            .and_then(|n| spec.variants.get(n))
                            .map(|x| arm_name(lang, &x.name))
                            .unwrap_or_else(|| s.arm.clone())
                    },
                    channel: s
                        .channel
                        .as_deref()
                        .map(|c| channel_label(lang, c))
                        .unwrap_or_else(|| "—".into()),
                    attempts: s.attempts,
                    note: s.last_error.or(s.skip_reason).unwrap_or_default(),
                    at: date_time(s.sent_at.unwrap_or(s.created_at), tz),
                    id: s.id,
                })
                .collect(),
            dead_count,
            may_retry: staff.may(Action::CampaignManage),
            id: v.id,
            name: v.spec.name.clone(),
            errors,
        },
    )
}

async fn detail(State(state): State<ApiState>, staff: Staff, Path(id): Path<String>) -> Response {
    detail_page(&state, &staff, &id, FieldErrors::default(), StatusCode::OK).await
}

#[derive(Deserialize)]
struct StatusForm {
    csrf: String,
    change: String,
    #[serde(default)]
    note: String,
}

async fn change_status(
    State(state): State<ApiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<StatusForm>,
) -> Response {
    if let Some(refused) = staff.csrf_refusal(&form.csrf) {
        return refused;
    }
    let lang = staff.lang;
    let request = match form.change.as_str() {
        "submit" => StatusRequest::Submit,
        "approve" => StatusRequest::Approve,
        "reject" => StatusRequest::Reject,
        "pause" => StatusRequest::Pause,
        "resume" => StatusRequest::Resume,
        "end" => StatusRequest::End,
        _ => {
            let mut errors = FieldErrors::default();
            errors.add("change", lang.t("未知的操作", "Unknown action"));
            return detail_page(
                &state,
                &staff,
                &id,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let note = Some(form.note.trim()).filter(|n| !n.is_empty());
    match campaigns::change_status(&state.regulars, staff.principal(), &id, request, note).await {
        Ok(_) => redirect(&format!("/console/campaigns/{id}")),
        Err(e) => {
            let (status, zh, en) = match &e {
                AppError::Unprocessable {
                    code: "own_campaign",
                    ..
                } => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "不能批准或退回自己提交的活动，请由另一位总部管理员审批。",
                    "You cannot approve or reject a campaign you submitted; another HQ admin must do it.",
                ),
                AppError::Conflict {
                    code: "campaign_status",
                    ..
                } => (
                    StatusCode::CONFLICT,
                    "活动状态已变化，不能执行这项操作，请刷新后再试。",
                    "The campaign's status does not allow this (it may have just changed); reload and try again.",
                ),
                AppError::Invalid(_) | AppError::Unprocessable { .. } => {
                    let errors = FieldErrors::from_app(lang, &e, "change", &[]);
                    return detail_page(
                        &state,
                        &staff,
                        &id,
                        errors,
                        StatusCode::UNPROCESSABLE_ENTITY,
                    )
                    .await;
                }
                _ => return staff.fail(e),
            };
            let mut errors = FieldErrors::default();
            errors.add("change", lang.t(zh, en));
            detail_page(&state, &staff, &id, errors, status).await
        }
    }
}

#[derive(Deserialize)]
struct RetryForm {
    csrf: String,
}

async fn retry(
    State(state): State<ApiState>,
    staff: Staff,
    Path((id, send)): Path<(String, String)>,
    Form(form): Form<RetryForm>,
) -> Response {
    if let Some(refused) = staff.csrf_refusal(&form.csrf) {
        return refused;
    }
    match campaign_results::retry(&state.regulars, staff.principal(), &id, &send).await {
        Ok(()) => redirect(&format!("/console/campaigns/{id}#sends")),
        Err(e) => staff.fail(e),
    }
}
