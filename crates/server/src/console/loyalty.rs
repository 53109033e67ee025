//! Loyalty setup in the console: the earning rules with a live preview of
//! what a sample order earns and why, the tier ladder, the rewards catalogue
//! and the coupon templates. Same application calls as the REST API
//! (`/api/v1/earning-rules`, `/orders/preview`, `/tier-policy`, `/rewards`,
//! `/coupon-templates`); every page needs the rules permission (HQ admin,
//! marketing).

use super::frame::{explain, redirect, render, Chrome, FieldErrors, Lang, Staff};
use crate::app::{chain, coupons, orders, points, rewards, AppError, Regulars};
use crate::http::ApiState;
use askama::Template;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::header::REFERER;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use regulars_core::access::Action;
use regulars_core::coupon::{Benefit, CouponTemplate};
use regulars_core::earning::{EarningRule, Effect, Scope, MAX_FLAT_BONUS, MAX_PERMILLE};
use regulars_core::order::{Channel, OrderLine};
use regulars_core::reward::{RewardKind, RewardSpec};
use regulars_core::tier::{Tier, TierBenefits, TierPolicy};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/console/loyalty", get(rules_page))
        .route(
            "/console/loyalty/rules",
            get(|| async { redirect("/console/loyalty") }).post(add_rule),
        )
        .route("/console/loyalty/rules/{id}", post(change_rule))
        .route("/console/loyalty/preview", get(preview))
        .route("/console/loyalty/tiers", get(tiers_page).post(save_tiers))
        .route(
            "/console/loyalty/rewards",
            get(rewards_page).post(add_reward),
        )
        .route("/console/loyalty/rewards/{id}", post(change_reward))
        .route(
            "/console/loyalty/coupons",
            get(coupons_page).post(add_coupon),
        )
        .route("/console/loyalty/coupons/{id}", post(change_coupon))
}

// ---------------------------------------------------------------------------
// Shared bits
// ---------------------------------------------------------------------------

/// A submitted form or query as name–value pairs: repeated names (checkbox
/// groups, the sample order's item rows) are kept, in order.
#[derive(Default)]
pub(super) struct Fields(Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, trimmed ("" when absent).
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .collect()
    }

    fn checked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }
}

/// The page is for those who may change the loyalty set-up; others get the
/// 403 page even where they could read the data through the API.
fn gate(staff: &Staff) -> Option<Response> {
    staff
        .principal()
        .check(Action::RulesManage, None)
        .err()
        .map(|denied| staff.fail(AppError::from(denied)))
}

/// A number with up to `places` decimals as an integer of 10^places units:
/// `scaled("1.5", 3)` is 1500. Signs, exponents and grouping are refused.
fn scaled(text: &str, places: u32) -> Option<i64> {
    let text = text.trim().trim_start_matches(['×', 'x', 'X', '¥']).trim();
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(frac) || frac.len() > places as usize || whole.len() > 12 {
        return None;
    }
    let unit = 10i64.pow(places);
    let w: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let f: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<width$}", width = places as usize)
            .parse()
            .ok()?
    };
    w.checked_mul(unit)?.checked_add(f)
}

/// A whole number (no sign).
fn whole(text: &str) -> Option<i64> {
    let t = text.trim();
    (!t.is_empty() && t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit()))
        .then(|| t.parse().ok())
        .flatten()
}

/// "¥12.34" (or "¥12" for whole yuan).
fn money(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    if abs.is_multiple_of(100) {
        format!("{sign}¥{}", abs / 100)
    } else {
        format!("{sign}¥{}.{:02}", abs / 100, abs % 100)
    }
}

/// Yuan as typed back into a form: "12.5" for 1250 fen.
fn yuan_input(fen: i64) -> String {
    if fen % 100 == 0 {
        (fen / 100).to_string()
    } else {
        format!("{}.{:02}", fen / 100, fen % 100)
            .trim_end_matches('0')
            .to_string()
    }
}

/// "2" or "1.5" for 2000 or 1500 permille.
fn times(permille: i64) -> String {
    if permille % 1000 == 0 {
        (permille / 1000).to_string()
    } else {
        format!("{}.{:03}", permille / 1000, permille % 1000)
            .trim_end_matches('0')
            .to_string()
    }
}

/// A comma (or 、/space) separated list of codes.
fn codes(text: &str) -> Vec<String> {
    text.split([',', '，', '、', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn tier_name(lang: Lang, tier: Tier) -> &'static str {
    match tier {
        Tier::Regular => lang.t("普通", "Regular"),
        Tier::Silver => lang.t("银卡", "Silver"),
        Tier::Gold => lang.t("金卡", "Gold"),
        Tier::BlackGold => lang.t("黑金", "Black gold"),
    }
}

fn channel_value(c: Channel) -> &'static str {
    match c {
        Channel::DineIn => "dine_in",
        Channel::Takeaway => "takeaway",
        Channel::Delivery => "delivery",
        Channel::Online => "online",
    }
}

fn channel_name(lang: Lang, c: Channel) -> &'static str {
    match c {
        Channel::DineIn => lang.t("堂食", "Dine-in"),
        Channel::Takeaway => lang.t("外带", "Takeaway"),
        Channel::Delivery => lang.t("外卖", "Delivery"),
        Channel::Online => lang.t("线上", "Online"),
    }
}

fn parse_channel(s: &str) -> Option<Channel> {
    Channel::ALL.into_iter().find(|c| channel_value(*c) == s)
}

/// A value and its label, for selects and checkbox groups.
pub(super) struct Choice {
    value: String,
    label: String,
}

fn tier_choices(lang: Lang) -> Vec<Choice> {
    Tier::ALL
        .into_iter()
        .map(|t| Choice {
            value: t.as_str().into(),
            label: tier_name(lang, t).into(),
        })
        .collect()
}

fn channel_choices(lang: Lang) -> Vec<Choice> {
    Channel::ALL
        .into_iter()
        .map(|c| Choice {
            value: channel_value(c).into(),
            label: channel_name(lang, c).into(),
        })
        .collect()
}

fn weekday_choices(lang: Lang) -> Vec<Choice> {
    let names = [
        ("周一", "Mon"),
        ("周二", "Tue"),
        ("周三", "Wed"),
        ("周四", "Thu"),
        ("周五", "Fri"),
        ("周六", "Sat"),
        ("周日", "Sun"),
    ];
    names
        .iter()
        .enumerate()
        .map(|(i, (zh, en))| Choice {
            value: (i + 1).to_string(),
            label: lang.t(zh, en).into(),
        })
        .collect()
}

/// "HH:MM", as `<input type="time">` sends it (seconds dropped).
fn hhmm(text: &str) -> Option<String> {
    let t = text.get(..5).unwrap_or(text);
    chrono::NaiveTime::parse_from_str(t, "%H:%M")
        .ok()
        .map(|_| t.to_string())
}

fn date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

// ---------------------------------------------------------------------------
// Earning rules
// ---------------------------------------------------------------------------

/// One rule in the list.
pub(super) struct RuleRow {
    id: String,
    name: String,
    enabled: bool,
    summary: String,
}

/// The new-rule form as the user filled it (kept on a refusal).
#[derive(Default)]
pub(super) struct RuleForm {
    id: String,
    name: String,
    kind: String,
    multiplier: String,
    points: String,
    skus: String,
    categories: String,
    new_dishes: bool,
    min_spend: String,
    cap_per_order: String,
    cap_per_day: String,
    weekdays: Vec<String>,
    time_from: String,
    time_to: String,
    starts_on: String,
    ends_on: String,
    channels: Vec<String>,
    tiers: Vec<String>,
    stores: String,
    brands: String,
    birthday_month: bool,
}

