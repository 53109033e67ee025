//! Customer intelligence end to end: orders through the POS call, the nightly
//! scoring, and what `GET /members/{id}/insights` then says about each guest.

use crate::helpers::{random_phone, TestApp};
use crate::loyalty::{ago, order, order_json, run_jobs};
use crate::on_both_backends;
use chrono::{Duration, Utc};
use regulars_core::access::Role;
use serde_json::{json, Value};

on_both_backends!(
    scoring_tells_regulars_from_lapsed_guests,
    recommendations_follow_pairings_and_respect_allergies,
    insights_are_scoped_and_explain_when_missing,
    hq_sets_the_vip_line_and_the_next_scoring_uses_it,
);

/// The menu the scan knows: dishes outside it still count as visits.
async fn seed_menu(app: &TestApp) {
    let mut conn = app.regulars.db.writer().await.expect("db");
    for (sku, name, category, spice) in [
        ("G1", "牛油麻辣锅底", "锅底", 4),
        ("G2", "番茄锅底", "锅底", 0),
        ("M1", "精品肥牛", "肉类", 0),
        ("M2", "毛肚", "肉类", 0),
        ("S1", "虾滑", "海鲜", 0),
        ("P1", "花生酱拌面", "主食", 0),
        ("D1", "冰粉", "小吃", 0),
    ] {
        regulars_store::chain::upsert_menu_item(
            &mut conn,
            &regulars_store::chain::MenuItem {
                sku,
                brand_code: "shuxiang",
                name,
                category,
                spice_level: spice,
                price_fen: 3000,
                is_new: false,
            },
            0,
        )
        .await
        .expect("menu");
    }
}

fn line(sku: &str) -> Value {
    json!({"sku": sku, "name": sku, "category": "菜品", "quantity": 1, "unit_price_fen": 5000})
}

