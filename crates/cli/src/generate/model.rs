//! The behaviour model of `regulars generate`: who the members are and how
//! they eat, as plain values. Pure: no I/O, no clock; every draw comes from a
//! [`StdRng`] seeded from `(seed, member index)`, so one member's life is the
//! same whichever thread makes it and however the run is cut into chunks.
//!
//! The story (docs/generate.md has the long form):
//!
//! * Members join over the history, more of them early on
//!   ([`JOIN_SKEW`]). A share of them ([`POTENTIAL_SHARE`]) register and never
//!   come; the others register at their first visit.
//! * Visits follow BG/NBD: a member's purchase rate λ (per day) is drawn from
//!   Gamma([`LAMBDA_SHAPE_R`], rate [`LAMBDA_RATE_ALPHA`]); after every repeat
//!   visit the member drops out for good with probability p, drawn from
//!   Beta([`DROPOUT_A`], [`DROPOUT_B`]). The day of the week and holidays
//!   modulate the rate (busier weekends, 春节, 国庆, ...) with factors whose
//!   mean over the history is 1, so λ stays the member's true average rate.
//! * Each visit: an hour (lunch and dinner peaks), a channel, a party size, a
//!   store (mostly the home store), one soup base and about party size + 2
//!   dishes chosen from the member's taste: regional spice, 3–5 personal
//!   favourites, dish pairings, allergies and dislikes respected, new dishes
//!   only after their launch.

use chrono::{Datelike, Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use regulars_core::member::{Gender, SourceChannel};
use regulars_core::order::Channel;
use regulars_core::tier::{Tier, TierPolicy};

/// BG/NBD purchase rate λ ~ Gamma(shape r, rate α), λ in visits per day.
/// Mean λ = r/α ≈ 0.11/day while alive, but the small shape makes it very
/// uneven: the median member's λ is a third of the mean, a tenth of the
/// members visit several times a month. With the drop-out below and the join
/// curve, a 24-month history holds about 20 orders per member on average.
pub const LAMBDA_SHAPE_R: f64 = 0.45;
/// See [`LAMBDA_SHAPE_R`]: the Gamma's rate α, in days.
pub const LAMBDA_RATE_ALPHA: f64 = 4.0;
/// BG/NBD drop-out probability after each repeat visit: p ~ Beta(a, b),
/// mean a/(a+b) ≈ 5.9%.
pub const DROPOUT_A: f64 = 0.5;
/// See [`DROPOUT_A`].
pub const DROPOUT_B: f64 = 8.0;
/// Share of members who register and never order ("potential" members).
pub const POTENTIAL_SHARE: f64 = 0.08;
/// Join day = history length × u^JOIN_SKEW (u uniform): with 1.6 about two
/// thirds of the members have joined by the middle of the history.
pub const JOIN_SKEW: f64 = 1.6;
/// Share of orders refunded in part.
pub const REFUND_SHARE: f64 = 0.01;
/// Share of lines voided, and of lines comped.
pub const VOID_SHARE: f64 = 0.015;
pub const COMP_SHARE: f64 = 0.008;

/// A store of the chain, as the model needs it.
#[derive(Debug, Clone)]
pub struct StoreInfo {
    pub code: String,
    pub city: String,
}

/// A dish of the menu, as the model needs it.
#[derive(Debug, Clone)]
pub struct DishInfo {
    pub sku: String,
    pub name: String,
    pub category: String,
    pub spice_level: i64,
    pub price_fen: i64,
    pub is_new: bool,
}

/// Everything a run depends on besides the member index.
#[derive(Debug, Clone)]
pub struct Params {
    pub seed: u64,
    /// Local midnight of each day of the history, in Unix ms (day 0 first).
    /// The caller works them out in the chain's time zone; day `i`'s
    /// calendar date is `first_day + i`.
    pub day_starts: Vec<i64>,
    pub first_day: NaiveDate,
    /// No visit at or after this moment (end of the last day, or now).
    pub horizon_ms: i64,
    /// Start of the rolling 12-month tier window ending at the horizon.
    pub tier_window_start_ms: i64,
    pub tiers: TierPolicy,
}

/// One line of a generated order.
#[derive(Debug, Clone, Copy)]
pub struct Line {
    /// Index into the menu.
    pub dish: u16,
    pub quantity: i64,
    pub discount_fen: i64,
    pub voided: bool,
    pub comped: bool,
}

/// One generated visit.
#[derive(Debug, Clone)]
pub struct Visit {
    /// 0 for the first visit of the member, then 1, 2, ...
    pub number: u32,
    /// Index into the stores.
    pub store: usize,
    pub channel: Channel,
    pub occurred_at: i64,
    pub party_size: i64,
    pub lines: Vec<Line>,
    pub paid_fen: i64,
    pub eligible_fen: i64,
    /// Part refunded, and when.
    pub refund: Option<(i64, i64)>,
}

impl Visit {
    /// What still counts toward tiers after the refund (as the refund path
    /// computes it).
    pub fn qualifying_fen(&self) -> i64 {
        let refunded = self.refund.map_or(0, |r| r.0);
        self.eligible_fen
            - (self.eligible_fen as i128 * refunded as i128 / self.paid_fen.max(1) as i128) as i64
    }
}

/// One generated member with their whole history.
#[derive(Debug, Clone)]
pub struct Member {
    /// National 11-digit mobile number (fake 171 range). Never print it.
    pub phone: String,
    pub name: Option<String>,
    pub gender: Gender,
    pub birthday: Option<NaiveDate>,
    pub email: Option<String>,
    pub notes: Option<String>,
    pub home_store: usize,
    pub source: SourceChannel,
    /// sms, email, wechat
    pub consents: [bool; 3],
    pub tags: Vec<&'static str>,
    pub spice: u8,
    pub allergies: Vec<&'static str>,
    pub dislikes: Vec<&'static str>,
    /// Dish indices.
    pub favourites: Vec<u16>,
    pub joined_at: i64,
    /// The member's true BG/NBD parameters (for checks; never stored).
    #[allow(dead_code)]
    pub lambda: f64,
    #[allow(dead_code)]
    pub dropout: f64,
    pub visits: Vec<Visit>,
    pub spend_12m_fen: i64,
    pub tier: Tier,
}

const SURNAMES: [&str; 32] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
];
const GIVEN_FEMALE: [&str; 16] = [
    "芳", "娜", "敏", "静", "婷", "雪", "欣怡", "梓涵", "雨桐", "思雨", "佳怡", "诗涵", "晓燕",
    "美玲", "一诺", "可欣",
];
const GIVEN_MALE: [&str; 16] = [
    "伟", "强", "磊", "军", "杰", "涛", "浩然", "子轩", "宇航", "俊杰", "志强", "建华", "明辉",
    "文博", "思远", "嘉豪",
];

