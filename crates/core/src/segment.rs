//! The segments language: member filters written by headquarters marketing,
//! such as
//!
//! ```text
//! tier >= gold and days_since_visit > 60 and city = "成都" and tag = "辣"
//! (lifecycle in [dormant, churned] or p_alive < 0.3) and not consent_sms = false
//! ```
//!
//! [`parse`] turns the text into a typed [`Expr`] (every value is checked
//! against its field's [`Kind`]); [`to_sql`] compiles an `Expr` into one
//! portable SQL condition with bound values (`$1`, `$2`, …, never spliced);
//! [`matches`] evaluates it for one member in memory. `docs/segments.md` is the
//! guide for marketing staff.
//!
//! Decisions:
//!
//! - **NULL is unknown, with SQL's three-valued logic**, in SQL and in
//!   [`matches`] alike: a comparison on a field the member has no value for is
//!   unknown; `not unknown` is unknown; `and`/`or` are Kleene (`false and
//!   unknown` is false, `true or unknown` is true); a member is selected only
//!   when the whole filter is true. So `not r_score >= 4` does not select a
//!   member who has no `r_score` yet. Tags are never unknown: a member without
//!   tags simply has none (`tag != "辣"` selects them).
//! - **`rfm` is an integer 111..=555**, the three 1–5 scores R, F, M as
//!   decimal digits. With `=`, `!=` and `in` every digit must be 1–5; with
//!   `<`, `<=`, `>`, `>=` any number from 111 to 555 is accepted (`rfm >= 500`
//!   means "R score 5").
//! - Ordered enums (`tier`, `churn_risk`, `age_group`) compare by rank: in SQL
//!   `tier >= gold` becomes `tier IN ('gold', 'black_gold')` (bound), and a
//!   comparison no value satisfies (`tier > black_gold`) becomes
//!   `(col <> col)`: false for a member with a tier, unknown without one.
//! - `gender`, `age_group` and `source_channel` are enums with the values the
//!   member module stores (`crates/core/src/member.rs`), so a typo is an
//!   error rather than a filter that silently selects nobody.
//! - Integer fields with a natural range (scores, `rfm`, `birthday_month`,
//!   `spice_level`) and `p_alive` (0–1) reject values outside it.

use serde::{Serialize, Serializer};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Longest accepted input, in characters.
pub const MAX_INPUT_CHARS: usize = 4000;
/// Deepest nesting of brackets and `not`.
pub const MAX_DEPTH: usize = 32;
/// Most comparisons (`field op value` or `field in [...]`) in one segment.
pub const MAX_COMPARISONS: usize = 200;
/// Most values in one `in [...]` list.
pub const MAX_IN_VALUES: usize = 500;

// ---------------------------------------------------------------------------
// Fields
// ---------------------------------------------------------------------------

/// A member attribute a segment can filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Tier,
    Grade,
    Vip,
    Lifecycle,
    RScore,
    FScore,
    MScore,
    Rfm,
    DaysSinceVisit,
    Visits12m,
    Spend12mFen,
    ClvFen,
    PointsBalance,
    BirthdayMonth,
    PAlive,
    ChurnRisk,
    City,
    Region,
    Store,
    AgeGroup,
    Gender,
    Tag,
    SpiceLevel,
    SourceChannel,
    ConsentSms,
    ConsentEmail,
    ConsentWechat,
}

/// What values a field holds, and so which operators and values it takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Whole numbers, optionally limited to `min..=max`.
    Int { min: Option<i64>, max: Option<i64> },
    /// Numbers (whole or decimal) in `min..=max`.
    Float { min: f64, max: f64 },
    /// `true` or `false` (stored as BIGINT 0/1).
    Bool,
    /// Free text, compared exactly (case-sensitive).
    Text,
    /// One of `values` (canonical names, in rank order when `ordered`).
    Enum {
        values: &'static [&'static str],
        ordered: bool,
    },
    /// A set of texts (a member's tags): `=` means "has", `!=` "has not".
    Set,
}

const TIERS: &[&str] = &["regular", "silver", "gold", "black_gold"];
const GRADES: &[&str] = &["loyal", "potential", "ordinary"];
const LIFECYCLES: &[&str] = &[
    "potential",
    "new",
    "active",
    "dormant",
    "churned",
    "reactivated",
];
const CHURN_RISKS: &[&str] = &["low", "medium", "high"];
const AGE_GROUPS: &[&str] = &["under_18", "18_24", "25_34", "35_44", "45_54", "55_plus"];
const GENDERS: &[&str] = &["female", "male", "other", "unknown"];
const SOURCE_CHANNELS: &[&str] = &["pos", "h5", "wechat", "app", "import", "console"];

/// Other spellings accepted for enum values: (field, spelling, canonical).
/// Spellings are matched after lower-casing and turning `-` into `_`.
const ENUM_ALIASES: &[(Field, &str, &str)] = &[
    (Field::Tier, "普通", "regular"),
    (Field::Tier, "银卡", "silver"),
    (Field::Tier, "金卡", "gold"),
    (Field::Tier, "黑金", "black_gold"),
    (Field::Tier, "blackgold", "black_gold"),
    (Field::Lifecycle, "潜在", "potential"),
    (Field::Lifecycle, "新客", "new"),
    (Field::Lifecycle, "活跃", "active"),
    (Field::Lifecycle, "沉睡", "dormant"),
    (Field::Lifecycle, "流失", "churned"),
    (Field::Lifecycle, "回流", "reactivated"),
    (Field::ChurnRisk, "低", "low"),
    (Field::ChurnRisk, "中", "medium"),
    (Field::ChurnRisk, "高", "high"),
    (Field::AgeGroup, "under18", "under_18"),
    (Field::AgeGroup, "<18", "under_18"),
    (Field::AgeGroup, "55+", "55_plus"),
    (Field::AgeGroup, "55plus", "55_plus"),
    (Field::Gender, "女", "female"),
    (Field::Gender, "男", "male"),
];

struct Def {
    name: &'static str,
    kind: Kind,
    label_zh: &'static str,
    /// Chinese words a user may type instead of the field name (for hints).
    zh_terms: &'static [&'static str],
    /// "a tier": used in "\"platinum\" is not a tier".
    noun: &'static str,
    description: &'static str,
    example: &'static str,
}

const UNBOUNDED: Kind = Kind::Int {
    min: None,
    max: None,
};
const SCORE: Kind = Kind::Int {
    min: Some(1),
    max: Some(5),
};

