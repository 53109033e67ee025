//! The demo chain: 蜀香火锅, a hotpot brand with 20 stores in 5 regions, a
//! menu, and 2,000 members with plausible names, birthdays, tastes and
//! consents. Made once per database (a second run reuses it); the admin's
//! password and an API key are issued fresh on every run and shown once.

use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use regulars_core::access::{Principal, Role};
use regulars_core::member::{Gender, SourceChannel, TasteProfile};
use regulars_core::secret;
use regulars_server::app::{auth, chain, members};
use regulars_server::Regulars;
use regulars_store::chain::{upsert_menu_item, MenuItem};
use regulars_store::{commit, now_ms, staff};

pub const BRAND: &str = "shuxiang";
const ADMIN: &str = "admin";
const SEEDED_KEY: &str = "demo.seeded";
pub const MEMBERS: usize = 2_000;
/// Members with generated (imported) history on top of the hand-made ones.
pub const GENERATED_MEMBERS: u64 = 3_000;

/// (code, name, region, city)
pub const STORES: [(&str, &str, &str, &str); 20] = [
    ("CD01", "春熙路店", "西南", "成都"),
    ("CD02", "宽窄巷子店", "西南", "成都"),
    ("CD03", "高新店", "西南", "成都"),
    ("CQ01", "解放碑店", "西南", "重庆"),
    ("CQ02", "观音桥店", "西南", "重庆"),
    ("BJ01", "三里屯店", "华北", "北京"),
    ("BJ02", "五道口店", "华北", "北京"),
    ("BJ03", "望京店", "华北", "北京"),
    ("TJ01", "滨江道店", "华北", "天津"),
    ("SH01", "人民广场店", "华东", "上海"),
    ("SH02", "徐家汇店", "华东", "上海"),
    ("SH03", "陆家嘴店", "华东", "上海"),
    ("HZ01", "西湖店", "华东", "杭州"),
    ("NJ01", "新街口店", "华东", "南京"),
    ("GZ01", "天河店", "华南", "广州"),
    ("GZ02", "北京路店", "华南", "广州"),
    ("SZ01", "南山店", "华南", "深圳"),
    ("SZ02", "福田店", "华南", "深圳"),
    ("WH01", "江汉路店", "华中", "武汉"),
    ("CS01", "五一广场店", "华中", "长沙"),
];

/// (sku, name, category, spice level 0–4, price in fen, new dish)
pub const MENU: [(&str, &str, &str, i64, i64, bool); 30] = [
    ("G001", "牛油麻辣锅底", "锅底", 4, 6800, false),
    ("G002", "清油麻辣锅底", "锅底", 3, 5800, false),
    ("G003", "番茄锅底", "锅底", 0, 4800, false),
    ("G004", "菌汤锅底", "锅底", 0, 5200, false),
    ("G005", "鸳鸯锅底", "锅底", 2, 6200, false),
    ("M001", "精品肥牛", "肉类", 0, 6800, false),
    ("M002", "麻辣牛肉", "肉类", 3, 4800, true),
    ("M003", "嫩羊肉", "肉类", 0, 5800, false),
    ("M004", "午餐肉", "肉类", 0, 2600, false),
    ("M005", "毛肚", "肉类", 0, 5800, false),
    ("M006", "鸭肠", "肉类", 0, 3800, false),
    ("M007", "黄喉", "肉类", 0, 3600, false),
    ("S001", "虾滑", "海鲜", 0, 4800, false),
    ("S002", "鲜鸭血", "海鲜", 0, 2200, false),
    ("S003", "巴沙鱼片", "海鲜", 0, 3200, false),
    ("V001", "土豆片", "蔬菜", 0, 1200, false),
    ("V002", "藕片", "蔬菜", 0, 1400, false),
    ("V003", "娃娃菜", "蔬菜", 0, 1600, false),
    ("V004", "香菜丸子", "蔬菜", 0, 2200, true),
    ("T001", "冻豆腐", "豆制品", 0, 1200, false),
    ("T002", "腐竹", "豆制品", 0, 1600, false),
    ("Z001", "手工面", "主食", 0, 1000, false),
    ("Z002", "红糖糍粑", "小吃", 0, 2200, false),
    ("Z003", "酥肉", "小吃", 2, 3200, false),
    ("Z004", "冰粉", "小吃", 0, 1200, false),
    ("D001", "酸梅汤", "饮品", 0, 1800, false),
    ("D002", "王老吉", "饮品", 0, 800, false),
    ("D003", "鲜榨西瓜汁", "饮品", 0, 2800, false),
    ("D004", "青岛啤酒", "饮品", 0, 1200, false),
    ("X001", "员工餐", "员工餐", 0, 0, false),
];

