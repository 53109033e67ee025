//! HQ reports over HTTP, with numbers a person checks by hand: a small chain
//! (成都 stores in 西南, a 上海 store in 华东), members, orders at chosen local
//! times, a menu; then the repurchase rate against the 40% line, a cohort
//! table, dish attach rates with hot and slow dishes, coupon redemption,
//! members by city and tier, a store manager held to their store, and bad
//! filters refused with 422.

use crate::helpers::{random_phone, Reply, TestApp};
use crate::loyalty::{keyed, order, order_json};
use crate::on_both_backends;
use chrono::{Duration, Utc};
use regulars_core::access::Role;
use serde_json::{json, Value};

on_both_backends!(
    repurchase_rate_against_the_40_percent_line,
    cohorts_by_month_of_first_visit,
    dish_attach_rates_growth_and_hot_and_slow_dishes,
    coupon_redemption_rate_by_template,
    members_by_city_tier_and_lifecycle,
    a_store_manager_sees_only_their_store,
    bad_filters_are_422_and_nothing_else,
);

/// CD01 and CD02 in 成都 (西南), SH01 in 上海 (华东), brand `shuxiang`.
async fn chain(app: &TestApp) {
    for (code, city, region) in [
        ("CD01", "成都", "西南"),
        ("CD02", "成都", "西南"),
        ("SH01", "上海", "华东"),
    ] {
        let r = app
            .post(
                "/api/v1/stores",
                json!({"code": code, "name": format!("{city}{code}店"), "region": region,
                    "city": city, "brand": "shuxiang"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
}

async fn member(app: &TestApp, body: Value) -> String {
    let mut body = body;
    body["phone"] = json!(random_phone());
    let r = app.create_member(body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

fn line(sku: &str, quantity: i64, unit_price_fen: i64) -> Value {
    json!({"sku": sku, "name": sku, "category": "菜品", "quantity": quantity,
        "unit_price_fen": unit_price_fen})
}

/// An order at `store` at a local (+08:00) time `at` = `YYYY-MM-DDTHH:MM`.
async fn visit(app: &TestApp, store: &str, member: Option<&str>, at: &str, items: Value) {
    let paid: i64 = items
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| !l["voided"].as_bool().unwrap_or(false))
        .map(|l| {
            l["quantity"].as_i64().unwrap() * l["unit_price_fen"].as_i64().unwrap()
                - l["discount_fen"].as_i64().unwrap_or(0)
        })
        .sum();
    let mut body = order_json(
        &format!("P-{}", rand::random::<u64>()),
        member,
        &format!("{at}:00+08:00"),
        items,
        paid,
    );
    body["store_code"] = json!(store);
    let r = order(app, body).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

async fn report(app: &TestApp, path: &str) -> Value {
    let r = app.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.body
}

fn store_row<'a>(r: &'a Value, code: &str) -> &'a Value {
    r["by_store"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["store_code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {r}"))
}

/// Five members in March: two come back on another day (A, C); B comes twice
/// on one day; D's other visit is in February; E's other is just after
/// midnight on 1 April.
async fn march(app: &TestApp) {
    chain(app).await;
    let g = json!([line("G1", 1, 5000)]);
    let a = member(app, json!({"home_store": "CD01"})).await;
    let b = member(app, json!({"home_store": "CD01"})).await;
    let c = member(app, json!({"home_store": "SH01"})).await;
    let d = member(app, json!({"home_store": "CD01"})).await;
    let e = member(app, json!({"home_store": "SH01"})).await;
    for (store, m, at) in [
        ("CD01", &a, "2026-02-28T23:59"),
        ("CD01", &a, "2026-03-02T12:00"),
        ("CD01", &a, "2026-03-10T19:00"),
        ("CD01", &b, "2026-03-05T12:00"),
        ("CD01", &b, "2026-03-05T19:30"),
        ("SH01", &c, "2026-03-03T18:00"),
        ("SH01", &c, "2026-03-20T18:00"),
        ("CD01", &d, "2026-02-20T18:00"),
        ("CD01", &d, "2026-03-04T18:00"),
        ("SH01", &e, "2026-03-31T23:30"),
        ("SH01", &e, "2026-04-01T00:30"),
    ] {
        visit(app, store, Some(m), at, g.clone()).await;
    }
    // A guest without membership is no member's visit.
    visit(app, "CD01", None, "2026-03-06T12:00", g.clone()).await;
    visit(app, "CD01", None, "2026-03-07T12:00", g).await;
}

async fn repurchase_rate_against_the_40_percent_line(app: TestApp) {
    march(&app).await;
    let r = report(
        &app,
        "/api/v1/analytics/repurchase?from=2026-03-01&to=2026-03-31",
    )
    .await;
    assert_eq!(
        r["window"],
        json!({"from": "2026-03-01", "to": "2026-03-31"})
    );
    assert_eq!(r["members_with_visit"], 5, "{r}");
    assert_eq!(r["members_with_2plus"], 2, "{r}");
    assert_eq!(r["repurchase_rate"], 0.4, "{r}");
    assert_eq!(r["benchmark"], 0.4);
    assert_eq!(
        r["below_benchmark"], false,
        "exactly on the line is not below"
    );
    let cd01 = store_row(&r, "CD01");
    assert_eq!(
        (&cd01["members"], &cd01["members_with_2plus"], &cd01["rate"]),
        (&json!(3), &json!(1), &json!(0.3333)),
        "{cd01}"
    );
    assert_eq!(cd01["below_benchmark"], true);
    assert_eq!(cd01["store_name"], "成都CD01店");
    let sh01 = store_row(&r, "SH01");
    assert_eq!((&sh01["members"], &sh01["rate"]), (&json!(2), &json!(0.5)));
    assert_eq!(sh01["region"], "华东");
    let cd02 = store_row(&r, "CD02");
    assert_eq!((&cd02["members"], &cd02["rate"]), (&json!(0), &Value::Null));
    assert_eq!(
        r["by_month"],
        json!([{"month": "2026-03", "members": 5, "members_with_2plus": 2, "rate": 0.4}])
    );

    // February too: A and D now have a second day.
    let r = report(
        &app,
        "/api/v1/analytics/repurchase?from=2026-02-01&to=2026-03-31",
    )
    .await;
    assert_eq!(r["members_with_2plus"], 3, "{r}");
    assert_eq!(r["repurchase_rate"], 0.6);
    assert_eq!(r["by_month"][0]["month"], "2026-02");
    assert_eq!(r["by_month"][0]["members"], 2);
    assert_eq!(r["by_month"][0]["members_with_2plus"], 0);

    // Cut by region (code or name) and city.
    for filter in ["region=华东", "region=shuxiang:华东", "city=上海"] {
        let r = report(
            &app,
            &format!("/api/v1/analytics/repurchase?from=2026-03-01&to=2026-03-31&{filter}"),
        )
        .await;
        assert_eq!(r["members_with_visit"], 2, "{filter}: {r}");
        assert_eq!(r["repurchase_rate"], 0.5, "{filter}: {r}");
        assert_eq!(r["by_store"].as_array().unwrap().len(), 1, "{r}");
    }
    let r = report(
        &app,
        "/api/v1/analytics/repurchase?from=2026-03-01&to=2026-03-31&city=成都&brand=shuxiang",
    )
    .await;
    assert_eq!(r["repurchase_rate"], 0.3333, "{r}");
    assert_eq!(r["below_benchmark"], true);
}

async fn cohorts_by_month_of_first_visit(app: TestApp) {
    chain(&app).await;
    let g = json!([line("G1", 1, 5000)]);
    let mut plan: Vec<(String, Vec<&str>)> = Vec::new();
    for visits in [
        // January: three newcomers; one is back in February and March, one
        // in March only, one never.
        vec!["2026-01-05T12:00", "2026-02-07T12:00", "2026-03-09T12:00"],
        vec!["2026-01-10T12:00", "2026-03-01T12:00"],
        vec!["2026-01-20T12:00"],
        // February: two newcomers, one back in March.
        vec!["2026-02-03T12:00", "2026-03-15T12:00"],
        vec!["2026-02-14T12:00", "2026-02-15T12:00"],
        // A member since December is no January newcomer.
        vec!["2025-12-20T12:00", "2026-01-08T12:00"],
    ] {
        plan.push((member(&app, json!({"home_store": "CD01"})).await, visits));
    }
    for (m, visits) in &plan {
        for at in visits {
            visit(&app, "CD01", Some(m), at, g.clone()).await;
        }
    }
    let r = report(
        &app,
        "/api/v1/analytics/cohorts?from=2026-01-01&to=2026-03-31",
    )
    .await;
    assert_eq!(r["months"], json!(["2026-01", "2026-02", "2026-03"]), "{r}");
    assert_eq!(
        r["cohorts"],
        json!([
            {"cohort": "2026-01", "members": 3, "retained": [3, 1, 2],
             "retention": [1.0, 0.3333, 0.6667]},
            {"cohort": "2026-02", "members": 2, "retained": [2, 1], "retention": [1.0, 0.5]},
        ]),
        "{r}"
    );
    // Other stores have no cohorts.
    let r = report(
        &app,
        "/api/v1/analytics/cohorts?from=2026-01-01&to=2026-03-31&store=SH01",
    )
    .await;
    assert_eq!(r["cohorts"], json!([]), "{r}");
}

async fn seed_menu(app: &TestApp) {
    let mut conn = app.regulars.db.writer().await.expect("db");
    for (sku, name, category, price) in [
        ("G1", "牛油锅底", "锅底", 5000),
        ("M1", "精品肥牛", "肉类", 4000),
        ("N1", "麻辣牛肉", "肉类", 6800),
        ("S1", "虾滑", "海鲜", 3000),
        ("D1", "冰粉", "小吃", 800),
    ] {
        regulars_store::chain::upsert_menu_item(
            &mut conn,
            &regulars_store::chain::MenuItem {
                sku,
                brand_code: "shuxiang",
                name,
                category,
                spice_level: 0,
                price_fen: price,
                is_new: sku == "N1",
            },
            0,
        )
        .await
        .expect("menu");
    }
}

fn dish<'a>(dishes: &'a Value, sku: &str) -> &'a Value {
    dishes
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["sku"] == sku)
        .unwrap_or_else(|| panic!("no {sku} in {dishes}"))
}

fn flagged(dishes: &Value, flag: &str) -> Vec<String> {
    let mut skus: Vec<String> = dishes
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d[flag] == true)
        .map(|d| d["sku"].as_str().unwrap().to_string())
        .collect();
    skus.sort();
    skus
}