/// One entry per field, in the order of `Field::ALL` (checked by a test).
const DEFS: [Def; 27] = [
    Def {
        name: "tier",
        kind: Kind::Enum {
            values: TIERS,
            ordered: true,
        },
        label_zh: "会员等级",
        zh_terms: &["等级", "会员等级", "卡等级"],
        noun: "a tier",
        description: "Membership tier, ordered regular < silver < gold < black_gold (普通 < 银卡 < 金卡 < 黑金).",
        example: "tier >= gold",
    },
    Def {
        name: "grade",
        kind: Kind::Enum {
            values: GRADES,
            ordered: false,
        },
        label_zh: "客户分级",
        zh_terms: &["分级", "客户分级"],
        noun: "a grade",
        description: "Customer grade from the value model: loyal, potential or ordinary.",
        example: "grade = loyal",
    },
    Def {
        name: "vip",
        kind: Kind::Bool,
        label_zh: "VIP",
        zh_terms: &["贵宾"],
        noun: "true or false",
        description: "Marked as a VIP by staff.",
        example: "vip = true",
    },
    Def {
        name: "lifecycle",
        kind: Kind::Enum {
            values: LIFECYCLES,
            ordered: false,
        },
        label_zh: "生命周期",
        zh_terms: &["生命周期", "阶段"],
        noun: "a lifecycle stage",
        description: "Lifecycle stage: potential, new, active, dormant, churned or reactivated.",
        example: "lifecycle in [dormant, churned]",
    },
    Def {
        name: "r_score",
        kind: SCORE,
        label_zh: "R分（最近消费）",
        zh_terms: &["R分"],
        noun: "a score",
        description: "Recency score 1–5 (5 = visited most recently).",
        example: "r_score >= 4",
    },
    Def {
        name: "f_score",
        kind: SCORE,
        label_zh: "F分（消费频次）",
        zh_terms: &["F分"],
        noun: "a score",
        description: "Frequency score 1–5 (5 = visits most often).",
        example: "f_score >= 4",
    },
    Def {
        name: "m_score",
        kind: SCORE,
        label_zh: "M分（消费金额）",
        zh_terms: &["M分"],
        noun: "a score",
        description: "Monetary score 1–5 (5 = spends the most).",
        example: "m_score = 5",
    },
    Def {
        name: "rfm",
        kind: Kind::Int {
            min: Some(111),
            max: Some(555),
        },
        label_zh: "RFM组合",
        zh_terms: &["RFM"],
        noun: "an RFM code",
        description: "The three scores as one number, R then F then M: 555 is the best, 111 the least.",
        example: "rfm in [555, 554, 545]",
    },
    Def {
        name: "days_since_visit",
        kind: UNBOUNDED,
        label_zh: "距上次到店天数",
        zh_terms: &["未到店天数", "距上次到店天数", "沉睡天数"],
        noun: "a number",
        description: "Days since the last visit.",
        example: "days_since_visit > 60",
    },
    Def {
        name: "visits_12m",
        kind: UNBOUNDED,
        label_zh: "近12个月到店次数",
        zh_terms: &["到店次数", "消费次数"],
        noun: "a number",
        description: "Visits in the last 12 months.",
        example: "visits_12m >= 6",
    },
    Def {
        name: "spend_12m_fen",
        kind: UNBOUNDED,
        label_zh: "近12个月消费（分）",
        zh_terms: &["消费金额", "近12个月消费"],
        noun: "a number",
        description: "Spend in the last 12 months, in fen (¥1 = 100).",
        example: "spend_12m_fen >= 500000",
    },
    Def {
        name: "clv_fen",
        kind: UNBOUNDED,
        label_zh: "客户终身价值（分）",
        zh_terms: &["终身价值", "CLV"],
        noun: "a number",
        description: "Predicted customer lifetime value, in fen.",
        example: "clv_fen >= 1000000",
    },
    Def {
        name: "points_balance",
        kind: UNBOUNDED,
        label_zh: "积分余额",
        zh_terms: &["积分", "积分余额"],
        noun: "a number",
        description: "Points the member can spend now.",
        example: "points_balance >= 1000",
    },
    Def {
        name: "birthday_month",
        kind: Kind::Int {
            min: Some(1),
            max: Some(12),
        },
        label_zh: "生日月份",
        zh_terms: &["生日", "生日月份"],
        noun: "a month",
        description: "Month of the birthday, 1–12.",
        example: "birthday_month = 3",
    },
    Def {
        name: "p_alive",
        kind: Kind::Float { min: 0.0, max: 1.0 },
        label_zh: "存活概率",
        zh_terms: &["存活概率", "活跃概率"],
        noun: "a probability",
        description: "Probability (0–1) the member is still a customer (BG/NBD).",
        example: "p_alive < 0.3",
    },
    Def {
        name: "churn_risk",
        kind: Kind::Enum {
            values: CHURN_RISKS,
            ordered: true,
        },
        label_zh: "流失风险",
        zh_terms: &["流失风险"],
        noun: "a churn risk level",
        description: "Churn risk, ordered low < medium < high (低 < 中 < 高).",
        example: "churn_risk >= medium",
    },
    Def {
        name: "city",
        kind: Kind::Text,
        label_zh: "城市",
        zh_terms: &["城市"],
        noun: "a city",
        description: "The member's city, as stored (e.g. \"成都\").",
        example: "city = \"成都\"",
    },
    Def {
        name: "region",
        kind: Kind::Text,
        label_zh: "区域",
        zh_terms: &["区域", "大区"],
        noun: "a region",
        description: "Region of the member's home store, as stored.",
        example: "region = \"华西\"",
    },
    Def {
        name: "store",
        kind: Kind::Text,
        label_zh: "归属门店",
        zh_terms: &["门店", "归属门店"],
        noun: "a store code",
        description: "Code of the member's home store (case-sensitive, e.g. \"CD-01\").",
        example: "store in [\"CD-01\", \"CD-02\"]",
    },
    Def {
        name: "age_group",
        kind: Kind::Enum {
            values: AGE_GROUPS,
            ordered: true,
        },
        label_zh: "年龄段",
        zh_terms: &["年龄段", "年龄"],
        noun: "an age group",
        description: "Age group, ordered under_18 < 18_24 < 25_34 < 35_44 < 45_54 < 55_plus (\"25-34\" is accepted too).",
        example: "age_group in [\"25-34\", \"35-44\"]",
    },
    Def {
        name: "gender",
        kind: Kind::Enum {
            values: GENDERS,
            ordered: false,
        },
        label_zh: "性别",
        zh_terms: &["性别"],
        noun: "a gender",
        description: "female, male, other or unknown (女 / 男 accepted).",
        example: "gender = female",
    },
    Def {
        name: "tag",
        kind: Kind::Set,
        label_zh: "标签",
        zh_terms: &["标签"],
        noun: "a tag",
        description: "Member tags: `tag = \"辣\"` has the tag, `tag != \"辣\"` has not, `tag in [...]` has any of them.",
        example: "tag = \"辣\"",
    },
    Def {
        name: "spice_level",
        kind: Kind::Int {
            min: Some(0),
            max: Some(5),
        },
        label_zh: "辣度偏好",
        zh_terms: &["辣度", "辣度偏好"],
        noun: "a spice level",
        description: "Preferred spice level 0–5 (0 不辣, 1 微辣, 2 中辣, 3 特辣, 4 变态辣).",
        example: "spice_level >= 2",
    },
    Def {
        name: "source_channel",
        kind: Kind::Enum {
            values: SOURCE_CHANNELS,
            ordered: false,
        },
        label_zh: "注册来源",
        zh_terms: &["来源", "注册来源", "渠道"],
        noun: "a source channel",
        description: "Where the member signed up: pos, h5, wechat, app, import or console.",
        example: "source_channel = wechat",
    },
    Def {
        name: "consent_sms",
        kind: Kind::Bool,
        label_zh: "短信营销授权",
        zh_terms: &["短信授权"],
        noun: "true or false",
        description: "Agreed to marketing by SMS.",
        example: "consent_sms = true",
    },
    Def {
        name: "consent_email",
        kind: Kind::Bool,
        label_zh: "邮件营销授权",
        zh_terms: &["邮件授权"],
        noun: "true or false",
        description: "Agreed to marketing by e-mail.",
        example: "consent_email = true",
    },
    Def {
        name: "consent_wechat",
        kind: Kind::Bool,
        label_zh: "微信营销授权",
        zh_terms: &["微信授权"],
        noun: "true or false",
        description: "Agreed to marketing on WeChat.",
        example: "consent_wechat = true",
    },
];

impl Field {
    pub const ALL: [Field; 27] = [
        Field::Tier,
        Field::Grade,
        Field::Vip,
        Field::Lifecycle,
        Field::RScore,
        Field::FScore,
        Field::MScore,
        Field::Rfm,
        Field::DaysSinceVisit,
        Field::Visits12m,
        Field::Spend12mFen,
        Field::ClvFen,
        Field::PointsBalance,
        Field::BirthdayMonth,
        Field::PAlive,
        Field::ChurnRisk,
        Field::City,
        Field::Region,
        Field::Store,
        Field::AgeGroup,
        Field::Gender,
        Field::Tag,
        Field::SpiceLevel,
        Field::SourceChannel,
        Field::ConsentSms,
        Field::ConsentEmail,
        Field::ConsentWechat,
    ];

    fn def(self) -> &'static Def {
        // `DEFS` has one entry per variant, in declaration order.
        &DEFS[self as usize]
    }

    /// The name used in the language (ASCII snake_case).
    pub fn name(self) -> &'static str {
        self.def().name
    }

    pub fn kind(self) -> Kind {
        self.def().kind
    }

    /// The Chinese label for the console.
    pub fn label_zh(self) -> &'static str {
        self.def().label_zh
    }

    pub fn description(self) -> &'static str {
        self.def().description
    }

    /// The field of a name, case-insensitively.
    pub fn parse(name: &str) -> Option<Field> {
        Field::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// Whether `field op value` is allowed for this field.
    pub fn allows(self, op: Op) -> bool {
        match self.kind() {
            Kind::Int { .. } | Kind::Float { .. } | Kind::Enum { ordered: true, .. } => true,
            Kind::Bool | Kind::Text | Kind::Enum { ordered: false, .. } | Kind::Set => {
                matches!(op, Op::Eq | Op::Ne)
            }
        }
    }

    /// Whether `field in [...]` is allowed for this field.
    pub fn allows_in(self) -> bool {
        !matches!(self.kind(), Kind::Bool)
    }

    /// The operators this field takes, as written.
    pub fn operators(self) -> Vec<&'static str> {
        let mut ops: Vec<&'static str> = Op::ALL
            .into_iter()
            .filter(|op| self.allows(*op))
            .map(Op::as_str)
            .collect();
        if self.allows_in() {
            ops.extend(["in", "not in"]);
        }
        ops
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One field described for the console's segment builder.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldInfo {
    pub name: String,
    /// `int`, `float`, `bool`, `text`, `enum` or `set`.
    pub kind: String,
    /// Enums only: values compare by rank with `<`, `<=`, `>`, `>=`.
    pub ordered: bool,
    /// Enums: the allowed values (in rank order when ordered); `true`/`false`
    /// for bools; empty otherwise.
    pub values: Vec<String>,
    /// Smallest accepted number, when limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest accepted number, when limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Operators as written: `=`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `not in`.
    pub operators: Vec<String>,
    pub label_zh: String,
    pub description: String,
    /// A filter using the field, which parses.
    pub example: String,
}

/// Every field, for the console's segment builder.
pub fn catalogue() -> Vec<FieldInfo> {
    Field::ALL
        .into_iter()
        .map(|field| {
            let def = field.def();
            let (kind, ordered, values, min, max) = match def.kind {
                Kind::Int { min, max } => (
                    "int",
                    false,
                    vec![],
                    min.map(|v| v as f64),
                    max.map(|v| v as f64),
                ),
                Kind::Float { min, max } => ("float", false, vec![], Some(min), Some(max)),
                Kind::Bool => (
                    "bool",
                    false,
                    vec!["true".to_string(), "false".to_string()],
                    None,
                    None,
                ),
                Kind::Text => ("text", false, vec![], None, None),
                Kind::Enum { values, ordered } => (
                    "enum",
                    ordered,
                    values.iter().map(|v| v.to_string()).collect(),
                    None,
                    None,
                ),
                Kind::Set => ("set", false, vec![], None, None),
            };
            FieldInfo {
                name: def.name.to_string(),
                kind: kind.to_string(),
                ordered,
                values,
                min,
                max,
                operators: field.operators().into_iter().map(String::from).collect(),
                label_zh: def.label_zh.to_string(),
                description: def.description.to_string(),
                example: def.example.to_string(),
            }
        })
        .collect()
}

/// The canonical value of an enum field written `text` (any case, `-` for
/// `_`, or one of the aliases), if it is one.
fn enum_value(field: Field, text: &str) -> Option<&'static str> {
    let Kind::Enum { values, .. } = field.kind() else {
        return None;
    };
    let norm = text.trim().to_lowercase().replace('-', "_");
    values.iter().copied().find(|v| *v == norm).or_else(|| {
        ENUM_ALIASES
            .iter()
            .find(|(f, alias, _)| *f == field && *alias == norm)
            .map(|(_, _, canonical)| *canonical)
    })
}

