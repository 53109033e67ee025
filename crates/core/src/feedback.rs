//! Guest feedback: channels, categories, severities, and the classifier that
//! reads a guest's words (Chinese first) and rating on arrival. The rules are
//! data — phrase lists per category that staff can edit — and every decision
//! carries the reasons that produced it, so a manager can see why a review
//! was called "critical" and correct it.
//!
//! Food safety and foreign objects are always critical: the classifier errs
//! towards them (a false alarm costs a phone call; a missed one costs a guest
//! in hospital and a news story).

use crate::{DomainError, Result};
use serde::{Deserialize, Serialize};

/// Where the feedback came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackChannel {
    /// The table's QR code (signed link, no login).
    TableQr,
    /// The member's H5 pages.
    H5,
    /// Entered by staff at the store.
    Staff,
    /// The call centre's system.
    CallCenter,
    /// Imported platform reviews (大众点评, 美团, …).
    ReviewImport,
}

impl FeedbackChannel {
    pub const ALL: [FeedbackChannel; 5] = [
        FeedbackChannel::TableQr,
        FeedbackChannel::H5,
        FeedbackChannel::Staff,
        FeedbackChannel::CallCenter,
        FeedbackChannel::ReviewImport,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackChannel::TableQr => "table_qr",
            FeedbackChannel::H5 => "h5",
            FeedbackChannel::Staff => "staff",
            FeedbackChannel::CallCenter => "call_center",
            FeedbackChannel::ReviewImport => "review_import",
        }
    }
    pub fn parse(s: &str) -> Option<FeedbackChannel> {
        FeedbackChannel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What the feedback is about (API.md).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    FoodSafety,
    Hygiene,
    DishQuality,
    ServiceAttitude,
    WaitingTime,
    Delivery,
    Price,
    Environment,
    Praise,
    Other,
}

impl Category {
    /// In order of precedence: when two categories score the same, the
    /// earlier (more serious) one wins.
    pub const ALL: [Category; 10] = [
        Category::FoodSafety,
        Category::Hygiene,
        Category::DishQuality,
        Category::ServiceAttitude,
        Category::WaitingTime,
        Category::Delivery,
        Category::Price,
        Category::Environment,
        Category::Praise,
        Category::Other,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Category::FoodSafety => "food_safety",
            Category::Hygiene => "hygiene",
            Category::DishQuality => "dish_quality",
            Category::ServiceAttitude => "service_attitude",
            Category::WaitingTime => "waiting_time",
            Category::Delivery => "delivery",
            Category::Price => "price",
            Category::Environment => "environment",
            Category::Praise => "praise",
            Category::Other => "other",
        }
    }
    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
    pub fn chinese_name(self) -> &'static str {
        match self {
            Category::FoodSafety => "食品安全",
            Category::Hygiene => "卫生",
            Category::DishQuality => "菜品质量",
            Category::ServiceAttitude => "服务态度",
            Category::WaitingTime => "等待时间",
            Category::Delivery => "外卖配送",
            Category::Price => "价格",
            Category::Environment => "环境",
            Category::Praise => "表扬",
            Category::Other => "其他",
        }
    }
}

/// How urgent (API.md): `none` for praise, `critical` for food safety.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::None,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|c| c.as_str() == s)
    }
    /// One step up, to at most `high`: `critical` is kept for food safety,
    /// so the critical queue means one thing.
    fn raised(self) -> Severity {
        match self {
            Severity::None => Severity::None,
            Severity::Low => Severity::Medium,
            Severity::Medium | Severity::High => Severity::High,
            Severity::Critical => Severity::Critical,
        }
    }
}

/// One phrase list: a hit on any phrase counts `weight` towards `category`.
/// `critical` phrases (foreign objects, illness) make the feedback food
/// safety and critical whatever else it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhraseRule {
    pub category: Category,
    pub phrases: Vec<String>,
    #[serde(default = "one")]
    pub weight: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub critical: bool,
    /// The rule counts only when one of these phrases is present too (a
    /// cockroach *in the soup* is food safety; one on the wall is hygiene).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only_with: Vec<String>,
}

fn one() -> u32 {
    1
}

/// The classifier's whole configuration, stored as one JSON setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifierRules {
    pub rules: Vec<PhraseRule>,
    /// Words that make a complaint one step more severe (threats to go to
    /// the press or the regulator, "never again").
    #[serde(default)]
    pub escalators: Vec<String>,
    /// Names removed from the text before the phrases are read: dishes and
    /// things that contain a trigger ("毛肚" is not a hair, "生日" not raw).
    #[serde(default)]
    pub ignore: Vec<String>,
}