const SURNAMES: [&str; 40] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡",
];
const GIVEN_FEMALE: [&str; 24] = [
    "芳", "娜", "敏", "静", "丽", "婷", "雪", "慧", "琳", "欣怡", "梓涵", "雨桐", "思雨", "佳怡",
    "诗涵", "晓燕", "秀英", "桂英", "玉兰", "美玲", "子涵", "一诺", "可欣", "若曦",
];
const GIVEN_MALE: [&str; 24] = [
    "伟", "强", "磊", "军", "洋", "勇", "杰", "涛", "斌", "浩然", "子轩", "宇航", "俊杰", "志强",
    "建华", "国庆", "明辉", "文博", "天佑", "一鸣", "思远", "晨阳", "嘉豪", "鹏飞",
];

pub struct DemoLogin {
    pub username: String,
    pub password: String,
    pub api_key: String,
    /// The other demo staff (`username`, role), same password as the admin.
    pub staff: Vec<(&'static str, &'static str)>,
}

/// Staff accounts besides the admin, one per kind of console user, so each
/// role's view can be tried: `(username, role, store)`.
const DEMO_STAFF: [(&str, Role, Option<&str>); 4] = [
    ("marketing", Role::Marketing, None),
    ("service", Role::ServiceAgent, None),
    ("analyst", Role::Analyst, None),
    ("cd01_manager", Role::StoreManager, Some("CD01")),
];

/// A phone number that is valid but clearly fake: the 170/171 virtual-carrier
/// ranges, made unique by the member's index.
fn demo_phone(i: usize) -> String {
    format!("1709{:07}", 1_000_000 + i)
}

/// Spice preference by city: 成都/重庆 like it hot, 广州/深圳 mild.
fn spice_for(city: &str, rng: &mut StdRng) -> u8 {
    let base: u8 = match city {
        "成都" | "重庆" => 3,
        "长沙" | "武汉" => 2,
        "广州" | "深圳" | "上海" | "杭州" => 0,
        _ => 1,
    };
    (base + rng.gen_range(0..=1)).min(4)
}

pub(crate) async fn seed_chain(regulars: &Regulars, admin: &Principal) -> anyhow::Result<()> {
    for (code, name, region, city) in STORES {
        let created = chain::create_store(
            regulars,
            admin,
            chain::CreateStore {
                code: code.into(),
                name: format!("蜀香火锅{name}"),
                region: region.into(),
                city: city.into(),
                brand: Some(BRAND.into()),
                address: None,
            },
        )
        .await;
        match created {
            Ok(_) | Err(regulars_server::AppError::Conflict { .. }) => {}
            Err(e) => return Err(anyhow::anyhow!("store {code}: {e}")),
        }
    }
    let mut tx = regulars.db.begin().await?;
    let now = now_ms();
    for (sku, name, category, spice, price, is_new) in MENU {
        upsert_menu_item(
            &mut tx,
            &MenuItem {
                sku,
                brand_code: BRAND,
                name,
                category,
                spice_level: spice,
                price_fen: price,
                is_new,
            },
            now,
        )
        .await?;
    }
    commit(tx).await?;
    Ok(())
}

fn demo_member(i: usize, rng: &mut StdRng, today: chrono::NaiveDate) -> members::CreateMember {
    let (code, _, _, city) = STORES[rng.gen_range(0..STORES.len())];
    let female = rng.gen_bool(0.52);
    let surname = SURNAMES[rng.gen_range(0..SURNAMES.len())];
    let given = if female {
        GIVEN_FEMALE[rng.gen_range(0..GIVEN_FEMALE.len())]
    } else {
        GIVEN_MALE[rng.gen_range(0..GIVEN_MALE.len())]
    };
    let age_days = rng.gen_range(18 * 365..65 * 365);
    let birthday = today - chrono::Duration::days(age_days);
    let spice = spice_for(city, rng);
    let mut favourites = Vec::new();
    for _ in 0..rng.gen_range(1..4) {
        let dish = MENU[rng.gen_range(5..28)].1.to_string();
        if !favourites.contains(&dish) {
            favourites.push(dish);
        }
    }
    let mut tags = Vec::new();
    if spice >= 3 {
        tags.push("辣".to_string());
    }
    if rng.gen_bool(0.05) {
        tags.push("素食".to_string());
    }
    if rng.gen_bool(0.08) {
        tags.push("生日宴".to_string());
    }
    if rng.gen_bool(0.1) {
        tags.push("带娃".to_string());
    }
    members::CreateMember {
        phone: demo_phone(i),
        name: Some(format!("{surname}{given}")),
        gender: Some(if female { Gender::Female } else { Gender::Male }),
        birthday: rng
            .gen_bool(0.85)
            .then(|| birthday.format("%Y-%m-%d").to_string()),
        email: rng.gen_bool(0.3).then(|| format!("guest{i}@example.com")),
        home_store: Some(code.into()),
        city: None,
        age_group: None,
        source: Some(match rng.gen_range(0..10) {
            0..=4 => SourceChannel::Pos,
            5..=7 => SourceChannel::Wechat,
            8 => SourceChannel::H5,
            _ => SourceChannel::App,
        }),
        referrer_code: None,
        consents: Some(members::ConsentInput {
            sms: Some(rng.gen_bool(0.7)),
            email: Some(rng.gen_bool(0.3)),
            wechat: Some(rng.gen_bool(0.6)),
        }),
        tags,
        taste: Some(TasteProfile {
            spice_level: Some(spice),
            allergies: if rng.gen_bool(0.06) {
                vec!["花生".into()]
            } else {
                vec![]
            },
            dislikes: if rng.gen_bool(0.15) {
                vec!["香菜".into()]
            } else {
                vec![]
            },
            favourite_dishes: favourites,
        }),
        notes: rng.gen_bool(0.05).then(|| "喜欢靠窗的位置".to_string()),
        anniversaries: vec![],
    }
}