/// Allergens the model knows, and the dishes (by name) that carry them.
pub const ALLERGENS: [(&str, &[&str]); 3] = [
    ("花生", &["冰粉", "红糖糍粑"]),
    ("海鲜", &["虾滑", "巴沙鱼片"]),
    ("虾", &["虾滑"]),
];
/// Dislikes the model knows, and the dishes (by name) they rule out.
pub const DISLIKES: [(&str, &[&str]); 3] = [
    ("香菜", &["香菜丸子"]),
    ("内脏", &["毛肚", "鸭肠", "黄喉", "鲜鸭血"]),
    ("羊肉", &["嫩羊肉"]),
];
/// Dishes ordered together (either way round): each raises the other's
/// chance about four-fold once one of them is on the order.
pub const PAIRINGS: [(&str, &str); 10] = [
    ("精品肥牛", "毛肚"),
    ("番茄锅底", "虾滑"),
    ("青岛啤酒", "鸭肠"),
    ("毛肚", "鸭肠"),
    ("牛油麻辣锅底", "黄喉"),
    ("菌汤锅底", "娃娃菜"),
    ("番茄锅底", "手工面"),
    ("红糖糍粑", "冰粉"),
    ("酥肉", "酸梅汤"),
    ("清油麻辣锅底", "鲜鸭血"),
];
const PAIRING_BOOST: f64 = 4.0;

/// How popular a dish is, by name (others: 4).
fn popularity(name: &str) -> f64 {
    match name {
        "精品肥牛" => 10.0,
        "毛肚" => 9.0,
        "虾滑" => 8.0,
        "鸭肠" | "嫩羊肉" | "土豆片" | "娃娃菜" | "手工面" | "酥肉" | "酸梅汤" | "青岛啤酒" => {
            6.0
        }
        "黄喉" | "午餐肉" | "麻辣牛肉" | "鲜鸭血" | "藕片" | "冻豆腐" | "腐竹" | "红糖糍粑"
        | "冰粉" => 5.0,
        "香菜丸子" | "鲜榨西瓜汁" => 3.0,
        _ => 4.0,
    }
}