/// The default vocabulary (`feedback_rules.json`): for each category,
/// *problem* phrases (a complaint about it, weight 3) and *topic* words (it
/// is mentioned, weight 1), so "锅底" alone does not outweigh "服务很好";
/// critical food-safety phrases; pests that are food safety only when in the
/// food; dish names to ignore; words that escalate.
const DEFAULT_RULES: &str = include_str!("feedback_rules.json");

impl Default for ClassifierRules {
    fn default() -> ClassifierRules {
        // Checked by a unit test; a broken file must not reach a release.
        serde_json::from_str(DEFAULT_RULES).unwrap_or(ClassifierRules {
            rules: Vec::new(),
            escalators: Vec::new(),
            ignore: Vec::new(),
        })
    }
}

impl ClassifierRules {
    pub fn validate(&self) -> Result<()> {
        if self.rules.is_empty() || self.rules.len() > 200 {
            return Err(DomainError::invalid("rules", "1 to 200 phrase rules"));
        }
        for (i, r) in self.rules.iter().enumerate() {
            if r.phrases.is_empty() || r.phrases.len() > 500 {
                return Err(DomainError::invalid(
                    "rules",
                    format!("rule {}: 1 to 500 phrases", i + 1),
                ));
            }
            if r.phrases
                .iter()
                .any(|p| p.trim().is_empty() || p.chars().count() > 40)
            {
                return Err(DomainError::invalid(
                    "rules",
                    format!("rule {}: each phrase 1 to 40 characters", i + 1),
                ));
            }
            if !(1..=100).contains(&r.weight) {
                return Err(DomainError::invalid(
                    "rules",
                    format!("rule {}: weight 1 to 100", i + 1),
                ));
            }
            if r.critical && r.category != Category::FoodSafety {
                return Err(DomainError::invalid(
                    "rules",
                    format!("rule {}: only food_safety phrases can be critical", i + 1),
                ));
            }
        }
        if !self
            .rules
            .iter()
            .any(|r| r.critical && r.category == Category::FoodSafety)
        {
            return Err(DomainError::invalid(
                "rules",
                "keep at least one critical food_safety rule: food safety is always critical",
            ));
        }
        Ok(())
    }
}

/// What the classifier decided, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Classification {
    pub category: Category,
    pub severity: Severity,
    /// Human-readable reasons, e.g. `命中「头发」→ 食品安全（严重）`.
    pub reasons: Vec<String>,
}