impl RuleForm {
    fn from_fields(f: &Fields) -> RuleForm {
        let owned = |v: Vec<&str>| v.into_iter().map(str::to_string).collect();
        RuleForm {
            id: f.get("id").into(),
            name: f.get("name").into(),
            kind: f.get("kind").into(),
            multiplier: f.get("multiplier").into(),
            points: f.get("points").into(),
            skus: f.get("skus").into(),
            categories: f.get("categories").into(),
            new_dishes: f.checked("new_dishes"),
            min_spend: f.get("min_spend").into(),
            cap_per_order: f.get("cap_per_order").into(),
            cap_per_day: f.get("cap_per_day").into(),
            weekdays: owned(f.all("weekday")),
            time_from: f.get("time_from").into(),
            time_to: f.get("time_to").into(),
            starts_on: f.get("starts_on").into(),
            ends_on: f.get("ends_on").into(),
            channels: owned(f.all("channel")),
            tiers: owned(f.all("tier")),
            stores: f.get("stores").into(),
            brands: f.get("brands").into(),
            birthday_month: f.checked("birthday_month"),
        }
    }

    fn weekday_on(&self, v: &str) -> bool {
        self.weekdays.iter().any(|d| d == v)
    }

    fn channel_on(&self, v: &str) -> bool {
        self.channels.iter().any(|d| d == v)
    }

    fn tier_on(&self, v: &str) -> bool {
        self.tiers.iter().any(|d| d == v)
    }

    /// The rule this form describes, or the messages to show next to its
    /// fields. Keys are the rule's own field names (`effect.permille`), so
    /// a refusal by the application lands next to the same field.
    fn rule(&self, lang: Lang, taken: &[String]) -> Result<EarningRule, FieldErrors> {
        let mut errors = FieldErrors::default();
        let id = if self.id.is_empty() {
            // A fresh id the user need not think about.
            (1..)
                .map(|n| format!("rule-{n}"))
                .find(|id| !taken.contains(id))
                .unwrap_or_default()
        } else {
            self.id.clone()
        };
        let id_ok = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !id_ok {
            errors.add(
                "id",
                lang.t(
                    "编号只能用小写字母、数字、_ 和 -（最多 64 个）",
                    "Use up to 64 lowercase letters, digits, _ and -",
                ),
            );
        } else if taken.contains(&id) {
            errors.add(
                "id",
                lang.t("已有同编号的规则", "A rule with this id exists"),
            );
        }
        if self.name.is_empty() || self.name.chars().count() > 100 {
            errors.add(
                "name",
                lang.t(
                    "请填写规则名称（1–100 字）",
                    "Enter a rule name (1–100 characters)",
                ),
            );
        }
        let permille = || {
            let p = scaled(&self.multiplier, 3).filter(|p| (1001..=MAX_PERMILLE).contains(p));
            p.ok_or(lang.t(
                "倍数须大于 1、不超过 10（如 2 或 1.5）",
                "Enter a multiplier above 1 and at most 10 (e.g. 2 or 1.5)",
            ))
        };
        let skus = codes(&self.skus);
        let categories = codes(&self.categories);
        let effect = match self.kind.as_str() {
            "multiplier" => permille()
                .map(|permille| Effect::Multiplier { permille })
                .map_err(|m| ("effect.permille", m)),
            "product_bonus" => match permille() {
                Err(m) => Err(("effect.permille", m)),
                Ok(_) if skus.is_empty() && categories.is_empty() && !self.new_dishes => Err((
                    "effect.skus",
                    lang.t(
                        "请至少填写一个菜品编码或品类，或勾选新品",
                        "Name at least one SKU or category, or tick new dishes",
                    ),
                )),
                Ok(permille) => Ok(Effect::ProductBonus {
                    skus: skus.clone(),
                    categories: categories.clone(),
                    new_dishes: self.new_dishes,
                    permille,
                }),
            },
            "flat_bonus" => whole(&self.points)
                .filter(|p| (1..=MAX_FLAT_BONUS).contains(p))
                .map(|points| Effect::FlatBonus { points })
                .ok_or((
                    "effect.points",
                    lang.t(
                        "请输入 1 到 1000000 之间的整数",
                        "Enter a whole number from 1 to 1000000",
                    ),
                )),
            "exclude" if skus.is_empty() && categories.is_empty() => Err((
                "effect.skus",
                lang.t(
                    "请至少填写一个不积分的菜品编码或品类",
                    "Name at least one SKU or category to exclude",
                ),
            )),
            "exclude" => Ok(Effect::Exclude {
                skus: skus.clone(),
                categories: categories.clone(),
            }),
            "minimum_spend" => scaled(&self.min_spend, 2)
                .filter(|f| (1..=regulars_core::order::MAX_ORDER_FEN).contains(f))
                .map(|fen| Effect::MinimumSpend { fen })
                .ok_or((
                    "effect.fen",
                    lang.t(
                        "请输入大于 0 的金额（元，如 50）",
                        "Enter an amount above 0 in yuan (e.g. 50)",
                    ),
                )),
            "cap" => {
                let cap = |text: &str| -> Result<Option<i64>, ()> {
                    if text.is_empty() {
                        return Ok(None);
                    }
                    whole(text).filter(|c| *c > 0).map(Some).ok_or(())
                };
                let positive = lang.t("请输入大于 0 的整数", "Enter a whole number above 0");
                match (cap(&self.cap_per_order), cap(&self.cap_per_day)) {
                    (Err(()), _) => Err(("effect.per_order", positive)),
                    (_, Err(())) => Err(("effect.per_day", positive)),
                    (Ok(None), Ok(None)) => Err((
                        "effect.per_order",
                        lang.t(
                            "请填写单笔上限或每日上限",
                            "Set a cap per order, per day or both",
                        ),
                    )),
                    (Ok(per_order), Ok(per_day)) => Ok(Effect::Cap { per_order, per_day }),
                }
            }
            _ => Err((
                "kind",
                lang.t("请选择规则类型", "Choose what the rule does"),
            )),
        };
        let effect = match effect {
            Ok(e) => Some(e),
            Err((field, message)) => {
                errors.add(field, message);
                None
            }
        };

        let mut weekdays = Vec::new();
        for d in &self.weekdays {
            match d.parse::<u8>() {
                Ok(n) if (1..=7).contains(&n) => weekdays.push(n),
                _ => errors.add(
                    "scope.weekdays",
                    lang.t("星期选择有误", "Choose weekdays from the list"),
                ),
            }
        }
        let time = |field: &str, text: &str, errors: &mut FieldErrors| -> Option<String> {
            if text.is_empty() {
                return None;
            }
            let t = hhmm(text);
            if t.is_none() {
                errors.add(
                    field,
                    lang.t(
                        "时间格式为 时:分（如 14:00）",
                        "Enter a time as HH:MM (e.g. 14:00)",
                    ),
                );
            }
            t
        };
        let time_from = time("scope.time_from", &self.time_from, &mut errors);
        let time_to = time("scope.time_to", &self.time_to, &mut errors);
        if time_from.is_some() && time_from == time_to {
            errors.add(
                "scope.time_to",
                lang.t(
                    "结束时间不能与开始时间相同",
                    "The end time must differ from the start time",
                ),
            );
        }
        let day = |field: &str, text: &str, errors: &mut FieldErrors| -> Option<NaiveDate> {
            if text.is_empty() {
                return None;
            }
            let d = date(text);
            if d.is_none() {
                errors.add(
                    field,
                    lang.t(
                        "日期格式不正确（例如 2026-05-01）",
                        "Enter a date as YYYY-MM-DD",
                    ),
                );
            }
            d
        };
        let starts_on = day("scope.starts_on", &self.starts_on, &mut errors);
        let ends_on = day("scope.ends_on", &self.ends_on, &mut errors);
        if let (Some(a), Some(b)) = (starts_on, ends_on) {
            if b < a {
                errors.add(
                    "scope.ends_on",
                    lang.t(
                        "结束日期不能早于开始日期",
                        "The end date must not be before the start date",
                    ),
                );
            }
        }
        let mut channels = Vec::new();
        for c in &self.channels {
            match parse_channel(c) {
                Some(c) => channels.push(c),
                None => errors.add(
                    "scope.channels",
                    lang.t("渠道选择有误", "Choose channels from the list"),
                ),
            }
        }
        let mut tiers = Vec::new();
        for t in &self.tiers {
            match Tier::parse(t) {
                Some(t) => tiers.push(t),
                None => errors.add(
                    "scope.tiers",
                    lang.t("等级选择有误", "Choose tiers from the list"),
                ),
            }
        }
        let stores = codes(&self.stores);
        let brands = codes(&self.brands);
        let too_long = lang.t(
            "每个代码 1–64 个字符，用逗号分隔",
            "Each code is 1–64 characters, separated by commas",
        );
        if stores.iter().any(|s| s.chars().count() > 64) {
            errors.add("scope.stores", too_long);
        }
        if brands.iter().any(|s| s.chars().count() > 64) {
            errors.add("scope.brands", too_long);
        }
        match effect {
            Some(effect) if errors.is_empty() => Ok(EarningRule {
                id,
                name: self.name.clone(),
                enabled: true,
                scope: Scope {
                    stores,
                    brands,
                    channels,
                    weekdays,
                    time_from,
                    time_to,
                    starts_on,
                    ends_on,
                    birthday_month: self.birthday_month,
                    tiers,
                },
                effect,
            }),
            _ => Err(errors),
        }
    }
}