// ---------------------------------------------------------------------------
// The tree
// ---------------------------------------------------------------------------

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Op {
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

impl Op {
    pub const ALL: [Op; 6] = [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge];

    /// As written in the language.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Op::Ne => "<>",
            other => other.as_str(),
        }
    }

    /// `<`, `<=`, `>` or `>=`.
    pub fn is_ordering(self) -> bool {
        matches!(self, Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }

    /// Whether `a op b` holds when `a.cmp(b)` is `ord`.
    pub fn holds(self, ord: Ordering) -> bool {
        match self {
            Op::Eq => ord == Ordering::Equal,
            Op::Ne => ord != Ordering::Equal,
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Gt => ord == Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A checked value. [`parse`] gives int fields `Int`, `p_alive` `Float`, bool
/// fields `Bool`, text fields and `tag` `Text`, enum fields `Enum` (the
/// canonical name).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    Enum(&'static str),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            // Rust prints the shortest decimal that reads back as the same
            // f64, and never in exponent notation.
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Enum(name) => f.write_str(name),
            Value::Text(text) => {
                f.write_str("\"")?;
                for c in text.chars() {
                    if c == '"' || c == '\\' {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str("\"")
            }
        }
    }
}

/// A parsed segment. [`parse`] makes `And`/`Or` of two or more items only and
/// keeps the grouping written with brackets (`(a and b) and c` stays nested).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        field: Field,
        op: Op,
        value: Value,
    },
    In {
        field: Field,
        values: Vec<Value>,
        negated: bool,
    },
}

impl Expr {
    /// The fields the segment uses (to know which tables a query must join).
    pub fn fields(&self) -> BTreeSet<Field> {
        let mut out = BTreeSet::new();
        self.collect_fields(&mut out);
        out
    }

    fn collect_fields(&self, out: &mut BTreeSet<Field>) {
        match self {
            Expr::And(items) | Expr::Or(items) => {
                items.iter().for_each(|e| e.collect_fields(out));
            }
            Expr::Not(inner) => inner.collect_fields(out),
            Expr::Compare { field, .. } | Expr::In { field, .. } => {
                out.insert(*field);
            }
        }
    }
}

/// The canonical form: keywords in lower case, one space around operators,
/// text always quoted, enum values bare, brackets only where needed (plus
/// where the tree nests an `and` in an `and` or an `or` in an `or`). It parses
/// back to the same tree. An `And`/`Or` with no items prints as nothing.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn item(f: &mut fmt::Formatter<'_>, e: &Expr, bracket: bool) -> fmt::Result {
            if bracket {
                write!(f, "({e})")
            } else {
                write!(f, "{e}")
            }
        }
        match self {
            Expr::And(items) => {
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    item(f, e, matches!(e, Expr::And(_) | Expr::Or(_)))?;
                }
                Ok(())
            }
            Expr::Or(items) => {
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    let bracket = match e {
                        Expr::Or(_) => true,
                        Expr::And(inner) => inner.len() < 2,
                        _ => false,
                    };
                    item(f, e, bracket)?;
                }
                Ok(())
            }
            Expr::Not(inner) => {
                f.write_str("not ")?;
                item(f, inner, matches!(**inner, Expr::And(_) | Expr::Or(_)))
            }
            Expr::Compare { field, op, value } => write!(f, "{field} {op} {value}"),
            Expr::In {
                field,
                values,
                negated,
            } => {
                write!(f, "{field} {}in [", if *negated { "not " } else { "" })?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// For an ordered enum field and `<`, `<=`, `>` or `>=`: the values that
/// satisfy the comparison, in rank order (empty when none does, or when the
/// value is not one of the field's). `None` for every other comparison.
fn ordered_expansion(field: Field, op: Op, value: &Value) -> Option<Vec<&'static str>> {
    let Kind::Enum {
        values,
        ordered: true,
    } = field.kind()
    else {
        return None;
    };
    if !op.is_ordering() {
        return None;
    }
    let name = match value {
        Value::Enum(s) => Some(*s),
        Value::Text(s) => Some(s.as_str()),
        _ => None,
    };
    let Some(rank) = values.iter().position(|v| Some(*v) == name) else {
        return Some(Vec::new());
    };
    Some(
        values
            .iter()
            .enumerate()
            .filter(|(i, _)| op.holds(i.cmp(&rank)))
            .map(|(_, v)| *v)
            .collect(),
    )
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a segment was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error, utoipa::ToSchema)]
#[error("column {column}: {message}")]
pub struct ParseError {
    /// 0-based offset in characters (not bytes); at most the input's length.
    pub position: usize,
    /// 1-based column in characters: `position + 1`. A newline counts as one
    /// character like any other.
    pub column: usize,
    /// What would have been accepted there.
    pub expected: String,
    /// What was there instead (`end of input`, or the text quoted).
    pub found: String,
    /// The explanation, without the column.
    pub message: String,
}

impl ParseError {
    fn new(
        position: usize,
        expected: impl Into<String>,
        found: impl Into<String>,
        message: impl Into<String>,
    ) -> ParseError {
        ParseError {
            position,
            column: position + 1,
            expected: expected.into(),
            found: found.into(),
            message: message.into(),
        }
    }

    /// "expected X, found Y" at a token.
    fn unexpected(tok: &Tok, expected: &str) -> ParseError {
        let found = tok.describe();
        let message = format!("expected {expected}, found {found}");
        ParseError::new(tok.start, expected, found, message)
    }
}

// ---------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum TokKind {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Op(Op),
    And,
    Or,
    Not,
    In,
    /// A bare word: field names, enum values, numbers, unquoted text.
    Word(String),
    /// A quoted string, unescaped.
    Str(String),
    End,
}

#[derive(Debug, Clone)]
struct Tok {
    kind: TokKind,
    /// Offset of the first character, in characters.
    start: usize,
    /// The source text of the token.
    raw: String,
}

impl Tok {
    fn describe(&self) -> String {
        if self.kind == TokKind::End {
            return "end of input".to_string();
        }
        let mut raw: String = self.raw.chars().take(40).collect();
        if self.raw.chars().nth(40).is_some() {
            raw.push('…');
        }
        if matches!(self.kind, TokKind::Str(_)) {
            raw
        } else {
            format!("\"{raw}\"")
        }
    }
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '+')
}

impl Lexer {
    fn at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    fn raw(&self, start: usize) -> String {
        self.chars
            .get(start..self.pos)
            .map(|s| s.iter().collect())
            .unwrap_or_default()
    }

    fn next_token(&mut self) -> Result<Tok, ParseError> {
        while self.at(self.pos).is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(c) = self.at(start) else {
            return Ok(Tok {
                kind: TokKind::End,
                start,
                raw: String::new(),
            });
        };
        let next = self.at(start + 1);
        let (kind, len) = match (c, next) {
            ('(' | '（', _) => (TokKind::LParen, 1),
            (')' | '）', _) => (TokKind::RParen, 1),
            ('[', _) => (TokKind::LBracket, 1),
            (']', _) => (TokKind::RBracket, 1),
            (',' | '，', _) => (TokKind::Comma, 1),
            ('=', Some('=')) => (TokKind::Op(Op::Eq), 2),
            ('=', _) => (TokKind::Op(Op::Eq), 1),
            ('!', Some('=')) => (TokKind::Op(Op::Ne), 2),
            ('!', _) => (TokKind::Not, 1),
            ('<', Some('=')) => (TokKind::Op(Op::Le), 2),
            ('<', Some('>')) => (TokKind::Op(Op::Ne), 2),
            ('<', _) => (TokKind::Op(Op::Lt), 1),
            ('>', Some('=')) => (TokKind::Op(Op::Ge), 2),
            ('>', _) => (TokKind::Op(Op::Gt), 1),
            ('≠', _) => (TokKind::Op(Op::Ne), 1),
            ('≤', _) => (TokKind::Op(Op::Le), 1),
            ('≥', _) => (TokKind::Op(Op::Ge), 1),
            ('&', Some('&')) => (TokKind::And, 2),
            ('|', Some('|')) => (TokKind::Or, 2),
            ('"', _) => return self.string('"'),
            ('\'', _) => return self.string('\''),
            ('“', _) => return self.string('”'),
            ('‘', _) => return self.string('’'),
            _ if c.is_alphanumeric()
                || c == '_'
                || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) =>
            {
                self.pos += 1;
                while self.at(self.pos).is_some_and(is_word_char) {
                    self.pos += 1;
                }
                let raw = self.raw(start);
                let kind = match raw.to_ascii_lowercase().as_str() {
                    "and" => TokKind::And,
                    "or" => TokKind::Or,
                    "not" => TokKind::Not,
                    "in" => TokKind::In,
                    _ => TokKind::Word(raw.clone()),
                };
                return Ok(Tok { kind, start, raw });
            }
            _ => {
                let found = format!("\"{c}\"");
                let message = format!(
                    "unexpected character {found}; expected a field, an operator, a value or a bracket{}",
                    match c {
                        '&' => " (write \"and\" or \"&&\")",
                        '|' => " (write \"or\" or \"||\")",
                        _ => "",
                    }
                );
                return Err(ParseError::new(
                    start,
                    "a field, an operator, a value or a bracket",
                    found,
                    message,
                ));
            }
        };
        self.pos += len;
        Ok(Tok {
            kind,
            start,
            raw: self.raw(start),
        })
    }

    /// A quoted string; the opening quote is at `self.pos`.
    fn string(&mut self, close: char) -> Result<Tok, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.at(self.pos) {
                None => {
                    let expected = format!("a closing {close}");
                    let message = format!(
                        "expected a closing {close} for the text opened at column {}, found end of input",
                        start + 1
                    );
                    return Err(ParseError::new(self.pos, expected, "end of input", message));
                }
                Some('\\') => match self.at(self.pos + 1) {
                    Some(e @ ('"' | '\\' | '\'' | '“' | '”' | '‘' | '’')) => {
                        text.push(e);
                        self.pos += 2;
                    }
                    Some(other) => {
                        let found = format!("\"\\{other}\"");
                        let message = format!(
                            "unknown escape {found}; inside quotes write \\\" for a quote and \\\\ for a backslash"
                        );
                        return Err(ParseError::new(self.pos, "\\\" or \\\\", found, message));
                    }
                    None => {
                        self.pos += 1;
                    }
                },
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(Tok {
                        kind: TokKind::Str(text),
                        start,
                        raw: self.raw(start),
                    });
                }
                Some(c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------

const EXPECT_START: &str = "a field name, \"not\" or \"(\"";
const EXPECT_OP: &str = "an operator (=, !=, <, <=, >, >=, in or not in)";

/// Parse and check a segment. Errors name the first problem from the left.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    let count = input.chars().count();
    if count > MAX_INPUT_CHARS {
        return Err(ParseError::new(
            MAX_INPUT_CHARS,
            format!("at most {MAX_INPUT_CHARS} characters"),
            format!("{count} characters"),
            format!("the segment is too long: {count} characters, at most {MAX_INPUT_CHARS}"),
        ));
    }
    let mut parser = Parser {
        lexer: Lexer {
            chars: input.chars().collect(),
            pos: 0,
        },
        peeked: None,
        depth: 0,
        comparisons: 0,
    };
    let expr = parser.parse_or()?;
    let tok = parser.bump()?;
    match tok.kind {
        TokKind::End => Ok(expr),
        TokKind::RParen => Err(ParseError::new(
            tok.start,
            "\"and\", \"or\" or end of input",
            tok.describe(),
            "\")\" has no matching \"(\"",
        )),
        _ => Err(ParseError::unexpected(
            &tok,
            "\"and\", \"or\" or end of input",
        )),
    }
}