async fn dish_attach_rates_growth_and_hot_and_slow_dishes(app: TestApp) {
    chain(&app).await;
    seed_menu(&app).await;
    let m = member(&app, json!({"home_store": "CD01"})).await;
    // April: 虾滑 sold once, never again.
    visit(
        &app,
        "CD01",
        Some(&m),
        "2026-04-15T19:00",
        json!([line("G1", 1, 5000), line("S1", 2, 3000)]),
    )
    .await;
    // May (the previous 30 days): one 麻辣牛肉 at lunch in each of two stores.
    for (store, at) in [("CD01", "2026-05-10T12:00"), ("SH01", "2026-05-11T12:30")] {
        visit(
            &app,
            store,
            None,
            at,
            json!([
                line("G1", 1, 5000),
                line("M1", 1, 4000),
                line("N1", 1, 6800)
            ]),
        )
        .await;
    }
    // June (the last 30 days): five dinners with three 麻辣牛肉 each.
    for day in 10..15 {
        let mut items = vec![line("G1", 1, 5000), line("N1", 3, 6800)];
        match day {
            // Ten voided 麻辣牛肉 and five staff-meal 锅底 are not sales.
            10 => items.push(json!({"sku": "N1", "name": "麻辣牛肉", "category": "肉类",
                "quantity": 10, "unit_price_fen": 6800, "voided": true})),
            11 => items.push(json!({"sku": "G1", "name": "牛油锅底", "category": "锅底",
                "quantity": 5, "unit_price_fen": 5000, "staff_meal": true})),
            // 肥牛, and a second 锅底 ordered later in the meal (加菜): one
            // bill with 锅底 on two lines is still one order with 锅底.
            12 => items.extend([line("M1", 1, 4000), line("G1", 1, 5000)]),
            // A drink that is not on the menu.
            13 => items.push(json!({"sku": "X9", "name": "酸梅汤", "category": "饮品",
                "quantity": 1, "unit_price_fen": 800})),
            _ => items[1]["discount_fen"] = json!(800),
        }
        visit(
            &app,
            "CD01",
            None,
            &format!("2026-06-{day}T18:30"),
            json!(items),
        )
        .await;
    }

    let r = report(
        &app,
        "/api/v1/analytics/dishes?from=2026-04-01&to=2026-06-30",
    )
    .await;
    assert_eq!(
        r["growth"],
        json!({"recent_from": "2026-06-01", "recent_to": "2026-06-30",
            "previous_from": "2026-05-02", "previous_to": "2026-05-31"}),
        "{r}"
    );
    assert_eq!(r["orders"], 8, "{r}");
    let d = &r["dishes"];
    assert_eq!(d.as_array().unwrap().len(), 6, "{d}");
    assert_eq!(d[0]["sku"], "N1", "best seller first: {d}");
    let n1 = dish(d, "N1");
    assert_eq!(n1["name"], "麻辣牛肉");
    assert_eq!(
        n1["quantity"], 17,
        "1 + 1 + 5×3; the voided ten are not sales"
    );
    assert_eq!(n1["sales_fen"], 17 * 6800 - 800);
    assert_eq!(n1["orders"], 7);
    assert_eq!(n1["attach_rate"], 0.875);
    assert_eq!(
        (
            &n1["quantity_recent"],
            &n1["quantity_previous"],
            &n1["growth"]
        ),
        (&json!(15), &json!(2), &json!(6.5))
    );
    let g1 = dish(d, "G1");
    assert_eq!(g1["quantity"], 9, "the staff meal is not counted: {g1}");
    assert_eq!(g1["sales_fen"], 9 * 5000);
    assert_eq!(g1["orders"], 8, "two lines on one bill are one order: {g1}");
    assert_eq!(g1["attach_rate"], 1.0);
    assert_eq!(g1["growth"], 2.0, "6 in June against 2 in May");
    let m1 = dish(d, "M1");
    assert_eq!((&m1["quantity"], &m1["growth"]), (&json!(3), &json!(-0.5)));
    assert_eq!(m1["attach_rate"], 0.375);
    let s1 = dish(d, "S1");
    assert_eq!(
        (&s1["quantity"], &s1["quantity_recent"]),
        (&json!(2), &json!(0))
    );
    assert_eq!(s1["last_sold"], "2026-04-15");
    assert_eq!(s1["attach_rate"], 0.125);
    assert!(s1["growth"].is_null());
    let d1 = dish(d, "D1");
    assert_eq!((&d1["quantity"], &d1["on_menu"]), (&json!(0), &json!(true)));
    assert!(d1["last_sold"].is_null());
    let x9 = dish(d, "X9");
    assert_eq!(
        (&x9["name"], &x9["on_menu"]),
        (&json!("酸梅汤"), &json!(false))
    );
    assert_eq!(flagged(d, "hot"), ["N1"], "{d}");
    assert_eq!(
        flagged(d, "slow"),
        ["D1", "S1"],
        "never sold, and not sold for 30+ days: {d}"
    );

    // Lunch only: the two May orders.
    let r = report(
        &app,
        "/api/v1/analytics/dishes?from=2026-04-01&to=2026-06-30&daypart=lunch",
    )
    .await;
    assert_eq!((&r["orders"], &r["daypart"]), (&json!(2), &json!("lunch")));
    assert_eq!(dish(&r["dishes"], "N1")["quantity"], 2);
    assert_eq!(dish(&r["dishes"], "N1")["attach_rate"], 1.0);

    // Per store, and per part of the day.
    let r = report(
        &app,
        "/api/v1/analytics/dishes?from=2026-04-01&to=2026-06-30&by=store",
    )
    .await;
    let groups = r["groups"].as_array().unwrap();
    let orders: Vec<(&str, i64)> = groups
        .iter()
        .map(|g| (g["key"].as_str().unwrap(), g["orders"].as_i64().unwrap()))
        .collect();
    assert_eq!(orders, [("CD01", 7), ("CD02", 0), ("SH01", 1)], "{r}");
    let sh01 = &groups[2]["dishes"];
    assert_eq!(dish(sh01, "N1")["quantity"], 1);
    assert_eq!(dish(sh01, "N1")["attach_rate"], 1.0);
    let r = report(
        &app,
        "/api/v1/analytics/dishes?from=2026-04-01&to=2026-06-30&by=daypart",
    )
    .await;
    let orders: Vec<(&str, i64)> = r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["key"].as_str().unwrap(), g["orders"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        orders,
        [("lunch", 2), ("afternoon", 0), ("dinner", 6), ("late", 0)]
    );
    let r = report(
        &app,
        "/api/v1/analytics/dishes?from=2026-04-01&to=2026-06-30&by=region&region=华东",
    )
    .await;
    assert_eq!(r["orders"], 1);
    assert_eq!(r["groups"][0]["name"], "华东", "{r}");
}