/// The rule's own words for what the application may still refuse.
const RULE_WORDING: [(&str, &str, &str); 8] = [
    ("id", "编号无效或重复", "The id is invalid or used twice"),
    (
        "name",
        "请填写规则名称（1–100 字）",
        "Enter a rule name (1–100 characters)",
    ),
    (
        "effect.permille",
        "倍数须在 1 到 10 之间",
        "The multiplier must be between 1 and 10",
    ),
    (
        "effect.skus",
        "请至少填写一个菜品编码或品类",
        "Name at least one SKU or category",
    ),
    (
        "effect.points",
        "请输入 1 到 1000000 之间的整数",
        "Enter a whole number from 1 to 1000000",
    ),
    (
        "effect.fen",
        "请输入大于 0 的金额",
        "Enter an amount above 0",
    ),
    (
        "scope.time_to",
        "结束时间不能与开始时间相同",
        "The end time must differ from the start time",
    ),
    (
        "scope.ends_on",
        "结束日期不能早于开始日期",
        "The end date must not be before the start date",
    ),
];

/// The sample order of the live preview, as typed.
pub(super) struct Sample {
    store: String,
    channel: String,
    at: String,
    tier: String,
    items: Vec<SampleItem>,
}

pub(super) struct SampleItem {
    sku: String,
    name: String,
    category: String,
    price: String,
    qty: String,
}

/// Rows the sample order form offers.
const SAMPLE_ROWS: usize = 4;

impl Sample {
    /// The sample in a query (the page's address keeps it, so it survives
    /// adding a rule), or a plausible lunch at the first store.
    fn from_fields(f: &Fields, app: &Regulars, stores: &[Choice]) -> Sample {
        if f.get("store").is_empty() && f.all("item_name").is_empty() {
            let today = app.today();
            let item = |sku: &str, name: &str, category: &str, price: &str, qty: &str| SampleItem {
                sku: sku.into(),
                name: name.into(),
                category: category.into(),
                price: price.into(),
                qty: qty.into(),
            };
            let mut items = vec![
                item("HP-001", "麻辣牛油锅底", "hotpot", "88", "1"),
                item("DS-002", "冰粉", "dessert", "12", "2"),
            ];
            while items.len() < SAMPLE_ROWS {
                items.push(item("", "", "", "", ""));
            }
            return Sample {
                store: stores.first().map(|s| s.value.clone()).unwrap_or_default(),
                channel: "dine_in".into(),
                at: format!("{today}T12:30"),
                tier: "regular".into(),
                items,
            };
        }
        let col = |name: &str| f.all(name);
        let (skus, names, cats, prices, qtys) = (
            col("item_sku"),
            col("item_name"),
            col("item_category"),
            col("item_price"),
            col("item_qty"),
        );
        let at = |v: &Vec<&str>, i: usize| v.get(i).copied().unwrap_or("").to_string();
        let rows = names.len().max(skus.len()).max(SAMPLE_ROWS);
        Sample {
            store: f.get("store").into(),
            channel: f.get("channel").into(),
            at: f.get("at").into(),
            tier: f.get("sample_tier").into(),
            items: (0..rows)
                .map(|i| SampleItem {
                    sku: at(&skus, i),
                    name: at(&names, i),
                    category: at(&cats, i),
                    price: at(&prices, i),
                    qty: at(&qtys, i),
                })
                .collect(),
        }
    }

    /// The preview call's input, or what is wrong with the sample.
    fn order(&self, app: &Regulars, lang: Lang) -> Result<orders::PreviewOrder, Vec<String>> {
        let mut problems = Vec::new();
        let channel = parse_channel(&self.channel);
        if channel.is_none() {
            problems.push(lang.t("请选择渠道", "Choose a channel").to_string());
        }
        let tier = Tier::parse(&self.tier);
        if tier.is_none() {
            problems.push(lang.t("请选择会员等级", "Choose a tier").to_string());
        }
        let local = NaiveDateTime::parse_from_str(&self.at, "%Y-%m-%dT%H:%M")
            .or_else(|_| NaiveDateTime::parse_from_str(&self.at, "%Y-%m-%dT%H:%M:%S"))
            .ok()
            .and_then(|t| app.timezone.from_local_datetime(&t).earliest());
        if local.is_none() {
            problems.push(
                lang.t(
                    "请填写下单时间（日期和时间）",
                    "Enter when the order is placed (date and time)",
                )
                .to_string(),
            );
        }
        let mut items = Vec::new();
        for (i, row) in self.items.iter().enumerate() {
            if row.sku.is_empty() && row.name.is_empty() && row.price.is_empty() {
                continue;
            }
            let price = scaled(&row.price, 2).filter(|p| *p <= 100_000_000);
            let qty = whole(&row.qty).filter(|q| (1..=999).contains(q));
            if price.is_none() || qty.is_none() {
                problems.push(match lang {
                    Lang::Zh => format!("第 {} 行：请填写单价（元）和数量（1–999）", i + 1),
                    Lang::En => format!(
                        "Row {}: enter a price in yuan and a quantity (1–999)",
                        i + 1
                    ),
                });
                continue;
            }
            let sku = if row.sku.is_empty() {
                row.name.clone()
            } else {
                row.sku.clone()
            };
            items.push(OrderLine {
                sku,
                name: row.name.clone(),
                category: row.category.clone(),
                quantity: qty.unwrap_or(1),
                unit_price_fen: price.unwrap_or(0),
                discount_fen: 0,
                voided: false,
                comped: false,
                staff_meal: false,
            });
        }
        if items.is_empty() {
            problems.push(
                lang.t("请至少填写一道菜", "Add at least one dish")
                    .to_string(),
            );
        }
        match (channel, tier, local) {
            (Some(channel), Some(tier), Some(at)) if problems.is_empty() => {
                let paid_fen = items
                    .iter()
                    .map(|l| l.quantity.saturating_mul(l.unit_price_fen))
                    .fold(0i64, i64::saturating_add);
                Ok(orders::PreviewOrder {
                    store_code: self.store.clone(),
                    member_id: None,
                    tier: Some(tier),
                    occurred_at: Some(at.to_rfc3339()),
                    channel,
                    items,
                    paid_fen,
                })
            }
            _ => Err(problems),
        }
    }
}