struct Parser {
    lexer: Lexer,
    peeked: Option<Tok>,
    depth: usize,
    comparisons: usize,
}

impl Parser {
    fn peek(&mut self) -> Result<Tok, ParseError> {
        match &self.peeked {
            Some(tok) => Ok(tok.clone()),
            None => {
                let tok = self.lexer.next_token()?;
                self.peeked = Some(tok.clone());
                Ok(tok)
            }
        }
    }

    fn bump(&mut self) -> Result<Tok, ParseError> {
        match self.peeked.take() {
            Some(tok) => Ok(tok),
            None => self.lexer.next_token(),
        }
    }

    fn enter(&mut self, tok: &Tok) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::new(
                tok.start,
                format!("at most {MAX_DEPTH} levels of nesting"),
                tok.describe(),
                format!("too deeply nested: at most {MAX_DEPTH} levels of brackets and \"not\""),
            ));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Expr, ParseError> {
        let mut items = vec![self.parse_and()?];
        while self.peek()?.kind == TokKind::Or {
            self.bump()?;
            items.push(self.parse_and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn parse_and(&mut self) -> Result<Expr, ParseError> {
        let mut items = vec![self.parse_unary()?];
        while self.peek()?.kind == TokKind::And {
            self.bump()?;
            items.push(self.parse_unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn parse_unary(&mut self) -> Result<Expr, ParseError> {
        let tok = self.peek()?;
        match tok.kind {
            TokKind::Not => {
                self.bump()?;
                self.enter(&tok)?;
                let inner = self.parse_unary()?;
                self.depth -= 1;
                Ok(Expr::Not(Box::new(inner)))
            }
            TokKind::LParen => {
                self.bump()?;
                self.enter(&tok)?;
                let inner = self.parse_or()?;
                let close = self.bump()?;
                if close.kind != TokKind::RParen {
                    let expected = "\"and\", \"or\" or \")\"";
                    let found = close.describe();
                    let message = format!(
                        "expected {expected} to close the \"(\" at column {}, found {found}",
                        tok.start + 1
                    );
                    return Err(ParseError::new(close.start, expected, found, message));
                }
                self.depth -= 1;
                Ok(inner)
            }
            TokKind::Word(_) => self.parse_comparison(),
            _ => Err(ParseError::unexpected(&tok, EXPECT_START)),
        }
    }

    fn parse_comparison(&mut self) -> Result<Expr, ParseError> {
        let tok = self.bump()?;
        let TokKind::Word(word) = &tok.kind else {
            return Err(ParseError::unexpected(&tok, EXPECT_START));
        };
        let Some(field) = Field::parse(word) else {
            return Err(unknown_field(&tok, word));
        };
        self.comparisons += 1;
        if self.comparisons > MAX_COMPARISONS {
            return Err(ParseError::new(
                tok.start,
                format!("at most {MAX_COMPARISONS} comparisons"),
                tok.describe(),
                format!("too many comparisons: at most {MAX_COMPARISONS}"),
            ));
        }
        let op_tok = self.bump()?;
        match op_tok.kind {
            TokKind::Op(op) => {
                if !field.allows(op) {
                    return Err(op_not_allowed(field, &op_tok));
                }
                let value_tok = self.bump()?;
                let value = value_of(field, op, &value_tok, &op_tok.raw)?;
                Ok(Expr::Compare { field, op, value })
            }
            TokKind::In => self.parse_list(field, false, &op_tok),
            TokKind::Not => {
                let in_tok = self.bump()?;
                if in_tok.kind != TokKind::In {
                    return Err(ParseError::unexpected(&in_tok, "\"in\" after \"not\""));
                }
                self.parse_list(field, true, &in_tok)
            }
            _ => {
                let found = op_tok.describe();
                let message = format!("expected {EXPECT_OP} after \"{field}\", found {found}");
                Err(ParseError::new(op_tok.start, EXPECT_OP, found, message))
            }
        }
    }

    fn parse_list(
        &mut self,
        field: Field,
        negated: bool,
        in_tok: &Tok,
    ) -> Result<Expr, ParseError> {
        if !field.allows_in() {
            return Err(op_not_allowed(field, in_tok));
        }
        let open = self.bump()?;
        let (close, close_text) = match open.kind {
            TokKind::LBracket => (TokKind::RBracket, "]"),
            TokKind::LParen => (TokKind::RParen, ")"),
            _ => {
                let found = open.describe();
                let message = format!("expected \"[\" after \"in\", found {found}");
                return Err(ParseError::new(open.start, "\"[\"", found, message));
            }
        };
        let mut values = Vec::new();
        let mut previous = open.raw.clone();
        loop {
            let tok = self.bump()?;
            if tok.kind == close && !values.is_empty() {
                break; // a trailing comma is fine
            }
            if values.len() >= MAX_IN_VALUES {
                return Err(ParseError::new(
                    tok.start,
                    format!("at most {MAX_IN_VALUES} values"),
                    tok.describe(),
                    format!("too many values in the list: at most {MAX_IN_VALUES}"),
                ));
            }
            values.push(value_of(field, Op::Eq, &tok, &previous)?);
            let sep = self.bump()?;
            if sep.kind == close {
                break;
            }
            if sep.kind != TokKind::Comma {
                return Err(ParseError::unexpected(
                    &sep,
                    &format!("\",\" or \"{close_text}\""),
                ));
            }
            previous = sep.raw.clone();
        }
        Ok(Expr::In {
            field,
            values,
            negated,
        })
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let delete = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let insert = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(substitute.min(delete).min(insert));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

/// The hint for an unknown field name: a field spelled alike, a field whose
/// name starts with the word, the field of a Chinese term, or the field an
/// enum value belongs to.
fn suggestion(word: &str) -> Option<String> {
    if word.chars().count() > 40 {
        return None;
    }
    let lower = word.to_lowercase();
    if let Some(f) = Field::ALL
        .into_iter()
        .find(|f| f.def().zh_terms.iter().any(|t| t.to_lowercase() == lower))
    {
        return Some(f.name().to_string());
    }
    let closest = Field::ALL
        .into_iter()
        .map(|f| (levenshtein(&lower, f.name()), f))
        .min_by_key(|(d, _)| *d);
    if let Some((d, f)) = closest {
        if d <= 2.max(f.name().len() / 3) && d < lower.chars().count() {
            return Some(f.name().to_string());
        }
    }
    if lower.len() >= 3 {
        if let Some(f) = Field::ALL
            .into_iter()
            .find(|f| f.name().starts_with(lower.as_str()))
        {
            return Some(f.name().to_string());
        }
    }
    Field::ALL
        .into_iter()
        .find_map(|f| enum_value(f, word).map(|v| format!("{f} = {v}")))
}

fn unknown_field(tok: &Tok, word: &str) -> ParseError {
    let found = tok.describe();
    let message = match suggestion(word) {
        Some(hint) => format!("unknown field {found}; did you mean \"{hint}\"?"),
        None => format!("unknown field {found}"),
    };
    ParseError::new(tok.start, "a field name", found, message)
}

fn op_not_allowed(field: Field, tok: &Tok) -> ParseError {
    let kind = match field.kind() {
        Kind::Bool => "true or false",
        Kind::Text => "text",
        Kind::Set => "tags",
        Kind::Enum { .. } => "not ordered",
        Kind::Int { .. } | Kind::Float { .. } => "a number",
    };
    let ops = field.operators();
    let expected = match ops.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => ops.join(", "),
    };
    let found = tok.describe();
    let message = format!("{found} cannot be used with {field} ({kind}); use {expected}");
    ParseError::new(tok.start, expected, found, message)
}

/// A number as written: optional `-`, digits (with `_` separators allowed
/// between them), optional `.digits`. Returns the cleaned text and whether it
/// has a fraction.
fn number_text(text: &str) -> Option<(String, bool)> {
    let (sign, body) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let (int_part, frac) = match body.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (body, None),
    };
    if !int_part.starts_with(|c: char| c.is_ascii_digit())
        || !int_part.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let digits: String = int_part.chars().filter(|c| *c != '_').collect();
    match frac {
        None => Some((format!("{sign}{digits}"), false)),
        Some(f) if !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()) => {
            Some((format!("{sign}{digits}.{f}"), true))
        }
        Some(_) => None,
    }
}

/// Check the value token `tok` against `field` (used with `op`, or in a list
/// when `op` is `=`); `after` is the text of the token before it.
fn value_of(field: Field, op: Op, tok: &Tok, after: &str) -> Result<Value, ParseError> {
    let (text, quoted) = match &tok.kind {
        TokKind::Word(w) => (w.as_str(), false),
        TokKind::Str(s) => (s.as_str(), true),
        _ => {
            let found = tok.describe();
            let message = format!("expected a value after \"{after}\", found {found}");
            return Err(ParseError::new(tok.start, "a value", found, message));
        }
    };
    let found = tok.describe();
    let wrong = |expected: String| {
        let message = format!("expected {expected} for {field}, found {found}");
        ParseError::new(tok.start, expected, found.clone(), message)
    };
    match field.kind() {
        Kind::Int { min, max } => {
            let whole = "a whole number".to_string();
            let Some((clean, fraction)) = number_text(text).filter(|_| !quoted) else {
                return Err(wrong(whole));
            };
            if fraction {
                return Err(wrong(whole));
            }
            let Ok(n) = clean.parse::<i64>() else {
                let message = format!(
                    "{found} is too large a number; whole numbers go from {} to {}",
                    i64::MIN,
                    i64::MAX
                );
                return Err(ParseError::new(tok.start, whole, found.clone(), message));
            };
            if field == Field::Rfm
                && !op.is_ordering()
                && !clean.chars().all(|c| ('1'..='5').contains(&c))
            {
                return Err(wrong(
                    "three digits 1 to 5 (the R, F and M scores, like 555)".to_string(),
                ));
            }
            if let (Some(lo), Some(hi)) = (min, max) {
                if !(lo..=hi).contains(&n) {
                    return Err(wrong(format!("a number from {lo} to {hi}")));
                }
            }
            Ok(Value::Int(n))
        }
        Kind::Float { min, max } => {
            let Some((clean, _)) = number_text(text).filter(|_| !quoted) else {
                return Err(wrong("a number".to_string()));
            };
            match clean.parse::<f64>() {
                Ok(x) if (min..=max).contains(&x) => Ok(Value::Float(x)),
                _ => Err(wrong(format!("a number from {min} to {max}"))),
            }
        }
        Kind::Bool => match text.to_ascii_lowercase().as_str() {
            "true" if !quoted => Ok(Value::Bool(true)),
            "false" if !quoted => Ok(Value::Bool(false)),
            _ => Err(wrong("true or false".to_string())),
        },
        Kind::Text | Kind::Set => {
            let lower = text.to_ascii_lowercase();
            if !quoted && (lower == "true" || lower == "false") {
                let message = format!(
                    "expected text for {field}, found {found}; write \"{text}\" in quotes if you mean the word"
                );
                return Err(ParseError::new(tok.start, "text", found.clone(), message));
            }
            Ok(Value::Text(text.to_string()))
        }
        Kind::Enum { values, .. } => match enum_value(field, text) {
            Some(v) => Ok(Value::Enum(v)),
            None => {
                let expected = format!("one of {}", values.join(", "));
                let shown = format!("\"{}\"", text.chars().take(40).collect::<String>());
                let message = format!("{shown} is not {}; expected {expected}", field.def().noun);
                Err(ParseError::new(tok.start, expected, found.clone(), message))
            }
        },
    }
}

// ---------------------------------------------------------------------------
// SQL
// ---------------------------------------------------------------------------

/// A value bound to a placeholder. Booleans are bound as `Int(0 | 1)` and
/// enum values as their canonical name (`Text`).
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Int(i64),
    Float(f64),
    Text(String),
}

/// Where a field lives in the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlTarget {
    /// A scalar SQL expression, e.g. `m.tier` or `COALESCE(i.p_alive, 0)`.
    Expr(String),
    /// For set fields (`tag`): a boolean SQL condition with `{}` where the
    /// placeholder of one value goes, e.g.
    /// `EXISTS (SELECT 1 FROM member_tags t WHERE t.member_id = m.id AND t.tag = {})`.
    /// Every `{}` gets the same placeholder.
    Exists(String),
}

/// How the store layer maps fields to SQL. Closures `Fn(Field) -> SqlTarget`
/// implement it.
pub trait SqlColumns {
    fn column(&self, field: Field) -> SqlTarget;
}

impl<F: Fn(Field) -> SqlTarget> SqlColumns for F {
    fn column(&self, field: Field) -> SqlTarget {
        self(field)
    }
}

/// Compile a segment into a boolean SQL condition for a `WHERE` clause, with
/// placeholders `$first_placeholder`, `$first_placeholder + 1`, … appearing
/// in increasing order in the text; the returned values bind them in that
/// order. Values are never written into the SQL text.
///
/// - `field op value` → `(col op $n)`; ordered enums with `<`/`<=`/`>`/`>=`
///   → `(col IN ($n, …))` with the values of qualifying rank, or
///   `(col <> col)` (false, or NULL when `col` is NULL) when none qualifies.
/// - `field [not] in [...]` → `(col [NOT ]IN ($n, …))`.
/// - `Exists` targets: `=` → the condition; `!=` → `(NOT cond)`; `in` → an
///   `OR` of conditions; `not in` → `(NOT (… OR …))`. A numeric ordering on
///   an `Exists` target compiles to `(1 = 0)`.
/// - `and`/`or` → `(a AND b)`/`(a OR b)`; `not x` → `(NOT x)`; an empty
///   `And`/`Or` → `(1 = 1)`/`(1 = 0)`.
///
/// SQL's NULL logic is the segment's: see [`matches`], which agrees with this
/// SQL when the facts it is given are the column values.
pub fn to_sql(
    expr: &Expr,
    columns: &dyn SqlColumns,
    first_placeholder: usize,
) -> (String, Vec<SqlValue>) {
    let mut builder = SqlBuilder {
        sql: String::new(),
        values: Vec::new(),
        first: first_placeholder,
        columns,
    };
    builder.expr(expr);
    (builder.sql, builder.values)
}

struct SqlBuilder<'a> {
    sql: String,
    values: Vec<SqlValue>,
    first: usize,
    columns: &'a dyn SqlColumns,
}

impl SqlBuilder<'_> {
    fn bind(&mut self, value: SqlValue) -> String {
        let placeholder = format!("${}", self.first + self.values.len());
        self.values.push(value);
        placeholder
    }

    fn bind_value(&mut self, value: &Value) -> String {
        let value = match value {
            Value::Int(i) => SqlValue::Int(*i),
            Value::Float(x) => SqlValue::Float(*x),
            Value::Bool(b) => SqlValue::Int(i64::from(*b)),
            Value::Text(s) => SqlValue::Text(s.clone()),
            Value::Enum(s) => SqlValue::Text((*s).to_string()),
        };
        self.bind(value)
    }

    fn expr(&mut self, expr: &Expr) {
        match expr {
            Expr::And(items) => self.junction(items, " AND ", "(1 = 1)"),
            Expr::Or(items) => self.junction(items, " OR ", "(1 = 0)"),
            Expr::Not(inner) => {
                self.sql.push_str("(NOT ");
                self.expr(inner);
                self.sql.push(')');
            }
            Expr::Compare { field, op, value } => self.compare(*field, *op, value),
            Expr::In {
                field,
                values,
                negated,
            } => self.in_list(*field, values, *negated),
        }
    }

    fn junction(&mut self, items: &[Expr], separator: &str, empty: &str) {
        if items.is_empty() {
            self.sql.push_str(empty);
            return;
        }
        self.sql.push('(');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.sql.push_str(separator);
            }
            self.expr(item);
        }
        self.sql.push(')');
    }

    fn exists(&mut self, template: &str, value: &Value) {
        let placeholder = self.bind_value(value);
        self.sql.push('(');
        self.sql.push_str(&template.replace("{}", &placeholder));
        self.sql.push(')');
    }

    fn exists_any(&mut self, template: &str, values: &[Value]) {
        if values.is_empty() {
            self.sql.push_str("(1 = 0)");
            return;
        }
        self.sql.push('(');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.sql.push_str(" OR ");
            }
            self.exists(template, v);
        }
        self.sql.push(')');
    }

    fn value_list(&mut self, values: &[Value]) -> String {
        let placeholders: Vec<String> = values.iter().map(|v| self.bind_value(v)).collect();
        placeholders.join(", ")
    }

    fn compare(&mut self, field: Field, op: Op, value: &Value) {
        let expansion = ordered_expansion(field, op, value);
        match self.columns.column(field) {
            SqlTarget::Exists(template) => match (op, expansion) {
                (Op::Eq, _) => self.exists(&template, value),
                (Op::Ne, _) => {
                    self.sql.push_str("(NOT ");
                    self.exists(&template, value);
                    self.sql.push(')');
                }
                (_, Some(names)) => {
                    let values: Vec<Value> = names.into_iter().map(Value::Enum).collect();
                    self.exists_any(&template, &values);
                }
                (_, None) => self.sql.push_str("(1 = 0)"),
            },
            SqlTarget::Expr(col) => match expansion {
                Some(names) if names.is_empty() => {
                    self.sql.push_str(&format!("({col} <> {col})"));
                }
                Some(names) => {
                    let values: Vec<Value> = names.into_iter().map(Value::Enum).collect();
                    let list = self.value_list(&values);
                    self.sql.push_str(&format!("({col} IN ({list}))"));
                }
                None => {
                    let placeholder = self.bind_value(value);
                    self.sql
                        .push_str(&format!("({col} {} {placeholder})", op.sql()));
                }
            },
        }
    }

    fn in_list(&mut self, field: Field, values: &[Value], negated: bool) {
        match self.columns.column(field) {
            SqlTarget::Exists(template) => {
                if negated {
                    self.sql.push_str("(NOT ");
                }
                self.exists_any(&template, values);
                if negated {
                    self.sql.push(')');
                }
            }
            SqlTarget::Expr(col) => {
                if values.is_empty() {
                    let op = if negated { "=" } else { "<>" };
                    self.sql.push_str(&format!("({col} {op} {col})"));
                    return;
                }
                let list = self.value_list(values);
                let not = if negated { "NOT " } else { "" };
                self.sql.push_str(&format!("({col} {not}IN ({list}))"));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// In-memory evaluation
// ---------------------------------------------------------------------------

/// One fact about a member, as the database would return it. Enum fields are
/// `Text` (the canonical name); bool fields `Bool` or `Int(0 | 1)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FactValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

/// What [`matches`] needs to know about a member.
pub trait MemberFacts {
    /// The value of a (non-set) field; `None` when the member has none (NULL).
    fn value(&self, field: Field) -> Option<FactValue>;
    /// The member's tags (never unknown; empty when none).
    fn tags(&self) -> &[String];
}

/// Member facts held in a map: the plain implementation of [`MemberFacts`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub values: BTreeMap<Field, FactValue>,
    pub tags: Vec<String>,
}

impl Facts {
    pub fn with(mut self, field: Field, value: FactValue) -> Facts {
        self.values.insert(field, value);
        self
    }

    pub fn tagged(mut self, tag: impl Into<String>) -> Facts {
        self.tags.push(tag.into());
        self
    }
}

impl MemberFacts for Facts {
    fn value(&self, field: Field) -> Option<FactValue> {
        self.values.get(&field).cloned()
    }
    fn tags(&self) -> &[String] {
        &self.tags
    }
}

/// Whether a member is in the segment: `Some(true)` in, `Some(false)` out,
/// `None` unknown (also out). Three-valued exactly as the SQL of [`to_sql`]
/// with `tag` mapped to an `Exists` target and every other field to a column
/// holding the fact: a missing fact is NULL; a comparison with NULL is
/// unknown; `not` keeps unknown; `and`/`or` are Kleene; `in` is true if any
/// value is equal, else unknown if the fact is NULL, else false. A fact of the
/// wrong kind for its field (text for a number, NaN) is treated as unknown.
pub fn matches<F: MemberFacts + ?Sized>(expr: &Expr, facts: &F) -> Option<bool> {
    match expr {
        Expr::And(items) => {
            let mut unknown = false;
            for item in items {
                match matches(item, facts) {
                    Some(false) => return Some(false),
                    None => unknown = true,
                    Some(true) => {}
                }
            }
            if unknown {
                None
            } else {
                Some(true)
            }
        }
        Expr::Or(items) => {
            let mut unknown = false;
            for item in items {
                match matches(item, facts) {
                    Some(true) => return Some(true),
                    None => unknown = true,
                    Some(false) => {}
                }
            }
            if unknown {
                None
            } else {
                Some(false)
            }
        }
        Expr::Not(inner) => matches(inner.as_ref(), facts).map(|b| !b),
        Expr::Compare { field, op, value } => compare_fact(*field, *op, value, facts),
        Expr::In {
            field,
            values,
            negated,
        } => {
            if matches!(field.kind(), Kind::Set) {
                let any = values.iter().any(|v| has_tag(facts, v));
                return Some(any != *negated);
            }
            let fact = facts.value(*field)?;
            let mut unknown = false;
            let mut found = false;
            for v in values {
                match compare_scalar(&fact, Op::Eq, v) {
                    Some(true) => {
                        found = true;
                        break;
                    }
                    None => unknown = true,
                    Some(false) => {}
                }
            }
            let result = if found {
                Some(true)
            } else if unknown {
                None
            } else {
                Some(false)
            };
            result.map(|b| b != *negated)
        }
    }
}

fn has_tag<F: MemberFacts + ?Sized>(facts: &F, value: &Value) -> bool {
    let wanted = match value {
        Value::Text(s) => s.as_str(),
        Value::Enum(s) => s,
        _ => return false,
    };
    facts.tags().iter().any(|t| t == wanted)
}

fn compare_fact<F: MemberFacts + ?Sized>(
    field: Field,
    op: Op,
    value: &Value,
    facts: &F,
) -> Option<bool> {
    if matches!(field.kind(), Kind::Set) {
        let has = has_tag(facts, value);
        return Some(match op {
            Op::Eq => has,
            Op::Ne => !has,
            _ => false,
        });
    }
    let fact = facts.value(field)?;
    if let Some(names) = ordered_expansion(field, op, value) {
        return match fact {
            FactValue::Text(s) => Some(names.contains(&s.as_str())),
            _ => None,
        };
    }
    compare_scalar(&fact, op, value)
}

enum Scalar<'a> {
    I(i64),
    F(f64),
    S(&'a str),
}

fn compare_scalar(fact: &FactValue, op: Op, value: &Value) -> Option<bool> {
    let left = match fact {
        FactValue::Int(i) => Scalar::I(*i),
        FactValue::Float(x) if !x.is_nan() => Scalar::F(*x),
        FactValue::Float(_) => return None,
        FactValue::Bool(b) => Scalar::I(i64::from(*b)),
        FactValue::Text(s) => Scalar::S(s),
    };
    let right = match value {
        Value::Int(i) => Scalar::I(*i),
        Value::Float(x) if !x.is_nan() => Scalar::F(*x),
        Value::Float(_) => return None,
        Value::Bool(b) => Scalar::I(i64::from(*b)),
        Value::Text(s) => Scalar::S(s),
        Value::Enum(s) => Scalar::S(s),
    };
    let ord = match (left, right) {
        (Scalar::I(a), Scalar::I(b)) => a.cmp(&b),
        (Scalar::I(a), Scalar::F(b)) => (a as f64).partial_cmp(&b)?,
        (Scalar::F(a), Scalar::I(b)) => a.partial_cmp(&(b as f64))?,
        (Scalar::F(a), Scalar::F(b)) => a.partial_cmp(&b)?,
        (Scalar::S(a), Scalar::S(b)) => a.cmp(b),
        _ => return None,
    };
    Some(op.holds(ord))
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(field: Field, op: Op, value: Value) -> Expr {
        Expr::Compare { field, op, value }
    }

    fn err(input: &str) -> ParseError {
        match parse(input) {
            Ok(e) => panic!("{input:?} parsed as {e:?}"),
            Err(e) => e,
        }
    }

    fn ok(input: &str) -> Expr {
        match parse(input) {
            Ok(e) => e,
            Err(e) => panic!("{input:?}: {e}"),
        }
    }

    /// The mapping the store layer is expected to use.
    fn columns(field: Field) -> SqlTarget {
        match field {
            Field::Tag => SqlTarget::Exists(
                "EXISTS (SELECT 1 FROM member_tags t WHERE t.member_id = m.id AND t.tag = {})"
                    .into(),
            ),
            Field::PAlive => SqlTarget::Expr("i.p_alive".into()),
            other => SqlTarget::Expr(format!("m.{}", other.name())),
        }
    }

    #[test]
    fn defs_follow_field_order() {
        assert_eq!(DEFS.len(), Field::ALL.len());
        for (i, f) in Field::ALL.into_iter().enumerate() {
            assert_eq!(f as usize, i);
            assert_eq!(Field::parse(f.name()), Some(f));
            assert_eq!(Field::parse(&f.name().to_uppercase()), Some(f));
            assert!(f
                .name()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        }
    }

    #[test]
    fn catalogue_examples_parse_and_serialize() {
        let cat = catalogue();
        assert_eq!(cat.len(), 27);
        for info in &cat {
            let e = ok(&info.example);
            assert!(
                e.fields().iter().any(|f| f.name() == info.name),
                "{}",
                info.example
            );
        }
        let json = serde_json::to_value(&cat).unwrap();
        let tier = &json[0];
        assert_eq!(tier["name"], "tier");
        assert_eq!(tier["kind"], "enum");
        assert_eq!(tier["ordered"], true);
        assert_eq!(tier["values"][3], "black_gold");
        assert_eq!(tier["operators"][7], "not in");
        let vip = &json[2];
        assert_eq!(vip["operators"], serde_json::json!(["=", "!="]));
        let tag = cat.iter().find(|i| i.name == "tag").unwrap();
        assert_eq!(tag.kind, "set");
        assert_eq!(tag.operators, vec!["=", "!=", "in", "not in"]);
        let r = cat.iter().find(|i| i.name == "r_score").unwrap();
        assert_eq!((r.min, r.max), (Some(1.0), Some(5.0)));
    }

    #[test]
    fn brief_examples() {
        let e = ok(r#"tier >= gold and days_since_visit > 60 and city = "成都" and tag = "辣""#);
        assert_eq!(
            e,
            Expr::And(vec![
                cmp(Field::Tier, Op::Ge, Value::Enum("gold")),
                cmp(Field::DaysSinceVisit, Op::Gt, Value::Int(60)),
                cmp(Field::City, Op::Eq, Value::Text("成都".into())),
                cmp(Field::Tag, Op::Eq, Value::Text("辣".into())),
            ])
        );
        let e =
            ok("(lifecycle in [dormant, churned] or p_alive < 0.3) and not consent_sms = false");
        assert_eq!(
            e,
            Expr::And(vec![
                Expr::Or(vec![
                    Expr::In {
                        field: Field::Lifecycle,
                        values: vec![Value::Enum("dormant"), Value::Enum("churned")],
                        negated: false,
                    },
                    cmp(Field::PAlive, Op::Lt, Value::Float(0.3)),
                ]),
                Expr::Not(Box::new(cmp(Field::ConsentSms, Op::Eq, Value::Bool(false)))),
            ])
        );
        let e = ok(
            r#"spend_12m_fen >= 500000 and age_group in ["25-34", "35-44"] and birthday_month = 3"#,
        );
        assert_eq!(
            e.to_string(),
            "spend_12m_fen >= 500000 and age_group in [25_34, 35_44] and birthday_month = 3"
        );
    }

    #[test]
    fn precedence_and_grouping() {
        let a = || cmp(Field::Vip, Op::Eq, Value::Bool(true));
        let b = || cmp(Field::RScore, Op::Eq, Value::Int(5));
        let c = || cmp(Field::FScore, Op::Eq, Value::Int(4));
        assert_eq!(
            ok("vip = true or r_score = 5 and f_score = 4"),
            Expr::Or(vec![a(), Expr::And(vec![b(), c()])])
        );
        assert_eq!(
            ok("vip = true and r_score = 5 or f_score = 4"),
            Expr::Or(vec![Expr::And(vec![a(), b()]), c()])
        );
        assert_eq!(
            ok("(vip = true or r_score = 5) and f_score = 4"),
            Expr::And(vec![Expr::Or(vec![a(), b()]), c()])
        );
        // not binds tighter than and/or
        assert_eq!(
            ok("not vip = true and r_score = 5"),
            Expr::And(vec![Expr::Not(Box::new(a())), b()])
        );
        assert_eq!(
            ok("!(vip = true || r_score = 5) && f_score = 4"),
            Expr::And(vec![Expr::Not(Box::new(Expr::Or(vec![a(), b()]))), c()])
        );
        // brackets are kept
        assert_eq!(
            ok("(vip = true and r_score = 5) and f_score = 4"),
            Expr::And(vec![Expr::And(vec![a(), b()]), c()])
        );
        assert_eq!(
            ok("(vip = true and r_score = 5) and f_score = 4").to_string(),
            "(vip = true and r_score = 5) and f_score = 4"
        );
        assert_eq!(ok("((vip = true))"), a());
    }

    #[test]
    fn case_aliases_and_spellings() {
        assert_eq!(
            ok("TIER >= Gold AND Vip = TRUE"),
            ok("tier >= gold and vip = true")
        );
        assert_eq!(ok("tier = 金卡"), ok("tier = gold"));
        assert_eq!(ok("tier = \"gold\""), ok("tier = gold"));
        assert_eq!(ok("age_group = 55+"), ok("age_group = 55_plus"));
        assert_eq!(ok("age_group = 25-34"), ok("age_group = 25_34"));
        assert_eq!(ok("r_score >= 4"), ok("r_score ≥ 4"));
        assert_eq!(ok("r_score != 4"), ok("r_score <> 4"));
        assert_eq!(ok("r_score = 4"), ok("r_score == 4"));
        assert_eq!(ok("city = “成都”"), ok("city = \"成都\""));
        assert_eq!(ok("city = '成都'"), ok("city = \"成都\""));
        assert_eq!(ok("city = 成都"), ok("city = \"成都\""));
        assert_eq!(
            ok("city in （成都，重庆）"),
            ok("city in [\"成都\", \"重庆\"]")
        );
        assert_eq!(
            ok("tier in [gold, black_gold,]"),
            ok("tier in [gold, black_gold]")
        );
        assert_eq!(
            ok("spend_12m_fen >= 500_000"),
            ok("spend_12m_fen >= 500000")
        );
        assert_eq!(ok("store = CD-01"), ok("store = \"CD-01\""));
        assert_eq!(
            ok("store = 001"),
            cmp(Field::Store, Op::Eq, Value::Text("001".into()))
        );
        assert_eq!(
            ok("p_alive < 1"),
            cmp(Field::PAlive, Op::Lt, Value::Float(1.0))
        );
        assert_eq!(
            ok("points_balance > -5"),
            cmp(Field::PointsBalance, Op::Gt, Value::Int(-5))
        );
        assert_eq!(
            ok(r#"city = "a\"b\\c""#),
            cmp(Field::City, Op::Eq, Value::Text("a\"b\\c".into()))
        );
        assert_eq!(
            ok("tag not in [\"辣\", 素食]"),
            Expr::In {
                field: Field::Tag,
                values: vec![Value::Text("辣".into()), Value::Text("素食".into())],
                negated: true,
            }
        );
        assert_eq!(ok("rfm in [555, 111]").to_string(), "rfm in [555, 111]");
        assert!(parse("rfm >= 500").is_ok());
    }

    #[test]
    fn syntax_errors_with_columns() {
        let e = err("tier >= gold and r_score >=");
        assert_eq!(e.column, 28);
        assert_eq!(e.position, 27);
        assert_eq!(e.expected, "a value");
        assert_eq!(e.found, "end of input");
        assert_eq!(
            e.to_string(),
            "column 28: expected a value after \">=\", found end of input"
        );

        let e = err("");
        assert_eq!((e.column, e.found.as_str()), (1, "end of input"));
        assert_eq!(e.expected, EXPECT_START);

        let e = err("tier gold");
        assert_eq!(e.column, 6);
        assert!(e.message.starts_with("expected an operator"), "{e}");

        let e = err("tier = gold silver");
        assert_eq!(e.column, 13);
        assert_eq!(e.expected, "\"and\", \"or\" or end of input");

        let e = err("(tier = gold or vip = true");
        assert_eq!(e.column, 27);
        assert_eq!(
            e.message,
            "expected \"and\", \"or\" or \")\" to close the \"(\" at column 1, found end of input"
        );

        let e = err("tier = gold)");
        assert_eq!(
            (e.column, e.message.as_str()),
            (12, "\")\" has no matching \"(\"")
        );

        let e = err("tier = gold and and vip = true");
        assert_eq!(e.column, 17);

        let e = err("tier in gold");
        assert_eq!((e.column, e.expected.as_str()), (9, "\"[\""));
        let e = err("tier in []");
        assert_eq!((e.column, e.expected.as_str()), (10, "a value"));
        let e = err("tier in [gold silver]");
        assert_eq!((e.column, e.expected.as_str()), (15, "\",\" or \"]\""));
        let e = err("tier in (gold]");
        assert_eq!(e.expected, "\",\" or \")\"");
        let e = err("tier not = gold");
        assert_eq!(
            (e.column, e.expected.as_str()),
            (10, "\"in\" after \"not\"")
        );

        let e = err("city = \"成都");
        assert_eq!(e.column, 11);
        assert_eq!(
            e.message,
            "expected a closing \" for the text opened at column 8, found end of input"
        );
        let e = err("city = “成都");
        assert_eq!(e.expected, "a closing ”");
        let e = err(r#"city = "a\nb""#);
        assert_eq!((e.column, e.found.as_str()), (10, "\"\\n\""));
        let e = err("tier = gold & vip = true");
        assert_eq!(e.column, 13);
        assert!(e.message.contains("&&"), "{e}");
        let e = err("tier @ gold");
        assert_eq!((e.column, e.found.as_str()), (6, "\"@\""));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        // "city = "成都" and " is 16 characters (22 bytes).
        let e = err(r#"city = "成都" and tiers = gold"#);
        assert_eq!(e.position, 16);
        assert_eq!(e.column, 17);
        assert_eq!(
            e.to_string(),
            "column 17: unknown field \"tiers\"; did you mean \"tier\"?"
        );
        let e = err("城市 = 成都");
        assert_eq!(e.column, 1);
        assert_eq!(e.message, "unknown field \"城市\"; did you mean \"city\"?");
        let e = err("tag = “辣” and r_score > 九");
        assert_eq!(e.column, 25);
    }

    #[test]
    fn type_errors() {
        let e = err("tiers >= gold");
        assert_eq!(
            e.to_string(),
            "column 1: unknown field \"tiers\"; did you mean \"tier\"?"
        );
        assert_eq!(
            (e.expected.as_str(), e.found.as_str()),
            ("a field name", "\"tiers\"")
        );
        assert_eq!(
            err("spend >= 5").message,
            "unknown field \"spend\"; did you mean \"spend_12m_fen\"?"
        );
        assert_eq!(
            err("gold = true").message,
            "unknown field \"gold\"; did you mean \"tier = gold\"?"
        );
        assert_eq!(err("zzzzzzzz = 1").message, "unknown field \"zzzzzzzz\"");

        let e = err("tier = platinum");
        assert_eq!(
            e.to_string(),
            "column 8: \"platinum\" is not a tier; expected one of regular, silver, gold, black_gold"
        );
        assert_eq!(e.expected, "one of regular, silver, gold, black_gold");

        let e = err("lifecycle > dormant");
        assert_eq!(e.column, 11);
        assert_eq!(
            e.message,
            "\">\" cannot be used with lifecycle (not ordered); use =, !=, in or not in"
        );
        let e = err("city < \"成都\"");
        assert_eq!(e.expected, "=, !=, in or not in");
        let e = err("vip in [true]");
        assert_eq!((e.column, e.expected.as_str()), (5, "= or !="));
        let e = err("vip >= true");
        assert_eq!(e.column, 5);
        let e = err("tag > \"辣\"");
        assert_eq!(e.column, 5);

        let e = err("days_since_visit > 60.5");
        assert_eq!(
            e.message,
            "expected a whole number for days_since_visit, found \"60.5\""
        );
        let e = err("days_since_visit > \"60\"");
        assert_eq!(
            e.message,
            "expected a whole number for days_since_visit, found \"60\""
        );
        let e = err("days_since_visit > sixty");
        assert_eq!(e.expected, "a whole number");
        let e = err("points_balance > 99999999999999999999");
        assert_eq!(e.column, 18);
        assert!(e.message.contains("too large"), "{e}");
        assert!(parse("points_balance > 9223372036854775807").is_ok());
        assert!(parse("points_balance > -9223372036854775808").is_ok());
        assert!(parse("points_balance > 9223372036854775808").is_err());

        let e = err("r_score = 6");
        assert_eq!(
            e.message,
            "expected a number from 1 to 5 for r_score, found \"6\""
        );
        assert!(parse("birthday_month = 13").is_err());
        assert!(parse("birthday_month = 0").is_err());
        assert!(parse("spice_level = 5").is_ok());
        assert!(parse("spice_level = 6").is_err());
        let e = err("rfm = 560");
        assert!(e.expected.starts_with("three digits 1 to 5"), "{e}");
        assert!(parse("rfm = 505").is_err());
        assert!(parse("rfm = 600").is_err());
        assert!(parse("rfm > 100").is_err());
        let e = err("p_alive > 1.5");
        assert_eq!(
            e.message,
            "expected a number from 0 to 1 for p_alive, found \"1.5\""
        );
        assert!(parse("p_alive > -0.1").is_err());
        assert!(parse("p_alive > 0").is_ok());

        let e = err("vip = yes");
        assert_eq!(e.expected, "true or false");
        assert!(parse("vip = \"true\"").is_err());
        assert!(parse("vip = 1").is_err());
        let e = err("city = true");
        assert_eq!(e.expected, "text");
        assert!(parse("city = \"true\"").is_ok());
        let e = err("gender = 男士");
        assert!(e.message.starts_with("\"男士\" is not a gender"), "{e}");
        let e = err("tier = ");
        assert_eq!(
            e.message,
            "expected a value after \"=\", found end of input"
        );
        let e = err("tier in [gold, ]]");
        assert_eq!(e.column, 17);
    }

    #[test]
    fn limits() {
        let long = format!("city = \"{}\"", "x".repeat(MAX_INPUT_CHARS));
        let e = err(&long);
        assert_eq!(e.position, MAX_INPUT_CHARS);
        assert!(e.message.starts_with("the segment is too long"));

        let nest = |n: usize| format!("{}vip = true{}", "(".repeat(n), ")".repeat(n));
        assert!(parse(&nest(MAX_DEPTH)).is_ok());
        let e = err(&nest(MAX_DEPTH + 1));
        assert_eq!(e.position, MAX_DEPTH);
        let nots = |n: usize| format!("{}vip = true", "not ".repeat(n));
        assert!(parse(&nots(MAX_DEPTH)).is_ok());
        assert!(parse(&nots(MAX_DEPTH + 1)).is_err());

        let many = |n: usize| vec!["vip = true"; n].join(" or ");
        assert!(parse(&many(MAX_COMPARISONS)).is_ok());
        let e = err(&many(MAX_COMPARISONS + 1));
        assert!(e.message.starts_with("too many comparisons"), "{e}");
        assert_eq!(e.position, MAX_COMPARISONS * 14);

        let list = |n: usize| format!("birthday_month in [{}]", vec!["1"; n].join(","));
        assert!(parse(&list(MAX_IN_VALUES)).is_ok());
        let e = err(&list(MAX_IN_VALUES + 1));
        assert!(e.message.starts_with("too many values"), "{e}");
    }

    #[test]
    fn display_is_canonical() {
        for (input, canonical) in [
            ("TIER>=GOLD", "tier >= gold"),
            (
                "not(vip=true or tier=黑金)",
                "not (vip = true or tier = black_gold)",
            ),
            ("not not vip = true", "not not vip = true"),
            ("city = '他说\"好\"'", r#"city = "他说\"好\"""#),
            ("tag not in (辣)", "tag not in [\"辣\"]"),
            ("p_alive <= 0.30", "p_alive <= 0.3"),
            ("p_alive <= 1.0", "p_alive <= 1"),
            (
                "(vip = true or tier = gold) or r_score = 1",
                "(vip = true or tier = gold) or r_score = 1",
            ),
            (
                "vip = true or (tier = gold and r_score = 1)",
                "vip = true or tier = gold and r_score = 1",
            ),
        ] {
            let e = ok(input);
            assert_eq!(e.to_string(), canonical);
            assert_eq!(ok(canonical), e);
        }
    }

    #[test]
    fn sql_compiles_with_bound_values() {
        let (sql, values) = to_sql(
            &ok(r#"tier >= gold and days_since_visit > 60 and city = "成都" and tag = "辣""#),
            &columns,
            1,
        );
        assert_eq!(
            sql,
            "((m.tier IN ($1, $2)) AND (m.days_since_visit > $3) AND (m.city = $4) AND \
             (EXISTS (SELECT 1 FROM member_tags t WHERE t.member_id = m.id AND t.tag = $5)))"
        );
        assert_eq!(
            values,
            vec![
                SqlValue::Text("gold".into()),
                SqlValue::Text("black_gold".into()),
                SqlValue::Int(60),
                SqlValue::Text("成都".into()),
                SqlValue::Text("辣".into()),
            ]
        );

        let (sql, values) = to_sql(
            &ok("(lifecycle in [dormant, churned] or p_alive < 0.3) and not consent_sms = false"),
            &columns,
            3,
        );
        assert_eq!(
            sql,
            "(((m.lifecycle IN ($3, $4)) OR (i.p_alive < $5)) AND (NOT (m.consent_sms = $6)))"
        );
        assert_eq!(
            values,
            vec![
                SqlValue::Text("dormant".into()),
                SqlValue::Text("churned".into()),
                SqlValue::Float(0.3),
                SqlValue::Int(0),
            ]
        );

        let (sql, values) = to_sql(
            &ok("tag != 辣 and tag not in [a, b] and tag in [c]"),
            &columns,
            1,
        );
        let t = |n: usize| {
            format!(
                "(EXISTS (SELECT 1 FROM member_tags t WHERE t.member_id = m.id AND t.tag = ${n}))"
            )
        };
        assert_eq!(
            sql,
            format!(
                "((NOT {}) AND (NOT ({} OR {})) AND ({}))",
                t(1),
                t(2),
                t(3),
                t(4)
            )
        );
        assert_eq!(values.len(), 4);

        // Nothing from the input is ever in the SQL text.
        let (sql, _) = to_sql(&ok("city = \"'; DROP TABLE members; --\""), &columns, 1);
        assert_eq!(sql, "(m.city = $1)");
    }

    #[test]
    fn ordered_enums_compile_by_rank() {
        let sql = |s: &str| to_sql(&ok(s), &columns, 1);
        let texts = |v: &[&str]| {
            v.iter()
                .map(|s| SqlValue::Text(s.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            sql("tier >= gold"),
            (
                "(m.tier IN ($1, $2))".into(),
                texts(&["gold", "black_gold"])
            )
        );
        assert_eq!(
            sql("tier > silver"),
            (
                "(m.tier IN ($1, $2))".into(),
                texts(&["gold", "black_gold"])
            )
        );
        assert_eq!(
            sql("tier < gold"),
            ("(m.tier IN ($1, $2))".into(), texts(&["regular", "silver"]))
        );
        assert_eq!(
            sql("tier <= regular"),
            ("(m.tier IN ($1))".into(), texts(&["regular"]))
        );
        assert_eq!(
            sql("tier > black_gold"),
            ("(m.tier <> m.tier)".into(), vec![])
        );
        assert_eq!(
            sql("tier = gold"),
            ("(m.tier = $1)".into(), texts(&["gold"]))
        );
        assert_eq!(
            sql("churn_risk >= medium"),
            (
                "(m.churn_risk IN ($1, $2))".into(),
                texts(&["medium", "high"])
            )
        );
        // Alphabetically "black_gold" < "gold" < "silver": by rank it is the top.
        assert_eq!(
            sql("age_group < 25-34"),
            (
                "(m.age_group IN ($1, $2))".into(),
                texts(&["under_18", "18_24"])
            )
        );
    }

    #[test]
    fn null_semantics_agree_with_sql() {
        let none = Facts::default();
        // A comparison on a missing value is unknown, and so is its negation.
        for s in [
            "r_score > 3",
            "not r_score > 3",
            "city != \"成都\"",
            "tier >= gold",
            "tier > black_gold",
            "not tier > black_gold",
            "city in [a, b]",
            "city not in [a]",
            "vip = true",
            "not vip = true",
        ] {
            assert_eq!(matches(&ok(s), &none), None, "{s}");
        }
        // Kleene and/or.
        assert_eq!(
            matches(
                &ok("r_score > 3 and vip = true"),
                &Facts::default().with(Field::Vip, FactValue::Bool(false))
            ),
            Some(false)
        );
        assert_eq!(
            matches(
                &ok("r_score > 3 or vip = true"),
                &Facts::default().with(Field::Vip, FactValue::Bool(true))
            ),
            Some(true)
        );
        assert_eq!(
            matches(
                &ok("r_score > 3 or vip = true"),
                &Facts::default().with(Field::Vip, FactValue::Bool(false))
            ),
            None
        );
        // Tags are never unknown.
        assert_eq!(matches(&ok("tag != 辣"), &none), Some(true));
        assert_eq!(matches(&ok("tag = 辣"), &none), Some(false));
        assert_eq!(matches(&ok("not tag in [辣]"), &none), Some(true));
        let m = Facts::default().tagged("辣").tagged("VIP");
        assert_eq!(
            matches(&ok("tag = 辣 and tag in [x, VIP] and tag not in [vip]"), &m),
            Some(true)
        );
        // Empty ordered range: false with a value, unknown without.
        let gold = Facts::default().with(Field::Tier, FactValue::Text("gold".into()));
        assert_eq!(matches(&ok("tier > black_gold"), &gold), Some(false));
        assert_eq!(matches(&ok("not tier > black_gold"), &gold), Some(true));
        assert_eq!(matches(&ok("tier >= silver"), &gold), Some(true));
        assert_eq!(matches(&ok("tier < gold"), &gold), Some(false));
        // Bools as BIGINT 0/1.
        let sms = Facts::default().with(Field::ConsentSms, FactValue::Int(1));
        assert_eq!(matches(&ok("not consent_sms = false"), &sms), Some(true));
        // Wrong kind of fact: unknown.
        let odd = Facts::default().with(Field::RScore, FactValue::Text("5".into()));
        assert_eq!(matches(&ok("r_score = 5"), &odd), None);
        let nan = Facts::default().with(Field::PAlive, FactValue::Float(f64::NAN));
        assert_eq!(matches(&ok("p_alive < 0.5"), &nan), None);
        // Floats against whole numbers.
        let p = Facts::default().with(Field::PAlive, FactValue::Float(0.25));
        assert_eq!(
            matches(&ok("p_alive < 0.3 and p_alive > 0"), &p),
            Some(true)
        );
    }

    #[test]
    fn hand_built_edge_cases_agree() {
        let tier = |t: &str| Facts::default().with(Field::Tier, FactValue::Text(t.into()));
        let empty_in = Expr::In {
            field: Field::City,
            values: vec![],
            negated: false,
        };
        let empty_not_in = Expr::In {
            field: Field::City,
            values: vec![],
            negated: true,
        };
        assert_eq!(to_sql(&empty_in, &columns, 1).0, "(m.city <> m.city)");
        assert_eq!(to_sql(&empty_not_in, &columns, 1).0, "(m.city = m.city)");
        let city = Facts::default().with(Field::City, FactValue::Text("x".into()));
        assert_eq!(matches(&empty_in, &city), Some(false));
        assert_eq!(matches(&empty_not_in, &city), Some(true));
        assert_eq!(matches(&empty_not_in, &Facts::default()), None);
        assert_eq!(to_sql(&Expr::And(vec![]), &columns, 1).0, "(1 = 1)");
        assert_eq!(to_sql(&Expr::Or(vec![]), &columns, 1).0, "(1 = 0)");
        assert_eq!(matches(&Expr::And(vec![]), &city), Some(true));
        assert_eq!(matches(&Expr::Or(vec![]), &city), Some(false));
        // A tier the enum doesn't know never satisfies an ordering.
        assert_eq!(
            matches(&ok("tier >= regular"), &tier("diamond")),
            Some(false)
        );
        assert_eq!(matches(&ok("tier != gold"), &tier("diamond")), Some(true));
    }

    #[test]
    fn errors_serialize() {
        let e = err("tier >=");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["position"], 7);
        assert_eq!(json["column"], 8);
        assert_eq!(json["expected"], "a value");
        assert_eq!(json["found"], "end of input");
        let _: &dyn std::error::Error = &e;
    }

    #[test]
    fn fields_used() {
        let e = ok("tier >= gold and (tag = 辣 or not p_alive < 0.5)");
        assert_eq!(
            e.fields().into_iter().collect::<Vec<_>>(),
            vec![Field::Tier, Field::PAlive, Field::Tag]
        );
    }
}