/// Spice preference by city: 成都/重庆 hot, 长沙/武汉 medium, the south and
/// east mild, elsewhere a little.
pub fn city_spice(city: &str) -> u8 {
    match city {
        "成都" | "重庆" => 3,
        "长沙" | "武汉" => 2,
        "广州" | "深圳" | "上海" | "杭州" => 0,
        _ => 1,
    }
}

fn city_weight(city: &str) -> f64 {
    match city {
        "成都" => 1.4,
        "北京" | "上海" | "重庆" => 1.25,
        "广州" | "深圳" => 1.05,
        _ => 0.85,
    }
}

/// How well a dish of `dish` spice suits a member who likes `member` spice:
/// spicier than liked falls off fast; hot lovers lean to hot dishes.
fn spice_fit(member: u8, dish: i64) -> f64 {
    let (m, d) = (f64::from(member), dish as f64);
    if d <= 0.0 {
        // Mild dishes: a little less attractive to the hot lovers.
        1.0 - 0.08 * m
    } else if d > m {
        0.25f64.powf(d - m)
    } else {
        1.0 + 0.6 * d
    }
}

/// The busy-ness of a day: weekday factor × holiday factor.
fn day_factor(date: NaiveDate) -> f64 {
    let weekday = match date.weekday().num_days_from_monday() {
        0..=3 => 0.85,
        4 => 1.1,
        _ => 1.45,
    };
    weekday * holiday_factor(date)
}

/// 春节 and 中秋 by year (fixed approximations outside the table).
fn spring_festival(year: i32) -> NaiveDate {
    let (m, d) = match year {
        2020 => (1, 25),
        2021 => (2, 12),
        2022 => (2, 1),
        2023 => (1, 22),
        2024 => (2, 10),
        2025 => (1, 29),
        2026 => (2, 17),
        2027 => (2, 6),
        2028 => (1, 26),
        2029 => (2, 13),
        2030 => (2, 3),
        _ => (2, 1),
    };
    NaiveDate::from_ymd_opt(year, m, d).expect("static dates")
}

fn mid_autumn(year: i32) -> NaiveDate {
    let (m, d) = match year {
        2020 => (10, 1),
        2021 => (9, 21),
        2022 => (9, 10),
        2023 => (9, 29),
        2024 => (9, 17),
        2025 => (10, 6),
        2026 => (9, 25),
        2027 => (9, 15),
        2028 => (10, 3),
        2029 => (9, 22),
        2030 => (9, 12),
        _ => (9, 20),
    };
    NaiveDate::from_ymd_opt(year, m, d).expect("static dates")
}

/// 元旦 (1–3 Jan), 春节 (eve to the sixth day), 5.1 (1–5 May), 中秋 (the day
/// and the next), 国庆 (1–7 Oct).
pub fn holiday_factor(date: NaiveDate) -> f64 {
    let (m, d) = (date.month(), date.day());
    let spring = spring_festival(date.year());
    let from_spring = (date - spring).num_days();
    let from_autumn = (date - mid_autumn(date.year())).num_days();
    if (-1..=6).contains(&from_spring) {
        1.9
    } else if m == 10 && d <= 7 {
        1.7
    } else if (0..=1).contains(&from_autumn) {
        1.6
    } else if m == 5 && d <= 5 {
        1.5
    } else if m == 1 && d <= 3 {
        1.4
    } else {
        1.0
    }
}

/// Deterministic 64-bit mixing (splitmix64).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The fake mobile number of member `index` under `seed`: `171` and eight
/// digits, `(offset(seed) + index) mod 10^8`. Unique within a run of up to
/// 10^8 members; two seeds may overlap, which the writer detects and skips.
pub fn phone_of(seed: u64, index: u64) -> String {
    let offset = mix(seed ^ 0x5EED_0171) % 100_000_000;
    format!("171{:08}", (offset + index) % 100_000_000)
}

fn gamma(rng: &mut StdRng, shape: f64, rate: f64) -> f64 {
    // Marsaglia and Tsang; shapes below 1 through the u^(1/shape) boost.
    if shape < 1.0 {
        let u: f64 = rng.gen::<f64>().max(f64::MIN_POSITIVE);
        return gamma(rng, shape + 1.0, rate) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.gen();
        if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
            return d * v / rate;
        }
    }
}

fn beta(rng: &mut StdRng, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a, 1.0);
    let y = gamma(rng, b, 1.0);
    if x + y <= 0.0 {
        0.0
    } else {
        x / (x + y)
    }
}

fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.gen::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn exponential(rng: &mut StdRng, rate: f64) -> f64 {
    -(1.0 - rng.gen::<f64>()).ln() / rate
}

fn pick_weighted(rng: &mut StdRng, weights: &[f64]) -> Option<usize> {
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let mut x = rng.gen::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if *w <= 0.0 {
            continue;
        }
        if x < *w {
            return Some(i);
        }
        x -= w;
    }
    weights.iter().rposition(|w| *w > 0.0)
}

/// The chain, the menu and the calendar, worked out once per run.
pub struct Model {
    pub params: Params,
    pub stores: Vec<StoreInfo>,
    pub menu: Vec<DishInfo>,
    store_weights: Vec<f64>,
    /// For each store, the other stores in its city.
    same_city: Vec<Vec<usize>>,
    /// Soup bases (category 锅底) and the other orderable dishes.
    bases: Vec<usize>,
    dishes: Vec<usize>,
    popularity: Vec<f64>,
    /// Dish index → partner dish indices.
    partners: Vec<Vec<usize>>,
    /// Day index → busy factor normalised to mean 1 over the history.
    day_factors: Vec<f64>,
    max_day_factor: f64,
    /// Day index from which a new dish is on the menu (all new dishes launch
    /// together, four months before the end or a third of the way back).
    launch_day: usize,
}

/// Days over which a new dish's orders ramp up to their full share.
const LAUNCH_RAMP_DAYS: f64 = 45.0;

impl Model {
    /// `stores` and `menu` must not be empty; dishes priced 0 (staff meals)
    /// are never ordered.
    pub fn new(params: Params, stores: Vec<StoreInfo>, menu: Vec<DishInfo>) -> Model {
        let mut rng = StdRng::seed_from_u64(mix(params.seed ^ 0xC4A1));
        let store_weights = stores
            .iter()
            .map(|s| city_weight(&s.city) * rng.gen_range(0.7..1.3))
            .collect();
        let same_city = stores
            .iter()
            .enumerate()
            .map(|(i, s)| {
                stores
                    .iter()
                    .enumerate()
                    .filter(|(j, o)| *j != i && o.city == s.city)
                    .map(|(j, _)| j)
                    .collect()
            })
            .collect();
        let orderable = |d: &DishInfo| d.price_fen > 0 && d.category != "员工餐";
        let bases = (0..menu.len())
            .filter(|&i| orderable(&menu[i]) && menu[i].category == "锅底")
            .collect();
        let dishes = (0..menu.len())
            .filter(|&i| orderable(&menu[i]) && menu[i].category != "锅底")
            .collect();
        let popularity = menu.iter().map(|d| popularity(&d.name)).collect();
        let index_of = |name: &str| menu.iter().position(|d| d.name == name);
        let mut partners = vec![Vec::new(); menu.len()];
        for (a, b) in PAIRINGS {
            if let (Some(a), Some(b)) = (index_of(a), index_of(b)) {
                partners[a].push(b);
                partners[b].push(a);
            }
        }
        let days = params.day_starts.len().max(1);
        let raw: Vec<f64> = (0..days)
            .map(|d| day_factor(params.first_day + Duration::days(d as i64)))
            .collect();
        let mean = raw.iter().sum::<f64>() / days as f64;
        let day_factors: Vec<f64> = raw.iter().map(|f| f / mean).collect();
        let max_day_factor = day_factors.iter().cloned().fold(0.0, f64::max);
        let launch_day = days.saturating_sub((days / 3).min(120));
        Model {
            params,
            stores,
            menu,
            store_weights,
            same_city,
            bases,
            dishes,
            popularity,
            partners,
            day_factors,
            max_day_factor,
            launch_day,
        }
    }

    fn days(&self) -> usize {
        self.params.day_starts.len()
    }

    fn ruled_out(&self, dish: usize, allergies: &[&str], dislikes: &[&str]) -> bool {
        let name = self.menu[dish].name.as_str();
        ALLERGENS
            .iter()
            .filter(|(a, _)| allergies.contains(a))
            .chain(DISLIKES.iter().filter(|(d, _)| dislikes.contains(d)))
            .any(|(_, dishes)| dishes.contains(&name))
    }

