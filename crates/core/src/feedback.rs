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

fn list(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

impl Default for ClassifierRules {
    /// The default vocabulary: for each category, *problem* phrases (a
    /// complaint about it, weight 3) and *topic* words (it is mentioned,
    /// weight 1), so "锅底" alone does not outweigh "服务很好".
    fn default() -> ClassifierRules {
        use Category::*;
        let rule = |category, weight, critical, words: &[&str]| PhraseRule {
            category,
            phrases: list(words),
            weight,
            critical,
        };
        ClassifierRules {
            rules: vec![
                // Something in the food that should not be there.
                rule(
                    FoodSafety,
                    5,
                    true,
                    &[
                        "头发",
                        "毛发",
                        "发丝",
                        "毛",
                        "虫",
                        "苍蝇",
                        "蝇",
                        "蟑螂",
                        "小强",
                        "蚊子",
                        "老鼠",
                        "鼠屎",
                        "蛆",
                        "钢丝",
                        "铁丝",
                        "铁屑",
                        "玻璃",
                        "塑料",
                        "指甲",
                        "石子",
                        "石头",
                        "沙子",
                        "砂子",
                        "沙粒",
                        "异物",
                        "创可贴",
                        "邦迪",
                        "烟头",
                        "烟灰",
                        "纸屑",
                        "线头",
                        "订书钉",
                        "螺丝",
                        "吃出",
                        "喝出",
                        "咬到一",
                        "吃到一根",
                        "吃到一个",
                        "foreign object",
                        "hair",
                        "bug",
                        "insect",
                        "fly in",
                    ],
                ),
                // Illness after eating; food gone off; raw meat.
                rule(
                    FoodSafety,
                    5,
                    true,
                    &[
                        "拉肚子",
                        "腹泻",
                        "闹肚子",
                        "拉稀",
                        "跑厕所",
                        "肚子疼",
                        "肚子痛",
                        "肚子一直痛",
                        "胃疼",
                        "胃痛",
                        "绞痛",
                        "呕吐",
                        "吐了",
                        "想吐",
                        "上吐下泻",
                        "食物中毒",
                        "中毒",
                        "过敏",
                        "起疹",
                        "红疹",
                        "疹子",
                        "发痒",
                        "痒",
                        "肿了",
                        "嘴唇肿",
                        "不舒服",
                        "医院",
                        "急诊",
                        "吃药",
                        "吊针",
                        "挂水",
                        "变质",
                        "馊",
                        "发臭",
                        "臭了",
                        "臭味",
                        "酸臭",
                        "腐烂",
                        "哈喇",
                        "霉",
                        "坏了",
                        "过期",
                        "胀袋",
                        "异味",
                        "怪味",
                        "不新鲜",
                        "死虾",
                        "死鱼",
                        "没熟",
                        "不熟",
                        "半生",
                        "生的",
                        "夹生",
                        "血水",
                        "带血",
                        "粉红",
                        "food poisoning",
                        "diarrhea",
                        "diarrhoea",
                        "vomit",
                        "sick",
                        "expired",
                        "rotten",
                        "undercooked",
                        "raw",
                        "allergic",
                    ],
                ),
                rule(
                    Hygiene,
                    3,
                    false,
                    &[
                        "不卫生",
                        "卫生差",
                        "脏",
                        "油腻",
                        "黏",
                        "粘手",
                        "粘脚",
                        "没擦",
                        "没洗",
                        "不干净",
                        "污渍",
                        "油渍",
                        "水渍",
                        "口红印",
                        "残渣",
                        "狼藉",
                        "没收拾",
                        "抹布",
                        "手套",
                        "口罩",
                        "消毒",
                        "抠鼻",
                        "挖鼻",
                        "直接用手",
                        "用手抓",
                        "摸完钱",
                        "垃圾",
                        "苍蝇乱飞",
                        "飞来飞去",
                        "在墙上爬",
                        "跑过去",
                        "dirty",
                        "filthy",
                        "sticky",
                        "unhygienic",
                    ],
                ),
                rule(
                    Hygiene,
                    1,
                    false,
                    &[
                        "卫生",
                        "厕所",
                        "卫生间",
                        "洗手间",
                        "桌布",
                        "餐具",
                        "筷子",
                        "杯子",
                        "restroom",
                    ],
                ),
                rule(
                    DishQuality,
                    3,
                    false,
                    &[
                        "太咸",
                        "好咸",
                        "齁",
                        "太淡",
                        "没味",
                        "没有味道",
                        "寡淡",
                        "不入味",
                        "没入味",
                        "太甜",
                        "甜得",
                        "太酸",
                        "不辣",
                        "太辣",
                        "不够辣",
                        "特辣",
                        "太油",
                        "油多",
                        "油太多",
                        "难吃",
                        "不好吃",
                        "味道差",
                        "味道变了",
                        "不如以前",
                        "凉了",
                        "冷了",
                        "温的",
                        "不烫",
                        "不热",
                        "太老",
                        "嚼不动",
                        "柴",
                        "太硬",
                        "太软",
                        "回软",
                        "软了",
                        "泡软",
                        "不脆",
                        "没有脆",
                        "坨",
                        "碎成",
                        "散了",
                        "糊了",
                        "烧焦",
                        "焦了",
                        "发苦",
                        "苦味",
                        "腥",
                        "膻",
                        "分量少",
                        "份量少",
                        "量少",
                        "太少",
                        "一小坨",
                        "缩水",
                        "没肉",
                        "全是骨头",
                        "几乎没",
                        "找不到",
                        "上错",
                        "不是我点",
                        "皮太厚",
                        "刀工",
                        "火候",
                        "淀粉",
                        "注水",
                        "漏光",
                        "tasteless",
                        "too salty",
                        "bland",
                        "cold food",
                    ],
                ),
                rule(
                    DishQuality,
                    1,
                    false,
                    &[
                        "味道", "口感", "口味", "分量", "份量", "锅底", "汤底", "菜品", "做得",
                        "肉质",
                    ],
                ),
                rule(
                    ServiceAttitude,
                    3,
                    false,
                    &[
                        "态度差",
                        "态度不好",
                        "态度很差",
                        "态度恶劣",
                        "服务差",
                        "服务太差",
                        "不理人",
                        "没人理",
                        "爱答不理",
                        "爱理不理",
                        "白眼",
                        "甩脸",
                        "摆脸色",
                        "黑脸",
                        "臭脸",
                        "凶",
                        "吼",
                        "骂",
                        "顶嘴",
                        "吵架",
                        "不耐烦",
                        "冷漠",
                        "敷衍",
                        "不礼貌",
                        "没礼貌",
                        "傲慢",
                        "看不起",
                        "瞧不起",
                        "嘲笑",
                        "嘟囔",
                        "阴阳怪气",
                        "推卸",
                        "不道歉",
                        "没有道歉",
                        "连句道歉",
                        "一摔",
                        "摔",
                        "事儿多",
                        "事多",
                        "催我们",
                        "赶我们",
                        "没人添",
                        "没人加",
                        "没给",
                        "一次都没",
                        "忘了",
                        "没这回事",
                        "答应",
                        "rude",
                    ],
                ),
                rule(
                    ServiceAttitude,
                    1,
                    false,
                    &["态度", "服务员", "服务", "经理", "领班", "前台", "领位"],
                ),
                rule(
                    WaitingTime,
                    3,
                    false,
                    &[
                        "等了",
                        "等位",
                        "排队",
                        "排隊",
                        "排了",
                        "太慢",
                        "好慢",
                        "很慢",
                        "慢到",
                        "上菜慢",
                        "出菜慢",
                        "出餐慢",
                        "上得慢",
                        "迟迟",
                        "半天不",
                        "一直不上",
                        "还没上",
                        "没上",
                        "才上",
                        "才来",
                        "才吃上",
                        "没来",
                        "催了",
                        "催菜",
                        "分钟了",
                        "分钟才",
                        "小时才",
                        "久等",
                        "等太久",
                        "等很久",
                        "等半天",
                        "等到",
                        "要等",
                        "等二十",
                        "等四十",
                        "结账慢",
                        "买单慢",
                        "个钟",
                        "個鐘",
                        "slow",
                        "waited",
                        "wait",
                    ],
                ),
                rule(WaitingTime, 1, false, &["等", "分钟", "小时", "慢"]),
                // The delivery partner's part outweighs what it is about.
                rule(
                    Delivery,
                    6,
                    false,
                    &[
                        "外卖",
                        "骑手",
                        "配送",
                        "送餐",
                        "送到",
                        "送来",
                        "送达",
                        "送错",
                        "超时",
                        "洒了",
                        "撒了",
                        "汤漏",
                        "洒出来",
                        "包装破",
                        "包装盒",
                        "压扁",
                        "少送",
                        "漏送",
                        "美团外卖",
                        "饿了么",
                        "delivery",
                        "rider",
                    ],
                ),
                rule(
                    Price,
                    3,
                    false,
                    &[
                        "太贵",
                        "好贵",
                        "贵了",
                        "偏贵",
                        "性价比低",
                        "不值",
                        "宰客",
                        "坑人",
                        "套路",
                        "多收",
                        "乱收费",
                        "收钱",
                        "收了",
                        "另收",
                        "杂费",
                        "服务费",
                        "茶位费",
                        "开瓶费",
                        "算错",
                        "多算",
                        "算钱",
                        "少找",
                        "涨价",
                        "多付",
                        "没抵扣",
                        "不能用",
                        "没给用",
                        "不让用",
                        "原价",
                        "会员价",
                        "小票",
                        "overpriced",
                        "overcharged",
                        "expensive",
                    ],
                ),
                rule(
                    Price,
                    1,
                    false,
                    &[
                        "价格", "价钱", "券", "团购", "结账", "收银", "退款", "¥", "元",
                    ],
                ),
                rule(
                    Environment,
                    3,
                    false,
                    &[
                        "太吵",
                        "吵",
                        "嘈杂",
                        "噪音",
                        "声音大",
                        "大声",
                        "蹦迪",
                        "电钻",
                        "太热",
                        "太冷",
                        "冷得",
                        "热得",
                        "冷氣",
                        "冷气太",
                        "空调太",
                        "风口",
                        "闷",
                        "烟味",
                        "油烟",
                        "呛",
                        "有人抽烟",
                        "拥挤",
                        "太挤",
                        "太矮",
                        "太高",
                        "吃得很累",
                        "太暗",
                        "头痛",
                        "頭痛",
                        "走好远",
                        "noisy",
                        "loud",
                    ],
                ),
                rule(
                    Environment,
                    1,
                    false,
                    &[
                        "环境", "空调", "音乐", "座位", "卡座", "沙发", "椅子", "灯光", "装修",
                        "停车", "窗外",
                    ],
                ),
                rule(Delivery, 1, false, &["送"]),
                // Questions and suggestions rather than complaints.
                rule(
                    Other,
                    3,
                    false,
                    &[
                        "请问",
                        "建议",
                        "希望",
                        "能不能",
                        "可不可以",
                        "可以开",
                        "吗?",
                        "吗？",
                        "有没有",
                        "怎么兑换",
                        "发票",
                        "开票",
                        "积分",
                        "会员卡",
                        "怎么办理",
                        "营业时间",
                    ],
                ),
                rule(
                    Praise,
                    3,
                    false,
                    &[
                        "好吃",
                        "美味",
                        "鲜嫩",
                        "正宗",
                        "入味",
                        "过瘾",
                        "赞",
                        "点赞",
                        "好评",
                        "满意",
                        "推荐",
                        "还会再来",
                        "会再来",
                        "下次还",
                        "必点",
                        "每次必",
                        "回头客",
                        "贴心",
                        "暖心",
                        "周到",
                        "热情",
                        "服务好",
                        "服务很好",
                        "服务也好",
                        "惊喜",
                        "超值",
                        "性价比高",
                        "划算",
                        "yyds",
                        "绝了",
                        "完美",
                        "五星",
                        "感谢",
                        "谢谢",
                        "准没错",
                        "喜欢",
                        "不错",
                        "很棒",
                        "太棒",
                        "棒",
                        "干净",
                        "很快",
                        "不无聊",
                        "刚刚好",
                        "感动",
                        "到位",
                        "满分",
                        "夸",
                        "有礼貌",
                        "实惠",
                        "一流",
                        "用心",
                        "热乎",
                        "好好食",
                        "抢着",
                        "细节",
                        "great",
                        "delicious",
                        "love",
                        "amazing",
                    ],
                ),
                rule(
                    Praise,
                    1,
                    false,
                    &["香", "嫩", "脆", "鲜", "Q弹", "酸甜", "漂亮"],
                ),
            ],
            // Dish and object names that contain a trigger character but
            // are not the trigger: removed before the phrases are read.
            ignore: list(&[
                "毛肚",
                "毛血旺",
                "毛豆",
                "毛巾",
                "毛笋",
                "毛毛",
                "毛病",
                "毛蟹",
                "虫草",
                "生菜",
                "生蚝",
                "生煎",
                "生日",
                "先生",
                "生意",
                "花生",
                "生鱼片",
                "生抽",
                "生菜",
                "鸭血",
                "血旺",
                "毛利",
                "塑料袋装",
                "粉红色的",
                "不舒服的座",
                "坏了心情",
            ]),
            escalators: list(&[
                "再也不来",
                "再也不会来",
                "不會再來",
                "不会再来",
                "永远不来",
                "拉黑",
                "曝光",
                "投诉到",
                "12315",
                "消协",
                "市场监管",
                "食药监",
                "卫生局",
                "媒体",
                "报警",
                "律师",
                "起诉",
                "赔偿",
                "退钱",
                "发微博",
                "发抖音",
                "小红书",
                "截图",
                "never again",
            ]),
        }
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
            _ => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
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
    fn staff_edited_rules_are_checked() {
        let mut r = ClassifierRules::default();
        assert!(r.validate().is_ok());
        r.rules.retain(|x| !x.critical);
        assert!(r.validate().is_err(), "food safety must stay critical");
        let mut r = ClassifierRules::default();
        r.rules[3].critical = true;
        assert!(r.validate().is_err());
    }
}