async fn template(app: &TestApp, name: &str, off: i64, min: i64) -> String {
    let r = app
        .post(
            "/api/v1/coupon-templates",
            json!({"name": name, "benefit": {"kind": "amount_off", "amount_off_fen": off},
                "min_spend_fen": min, "valid_days": 30}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn issue(app: &TestApp, member: &str, template: &str) -> String {
    let r = keyed(
        app,
        &format!("/api/v1/members/{member}/coupons"),
        &format!("k-{}", rand::random::<u64>()),
        json!({"template_id": template, "reason": "test", "source": "campaign"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["code"].as_str().unwrap().to_string()
}

async fn coupon_redemption_rate_by_template(app: TestApp) {
    chain(&app).await;
    let big = template(&app, "满100减20", 2000, 10_000).await;
    let small = template(&app, "冰粉券", 1000, 0).await;
    let mut cd = Vec::new();
    for _ in 0..3 {
        cd.push(member(&app, json!({"home_store": "CD01"})).await);
    }
    let sh = member(&app, json!({"home_store": "SH01"})).await;
    // 满100减20: four issued, one redeemed, one withdrawn.
    let mut big_codes = Vec::new();
    for m in cd.iter().chain([&sh]) {
        big_codes.push(issue(&app, m, &big).await);
    }
    // 冰粉券: two issued, one redeemed.
    let small_codes = [
        issue(&app, &cd[0], &small).await,
        issue(&app, &sh, &small).await,
    ];
    for (code, pos) in [(&big_codes[0], "R1"), (&small_codes[1], "R2")] {
        let r = app
            .post(
                &format!("/api/v1/coupons/{code}/redeem"),
                json!({"store_code": "CD01", "pos_order_id": pos,
                    "items": [line("G1", 3, 5000)]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = app
        .post(&format!("/api/v1/coupons/{}/void", big_codes[1]), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let r = report(&app, "/api/v1/analytics/promotions").await;
    assert_eq!(
        (&r["issued"], &r["redeemed"], &r["redemption_rate"]),
        (&json!(6), &json!(2), &json!(0.3333)),
        "{r}"
    );
    assert_eq!((&r["void"], &r["outstanding"]), (&json!(1), &json!(3)));
    assert_eq!(r["discount_fen"], 3000);
    assert_eq!(
        r["by_template"],
        json!([
            {"template_id": big, "name": "满100减20", "issued": 4, "redeemed": 1,
             "redemption_rate": 0.25, "discount_fen": 2000},
            {"template_id": small, "name": "冰粉券", "issued": 2, "redeemed": 1,
             "redemption_rate": 0.5, "discount_fen": 1000},
        ])
    );
    assert_eq!(
        r["by_source"],
        json!([{"source": "campaign", "issued": 6, "redeemed": 2, "redemption_rate": 0.3333}])
    );
    // By the members' home store.
    let r = report(&app, "/api/v1/analytics/promotions?store=SH01").await;
    assert_eq!(
        (&r["issued"], &r["redeemed"], &r["redemption_rate"]),
        (&json!(2), &json!(1), &json!(0.5)),
        "{r}"
    );
    // A window that ended yesterday saw none of them.
    let yesterday = (Utc::now() + Duration::hours(8) - Duration::days(1))
        .date_naive()
        .to_string();
    let r = report(
        &app,
        &format!("/api/v1/analytics/promotions?from=2026-01-01&to={yesterday}"),
    )
    .await;
    assert_eq!(
        (&r["issued"], &r["redemption_rate"]),
        (&json!(0), &Value::Null)
    );
}

fn rows(r: &Value) -> Vec<(String, i64, i64, i64)> {
    r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["key"].as_str().unwrap().to_string(),
                x["members"].as_i64().unwrap(),
                x["active_members"].as_i64().unwrap(),
                x["spend_fen"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn members_by_city_tier_and_lifecycle(app: TestApp) {
    chain(&app).await;
    let a = member(&app, json!({"home_store": "CD01", "age_group": "25_34"})).await;
    let b = member(&app, json!({"home_store": "CD01", "age_group": "25_34"})).await;
    let _c = member(&app, json!({"home_store": "CD02"})).await;
    let d = member(&app, json!({"home_store": "SH01", "age_group": "35_44"})).await;
    // Lives in 重庆, home store in 成都.
    let _e = member(&app, json!({"home_store": "CD01", "city": "重庆"})).await;
    let gone = member(&app, json!({"home_store": "SH01"})).await;
    // ¥600 makes A silver.
    visit(
        &app,
        "CD01",
        Some(&a),
        "2026-03-02T12:00",
        json!([line("G1", 1, 60_000)]),
    )
    .await;
    visit(
        &app,
        "CD01",
        Some(&b),
        "2026-03-05T12:00",
        json!([line("G1", 1, 8000)]),
    )
    .await;
    visit(
        &app,
        "SH01",
        Some(&d),
        "2026-03-08T12:00",
        json!([line("G1", 1, 9000)]),
    )
    .await;
    // Before the window: counts in the 12 months, not in the window.
    visit(
        &app,
        "SH01",
        Some(&d),
        "2025-12-08T12:00",
        json!([line("G1", 1, 1000)]),
    )
    .await;
    {
        let mut conn = app.regulars.db.writer().await.unwrap();
        sqlx::query("UPDATE members SET erased_at = $1 WHERE id = $2")
            .bind(Utc::now().timestamp_millis())
            .bind(&gone)
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let base = "/api/v1/analytics/distribution?from=2026-03-01&to=2026-03-31";
    let r = report(&app, &format!("{base}&by=city")).await;
    assert_eq!(
        rows(&r),
        [
            ("成都".to_string(), 3, 2, 68_000),
            ("上海".to_string(), 1, 1, 9000),
            ("重庆".to_string(), 1, 0, 0),
        ],
        "the erased member is not counted: {r}"
    );
    assert_eq!(r["total"]["members"], 5);
    let shanghai = &r["rows"][1];
    assert_eq!(shanghai["spend_12m_fen"], 10_000, "{r}");
    assert_eq!(shanghai["active_rate"], 1.0);

    let r = report(&app, &format!("{base}&by=tier")).await;
    assert_eq!(
        rows(&r),
        [
            ("regular".to_string(), 4, 2, 17_000),
            ("silver".to_string(), 1, 1, 60_000)
        ],
        "{r}"
    );
    let r = report(&app, &format!("{base}&by=age_group")).await;
    assert_eq!(
        rows(&r).into_iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
        [
            ("25_34".to_string(), 2),
            ("unknown".to_string(), 2),
            ("35_44".to_string(), 1)
        ]
    );
    let r = report(&app, &format!("{base}&by=region")).await;
    assert_eq!(r["rows"][0]["key"], "shuxiang:西南", "{r}");
    assert_eq!(r["rows"][0]["name"], "西南");
    assert_eq!(r["rows"][0]["members"], 4);
    let r = report(&app, &format!("{base}&by=store&city=成都")).await;
    assert_eq!(
        rows(&r).into_iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
        [("CD01".to_string(), 3), ("CD02".to_string(), 1)]
    );
    // Before any scoring run every member is unscored.
    let r = report(&app, &format!("{base}&by=lifecycle")).await;
    assert_eq!(rows(&r), [("unscored".to_string(), 5, 3, 77_000)], "{r}");
    // After scoring, the stages and grades of the last run.
    regulars_server::app::insights::score(&app.regulars, Utc::now().timestamp_millis())
        .await
        .expect("score");
    for by in ["lifecycle", "grade"] {
        let r = report(&app, &format!("{base}&by={by}")).await;
        assert_eq!(r["total"]["members"], 5, "{r}");
        assert!(rows(&r).iter().all(|x| x.0 != "unscored"), "{by}: {r}");
    }
    let r = report(&app, &format!("{base}&by=lifecycle")).await;
    let potential = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["key"] == "potential")
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(potential["members"], 2, "C and E never came: {r}");
}

async fn as_key(app: &TestApp, key: &str, path: &str) -> Reply {
    app.send("GET", path, Some(key), None).await
}

async fn a_store_manager_sees_only_their_store(app: TestApp) {
    march(&app).await;
    let manager = app.key_for(Role::StoreManager, Some("CD01")).await;
    let march = "from=2026-03-01&to=2026-03-31";
    let r = as_key(
        &app,
        &manager,
        &format!("/api/v1/analytics/repurchase?{march}"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["scope"]["store"], "CD01");
    assert_eq!(r.body["members_with_visit"], 3, "{}", r.body);
    assert_eq!(r.body["by_store"].as_array().unwrap().len(), 1);
    let r = as_key(
        &app,
        &manager,
        &format!("/api/v1/analytics/repurchase?{march}&store=CD01"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for path in [
        "repurchase",
        "cohorts",
        "dishes",
        "promotions",
        "distribution?by=tier",
    ] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let r = as_key(
            &app,
            &manager,
            &format!("/api/v1/analytics/{path}{sep}store=SH01"),
        )
        .await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert_eq!(r.code(), "forbidden");
    }
    // A region filter does not widen a manager's view.
    let r = as_key(
        &app,
        &manager,
        &format!("/api/v1/analytics/repurchase?{march}&region=华东"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["members_with_visit"], 0, "{}", r.body);
    let r = as_key(
        &app,
        &manager,
        &format!("/api/v1/analytics/distribution?{march}&by=store"),
    )
    .await;
    assert_eq!(
        rows(&r.body),
        [("CD01".to_string(), 3, 3, 25_000)],
        "{}",
        r.body
    );
    // Staff and POS keys see no reports; analysts see the chain.
    for role in [Role::Staff, Role::Pos] {
        let key = app.key_for(role, Some("CD01")).await;
        let r = as_key(&app, &key, "/api/v1/analytics/repurchase").await;
        assert_eq!(r.status, 403, "{role}: {}", r.body);
    }
    let analyst = app.key_for(Role::Analyst, None).await;
    let r = as_key(
        &app,
        &analyst,
        &format!("/api/v1/analytics/repurchase?{march}"),
    )
    .await;
    assert_eq!(r.body["members_with_visit"], 5, "{}", r.body);
    let r = app
        .send("GET", "/api/v1/analytics/repurchase", None, None)
        .await;
    assert_eq!(r.status, 401);
}

async fn bad_filters_are_422_and_nothing_else(app: TestApp) {
    chain(&app).await;
    let cases: [(&str, &str); 14] = [
        ("from=2026-13-01", "invalid_date"),
        ("from=2026-02-30", "invalid_date"),
        ("to=yesterday", "invalid_date"),
        ("from=", "invalid_date"),
        ("from=2026-3-1", "invalid_date"),
        ("from=2026-03-05&to=2026-03-01", "invalid_date"),
        ("from=2000-01-01&to=2026-01-01", "invalid_date"),
        ("to=99999-01-01", "invalid_date"),
        ("form=2026-01-01", "invalid_field"),
        ("to=2026-01-01&to=2026-02-01", "invalid_field"),
        ("store=NOPE", "unknown_store"),
        ("region=火星", "unknown_region"),
        ("city=拉萨", "unknown_city"),
        ("brand=nobrand", "unknown_brand"),
    ];
    for report in [
        "repurchase",
        "cohorts",
        "dishes",
        "promotions",
        "distribution",
    ] {
        for (query, code) in cases {
            let by = if report == "distribution" {
                "by=tier&"
            } else {
                ""
            };
            let path = format!("/api/v1/analytics/{report}?{by}{query}");
            let r = app.get(&path).await;
            assert_eq!(r.status, 422, "{path}: {}", r.body);
            assert_eq!(r.code(), code, "{path}: {}", r.body);
            assert!(
                !r.body["error"]["message"].as_str().unwrap().is_empty(),
                "{path}"
            );
            assert_eq!(
                r.body.as_object().unwrap().len(),
                1,
                "only the error: {}",
                r.body
            );
        }
    }
    for (path, field) in [
        ("/api/v1/analytics/dishes?daypart=breakfast", "daypart"),
        ("/api/v1/analytics/dishes?by=city", "by"),
        ("/api/v1/analytics/distribution", "by"),
        ("/api/v1/analytics/distribution?by=shoe_size", "by"),
        ("/api/v1/analytics/repurchase?by=tier", "by"),
        ("/api/v1/analytics/cohorts?daypart=lunch", "daypart"),
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status, 422, "{path}: {}", r.body);
        assert_eq!(r.code(), "invalid_field", "{path}: {}", r.body);
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains(field),
            "{path}: {}",
            r.body
        );
    }
    // The defaults: the last 12 months to today, on an empty chain.
    let r = report(&app, "/api/v1/analytics/repurchase").await;
    let today = (Utc::now() + Duration::hours(8)).date_naive();
    assert_eq!(r["window"]["to"], today.to_string());
    assert_eq!(r["by_month"].as_array().unwrap().len(), 12, "{r}");
    assert!(r["repurchase_rate"].is_null());
    assert_eq!(r["below_benchmark"], false);
    // Every report is in the OpenAPI document.
    let doc = app.get("/api/v1/openapi.json").await.body;
    for report in [
        "repurchase",
        "cohorts",
        "dishes",
        "promotions",
        "distribution",
    ] {
        assert!(
            doc["paths"][format!("/api/v1/analytics/{report}")]["get"].is_object(),
            "{report}"
        );
    }
}