async fn guest(app: &TestApp, taste: Value) -> String {
    let r = app
        .create_member(json!({"phone": random_phone(), "home_store": "CD01", "taste": taste}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

/// Orders `days_ago` (each) with the given dishes.
async fn visits(app: &TestApp, member: &str, days_ago: &[i64], dishes: &[&str]) {
    for d in days_ago {
        let items: Vec<Value> = dishes.iter().map(|s| line(s)).collect();
        let paid = 5000 * dishes.len() as i64;
        let body = order_json(
            &format!("{member}-{d}"),
            Some(member),
            &ago(Duration::days(*d) + Duration::hours(1)),
            json!(items),
            paid,
        );
        let r = order(app, body).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
}

async fn insights(app: &TestApp, member: &str) -> Value {
    let r = app.get(&format!("/api/v1/members/{member}/insights")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn crowd(app: &TestApp) {
    // A population for the models to learn from, drawn the way BG/NBD says
    // guests behave: each with their own visit rate, each free to stop
    // after any visit; bills of different sizes. Seeded: the same every run.
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let menus: [&[&str]; 3] = [&["G2", "S1"], &["G2", "S1", "D1", "M1"], &["G2"]];
    for _ in 0..40 {
        let m = guest(app, json!({})).await;
        let mean_gap: f64 = rng.gen_range(5.0..80.0);
        let stop_chance: f64 = rng.gen_range(0.02..0.4);
        let mut day: f64 = rng.gen_range(120.0..360.0);
        let mut days = vec![];
        while day > 1.0 && days.len() < 12 {
            days.push(day as i64);
            if rng.gen_bool(stop_chance) {
                break;
            }
            day -= -(1.0 - rng.gen::<f64>()).ln() * mean_gap + 1.0;
        }
        for d in days {
            visits(app, &m, &[d], menus[rng.gen_range(0..3)]).await;
        }
    }
}

async fn scoring_tells_regulars_from_lapsed_guests(app: TestApp) {
    app.create_store("CD01", "成都").await;
    seed_menu(&app).await;
    crowd(&app).await;
    let weekly: Vec<i64> = (0..20).map(|i| 1 + i * 7).collect();
    let regular = guest(&app, json!({})).await;
    visits(&app, &regular, &weekly, &["G1", "M1", "M2"]).await;
    let lapsed_days: Vec<i64> = (0..10).map(|i| 100 + i * 7).collect();
    let lapsed = guest(&app, json!({})).await;
    visits(&app, &lapsed, &lapsed_days, &["G1", "M1"]).await;
    let gone = guest(&app, json!({})).await;
    visits(&app, &gone, &[400], &["G2"]).await;
    let newcomer = guest(&app, json!({})).await;
    visits(&app, &newcomer, &[10], &["G2"]).await;
    let back: Vec<i64> = [5]
        .into_iter()
        .chain((0..8).map(|i| 250 + i * 10))
        .collect();
    let returner = guest(&app, json!({})).await;
    visits(&app, &returner, &back, &["G2"]).await;
    let never = guest(&app, json!({})).await;

    let report =
        regulars_server::app::insights::score(&app.regulars, Utc::now().timestamp_millis())
            .await
            .expect("score");
    assert!(report.members >= 30, "{report:?}");
    assert!(report.bgnbd.is_some(), "{report:?}");

    let r = insights(&app, &regular).await;
    assert_eq!(r["lifecycle"], "active", "{r}");
    assert_eq!(r["grade"], "loyal", "{r}");
    assert_eq!(r["rfm"]["r"], 5, "{r}");
    assert_eq!(r["visits_12m"], 20);
    assert_eq!(r["taste"]["spice_level"], 1, "{r}"); // one of three dishes is spicy 4
    assert_eq!(r["taste"]["favourite_categories"][0], "肉类", "{r}");
    let p_regular = r["p_alive"].as_f64().expect("p_alive");
    assert!(r["clv_fen"].as_i64().expect("clv") > 0, "{r}");
    assert_eq!(r["churn_risk"], "low", "{r}");

    let l = insights(&app, &lapsed).await;
    assert_eq!(l["lifecycle"], "dormant", "{l}");
    let p_lapsed = l["p_alive"].as_f64().expect("p_alive");
    assert!(
        p_lapsed < p_regular,
        "lapsed {p_lapsed} vs regular {p_regular}"
    );
    assert!(l["expected_visits_30"].as_f64().unwrap() < r["expected_visits_30"].as_f64().unwrap());

    assert_eq!(insights(&app, &gone).await["lifecycle"], "churned");
    assert_eq!(insights(&app, &newcomer).await["lifecycle"], "new");
    assert_eq!(insights(&app, &returner).await["lifecycle"], "reactivated");
    let n = insights(&app, &never).await;
    assert_eq!(n["lifecycle"], "potential", "{n}");
    assert_eq!(n["grade"], "ordinary");
    assert!(n["p_alive"].is_null());
    // A guest with no history still gets the popular dishes.
    assert_eq!(n["recommendations"].as_array().unwrap().len(), 5, "{n}");
}

async fn recommendations_follow_pairings_and_respect_allergies(app: TestApp) {
    app.create_store("CD01", "成都").await;
    seed_menu(&app).await;
    // Many guests order 肥牛 with 毛肚; 冰粉 and 花生酱拌面 are popular on their own.
    for k in 0..12 {
        let m = guest(&app, json!({})).await;
        visits(&app, &m, &[3 + k, 20 + k], &["M1", "M2"]).await;
        let m = guest(&app, json!({})).await;
        visits(&app, &m, &[5 + k, 30 + k, 60 + k], &["D1", "P1", "S1"]).await;
    }
    let fan = guest(&app, json!({"allergies": ["花生"]})).await;
    visits(&app, &fan, &[2, 9], &["M1", "G2"]).await;
    run_jobs(&app, Utc::now().timestamp_millis()).await;
    let r = insights(&app, &fan).await;
    let skus: Vec<&str> = r["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["sku"].as_str().unwrap())
        .collect();
    assert_eq!(skus.len(), 5, "{r}");
    assert!(skus.contains(&"M2"), "肥牛's partner is offered: {skus:?}");
    let m2 = skus.iter().position(|s| *s == "M2").unwrap();
    let d1 = skus.iter().position(|s| *s == "D1").unwrap_or(usize::MAX);
    assert!(m2 < d1, "the pairing ranks above mere popularity: {skus:?}");
    assert!(
        !skus.contains(&"P1"),
        "never a dish with the guest's allergen: {skus:?}"
    );
    assert!(r["taste"]["avoided"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "花生"));
}

async fn insights_are_scoped_and_explain_when_missing(app: TestApp) {
    app.create_store("CD01", "成都").await;
    app.create_store("CD02", "成都").await;
    let m = guest(&app, json!({})).await;
    let r = app.get(&format!("/api/v1/members/{m}/insights")).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "not_scored", "{}", r.body);
    let r = app.get("/api/v1/members/nobody/insights").await;
    assert_eq!(r.status, 404, "{}", r.body);
    run_jobs(&app, Utc::now().timestamp_millis()).await;
    let other = app.key_for(Role::StoreManager, Some("CD02")).await;
    let r = app
        .send(
            "GET",
            &format!("/api/v1/members/{m}/insights"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let own = app.key_for(Role::StoreManager, Some("CD01")).await;
    let r = app
        .send(
            "GET",
            &format!("/api/v1/members/{m}/insights"),
            Some(&own),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn hq_sets_the_vip_line_and_the_next_scoring_uses_it(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let policy = app.get("/api/v1/insights/policy").await;
    assert_eq!(policy.status, 200, "{}", policy.body);
    assert_eq!(policy.body["vip_spend_fen"], 500_000);
    let spender = guest(&app, json!({})).await;
    visits(&app, &spender, &[5, 40], &["G2", "M1"]).await; // ¥200 in 12 months
    let admin = app.admin_key.clone();
    for bad in [
        json!({"decline_drop_percent": 0}),
        json!({"vip_spend_fen": -1}),
        json!({"churned_cadences": 2.0, "dormant_cadences": 3.0}),
        json!({"vip_line": 1}),
    ] {
        let r = app
            .send(
                "PUT",
                "/api/v1/insights/policy",
                Some(&admin),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
    }
    let manager = app.key_for(Role::StoreManager, Some("CD01")).await;
    let r = app
        .send(
            "PUT",
            "/api/v1/insights/policy",
            Some(&manager),
            Some(json!({"vip_spend_fen": 10_000})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    run_jobs(&app, Utc::now().timestamp_millis()).await;
    assert_eq!(insights(&app, &spender).await["vip"], false);
    let r = app
        .send(
            "PUT",
            "/api/v1/insights/policy",
            Some(&admin),
            Some(json!({"vip_spend_fen": 10_000})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["decline_drop_percent"], 50,
        "absent fields keep their default"
    );
    regulars_server::app::insights::score(&app.regulars, Utc::now().timestamp_millis())
        .await
        .expect("score");
    assert_eq!(insights(&app, &spender).await["vip"], true);
}