async fn seed_members(regulars: &Regulars, admin: &Principal) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(20_261_124);
    let today = regulars.today();
    let bar = ProgressBar::new(MEMBERS as u64).with_style(
        ProgressStyle::with_template("  members {bar:40} {pos}/{len} {eta}")
            .expect("static progress template"),
    );
    const BATCH: usize = 250;
    let mut next = 0;
    while next < MEMBERS {
        let end = (next + BATCH).min(MEMBERS);
        let batch: Vec<_> = (next..end)
            .map(|i| demo_member(i, &mut rng, today))
            .collect();
        members::create_members_batch(regulars, admin, batch)
            .await
            .map_err(|e| anyhow::anyhow!("demo members: {e}"))?;
        bar.inc((end - next) as u64);
        next = end;
    }
    bar.finish_and_clear();
    Ok(())
}

/// Make the demo chain if this database has none, and issue a fresh login.
pub async fn prepare(regulars: &Regulars, database_url: &str) -> anyhow::Result<DemoLogin> {
    let admin = Principal {
        actor: "demo".into(),
        role: Role::HqAdmin,
        store: None,
    };
    let seeded = {
        let mut conn = regulars.db.reader().await?;
        staff::get_setting(&mut conn, SEEDED_KEY).await?.is_some()
    };
    if seeded {
        eprintln!("  reusing the demo chain already in this database");
    } else {
        eprintln!(
            "  creating the demo chain: {} stores, {} dishes, {MEMBERS} members",
            STORES.len(),
            MENU.len()
        );
        seed_chain(regulars, &admin).await?;
        seed_members(regulars, &admin).await?;
        let orders = seed_orders(regulars, &admin).await?;
        let (redeemed, coupons) = seed_rewards(regulars, &admin).await?;
        let (feedback, answers) = seed_feedback(regulars, &admin).await?;
        seed_campaigns(regulars, &admin).await?;
        // Two more years of imported history from the data generator (the
        // same one `regulars generate` runs at scale), so the intelligence
        // pages have a chain-sized crowd to learn from.
        let history = crate::generate::run(
            regulars,
            database_url,
            crate::generate::Plan {
                members: GENERATED_MEMBERS,
                months: 24,
                seed: 2026,
                end: None,
            },
        )
        .await?;
        eprintln!(
            "  {} generated members with {} orders of imported history",
            history.members, history.orders
        );
        // Expire what two years of history has let lapse, send reminders,
        // review tiers and give this month's birthday gifts, as of now.
        let report = regulars_server::app::jobs::run_due(regulars, now_ms())
            .await
            .map_err(|e| anyhow::anyhow!("demo jobs: {e}"))?;
        eprintln!(
            "  {orders} orders over two years; {} points expired, {} birthday gifts; \
             {redeemed} rewards redeemed, {coupons} coupons given; \
             {feedback} feedback, {answers} survey answers",
            report.expired_points, report.birthday_gifts
        );
        let mut conn = regulars.db.writer().await?;
        staff::put_setting(&mut conn, SEEDED_KEY, &now_ms().to_string()).await?;
    }
    let password = secret::generate_password();
    let accounts = [(ADMIN, Role::HqAdmin, None)].into_iter().chain(DEMO_STAFF);
    for (username, role, store) in accounts {
        match auth::create_user(regulars, "cli", username, role, store, &password).await {
            Ok(()) => {}
            Err(regulars_server::AppError::Conflict { .. }) => {
                auth::reset_password(regulars, username, &password)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            Err(e) => return Err(anyhow::anyhow!("{e}")),
        }
    }
    let (_, api_key) = auth::create_api_key(regulars, "cli", Role::HqAdmin, None, "demo")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(DemoLogin {
        username: ADMIN.into(),
        password,
        api_key,
        staff: DEMO_STAFF
            .iter()
            .map(|(name, role, _)| (*name, role.as_str()))
            .collect(),
    })
}

/// Every demo member's id and home store, in id order.
async fn demo_guests(
    regulars: &Regulars,
    admin: &Principal,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut guests: Vec<(String, String)> = Vec::new();
    let mut after = None;
    loop {
        let page = members::list_members(
            regulars,
            admin,
            members::MemberQuery {
                limit: Some(200),
                after: after.clone(),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("demo members: {e}"))?;
        guests.extend(
            page.members
                .into_iter()
                .map(|m| (m.id, m.home_store.unwrap_or_else(|| "CD01".into()))),
        );
        match page.next_after {
            Some(a) => after = Some(a),
            None => break,
        }
    }
    Ok(guests)
}

/// Two years of visits for every demo member, sent through the same order
/// path the POS uses, member by member in time order, so balances, lots,
/// tiers and refunds are what the real engine makes of them. Visit rates are
/// heterogeneous (a few regulars, many occasional guests) and some guests
/// stop coming, so expiring points, dormant members and every tier show up.
async fn seed_orders(regulars: &Regulars, admin: &Principal) -> anyhow::Result<u64> {
    use chrono::{Duration, Timelike};
    use regulars_core::order::Channel;
    use regulars_server::app::orders;

    let guests = demo_guests(regulars, admin).await?;
    let mut rng = StdRng::seed_from_u64(20_241_124);
    let now = chrono::Utc::now().with_timezone(&regulars.timezone);
    let start = now - Duration::days(730);
    let bar = ProgressBar::new(guests.len() as u64).with_style(
        ProgressStyle::with_template("  orders  {bar:40} {pos}/{len} members {msg} {eta}")
            .expect("static progress template"),
    );
    let mut sent = 0u64;
    for (g, (member_id, home)) in guests.iter().enumerate() {
        // Visits per 30 days: most guests rarely, a tenth of them often.
        let rate: f64 = if rng.gen_bool(0.1) {
            rng.gen_range(1.5..4.0)
        } else {
            rng.gen_range(0.05..0.9)
        };
        let joined = start + Duration::days(rng.gen_range(0..500));
        let leaves = if rng.gen_bool(0.35) {
            joined + Duration::days(rng.gen_range(60..600))
        } else {
            now
        };
        let mut t = joined;
        let mut n = 0;
        loop {
            let gap = -(1.0 - rng.gen::<f64>()).ln() * 30.0 / rate;
            t += Duration::minutes((gap * 1440.0) as i64 + 1);
            if t >= leaves.min(now - Duration::hours(2)) {
                break;
            }
            let (h, m) = if rng.gen_bool(0.4) {
                (rng.gen_range(11..13), rng.gen_range(0..60))
            } else {
                (rng.gen_range(17..21), rng.gen_range(0..60))
            };
            let Some(at) = t
                .with_hour(h)
                .and_then(|x| x.with_minute(m))
                .and_then(|x| x.with_second(0))
            else {
                continue;
            };
            let store = if rng.gen_bool(0.8) {
                home.clone()
            } else {
                STORES[rng.gen_range(0..STORES.len())].0.to_string()
            };
            let party = rng.gen_range(1..7i64);
            let mut items = Vec::new();
            let base = MENU[rng.gen_range(0..5)];
            items.push(line(base, 1));
            for _ in 0..(2 + party + rng.gen_range(0..3)) {
                let dish = MENU[rng.gen_range(5..28)];
                items.push(line(dish, rng.gen_range(1..3)));
            }
            if rng.gen_bool(0.05) {
                items[1].comped = true;
            }
            if rng.gen_bool(0.04) {
                let last = items.len() - 1;
                items[last].voided = true;
            }
            let total: i64 = items
                .iter()
                .filter(|l| !l.voided && !l.comped)
                .map(|l| l.quantity * l.unit_price_fen)
                .sum();
            let discount = if rng.gen_bool(0.2) { total / 10 } else { 0 };
            let channel = match rng.gen_range(0..100) {
                0..=84 => Channel::DineIn,
                85..=89 => Channel::Takeaway,
                90..=96 => Channel::Delivery,
                _ => Channel::Online,
            };
            n += 1;
            let pos_order_id = format!("DEMO-{g:04}-{n:03}");
            orders::ingest_order(
                regulars,
                admin,
                orders::IngestOrder {
                    store_code: store.clone(),
                    pos_order_id: pos_order_id.clone(),
                    member_id: Some(member_id.clone()),
                    member_phone: None,
                    occurred_at: at.to_rfc3339(),
                    channel,
                    items,
                    paid_fen: total - discount,
                    party_size: Some(party),
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("demo order: {e}"))?;
            sent += 1;
            // One order in a hundred is partly refunded (a dish sent back).
            if rng.gen_bool(0.01) {
                orders::refund_order(
                    regulars,
                    admin,
                    &store,
                    &pos_order_id,
                    orders::RefundOrder {
                        refund_id: format!("R-{pos_order_id}"),
                        amount_fen: ((total - discount) / 5).max(1),
                    },
                )
                .await
                .map_err(|e| anyhow::anyhow!("demo refund: {e}"))?;
            }
        }
        bar.inc(1);
        bar.set_message(format!("{sent} orders"));
    }
    bar.finish_and_clear();
    Ok(sent)
}

fn line(
    dish: (&str, &str, &str, i64, i64, bool),
    quantity: i64,
) -> regulars_core::order::OrderLine {
    regulars_core::order::OrderLine {
        sku: dish.0.into(),
        name: dish.1.into(),
        category: dish.2.into(),
        quantity,
        unit_price_fen: dish.4,
        discount_fen: 0,
        voided: false,
        comped: false,
        staff_meal: false,
    }
}

/// The rewards catalogue, coupon templates and the gold and black-gold
/// birthday pack; then some members spend points on rewards, some get a
/// goodwill coupon, and some of those coupons are used at the till.
async fn seed_rewards(regulars: &Regulars, admin: &Principal) -> anyhow::Result<(u64, u64)> {
    use regulars_core::coupon::{Benefit, CouponTemplate};
    use regulars_core::reward::{RewardKind, RewardSpec};
    use regulars_core::tier::Tier;
    use regulars_server::app::{coupons, points, rewards};
    let err = |what: &'static str| {
        move |e: regulars_server::AppError| anyhow::anyhow!("demo {what}: {e}")
    };
    let template = |name: &str, benefit: Benefit, min: i64, days: u32| CouponTemplate {
        name: name.into(),
        benefit,
        min_spend_fen: min,
        stores: vec![],
        weekdays: vec![],
        time_from: None,
        time_to: None,
        valid_days: Some(days),
        valid_until: None,
    };
    let off30 = coupons::create_template(
        regulars,
        admin,
        template(
            "满200减30",
            Benefit::AmountOff {
                amount_off_fen: 3000,
            },
            20_000,
            30,
        ),
    )
    .await
    .map_err(err("template"))?;
    let mut tea = template(
        "下午茶满100减15",
        Benefit::AmountOff {
            amount_off_fen: 1500,
        },
        10_000,
        14,
    );
    tea.weekdays = vec![1, 2, 3, 4, 5];
    tea.time_from = Some("14:00".into());
    tea.time_to = Some("17:00".into());
    let tea = coupons::create_template(regulars, admin, tea)
        .await
        .map_err(err("template"))?;
    let noodle = coupons::create_template(
        regulars,
        admin,
        template(
            "手工面一份",
            Benefit::FreeItem {
                sku: "Z001".into(),
                item_name: "手工面".into(),
            },
            0,
            30,
        ),
    )
    .await
    .map_err(err("template"))?;
    let birthday = coupons::create_template(
        regulars,
        admin,
        template(
            "生日红糖糍粑",
            Benefit::FreeItem {
                sku: "Z002".into(),
                item_name: "红糖糍粑".into(),
            },
            0,
            31,
        ),
    )
    .await
    .map_err(err("template"))?;
    let reward = |name: &str, kind: RewardKind, cost: i64, template: Option<&str>| RewardSpec {
        name: name.into(),
        kind,
        points_cost: cost,
        coupon_template_id: template.map(str::to_string),
        stock: None,
        per_member_limit: None,
        min_tier: Tier::Regular,
        description: None,
    };
    let mut catalogue = vec![
        reward("免费手工面", RewardKind::FreeDish, 150, Some(&noodle.id)),
        reward("满200减30券", RewardKind::Coupon, 300, Some(&off30.id)),
        reward("抽奖一次", RewardKind::LotteryEntry, 50, None),
    ];
    let mut mug = reward("蜀香定制马克杯", RewardKind::Merchandise, 800, None);
    mug.stock = Some(60);
    mug.per_member_limit = Some(1);
    mug.min_tier = Tier::Silver;
    catalogue.push(mug);
    let mut tour = reward("后厨参观 + 炒料体验", RewardKind::Experience, 3000, None);
    tour.stock = Some(12);
    tour.min_tier = Tier::Gold;
    catalogue.push(tour);
    let mut ids = Vec::new();
    for spec in catalogue {
        let r = rewards::create(regulars, admin, spec)
            .await
            .map_err(err("reward"))?;
        ids.push((r.id, r.spec.points_cost, r.spec.min_tier));
    }
    rewards::create(
        regulars,
        admin,
        reward("积分抵现", RewardKind::CashOffset, 100, None),
    )
    .await
    .map_err(err("reward"))?;
    let mut policy = regulars
        .loyalty
        .get(regulars)
        .await
        .map_err(err("policy"))?
        .tiers
        .clone();
    for b in policy.tiers.iter_mut().filter(|b| b.tier >= Tier::Gold) {
        b.birthday_coupon_templates = vec![birthday.id.clone()];
    }
    points::put_tier_policy(regulars, admin, policy)
        .await
        .map_err(err("policy"))?;

    let mut rng = StdRng::seed_from_u64(20_261_124);
    let (mut redeemed, mut given) = (0u64, 0u64);
    for (i, (member_id, store)) in demo_guests(regulars, admin).await?.into_iter().enumerate() {
        if rng.gen_bool(0.15) {
            let view = points::tier_of(regulars, admin, &member_id)
                .await
                .map_err(err("tier"))?;
            let balance = {
                let mut conn = regulars.db.reader().await?;
                regulars_store::ledger::read_member(&mut conn, &member_id)
                    .await?
                    .map_or(0, |m| m.points_balance)
            };
            let affordable: Vec<_> = ids
                .iter()
                .filter(|(_, cost, min)| *cost <= balance && view.tier >= *min)
                .collect();
            if !affordable.is_empty() {
                let (id, cost, _) = affordable[rng.gen_range(0..affordable.len())];
                let done = points::redeem(
                    regulars,
                    admin,
                    &member_id,
                    Some(&format!("demo-reward-{i}")),
                    points::Redeem {
                        points: *cost,
                        store_code: store.clone(),
                        reward_id: Some(id.clone()),
                        note: None,
                        family: false,
                    },
                )
                .await;
                // Out of stock or over the limit is part of a real catalogue.
                if done.is_ok() {
                    redeemed += 1;
                }
            }
        }
        if rng.gen_bool(0.1) {
            let template = if rng.gen_bool(0.5) {
                &off30.id
            } else {
                &tea.id
            };
            let coupon = coupons::issue(
                regulars,
                admin,
                &member_id,
                Some(&format!("demo-goodwill-{i}")),
                coupons::IssueCoupon {
                    template_id: template.clone(),
                    source: coupons::CouponSource::Campaign,
                    reason: Some("老客回馈".into()),
                },
            )
            .await
            .map_err(err("coupon"))?;
            given += 1;
            if rng.gen_bool(0.3) {
                let view: coupons::CouponView = serde_json::from_str(&coupon.json)?;
                let items = vec![line(MENU[0], 1), line(MENU[5], 2), line(MENU[9], 1)];
                // The afternoon coupon may not fit the hour; that is fine.
                let _ = coupons::redeem(
                    regulars,
                    admin,
                    &view.code,
                    coupons::CouponRedemption {
                        store_code: store.clone(),
                        pos_order_id: format!("DEMO-C-{i}"),
                        items,
                        occurred_at: None,
                        member_id: Some(member_id.clone()),
                    },
                )
                .await;
            }
        }
    }
    Ok((redeemed, given))
}

/// Guest feedback in every state of the complaint workflow, compensation,
/// surveys with promoters and detractors. The texts are the labelled
/// reviews the classifier is measured on, so categories look real.
async fn seed_feedback(regulars: &Regulars, admin: &Principal) -> anyhow::Result<(u64, u64)> {
    use regulars_core::feedback::FeedbackChannel;
    use regulars_core::survey::SurveyDefinition;
    use regulars_server::app::{feedback, surveys};
    let err = |what: &'static str| {
        move |e: regulars_server::AppError| anyhow::anyhow!("demo {what}: {e}")
    };
    let texts: Vec<(Option<i64>, String)> =
        include_str!("../../core/tests/data/feedback_labelled.tsv")
            .lines()
            .skip(1)
            .filter_map(|l| {
                let cols: Vec<&str> = l.split('\t').collect();
                (cols.len() == 4).then(|| (cols[2].parse().ok(), cols[3].to_string()))
            })
            .collect();
    let recent = {
        let mut conn = regulars.db.reader().await?;
        regulars_store::orders::recent_member_orders(&mut conn, 400).await?
    };
    let mut rng = StdRng::seed_from_u64(20_261_125);
    let channels = [
        FeedbackChannel::TableQr,
        FeedbackChannel::H5,
        FeedbackChannel::Staff,
        FeedbackChannel::CallCenter,
        FeedbackChannel::ReviewImport,
    ];
    let mut given = 0u64;
    for (i, (rating, text)) in texts.iter().enumerate().take(70) {
        // Two stores get more than their share, so the alerts have work.
        let store = if i % 4 == 0 {
            "CD02".to_string()
        } else if i % 7 == 0 {
            "SH03".to_string()
        } else {
            STORES[rng.gen_range(0..STORES.len())].0.to_string()
        };
        let order = recent.iter().filter(|o| o.store_code == store).nth(i % 3);
        let receipt = feedback::submit(
            regulars,
            admin,
            feedback::SubmitFeedback {
                store_code: store.clone(),
                channel: channels[i % channels.len()],
                text: text.clone(),
                rating: *rating,
                nps: None,
                member_id: order.and_then(|o| o.member_id.clone()),
                pos_order_id: order.map(|o| o.pos_order_id.clone()),
            },
        )
        .await
        .map_err(err("feedback"))?;
        given += 1;
        if receipt.due_at.is_none() {
            continue;
        }
        // Walk complaints some way along: open, acknowledged, in progress,
        // resolved, followed up, closed.
        let steps = [
            "acknowledged",
            "in_progress",
            "resolved",
            "followed_up",
            "closed",
        ];
        let depth = i % 6;
        for to in steps.iter().take(depth) {
            if *to == "resolved"
                && receipt.category != regulars_core::feedback::Category::Other
                && order.and_then(|o| o.member_id.as_ref()).is_some()
            {
                feedback::compensate(
                    regulars,
                    admin,
                    &receipt.id,
                    Some(&format!("demo-comp-{i}")),
                    feedback::Compensate {
                        kind: "points".into(),
                        points: Some(100 + (i as i64 % 4) * 100),
                        template_id: None,
                        amount_fen: None,
                        note: "门店致歉补偿".into(),
                    },
                )
                .await
                .map_err(err("compensation"))?;
            }
            let (note, root_cause) = match *to {
                "resolved" => (
                    Some("已致电致歉并处理".to_string()),
                    Some("staff_training".to_string()),
                ),
                "followed_up" => (Some("回访：顾客表示认可".to_string()), None),
                "acknowledged" => (Some("店长已联系顾客".to_string()), None),
                _ => (None, None),
            };
            feedback::transition(
                regulars,
                admin,
                &receipt.id,
                feedback::Transition {
                    to: to.to_string(),
                    note,
                    root_cause,
                    satisfied: (*to == "followed_up").then_some(i % 5 != 0),
                },
            )
            .await
            .map_err(err("transition"))?;
        }
    }
    // A demo store takes ~50 orders a month, so a single complaint is 20‰:
    // the demo's alert line sits where its few stores can cross it.
    {
        let mut conn = regulars.db.writer().await?;
        staff::put_setting(&mut conn, regulars_server::app::alerts::RATE_SETTING, "80").await?;
    }
    let nps = surveys::create(regulars, admin, SurveyDefinition::post_visit_nps())
        .await
        .map_err(err("survey"))?;
    let monthly = surveys::create(regulars, admin, SurveyDefinition::monthly_satisfaction())
        .await
        .map_err(err("survey"))?;
    let mut answers = 0u64;
    for (i, order) in recent.iter().enumerate().take(240) {
        let Some(member) = order.member_id.clone() else {
            continue;
        };
        let score: i64 = match rng.gen_range(0..100) {
            0..=54 => rng.gen_range(9..=10),
            55..=79 => rng.gen_range(7..=8),
            _ => rng.gen_range(2..=6),
        };
        let mut given_answers = std::collections::BTreeMap::new();
        given_answers.insert("nps".to_string(), serde_json::json!(score));
        if score <= 6 {
            given_answers.insert(
                "reason".to_string(),
                serde_json::json!(["上菜有点慢", "锅底偏咸", "服务员不太热情", "价格偏贵"][i % 4]),
            );
        }
        let done = surveys::respond(
            regulars,
            admin,
            &nps.id,
            surveys::Respond {
                member_id: member.clone(),
                store_code: order.store_code.clone(),
                pos_order_id: Some(order.pos_order_id.clone()),
                answers: given_answers,
            },
        )
        .await;
        answers += u64::from(done.is_ok());
        if i % 3 == 0 {
            let mut dims = std::collections::BTreeMap::new();
            for d in ["food", "service", "environment", "value", "speed"] {
                dims.insert(d.to_string(), serde_json::json!(rng.gen_range(3..=5)));
            }
            let done = surveys::respond(
                regulars,
                admin,
                &monthly.id,
                surveys::Respond {
                    member_id: member,
                    store_code: order.store_code.clone(),
                    pos_order_id: None,
                    answers: dims,
                },
            )
            .await;
            answers += u64::from(done.is_ok());
        }
    }
    Ok((given, answers))
}

/// Saved segments and campaigns in the states marketing meets them: a
/// win-back sent against a control group (its messages go out in the
/// demo's jobs run, to the member inbox), a birthday campaign running, and a
/// holiday promotion above HQ's size line waiting for an approval.
async fn seed_campaigns(regulars: &Regulars, admin: &Principal) -> anyhow::Result<()> {
    use regulars_core::campaign::CampaignSpec;
    use regulars_server::app::campaigns::{self, StatusRequest};
    use regulars_server::app::segments::{self, SegmentInput};
    let fail = |what: &'static str| {
        move |e: regulars_server::AppError| anyhow::anyhow!("demo {what}: {e}")
    };
    let mut saved = Vec::new();
    for (name, expression) in [
        (
            "金卡以上 60 天未到店",
            "tier >= gold and days_since_visit > 60",
        ),
        (
            "成都重庆 · 爱吃辣",
            "city in [\"成都\", \"重庆\"] and spice_level >= 3",
        ),
        ("沉睡或流失", "lifecycle in [dormant, churned]"),
    ] {
        let segment = segments::save(
            regulars,
            admin,
            SegmentInput {
                name: name.into(),
                expression: expression.into(),
                description: None,
            },
        )
        .await
        .map_err(fail("segment"))?;
        saved.push(segment.id);
    }
    // Above 1,000 guests a campaign needs HQ's approval in the demo.
    let mut settings = campaigns::settings(regulars, admin)
        .await
        .map_err(fail("campaign settings"))?;
    settings.approval_above = 1_000;
    campaigns::set_settings(regulars, admin, settings)
        .await
        .map_err(fail("campaign settings"))?;
    // Marketing submits; HQ's admin (the demo principal) approves.
    let marketing = Principal {
        actor: "user:marketing".into(),
        role: Role::Marketing,
        store: None,
    };
    let template =
        |zh: &str, en: &str| serde_json::json!({"name": "A", "template": {"zh": zh, "en": en}});
    let holiday = (chrono::Utc::now() + chrono::Duration::days(20)).to_rfc3339();
    let just_now = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let plans = [
        (
            serde_json::json!({"name": "金卡会员 60 天唤醒", "segment_id": saved[0],
                "trigger": {"kind": "scheduled", "send_at": just_now}, "channels": ["inbox"],
                "control_permille": 100, "bonus_points": 200, "budget_points": 200_000,
                "variants": [template("{name}，好久不见！送您 200 积分，回来尝尝新锅底吧。", "{name}, we miss you! Here are 200 points.")]}),
            true,
        ),
        (
            serde_json::json!({"name": "生日关怀", "trigger": {"kind": "birthday", "days_before": 3},
                "channels": ["inbox"], "control_permille": 100,
                "variants": [template("{name}，三天后是您的生日，{tier}会员生日礼已备好！", "{name}, your birthday is in three days!")]}),
            true,
        ),
        (
            serde_json::json!({"name": "元旦火锅节", "trigger": {"kind": "scheduled", "send_at": holiday},
                "channels": ["inbox"], "control_permille": 50,
                "variants": [template("元旦火锅节：全场锅底半价！", "New Year hotpot festival: soup bases half price!")]}),
            false,
        ),
    ];
    for (plan, approve) in plans {
        let spec: CampaignSpec = serde_json::from_value(plan)?;
        let campaign = campaigns::create(regulars, &marketing, spec)
            .await
            .map_err(fail("campaign"))?;
        let submitted = campaigns::change_status(
            regulars,
            &marketing,
            &campaign.id,
            StatusRequest::Submit,
            None,
        )
        .await
        .map_err(fail("campaign"))?;
        if approve && submitted.status.as_str() != "active" {
            campaigns::change_status(regulars, admin, &campaign.id, StatusRequest::Approve, None)
                .await
                .map_err(fail("campaign"))?;
        }
    }
    Ok(())
}