/// Full-width letters and digits to ASCII, lower case, no spaces: guests
/// type on phones in every width.
fn normalize(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => simplified(c),
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// Traditional characters common in restaurant feedback, as simplified,
/// so one phrase list reads 香港 and 广州 guests alike.
fn simplified(c: char) -> char {
    const PAIRS: &[(char, char)] = &[
        ('髮', '发'),
        ('發', '发'),
        ('蟲', '虫'),
        ('蠅', '蝇'),
        ('變', '变'),
        ('質', '质'),
        ('過', '过'),
        ('黴', '霉'),
        ('嘔', '呕'),
        ('瀉', '泻'),
        ('異', '异'),
        ('醫', '医'),
        ('診', '诊'),
        ('壞', '坏'),
        ('爛', '烂'),
        ('鐘', '钟'),
        ('態', '态'),
        ('務', '务'),
        ('員', '员'),
        ('貴', '贵'),
        ('錢', '钱'),
        ('髒', '脏'),
        ('環', '环'),
        ('聲', '声'),
        ('氣', '气'),
        ('熱', '热'),
        ('裡', '里'),
        ('裏', '里'),
        ('這', '这'),
        ('個', '个'),
        ('們', '们'),
        ('說', '说'),
        ('點', '点'),
        ('會', '会'),
        ('來', '来'),
        ('還', '还'),
        ('沒', '没'),
        ('飯', '饭'),
        ('麵', '面'),
        ('湯', '汤'),
        ('鍋', '锅'),
        ('碗', '碗'),
        ('餐', '餐'),
        ('鹹', '咸'),
        ('難', '难'),
        ('喫', '吃'),
        ('慢', '慢'),
        ('隊', '队'),
        ('錯', '错'),
        ('傷', '伤'),
        ('滿', '满'),
        ('讚', '赞'),
        ('爲', '为'),
        ('為', '为'),
        ('務', '务'),
        ('廁', '厕'),
        ('細', '细'),
        ('蝦', '虾'),
        ('魚', '鱼'),
        ('雞', '鸡'),
        ('肉', '肉'),
        ('賣', '卖'),
        ('買', '买'),
        ('單', '单'),
        ('帳', '帐'),
        ('賬', '账'),
        ('費', '费'),
        ('價', '价'),
        ('餸', '菜'),
        ('凍', '冻'),
        ('涼', '凉'),
        ('燒', '烧'),
        ('焦', '焦'),
        ('鬧', '闹'),
        ('吵', '吵'),
        ('擠', '挤'),
        ('燈', '灯'),
        ('暗', '暗'),
        ('衛', '卫'),
        ('潔', '洁'),
        ('塊', '块'),
        ('麼', '么'),
        ('樣', '样'),
        ('無', '无'),
        ('別', '别'),
        ('號', '号'),
        ('歡', '欢'),
        ('藥', '药'),
        ('癢', '痒'),
        ('腫', '肿'),
        ('頭', '头'),
        ('痛', '痛'),
        ('吐', '吐'),
        ('闆', '板'),
        ('嘢', '东'),
        ('冇', '没'),
    ];
    PAIRS.iter().find(|(t, _)| *t == c).map_or(c, |(_, s)| *s)
}

/// Whether the words just before a phrase negate it.
fn negated(before: &str) -> bool {
    let tail: String = before.chars().rev().take(2).collect();
    tail.contains(['不', '没', '沒', '别', '無', '无'])
}

/// Classify one piece of feedback from its text, its 1–5 rating and its
/// 0–10 NPS answer (either may be absent).
pub fn classify(
    rules: &ClassifierRules,
    text: &str,
    rating: Option<u8>,
    nps: Option<u8>,
) -> Classification {
    let mut text = normalize(text);
    for name in &rules.ignore {
        let name = normalize(name);
        if !name.is_empty() {
            text = text.replace(&name, "·");
        }
    }
    let mut scores: Vec<(Category, u32)> = Vec::new();
    let mut reasons = Vec::new();
    let mut critical_hit: Option<String> = None;
    for rule in &rules.rules {
        if !rule.only_with.is_empty()
            && !rule.only_with.iter().any(|w| text.contains(&normalize(w)))
        {
            continue;
        }
        let hits: Vec<&String> = rule
            .phrases
            .iter()
            .filter(|p| {
                let p = normalize(p);
                // A negated phrase says the opposite ("不好吃" is no praise,
                // "一点不柴" no complaint) — except a critical one: "没有
                //头发吧？" is still worth a look.
                text.match_indices(&p)
                    .any(|(at, _)| rule.critical || !negated(&text[..at]))
            })
            .collect();
        if hits.is_empty() {
            continue;
        }
        if rule.critical && critical_hit.is_none() {
            critical_hit = Some(hits[0].clone());
        }
        let score = rule.weight * hits.len() as u32;
        match scores.iter_mut().find(|(c, _)| *c == rule.category) {
            Some((_, s)) => *s += score,
            None => scores.push((rule.category, score)),
        }
        let shown: Vec<&str> = hits.iter().take(3).map(|s| s.as_str()).collect();
        reasons.push(format!(
            "命中「{}」→ {}",
            shown.join("」「"),
            rule.category.chinese_name()
        ));
    }
    let low_rating = rating.is_some_and(|r| r <= 2) || nps.is_some_and(|n| n <= 4);
    let high_rating = rating.is_some_and(|r| r >= 4) || nps.is_some_and(|n| n >= 9);

    if let Some(phrase) = critical_hit {
        reasons.push(format!("「{phrase}」涉及食品安全或异物：一律严重"));
        return Classification {
            category: Category::FoodSafety,
            severity: Severity::Critical,
            reasons,
        };
    }

    // A complaint outweighs praise when both are present ("好吃但是太慢").
    let best_complaint = Category::ALL
        .into_iter()
        .filter(|c| *c != Category::Praise)
        .filter_map(|c| scores.iter().find(|(k, _)| *k == c).copied())
        .fold(None::<(Category, u32)>, |best, (c, s)| match best {
            Some((_, bs)) if bs >= s => best,
            _ => Some((c, s)),
        });
    let praise = scores
        .iter()
        .find(|(c, _)| *c == Category::Praise)
        .map_or(0, |(_, s)| *s);
    let category = match best_complaint {
        Some((c, s)) if !(high_rating && praise > s) => c,
        _ if praise > 0 && !low_rating => Category::Praise,
        _ if high_rating && !low_rating => Category::Praise,
        _ => Category::Other,
    };
    if category == Category::Praise {
        reasons.push(match rating {
            Some(r) => format!("评分 {r} 星，内容为表扬"),
            None => "内容为表扬".to_string(),
        });
        return Classification {
            category,
            severity: Severity::None,
            reasons,
        };
    }
    let mut severity = match (rating, nps) {
        (Some(1), _) => Severity::High,
        (Some(2), _) => Severity::Medium,
        (Some(3), _) => Severity::Low,
        (Some(_), _) => Severity::Low,
        (None, Some(n)) if n <= 3 => Severity::High,
        (None, Some(n)) if n <= 6 => Severity::Medium,
        (None, Some(_)) => Severity::Low,
        (None, None) => Severity::Medium,
    };
    // A question or suggestion, not an unhappy guest.
    if category == Category::Other && !low_rating {
        severity = Severity::Low;
    }
    reasons.push(match (rating, nps) {
        (Some(r), _) => format!("评分 {r} 星 → {}", severity.as_str()),
        (None, Some(n)) => format!("NPS {n} → {}", severity.as_str()),
        (None, None) => format!("无评分 → {}", severity.as_str()),
    });
    if let Some(word) = rules
        .escalators
        .iter()
        .find(|w| text.contains(&normalize(w)))
    {
        severity = severity.raised();
        reasons.push(format!("「{word}」→ 升级为 {}", severity.as_str()));
    }
    Classification {
        category,
        severity,
        reasons,
    }
}

/// Photos a guest may attach: at most three, 2 MiB each, JPEG, PNG or WebP
/// as the bytes say (a name or a declared type proves nothing).
pub const MAX_PHOTOS: usize = 3;
pub const MAX_PHOTO_BYTES: usize = 2 * 1024 * 1024;

/// The image type the bytes are, if it is one we keep.
pub fn photo_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some("image/png")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Check one photo (the `n`th, from 1): its size and its real type.
pub fn check_photo(n: usize, bytes: &[u8]) -> Result<&'static str> {
    if bytes.is_empty() {
        return Err(DomainError::invalid("photo", format!("photo {n} is empty")));
    }
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(DomainError::invalid(
            "photo",
            format!(
                "photo {n} is {} KiB; at most {} KiB",
                bytes.len() / 1024,
                MAX_PHOTO_BYTES / 1024
            ),
        ));
    }
    photo_type(bytes).ok_or_else(|| {
        DomainError::invalid(
            "photo",
            format!("photo {n} is not a JPEG, PNG or WebP image"),
        )
    })
}