/// One explanation line of the preview.
pub(super) struct Line {
    rule: String,
    text: String,
    points: i64,
}

/// What the sample earns, or why it cannot be previewed.
#[derive(Template)]
#[template(path = "loyalty/preview.html")]
pub(super) struct Preview {
    lang: Lang,
    problems: Vec<String>,
    points: i64,
    eligible: String,
    version: i64,
    lines: Vec<Line>,
}

/// Run the preview; a refusal becomes a sentence, never a raw error.
async fn run_preview(app: &Regulars, staff: &Staff, sample: &Sample) -> (StatusCode, Preview) {
    let lang = staff.lang;
    let mut preview = Preview {
        lang,
        problems: Vec::new(),
        points: 0,
        eligible: money(0),
        version: 0,
        lines: Vec::new(),
    };
    let input = match sample.order(app, lang) {
        Ok(i) => i,
        Err(problems) => {
            preview.problems = problems;
            return (StatusCode::OK, preview);
        }
    };
    match orders::preview_order(app, staff.principal(), input).await {
        Ok(answer) => {
            preview.points = answer.points;
            preview.eligible = money(answer.eligible_fen);
            preview.version = answer.rule_version;
            preview.lines = answer
                .explanation
                .into_iter()
                .map(|l| Line {
                    rule: l.rule,
                    text: l.text,
                    points: l.points,
                })
                .collect();
            (StatusCode::OK, preview)
        }
        Err(e) => {
            let status = match &e {
                AppError::Forbidden(_) => StatusCode::FORBIDDEN,
                AppError::Invalid(_)
                | AppError::Unprocessable { .. }
                | AppError::NotFound { .. } => StatusCode::OK,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let message = match &e {
                AppError::Unprocessable {
                    code: "unknown_store",
                    ..
                } => lang.t("请选择门店", "Choose a store").to_string(),
                _ => explain(lang, &e, status).1,
            };
            if status.is_server_error() {
                tracing::error!(error = %e, "earning preview failed");
            }
            preview.problems.push(message);
            (status, preview)
        }
    }
}

#[derive(Template)]
#[template(path = "loyalty/rules.html")]
struct RulesPage {
    c: Chrome,
    version: i64,
    rules: Vec<RuleRow>,
    form: RuleForm,
    errors: FieldErrors,
    stores: Vec<Choice>,
    channels: Vec<Choice>,
    tiers: Vec<Choice>,
    weekdays: Vec<Choice>,
    sample: Sample,
    preview: Preview,
    saved: bool,
}

async fn store_choices(app: &Regulars, staff: &Staff) -> Result<Vec<Choice>, AppError> {
    Ok(chain::list_stores(app, staff.principal())
        .await?
        .into_iter()
        .map(|s| Choice {
            label: format!("{} {}", s.code, s.name),
            value: s.code,
        })
        .collect())
}

/// The query of the page a form was sent from (the rules page keeps its
/// sample order there).
fn referer_query(headers: &HeaderMap) -> String {
    headers
        .get(REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.split_once("/console/loyalty?"))
        .map(|(_, q)| q.split('#').next().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// Name–value pairs of a query string; a malformed one is an empty form.
fn parse_query(query: &str) -> Fields {
    format!("/?{query}")
        .parse::<Uri>()
        .ok()
        .and_then(|uri| Query::<Vec<(String, String)>>::try_from_uri(&uri).ok())
        .map(|q| Fields(q.0))
        .unwrap_or_default()
}

/// The sample order kept in the address of the page a form was sent from.
fn sample_query(headers: &HeaderMap) -> Fields {
    parse_query(&referer_query(headers))
}

async fn rules_view(
    app: &Regulars,
    staff: &Staff,
    query: &Fields,
    form: RuleForm,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    let loaded = match points::rules(app, staff.principal()).await {
        Ok(r) => r,
        Err(e) => return staff.fail(e),
    };
    let stores = match store_choices(app, staff).await {
        Ok(s) => s,
        Err(e) => return staff.fail(e),
    };
    let sample = Sample::from_fields(query, app, &stores);
    let (_, preview) = run_preview(app, staff, &sample).await;
    let lang = staff.lang;
    render(
        status,
        RulesPage {
            c: staff.chrome(),
            version: loaded.version,
            rules: loaded
                .rules
                .iter()
                .zip(loaded.summaries)
                .map(|(r, summary)| RuleRow {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    enabled: r.enabled,
                    summary,
                })
                .collect(),
            form,
            errors,
            stores,
            channels: channel_choices(lang),
            tiers: tier_choices(lang),
            weekdays: weekday_choices(lang),
            sample,
            preview,
            saved: query.get("saved") == "1",
        },
    )
}

async fn rules_page(
    State(state): State<ApiState>,
    staff: Staff,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Some(refused) = gate(&staff) {
        return refused;
    }
    let form = RuleForm {
        kind: "multiplier".into(),
        ..RuleForm::default()
    };
    rules_view(
        &state.regulars,
        &staff,
        &Fields(query),
        form,
        FieldErrors::default(),
        StatusCode::OK,
    )
    .await
}

/// The fragment htmx swaps in as the sample order changes; the page's
/// address follows, so a reload (or adding a rule) keeps the sample.
async fn preview(State(state): State<ApiState>, staff: Staff, RawQuery(raw): RawQuery) -> Response {
    if let Some(refused) = gate(&staff) {
        return refused;
    }
    let stores = match store_choices(&state.regulars, &staff).await {
        Ok(s) => s,
        Err(e) => return staff.fail(e),
    };
    let raw = raw.unwrap_or_default();
    let fields = parse_query(&raw);
    let sample = Sample::from_fields(&fields, &state.regulars, &stores);
    let (status, fragment) = run_preview(&state.regulars, &staff, &sample).await;
    let mut response = render(status, fragment);
    if let Ok(v) = HeaderValue::from_str(&format!("/console/loyalty?{raw}")) {
        response.headers_mut().insert("HX-Replace-Url", v);
    }
    response
}

/// Where to go back to after a rule change: the page with its sample order.
fn back_to_rules(headers: &HeaderMap) -> String {
    let query = referer_query(headers);
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("saved="))
        .chain(["saved=1"])
        .collect();
    format!("/console/loyalty?{}", kept.join("&"))
}

async fn add_rule(
    State(state): State<ApiState>,
    staff: Staff,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(pairs);
    if let Some(refused) = staff.csrf_refusal(fields.get("csrf")) {
        return refused;
    }
    if let Some(refused) = gate(&staff) {
        return refused;
    }
    let app = &state.regulars;
    let current = match points::rules(app, staff.principal()).await {
        Ok(r) => r,
        Err(e) => return staff.fail(e),
    };
    let form = RuleForm::from_fields(&fields);
    let taken: Vec<String> = current.rules.iter().map(|r| r.id.clone()).collect();
    let query = sample_query(&headers);
    let rule = match form.rule(staff.lang, &taken) {
        Ok(r) => r,
        Err(errors) => {
            return rules_view(
                app,
                &staff,
                &query,
                form,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    };
    let note = format!("console: add {}", rule.id);
    let mut rules = current.rules;
    rules.push(rule);
    match points::put_rules(
        app,
        staff.principal(),
        points::PutRules {
            rules,
            note: Some(note),
        },
    )
    .await
    {
        Ok(_) => redirect(&back_to_rules(&headers)),
        Err(e @ (AppError::Invalid(_) | AppError::Unprocessable { .. })) => {
            let errors = FieldErrors::from_app(staff.lang, &e, "form", &RULE_WORDING);
            rules_view(
                app,
                &staff,
                &query,
                form,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => staff.fail(e),
    }
}

/// Switch a rule off or on, or remove it: each is a new version of the set.
async fn change_rule(
    State(state): State<ApiState>,
    staff: Staff,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(pairs);
    if let Some(refused) = staff.csrf_refusal(fields.get("csrf")) {
        return refused;
    }
    if let Some(refused) = gate(&staff) {
        return refused;
    }
    let app = &state.regulars;
    let current = match points::rules(app, staff.principal()).await {
        Ok(r) => r,
        Err(e) => return staff.fail(e),
    };
    let mut rules = current.rules;
    let Some(at) = rules.iter().position(|r| r.id == id) else {
        return staff.fail(AppError::NotFound { what: "rule" });
    };
    let action = fields.get("action");
    match action {
        "delete" => {
            rules.remove(at);
        }
        "enable" => rules[at].enabled = true,
        _ => rules[at].enabled = false,
    }
    let note = format!("console: {action} {id}");
    match points::put_rules(
        app,
        staff.principal(),
        points::PutRules {
            rules,
            note: Some(note),
        },
    )
    .await
    {
        Ok(_) => redirect(&back_to_rules(&headers)),
        Err(e) => staff.fail(e),
    }
}

// ---------------------------------------------------------------------------
// Tiers and benefits
// ---------------------------------------------------------------------------

/// One tier's row of the form, as shown or as typed.
pub(super) struct TierRow {
    tier: String,
    name: String,
    threshold: String,
    multiplier: String,
    expiry: String,
    birthday: String,
    coupons: String,
    priority: bool,
    manager: bool,
}

#[derive(Template)]
#[template(path = "loyalty/tiers.html")]
struct TiersPage {
    c: Chrome,
    rows: Vec<TierRow>,
    errors: FieldErrors,
    saved: bool,
}

impl TiersPage {
    /// The message of one tier's field (`threshold_gold`).
    fn error(&self, field: &str, tier: &str) -> Option<&str> {
        self.errors.get(&format!("{field}_{tier}"))
    }
}

fn tier_rows(lang: Lang, policy: &TierPolicy) -> Vec<TierRow> {
    policy
        .tiers
        .iter()
        .map(|b| TierRow {
            tier: b.tier.as_str().into(),
            name: tier_name(lang, b.tier).into(),
            threshold: yuan_input(b.threshold_fen),
            multiplier: times(b.multiplier_permille),
            expiry: b.expiry_months.to_string(),
            birthday: b.birthday_points.to_string(),
            coupons: b.birthday_coupon_templates.join(", "),
            priority: b.priority_reservation,
            manager: b.account_manager,
        })
        .collect()
}

async fn tiers_page(
    State(state): State<ApiState>,
    staff: Staff,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Some(refused) = gate(&staff) {
        return refused;
    }
    let policy = match points::tier_policy(&state.regulars, staff.principal()).await {
        Ok(p) => p,
        Err(e) => return staff.fail(e),
    };
    render(
        StatusCode::OK,
        TiersPage {
            c: staff.chrome(),
            rows: tier_rows(staff.lang, &policy),
            errors: FieldErrors::default(),
            saved: Fields(query).get("saved") == "1",
        },
    )
}

const TIER_WORDING: [(&str, &str, &str); 1] = [(
    "tiers",
    "门槛须从普通卡的 0 开始逐级升高；倍数 1–10，有效期 1–120 个月，生日积分不小于 0",
    "Thresholds start at 0 for regular and rise with each tier; multipliers 1–10, expiry 1–120 months, birthday points 0 or more",
)];

async fn save_tiers(
    State(state): State<ApiState>,
    staff: Staff,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let f = Fields(pairs);
    if let Some(refused) = staff.csrf_refusal(f.get("csrf")) {
        return refused;
    }
    if let Some(refused) = gate(&staff) {
        return refused;
    }
    let lang = staff.lang;
    let mut errors = FieldErrors::default();
    let mut tiers = Vec::new();
    let mut rows = Vec::new();
    let mut last: Option<i64> = None;
    for tier in Tier::ALL {
        let t = tier.as_str();
        let v = |field: &str| f.get(&format!("{field}_{t}")).to_string();
        let row = TierRow {
            tier: t.into(),
            name: tier_name(lang, tier).into(),
            threshold: v("threshold"),
            multiplier: v("multiplier"),
            expiry: v("expiry"),
            birthday: v("birthday"),
            coupons: v("coupons"),
            priority: f.checked(&format!("priority_{t}")),
            manager: f.checked(&format!("manager_{t}")),
        };
        let threshold = scaled(&row.threshold, 2);
        match (tier, threshold) {
            (Tier::Regular, Some(0)) => {}
            (Tier::Regular, _) => errors.add(
                &format!("threshold_{t}"),
                lang.t("普通卡的门槛必须是 0", "The regular tier starts at 0"),
            ),
            (_, None) => errors.add(
                &format!("threshold_{t}"),
                lang.t("请输入金额（元）", "Enter an amount in yuan"),
            ),
            (_, Some(fen)) if last.is_some_and(|l| fen <= l) => errors.add(
                &format!("threshold_{t}"),
                lang.t(
                    "门槛必须高于上一级",
                    "The threshold must be above the tier below",
                ),
            ),
            _ => {}
        }
        if threshold.is_some() {
            last = threshold;
        }
        let multiplier = scaled(&row.multiplier, 3).filter(|p| (1000..=10_000).contains(p));
        if multiplier.is_none() {
            errors.add(
                &format!("multiplier_{t}"),
                lang.t("倍数须在 1 到 10 之间", "Enter a multiplier from 1 to 10"),
            );
        }
        let expiry = whole(&row.expiry).filter(|m| (1..=120).contains(m));
        if expiry.is_none() {
            errors.add(
                &format!("expiry_{t}"),
                lang.t("请输入 1 到 120 个月", "Enter 1 to 120 months"),
            );
        }
        let birthday = whole(&row.birthday);
        if birthday.is_none() {
            errors.add(
                &format!("birthday_{t}"),
                lang.t("请输入不小于 0 的整数", "Enter a whole number, 0 or more"),
            );
        }
        tiers.push(TierBenefits {
            tier,
            threshold_fen: threshold.unwrap_or(0),
            multiplier_permille: multiplier.unwrap_or(1000),
            expiry_months: expiry.and_then(|m| u32::try_from(m).ok()).unwrap_or(12),
            birthday_points: birthday.unwrap_or(0),
            birthday_coupon_templates: codes(&row.coupons),
            priority_reservation: row.priority,
            account_manager: row.manager,
        });
        rows.push(row);
    }
    let failed = |errors: FieldErrors, rows: Vec<TierRow>| {
        render(
            StatusCode::UNPROCESSABLE_ENTITY,
            TiersPage {
                c: staff.chrome(),
                rows,
                errors,
                saved: false,
            },
        )
    };
    if !errors.is_empty() {
        return failed(errors, rows);
    }
    match points::put_tier_policy(&state.regulars, staff.principal(), TierPolicy { tiers }).await {
        Ok(_) => redirect("/console/loyalty/tiers?saved=1"),
        Err(e @ (AppError::Invalid(_) | AppError::Unprocessable { .. })) => {
            let errors = match &e {
                AppError::Unprocessable {
                    code: "unknown_coupon_template",
                    ..
                } => {
                    let mut errors = FieldErrors::default();
                    errors.add(
                        "form",
                        lang.t(
                            "生日券模板不存在或已停用",
                            "A birthday coupon template does not exist or is retired",
                        ),
                    );
                    errors
                }
                _ => FieldErrors::from_app(lang, &e, "form", &TIER_WORDING),
            };
            failed(errors, rows)
        }
        Err(e) => staff.fail(e),
    }
}

// ---------------------------------------------------------------------------
// Rewards catalogue
// ---------------------------------------------------------------------------

fn kind_name(lang: Lang, kind: RewardKind) -> &'static str {
    match kind {
        RewardKind::FreeDish => lang.t("免费菜品", "Free dish"),
        RewardKind::Coupon => lang.t("优惠券", "Coupon"),
        RewardKind::Merchandise => lang.t("周边礼品", "Merchandise"),
        RewardKind::CashOffset => lang.t("积分抵现", "Cash offset"),
        RewardKind::Experience => lang.t("体验活动", "Experience"),
        RewardKind::LotteryEntry => lang.t("抽奖机会", "Lottery entry"),
    }
}

pub(super) struct RewardRow {
    id: String,
    name: String,
    kind: String,
    points_cost: i64,
    stock: String,
    limit: String,
    min_tier: String,
    active: bool,
}

/// The new-reward form as typed.
#[derive(Default)]
pub(super) struct RewardForm {
    name: String,
    kind: String,
    points_cost: String,
    template: String,
    stock: String,
    limit: String,
    min_tier: String,
    description: String,
}

#[derive(Template)]
#[template(path = "loyalty/rewards.html")]
struct RewardsPage {
    c: Chrome,
    rows: Vec<RewardRow>,
    kinds: Vec<Choice>,
    tiers: Vec<Choice>,
    templates: Vec<Choice>,
    form: RewardForm,
    errors: FieldErrors,
    /// The reward a row's change was refused for, and why.
    row_error: Option<(String, String)>,
}

impl RewardsPage {
    fn row_error_for(&self, id: &str) -> Option<&str> {
        self.row_error
            .as_ref()
            .filter(|(row, _)| row == id)
            .map(|(_, message)| message.as_str())
    }
}

async fn rewards_view(
    app: &Regulars,
    staff: &Staff,
    form: RewardForm,
    errors: FieldErrors,
    row_error: Option<(String, String)>,
    status: StatusCode,
) -> Response {
    let lang = staff.lang;
    let list = rewards::catalogue(
        app,
        staff.principal(),
        rewards::CatalogueQuery {
            member_id: None,
            all: true,
        },
    )
    .await;
    let list = match list {
        Ok(l) => l,
        Err(e) => return staff.fail(e),
    };
    let templates = match coupons::list_templates(app, staff.principal()).await {
        Ok(t) => t,
        Err(e) => return staff.fail(e),
    };
    let unlimited = lang.t("不限", "No limit");
    render(
        status,
        RewardsPage {
            c: staff.chrome(),
            rows: list
                .into_iter()
                .map(|r| RewardRow {
                    kind: kind_name(lang, r.spec.kind).into(),
                    points_cost: r.spec.points_cost,
                    stock: match (r.stock_left, r.spec.stock) {
                        (Some(left), Some(total)) => format!("{left} / {total}"),
                        _ => unlimited.into(),
                    },
                    limit: r
                        .spec
                        .per_member_limit
                        .map(|l| l.to_string())
                        .unwrap_or_else(|| unlimited.into()),
                    min_tier: tier_name(lang, r.spec.min_tier).into(),
                    active: r.active,
                    name: r.spec.name,
                    id: r.id,
                })
                .collect(),
            kinds: RewardKind::ALL
                .into_iter()
                .map(|k| Choice {
                    value: k.as_str().into(),
                    label: kind_name(lang, k).into(),
                })
                .collect(),
            tiers: tier_choices(lang),
            templates: templates
                .into_iter()
                .filter(|t| t.active)
                .map(|t| Choice {
                    label: format!("{} · {}", t.template.name, t.summary),
                    value: t.id,
                })
                .collect(),
            form,
            errors,
            row_error,
        },
    )
}

async fn rewards_page(State(state): State<ApiState>, staff: Staff) -> Response {
    if let Some(refused) = gate(&staff) {
        return refused;
    }
    let form = RewardForm {
        kind: "merchandise".into(),
        min_tier: "regular".into(),
        ..RewardForm::default()
    };
    rewards_view(
        &state.regulars,
        &staff,
        form,
        FieldErrors::default(),
        None,
        StatusCode::OK,
    )
    .await
}

const REWARD_WORDING: [(&str, &str, &str); 6] = [
    (
        "name",
        "请填写名称（1–100 字）",
        "Enter a name (1–100 characters)",
    ),
    (
        "points_cost",
        "请输入 1 到 10000000 之间的积分",
        "Enter 1 to 10000000 points",
    ),
    (
        "coupon_template_id",
        "免费菜品和优惠券需要选择券模板，其他类型不需要",
        "Free dishes and coupons need a coupon template; other kinds take none",
    ),
    (
        "stock",
        "库存须在 0 到 100000000 之间",
        "Stock must be 0 to 100000000",
    ),
    (
        "per_member_limit",
        "每人限兑须在 1 到 1000000 之间",
        "The per-member limit must be 1 to 1000000",
    ),
    (
        "description",
        "说明最多 1000 字",
        "The description is at most 1000 characters",
    ),
];

async fn add_reward(
    State(state): State<ApiState>,
    staff: Staff,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let f = Fields(pairs);
    if let Some(refused) = staff.csrf_refusal(f.get("csrf")) {
        return refused;
    }
    if let Some(refused) = gate(&staff) {
        return refused;
    }
    let lang = staff.lang;
    let form = RewardForm {
        name: f.get("name").into(),
        kind: f.get("kind").into(),
        points_cost: f.get("points_cost").into(),
        template: f.get("coupon_template_id").into(),
        stock: f.get("stock").into(),
        limit: f.get("per_member_limit").into(),
        min_tier: f.get("min_tier").into(),
        description: f.get("description").into(),
    };
    let mut errors = FieldErrors::default();
    if form.name.is_empty() || form.name.chars().count() > 100 {
        errors.add(
            "name",
            lang.t("请填写名称（1–100 字）", "Enter a name (1–100 characters)"),
        );
    }
    let kind = RewardKind::parse(&form.kind);
    if kind.is_none() {
        errors.add("kind", lang.t("请选择类型", "Choose a kind"));
    }
    let cost = whole(&form.points_cost).filter(|p| (1..=10_000_000).contains(p));
    if cost.is_none() {
        errors.add(
            "points_cost",
            lang.t(
                "请输入 1 到 10000000 之间的整数积分",
                "Enter 1 to 10000000 points (a whole number)",
            ),
        );
    }
    let optional = |text: &str, field: &str, min: i64, errors: &mut FieldErrors| {
        if text.is_empty() {
            return None;
        }
        let v = whole(text).filter(|v| *v >= min);
        if v.is_none() {
            errors.add(
                field,
                lang.t(
                    "请输入整数，或留空表示不限",
                    "Enter a whole number, or leave empty for no limit",
                ),
            );
        }
        v
    };
    let stock = optional(&form.stock, "stock", 0, &mut errors);
    let limit = optional(&form.limit, "per_member_limit", 1, &mut errors);
    let template = (!form.template.is_empty()).then(|| form.template.clone());
    if let Some(k) = kind {
        if k.needs_template() && template.is_none() {
            errors.add(
                "coupon_template_id",
                lang.t(
                    "免费菜品和优惠券需要选择券模板",
                    "Free dishes and coupons need a coupon template",
                ),
            );
        }
    }
    let min_tier = Tier::parse(&form.min_tier).unwrap_or(Tier::Regular);
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    let (Some(kind), Some(points_cost), true) = (kind, cost, errors.is_empty()) else {
        return rewards_view(&state.regulars, &staff, form, errors, None, status).await;
    };
    let spec = RewardSpec {
        name: form.name.clone(),
        kind,
        points_cost,
        coupon_template_id: template.filter(|_| kind.needs_template()),
        stock,
        per_member_limit: limit,
        min_tier,
        description: (!form.description.is_empty()).then(|| form.description.clone()),
    };
    match rewards::create(&state.regulars, staff.principal(), spec).await {
        Ok(_) => redirect("/console/loyalty/rewards"),
        Err(e @ (AppError::Invalid(_) | AppError::Unprocessable { .. })) => {
            let errors = FieldErrors::from_app(lang, &e, "coupon_template_id", &REWARD_WORDING);
            rewards_view(&state.regulars, &staff, form, errors, None, status).await
        }
        Err(e) => staff.fail(e),
    }
}

async fn change_reward(
    State(state): State<ApiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let f = Fields(pairs);
    if let Some(refused) = staff.csrf_refusal(f.get("csrf")) {
        return refused;
    }
    if let Some(refused) = gate(&staff) {
        return refused;
    }
    let lang = staff.lang;
    let refuse = |message: &str| {
        let message = message.to_string();
        let id = id.clone();
        let state = state.clone();
        let staff = &staff;
        async move {
            rewards_view(
                &state.regulars,
                staff,
                RewardForm {
                    kind: "merchandise".into(),
                    min_tier: "regular".into(),
                    ..RewardForm::default()
                },
                FieldErrors::default(),
                Some((id, message)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    };
    let mut change = rewards::RewardChange {
        name: None,
        points_cost: None,
        description: None,
        active: None,
        add_stock: 0,
    };
    match f.get("action") {
        "retire" => change.active = Some(false),
        "offer" => change.active = Some(true),
        _ => {
            let cost = f.get("points_cost");
            if !cost.is_empty() {
                match whole(cost).filter(|p| (1..=10_000_000).contains(p)) {
                    Some(p) => change.points_cost = Some(p),
                    None => {
                        return refuse(lang.t(
                            "积分须为 1 到 10000000 之间的整数",
                            "Points must be a whole number from 1 to 10000000",
                        ))
                        .await
                    }
                }
            }
            let add = f.get("add_stock");
            if !add.is_empty() {
                match whole(add).filter(|a| *a <= 100_000_000) {
                    Some(a) => change.add_stock = a,
                    None => {
                        return refuse(lang.t(
                            "补货数量须为不小于 0 的整数",
                            "The restock must be a whole number, 0 or more",
                        ))
                        .await
                    }
                }
            }
        }
    }
    match rewards::change(&state.regulars, staff.principal(), &id, change).await {
        Ok(_) => redirect("/console/loyalty/rewards"),
        Err(AppError::Unprocessable {
            code: "unlimited_stock",
            ..
        }) => {
            refuse(lang.t(
                "这个奖励不限库存，无需补货",
                "This reward has unlimited stock; nothing to restock",
            ))
            .await
        }
        Err(e @ AppError::Invalid(_)) => {
            refuse(&explain(lang, &e, StatusCode::UNPROCESSABLE_ENTITY).1).await
        }
        Err(e) => staff.fail(e),
    }
}

// ---------------------------------------------------------------------------
// Coupon templates
// ---------------------------------------------------------------------------

pub(super) struct TemplateRow {
    id: String,
    name: String,
    summary: String,
    active: bool,
}

/// The new-template form as typed.
#[derive(Default)]
pub(super) struct CouponForm {
    name: String,
    benefit: String,
    amount_off: String,
    percent_off: String,
    max_off: String,
    sku: String,
    item_name: String,
    min_spend: String,
    stores: String,
    weekdays: Vec<String>,
    time_from: String,
    time_to: String,
    valid_days: String,
    valid_until: String,
}

impl CouponForm {
    fn weekday_on(&self, v: &str) -> bool {
        self.weekdays.iter().any(|d| d == v)
    }
}

#[derive(Template)]
#[template(path = "loyalty/coupons.html")]
struct CouponsPage {
    c: Chrome,
    rows: Vec<TemplateRow>,
    weekdays: Vec<Choice>,
    form: CouponForm,
    errors: FieldErrors,
}

async fn coupons_view(
    app: &Regulars,
    staff: &Staff,
    form: CouponForm,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    let list = match coupons::list_templates(app, staff.principal()).await {
        Ok(l) => l,
        Err(e) => return staff.fail(e),
    };
    render(
        status,
        CouponsPage {
            c: staff.chrome(),
            rows: list
                .into_iter()
                .map(|t| TemplateRow {
                    id: t.id,
                    name: t.template.name,
                    summary: t.summary,
                    active: t.active,
                })
                .collect(),
            weekdays: weekday_choices(staff.lang),
            form,
            errors,
        },
    )
}

async fn coupons_page(State(state): State<ApiState>, staff: Staff) -> Response {
    if let Some(refused) = gate(&staff) {
        return refused;
    }
    let form = CouponForm {
        benefit: "amount_off".into(),
        valid_days: "30".into(),
        ..CouponForm::default()
    };
    coupons_view(
        &state.regulars,
        &staff,
        form,
        FieldErrors::default(),
        StatusCode::OK,
    )
    .await
}

const COUPON_WORDING: [(&str, &str, &str); 9] = [
    (
        "name",
        "请填写名称（1–100 字）",
        "Enter a name (1–100 characters)",
    ),
    (
        "amount_off_fen",
        "减免金额须在 ¥0.01 到 ¥100000 之间",
        "The amount off must be ¥0.01 to ¥100000",
    ),
    (
        "percent_off",
        "折扣须在 1 到 100 之间",
        "The percentage must be 1 to 100",
    ),
    (
        "max_off_fen",
        "最高减免须在 ¥0.01 到 ¥100000 之间",
        "The most off must be ¥0.01 to ¥100000",
    ),
    (
        "sku",
        "请填写菜品编码（1–64 个字符）",
        "Enter a SKU (1–64 characters)",
    ),
    (
        "item_name",
        "请填写菜品名称（1–100 字）",
        "Enter the dish name (1–100 characters)",
    ),
    (
        "min_spend_fen",
        "最低消费须在 ¥0 到 ¥1000000 之间",
        "The minimum spend must be ¥0 to ¥1000000",
    ),
    (
        "valid_days",
        "请填写有效天数（1–1096）或截止日期，二选一",
        "Give either valid days (1–1096) or a last date, not both",
    ),
    ("time_from", "时间格式为 时:分", "Enter a time as HH:MM"),
];

async fn add_coupon(
    State(state): State<ApiState>,
    staff: Staff,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let f = Fields(pairs);
    if let Some(refused) = staff.csrf_refusal(f.get("csrf")) {
        return refused;
    }
    if let Some(refused) = gate(&staff) {
        return refused;
    }
    let lang = staff.lang;
    let form = CouponForm {
        name: f.get("name").into(),
        benefit: f.get("benefit").into(),
        amount_off: f.get("amount_off").into(),
        percent_off: f.get("percent_off").into(),
        max_off: f.get("max_off").into(),
        sku: f.get("sku").into(),
        item_name: f.get("item_name").into(),
        min_spend: f.get("min_spend").into(),
        stores: f.get("stores").into(),
        weekdays: f.all("weekday").into_iter().map(str::to_string).collect(),
        time_from: f.get("time_from").into(),
        time_to: f.get("time_to").into(),
        valid_days: f.get("valid_days").into(),
        valid_until: f.get("valid_until").into(),
    };
    let mut errors = FieldErrors::default();
    if form.name.is_empty() || form.name.chars().count() > 100 {
        errors.add(
            "name",
            lang.t("请填写名称（1–100 字）", "Enter a name (1–100 characters)"),
        );
    }
    let benefit = match form.benefit.as_str() {
        "amount_off" => {
            match scaled(&form.amount_off, 2).filter(|v| (1..=10_000_000).contains(v)) {
                Some(amount_off_fen) => Some(Benefit::AmountOff { amount_off_fen }),
                None => {
                    errors.add(
                        "amount_off_fen",
                        lang.t(
                            "请输入减免金额（元，如 30）",
                            "Enter the amount off in yuan (e.g. 30)",
                        ),
                    );
                    None
                }
            }
        }
        "percent_off" => {
            let percent = whole(&form.percent_off).filter(|p| (1..=100).contains(p));
            if percent.is_none() {
                errors.add(
                    "percent_off",
                    lang.t(
                        "请输入 1 到 100 之间的整数（如 12 表示减 12%）",
                        "Enter a whole number from 1 to 100 (12 = 12% off)",
                    ),
                );
            }
            let max = if form.max_off.is_empty() {
                Some(None)
            } else {
                scaled(&form.max_off, 2)
                    .filter(|v| (1..=10_000_000).contains(v))
                    .map(Some)
            };
            if max.is_none() {
                errors.add(
                    "max_off_fen",
                    lang.t(
                        "请输入最高减免金额（元），或留空",
                        "Enter the most off in yuan, or leave empty",
                    ),
                );
            }
            match (percent, max) {
                (Some(percent_off), Some(max_off_fen)) => Some(Benefit::PercentOff {
                    percent_off,
                    max_off_fen,
                }),
                _ => None,
            }
        }
        "free_item" => {
            if form.sku.is_empty() || form.sku.len() > 64 {
                errors.add(
                    "sku",
                    lang.t(
                        "请填写菜品编码（1–64 个字符）",
                        "Enter a SKU (1–64 characters)",
                    ),
                );
            }
            if form.item_name.is_empty() || form.item_name.chars().count() > 100 {
                errors.add(
                    "item_name",
                    lang.t(
                        "请填写菜品名称（1–100 字）",
                        "Enter the dish name (1–100 characters)",
                    ),
                );
            }
            Some(Benefit::FreeItem {
                sku: form.sku.clone(),
                item_name: form.item_name.clone(),
            })
        }
        _ => {
            errors.add("benefit", lang.t("请选择优惠类型", "Choose a benefit"));
            None
        }
    };
    let min_spend = if form.min_spend.is_empty() {
        Some(0)
    } else {
        scaled(&form.min_spend, 2)
    };
    if min_spend.is_none() {
        errors.add(
            "min_spend_fen",
            lang.t(
                "请输入最低消费（元），或留空",
                "Enter a minimum spend in yuan, or leave empty",
            ),
        );
    }
    let mut weekdays = Vec::new();
    for d in &form.weekdays {
        match d.parse::<u8>() {
            Ok(n) if (1..=7).contains(&n) => weekdays.push(n),
            _ => errors.add(
                "weekdays",
                lang.t("星期选择有误", "Choose weekdays from the list"),
            ),
        }
    }
    let mut time = |field: &str, text: &str| {
        if text.is_empty() {
            return None;
        }
        let t = hhmm(text);
        if t.is_none() {
            errors.add(
                field,
                lang.t(
                    "时间格式为 时:分（如 14:00）",
                    "Enter a time as HH:MM (e.g. 14:00)",
                ),
            );
        }
        t
    };
    let time_from = time("time_from", &form.time_from);
    let time_to = time("time_to", &form.time_to);
    let (valid_days, valid_until) = match (form.valid_days.is_empty(), form.valid_until.is_empty())
    {
        (false, true) => match whole(&form.valid_days).filter(|d| (1..=1096).contains(d)) {
            Some(d) => (u32::try_from(d).ok(), None),
            None => {
                errors.add(
                    "valid_days",
                    lang.t(
                        "有效天数须在 1 到 1096 之间",
                        "Valid days must be 1 to 1096",
                    ),
                );
                (None, None)
            }
        },
        (true, false) => match date(&form.valid_until) {
            Some(d) => (None, Some(d)),
            None => {
                errors.add(
                    "valid_until",
                    lang.t(
                        "日期格式不正确（例如 2026-05-01）",
                        "Enter a date as YYYY-MM-DD",
                    ),
                );
                (None, None)
            }
        },
        _ => {
            errors.add(
                "valid_days",
                lang.t(
                    "请填写有效天数或截止日期，二选一",
                    "Give either valid days or a last date, not both",
                ),
            );
            (None, None)
        }
    };
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    let (Some(benefit), Some(min_spend_fen), true) = (benefit, min_spend, errors.is_empty()) else {
        return coupons_view(&state.regulars, &staff, form, errors, status).await;
    };
    let template = CouponTemplate {
        name: form.name.clone(),
        benefit,
        min_spend_fen,
        stores: codes(&form.stores),
        weekdays,
        time_from,
        time_to,
        valid_days,
        valid_until,
    };
    match coupons::create_template(&state.regulars, staff.principal(), template).await {
        Ok(_) => redirect("/console/loyalty/coupons"),
        Err(e @ (AppError::Invalid(_) | AppError::Unprocessable { .. })) => {
            let errors = match &e {
                AppError::Unprocessable {
                    code: "unknown_store",
                    ..
                } => {
                    let mut errors = FieldErrors::default();
                    errors.add("stores", lang.t("门店代码不存在", "No store has this code"));
                    errors
                }
                _ => FieldErrors::from_app(lang, &e, "form", &COUPON_WORDING),
            };
            coupons_view(&state.regulars, &staff, form, errors, status).await
        }
        Err(e) => staff.fail(e),
    }
}

async fn change_coupon(
    State(state): State<ApiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let f = Fields(pairs);
    if let Some(refused) = staff.csrf_refusal(f.get("csrf")) {
        return refused;
    }
    if let Some(refused) = gate(&staff) {
        return refused;
    }
    let active = f.get("action") == "activate";
    match coupons::change_template(
        &state.regulars,
        staff.principal(),
        &id,
        coupons::TemplateChange { active },
    )
    .await
    {
        Ok(_) => redirect("/console/loyalty/coupons"),
        Err(e) => staff.fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_exactly() {
        assert_eq!(scaled("2", 3), Some(2000));
        assert_eq!(scaled("1.5", 3), Some(1500));
        assert_eq!(scaled("×1.25", 3), Some(1250));
        assert_eq!(scaled("12.34", 2), Some(1234));
        assert_eq!(scaled("12.345", 2), None);
        assert_eq!(scaled("-1", 2), None);
        assert_eq!(scaled("abc", 2), None);
        assert_eq!(scaled("", 2), None);
        assert_eq!(whole("007"), Some(7));
        assert_eq!(whole("1.0"), None);
        assert_eq!(money(1250), "¥12.50");
        assert_eq!(yuan_input(1250), "12.5");
        assert_eq!(times(1500), "1.5");
    }
}