    /// Member `index`'s profile and whole history.
    pub fn member(&self, index: u64) -> Member {
        let p = &self.params;
        let mut rng =
            StdRng::seed_from_u64(mix(p.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ mix(index)));
        let days = self.days();
        let home_store = pick_weighted(&mut rng, &self.store_weights).unwrap_or(0);
        let city = self.stores[home_store].city.as_str();
        let gender = match rng.gen_range(0..100) {
            0..=51 => Gender::Female,
            52..=97 => Gender::Male,
            _ => Gender::Unknown,
        };
        let name = rng.gen_bool(0.97).then(|| {
            let surname = SURNAMES[rng.gen_range(0..SURNAMES.len())];
            let given = if gender == Gender::Female {
                GIVEN_FEMALE[rng.gen_range(0..GIVEN_FEMALE.len())]
            } else {
                GIVEN_MALE[rng.gen_range(0..GIVEN_MALE.len())]
            };
            format!("{surname}{given}")
        });
        let last_day = p.first_day + Duration::days(days as i64 - 1);
        let birthday = rng.gen_bool(0.85).then(|| {
            // Ages 18–65, most of them 25–45; the day of the year is uniform,
            // so birthday months are spread evenly.
            let age = (18.0 + gamma(&mut rng, 4.0, 0.28)).min(65.0) as i64;
            last_day - Duration::days(age * 365 + rng.gen_range(0..365))
        });
        let email = rng
            .gen_bool(0.3)
            .then(|| format!("g{}.{index}@example.com", p.seed));
        let notes = rng.gen_bool(0.04).then(|| {
            ["喜欢靠窗的位置", "不要葱", "常带老人", "锅底少油"][rng.gen_range(0..4)].to_string()
        });
        let source = match rng.gen_range(0..10) {
            0..=4 => SourceChannel::Pos,
            5..=7 => SourceChannel::Wechat,
            8 => SourceChannel::H5,
            _ => SourceChannel::App,
        };
        let consents = [rng.gen_bool(0.7), rng.gen_bool(0.3), rng.gen_bool(0.6)];
        let spice = (city_spice(city) + u8::from(rng.gen_bool(0.5))).min(4);
        let allergies: Vec<&'static str> = if rng.gen_bool(0.06) {
            vec![match rng.gen_range(0..10) {
                0..=4 => "花生",
                5..=7 => "海鲜",
                _ => "虾",
            }]
        } else {
            vec![]
        };
        let dislikes: Vec<&'static str> = if rng.gen_bool(0.15) {
            vec![match rng.gen_range(0..20) {
                0..=11 => "香菜",
                12..=16 => "内脏",
                _ => "羊肉",
            }]
        } else {
            vec![]
        };
        let mut tags: Vec<&'static str> = Vec::new();
        if spice >= 3 {
            tags.push("辣");
        }
        let with_kids = rng.gen_bool(0.1);
        let business = rng.gen_bool(0.05);
        let student = !business && rng.gen_bool(0.08);
        for (on, tag) in [
            (with_kids, "带娃"),
            (business, "商务宴请"),
            (student, "学生"),
            (rng.gen_bool(0.06), "生日宴"),
        ] {
            if on {
                tags.push(tag);
            }
        }

        // The member's taste over dishes: popularity × spice fit, nothing
        // they are allergic to or dislike.
        let mut taste = vec![0.0f64; self.menu.len()];
        for &d in self.bases.iter().chain(self.dishes.iter()) {
            if !self.ruled_out(d, &allergies, &dislikes) {
                taste[d] = self.popularity[d] * spice_fit(spice, self.menu[d].spice_level);
            }
        }
        // 3–5 favourites among the dishes on the menu from the start.
        let mut favourites: Vec<u16> = Vec::new();
        let mut pool: Vec<f64> = self
            .dishes
            .iter()
            .map(|&d| if self.menu[d].is_new { 0.0 } else { taste[d] })
            .collect();
        for _ in 0..rng.gen_range(3..=5) {
            let Some(k) = pick_weighted(&mut rng, &pool) else {
                break;
            };
            pool[k] = 0.0;
            favourites.push(self.dishes[k] as u16);
        }
        // A favourite base too (spicy members: the spicy ones).
        let base_weights: Vec<f64> = self.bases.iter().map(|&b| taste[b].powi(2)).collect();
        let favourite_base = pick_weighted(&mut rng, &base_weights).map(|k| self.bases[k]);

        // Persistent habits.
        let spend = (0.3 * normal(&mut rng)).exp()
            * if business {
                1.4
            } else if student {
                0.8
            } else {
                1.0
            };
        let usual_party: i64 = if student {
            rng.gen_range(2..=4)
        } else {
            match rng.gen_range(0..100) {
                0..=9 => 1,
                10..=49 => 2,
                50..=71 => 3,
                72..=89 => 4,
                _ => rng.gen_range(5..=8),
            }
        } + i64::from(with_kids);

        let lambda = gamma(&mut rng, LAMBDA_SHAPE_R, LAMBDA_RATE_ALPHA);
        let dropout = beta(&mut rng, DROPOUT_A, DROPOUT_B);
        let potential = rng.gen_bool(POTENTIAL_SHARE);
        let t0 = days as f64 * rng.gen::<f64>().powf(JOIN_SKEW);

        let mut member = Member {
            phone: phone_of(p.seed, index),
            name,
            gender,
            birthday,
            email,
            notes,
            home_store,
            source,
            consents,
            tags,
            spice,
            allergies,
            dislikes,
            favourites,
            joined_at: 0,
            lambda,
            dropout,
            visits: Vec::new(),
            spend_12m_fen: 0,
            tier: Tier::Regular,
        };
        let day0 = (t0 as usize).min(days - 1);
        if potential {
            member.joined_at = (p.day_starts[day0] + rng.gen_range(10 * 3_600_000..22 * 3_600_000))
                .min(p.horizon_ms - 1);
            return member;
        }
        let habits = Habits {
            taste: &taste,
            favourite_base,
            spend,
            usual_party,
            student,
        };
        // The first visit is the day they join; then a Poisson process with
        // rate λ × day factor (thinning), dropping out after repeat visits.
        let mut t = day0 as f64 + rng.gen::<f64>() * 0.99;
        let mut number = 0u32;
        loop {
            let day = t as usize;
            if day >= days {
                break;
            }
            let accept =
                number == 0 || rng.gen::<f64>() < self.day_factors[day] / self.max_day_factor;
            if accept {
                let Some(visit) = self.visit(&mut rng, &member, &habits, day, number) else {
                    break;
                };
                if number == 0 {
                    member.joined_at = visit.occurred_at - rng.gen_range(0..20 * 60_000);
                }
                member.visits.push(visit);
                number += 1;
                if number > 1 && rng.gen::<f64>() < dropout {
                    break;
                }
            }
            t += exponential(&mut rng, lambda * self.max_day_factor);
        }
        if member.visits.is_empty() {
            member.joined_at = (p.day_starts[day0] + 12 * 3_600_000).min(p.horizon_ms - 1);
        }
        member.spend_12m_fen = member
            .visits
            .iter()
            .filter(|v| v.occurred_at > p.tier_window_start_ms && v.occurred_at <= p.horizon_ms)
            .map(Visit::qualifying_fen)
            .sum();
        member.tier = p.tiers.tier_for_spend(member.spend_12m_fen);
        member
    }

    /// One visit on `day`, or `None` when its moment falls past the horizon.
    fn visit(
        &self,
        rng: &mut StdRng,
        member: &Member,
        habits: &Habits<'_>,
        day: usize,
        number: u32,
    ) -> Option<Visit> {
        let p = &self.params;
        let weekend = (p.first_day + Duration::days(day as i64))
            .weekday()
            .num_days_from_monday()
            >= 5;
        let lunch_share = if habits.student || weekend {
            0.42
        } else {
            0.33
        };
        let x: f64 = rng.gen();
        let (from_h, to_h) = if x < lunch_share {
            (11, 14)
        } else if x < lunch_share + 0.56 {
            (17, 21)
        } else if x < lunch_share + 0.62 {
            (21, 24)
        } else {
            (14, 17)
        };
        let second = rng.gen_range(from_h * 3600..to_h * 3600);
        let occurred_at = p.day_starts[day] + i64::from(second) * 1000;
        if occurred_at >= p.horizon_ms {
            return None;
        }
        let channel = match rng.gen_range(0..100) {
            0..=79 => Channel::DineIn,
            80..=86 => Channel::Takeaway,
            87..=96 => Channel::Delivery,
            _ => Channel::Online,
        };
        let dine_in = channel == Channel::DineIn;
        let party_size = if dine_in {
            (habits.usual_party + rng.gen_range(-1..=1)).clamp(1, 8)
        } else {
            rng.gen_range(1..=3)
        };
        let store = if rng.gen_bool(0.85) {
            member.home_store
        } else {
            let nearby = &self.same_city[member.home_store];
            if !nearby.is_empty() && rng.gen_bool(0.5) {
                nearby[rng.gen_range(0..nearby.len())]
            } else {
                pick_weighted(rng, &self.store_weights).unwrap_or(member.home_store)
            }
        };
        // Visitors eat a little more like the locals.
        let local_spice = city_spice(&self.stores[store].city);

        let mut order = Picks {
            lines: Vec::with_capacity(party_size as usize + 5),
            chosen: vec![false; self.menu.len()],
            boost: vec![1.0f64; self.menu.len()],
        };
        // The soup base: the favourite most times.
        let base = match habits.favourite_base {
            Some(b) if rng.gen_bool(0.7) => Some(b),
            _ => {
                let w: Vec<f64> = self
                    .bases
                    .iter()
                    .map(|&b| {
                        habits.taste[b]
                            * if local_spice >= 3 && self.menu[b].spice_level >= 3 {
                                1.5
                            } else {
                                1.0
                            }
                    })
                    .collect();
                pick_weighted(rng, &w).map(|k| self.bases[k])
            }
        };
        if let Some(b) = base {
            self.add(&mut order, b, 1);
        }
        let wanted = (party_size + if dine_in { 2 } else { 1 } + i64::from(habits.spend > 1.3))
            .min(self.dishes.len() as i64)
            + i64::from(base.is_some());
        // Favourites first, each more often than not.
        for &f in &member.favourites {
            let f = f as usize;
            if (order.lines.len() as i64) < wanted && !order.chosen[f] && rng.gen_bool(0.55) {
                let qty = self.quantity(rng, f, party_size, habits.spend);
                self.add(&mut order, f, qty);
            }
        }
        let ramp = if day < self.launch_day {
            0.0
        } else {
            ((day - self.launch_day) as f64 / LAUNCH_RAMP_DAYS).min(1.0) * 1.3
        };
        let mut w = vec![0.0f64; self.dishes.len()];
        while (order.lines.len() as i64) < wanted {
            for (k, &d) in self.dishes.iter().enumerate() {
                w[k] = if order.chosen[d] {
                    0.0
                } else {
                    let new = if self.menu[d].is_new { ramp } else { 1.0 };
                    habits.taste[d] * order.boost[d] * new
                };
            }
            let Some(k) = pick_weighted(rng, &w) else {
                break;
            };
            let d = self.dishes[k];
            let qty = self.quantity(rng, d, party_size, habits.spend);
            self.add(&mut order, d, qty);
        }
        let mut lines = order.lines;
        // Flags and discounts, then what was paid.
        let member_day = rng.gen_bool(0.04);
        let mut paid = 0;
        for line in &mut lines {
            let price = self.menu[line.dish as usize].price_fen;
            line.voided = rng.gen_bool(VOID_SHARE);
            line.comped = !line.voided && rng.gen_bool(COMP_SHARE);
            if member_day {
                line.discount_fen = line.quantity * price / 10;
            }
            if !(line.voided || line.comped) {
                paid += (line.quantity * price - line.discount_fen).max(0);
            }
        }
        let refund = (paid > 0 && rng.gen_bool(REFUND_SHARE)).then(|| {
            let amount = ((paid as f64 * rng.gen_range(0.1..0.5)) as i64).clamp(1, paid);
            let at = (occurred_at + rng.gen_range(30 * 60_000..3 * 86_400_000)).min(p.horizon_ms);
            (amount, at.max(occurred_at))
        });
        Some(Visit {
            number,
            store,
            channel,
            occurred_at,
            party_size,
            lines,
            paid_fen: paid,
            eligible_fen: paid,
            refund,
        })
    }

    fn add(&self, order: &mut Picks, dish: usize, quantity: i64) {
        order.chosen[dish] = true;
        for &q in &self.partners[dish] {
            order.boost[q] *= PAIRING_BOOST;
        }
        order.lines.push(Line {
            dish: dish as u16,
            quantity,
            discount_fen: 0,
            voided: false,
            comped: false,
        });
    }

    fn quantity(&self, rng: &mut StdRng, dish: usize, party: i64, spend: f64) -> i64 {
        let d = &self.menu[dish];
        if d.category == "饮品" {
            return (party as f64 * rng.gen_range(0.3..0.9) * spend)
                .round()
                .max(1.0) as i64;
        }
        let extra = ((party as f64 - 2.0) * 0.25 * spend).max(0.0);
        let mut q = 1 + extra.floor() as i64;
        if rng.gen::<f64>() < extra.fract() {
            q += 1;
        }
        q.clamp(1, 6)
    }
}