/// A table number as printed on a QR code: 1–16 letters, digits or `-`.
pub fn valid_table(table: &str) -> bool {
    (1..=16).contains(&table.len()) && table.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(text: &str, rating: Option<u8>) -> Classification {
        classify(&ClassifierRules::default(), text, rating, None)
    }

    #[test]
    fn foreign_objects_and_illness_are_always_critical_food_safety() {
        for text in [
            "毛肚里吃出一根头发",
            "汤里飘着一只苍蝇",
            "吃完回家就拉肚子了",
            "虾滑有股馊味",
        ] {
            let got = c(text, Some(5));
            assert_eq!(got.category, Category::FoodSafety, "{text}");
            assert_eq!(got.severity, Severity::Critical, "{text}");
            assert!(
                got.reasons.iter().any(|r| r.contains("食品安全")),
                "{got:?}"
            );
        }
    }

    #[test]
    fn rating_sets_severity_and_threats_raise_it() {
        assert_eq!(c("上菜太慢了", Some(3)).severity, Severity::Low);
        assert_eq!(c("上菜太慢了", Some(1)).severity, Severity::High);
        let threat = c("服务员态度太差，我要投诉到12315", Some(2));
        assert_eq!(threat.category, Category::ServiceAttitude);
        assert_eq!(threat.severity, Severity::High);
    }

    #[test]
    fn praise_has_no_severity_and_complaints_outweigh_it() {
        let p = c("锅底很好吃，服务很周到，还会再来", Some(5));
        assert_eq!((p.category, p.severity), (Category::Praise, Severity::None));
        let mixed = c("好吃是好吃，就是等了一个小时才上菜", Some(3));
        assert_eq!(mixed.category, Category::WaitingTime);
    }

    #[test]
    fn full_width_and_spaces_do_not_hide_a_phrase() {
        assert_eq!(
            c("Ｆｏｏｄ ｐｏｉｓｏｎｉｎｇ after dinner", None).severity,
            Severity::Critical
        );
        assert_eq!(c("头 发", None).category, Category::FoodSafety);
    }

    #[test]
    fn photos_are_judged_by_their_bytes() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 0];
        assert_eq!(check_photo(1, &jpeg), Ok("image/jpeg"));
        assert!(check_photo(1, b"MZ\x90\x00 not an image").is_err());
        assert!(check_photo(2, &[]).is_err());
        let mut big = vec![0xFF, 0xD8, 0xFF];
        big.resize(MAX_PHOTO_BYTES + 1, 0);
        assert!(check_photo(3, &big).is_err());
        assert!(valid_table("A12") && !valid_table("") && !valid_table("a/b"));
    }

    #[test]
    fn staff_edited_rules_are_checked() {
        let mut r = ClassifierRules::default();
        assert!(r.rules.len() > 10, "the default rules file parses");
        assert!(r.validate().is_ok());
        r.rules.retain(|x| !x.critical);
        assert!(r.validate().is_err(), "food safety must stay critical");
        let mut r = ClassifierRules::default();
        let hygiene = r.rules.iter().position(|x| x.category == Category::Hygiene);
        r.rules[hygiene.unwrap()].critical = true;
        assert!(r.validate().is_err());
    }
}