/// The lines of an order being put together.
struct Picks {
    lines: Vec<Line>,
    chosen: Vec<bool>,
    boost: Vec<f64>,
}

struct Habits<'a> {
    taste: &'a [f64],
    favourite_base: Option<usize>,
    spend: f64,
    usual_party: i64,
    student: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(seed: u64) -> Model {
        let first_day = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let days = 731;
        let day_starts: Vec<i64> = (0..days)
            .map(|d| {
                (first_day + Duration::days(d))
                    .and_hms_opt(0, 0, 0)
                    .unwrap()
                    .and_utc()
                    .timestamp_millis()
                    - 8 * 3_600_000
            })
            .collect();
        let horizon_ms = day_starts[days as usize - 1] + 86_400_000;
        let stores = crate::demo::STORES
            .iter()
            .map(|s| StoreInfo {
                code: s.0.into(),
                city: s.3.into(),
            })
            .collect();
        let menu = crate::demo::MENU
            .iter()
            .map(|d| DishInfo {
                sku: d.0.into(),
                name: d.1.into(),
                category: d.2.into(),
                spice_level: d.3,
                price_fen: d.4,
                is_new: d.5,
            })
            .collect();
        Model::new(
            Params {
                seed,
                day_starts,
                first_day,
                horizon_ms,
                tier_window_start_ms: horizon_ms - 365 * 86_400_000,
                tiers: TierPolicy::default(),
            },
            stores,
            menu,
        )
    }

    #[test]
    fn the_same_member_every_time_and_different_seeds_differ() {
        let a = model(7);
        let b = model(7);
        let c = model(8);
        for i in [0u64, 1, 99] {
            let (x, y) = (a.member(i), b.member(i));
            assert_eq!(x.phone, y.phone);
            assert_eq!(x.visits.len(), y.visits.len());
            assert_eq!(
                x.visits.iter().map(|v| v.paid_fen).sum::<i64>(),
                y.visits.iter().map(|v| v.paid_fen).sum::<i64>()
            );
        }
        assert_ne!(a.member(0).phone, c.member(0).phone);
        assert!(a.member(0).phone.starts_with("171") && a.member(0).phone.len() == 11);
    }

    #[test]
    fn around_twenty_orders_per_member_over_two_years() {
        let m = model(1);
        let n = 3000u64;
        let members: Vec<Member> = (0..n).map(|i| m.member(i)).collect();
        let orders: usize = members.iter().map(|x| x.visits.len()).sum();
        let per = orders as f64 / n as f64;
        assert!((14.0..26.0).contains(&per), "{per} orders per member");
        let potential = members.iter().filter(|x| x.visits.is_empty()).count();
        let lambda = members.iter().map(|x| x.lambda).sum::<f64>() / n as f64;
        let r_over_alpha = LAMBDA_SHAPE_R / LAMBDA_RATE_ALPHA;
        assert!((lambda / r_over_alpha - 1.0).abs() < 0.1, "{lambda}");
        let p = members.iter().map(|x| x.dropout).sum::<f64>() / n as f64;
        assert!(
            (p / (DROPOUT_A / (DROPOUT_A + DROPOUT_B)) - 1.0).abs() < 0.12,
            "{p}"
        );
        assert!(potential as f64 / n as f64 > 0.05);
        let lines: usize = members
            .iter()
            .flat_map(|x| x.visits.iter())
            .map(|v| v.lines.len())
            .sum();
        let per_order = lines as f64 / orders as f64;
        assert!(
            (4.0..9.0).contains(&per_order),
            "{per_order} lines per order"
        );
        // Allergies are respected.
        for x in &members {
            for v in &x.visits {
                for l in &v.lines {
                    assert!(!m.ruled_out(l.dish as usize, &x.allergies, &x.dislikes));
                }
            }
        }
    }

    #[test]
    fn gamma_and_beta_have_their_means() {
        let mut rng = StdRng::seed_from_u64(3);
        let n = 200_000;
        let g: f64 = (0..n).map(|_| gamma(&mut rng, 2.5, 4.0)).sum::<f64>() / n as f64;
        assert!((g - 0.625).abs() < 0.01, "{g}");
        let g: f64 = (0..n).map(|_| gamma(&mut rng, 0.5, 2.0)).sum::<f64>() / n as f64;
        assert!((g - 0.25).abs() < 0.01, "{g}");
        let b: f64 = (0..n).map(|_| beta(&mut rng, 0.5, 8.0)).sum::<f64>() / n as f64;
        assert!((b - 0.5 / 8.5).abs() < 0.003, "{b}");
    }
}
