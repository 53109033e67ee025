//! Family groups: a member redeems from their own points first, then from
//! family members who agreed to share — never from one who did not.

use crate::helpers::{random_phone, TestApp};
use crate::loyalty::{assert_ledger_sound, balance, keyed, simple_order};
use crate::on_both_backends;
use serde_json::json;

on_both_backends!(family_redemption_draws_only_on_consenting_members);

async fn family_redemption_draws_only_on_consenting_members(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = app
            .create_member(json!({"phone": random_phone(), "home_store": "CD01"}))
            .await;
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    let (mum, dad, kid) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    for id in &ids {
        let r = app
            .send(
                "PATCH",
                &format!("/api/v1/members/{id}"),
                Some(&app.admin_key.clone()),
                Some(json!({"family_group": "wang-family"})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    simple_order(&app, "F1", &mum, 10_000).await; // 100
    simple_order(&app, "F2", &dad, 30_000).await; // 300
    simple_order(&app, "F3", &kid, 50_000).await; // 500, never shared

    let share = |id: String, share: bool| {
        let app = &app;
        async move {
            app.send(
                "PUT",
                &format!("/api/v1/members/{id}/family-share"),
                Some(&app.admin_key.clone()),
                Some(json!({"share": share})),
            )
            .await
        }
    };
    assert_eq!(share(dad.clone(), true).await.status, 200);

    let path = format!("/api/v1/members/{mum}/redemptions");
    // Without `family`, only her own 100.
    let r = keyed(
        &app,
        &path,
        "f-0",
        json!({"points": 250, "store_code": "CD01"}),
    )
    .await;
    assert_eq!(r.code(), "insufficient_points");
    // With it: her 100, then 150 of dad's; the kid did not agree.
    let r = keyed(
        &app,
        &path,
        "f-1",
        json!({"points": 250, "store_code": "CD01", "family": true}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["balance"], 0);
    let given: Vec<(String, i64)> = r.body["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["member_id"].as_str().unwrap().to_string(),
                c["points"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(given, vec![(mum.clone(), 100), (dad.clone(), 150)]);
    assert_eq!(balance(&app, &dad).await, 150);
    assert_eq!(balance(&app, &kid).await, 500);

    // More than the consenting family holds: refused, nothing taken.
    let r = keyed(
        &app,
        &path,
        "f-2",
        json!({"points": 151, "store_code": "CD01", "family": true}),
    )
    .await;
    assert_eq!(r.code(), "insufficient_points");
    assert_eq!(balance(&app, &dad).await, 150);

    // Dad withdraws: nothing more from him.
    assert_eq!(share(dad.clone(), false).await.status, 200);
    let r = keyed(
        &app,
        &path,
        "f-3",
        json!({"points": 10, "store_code": "CD01", "family": true}),
    )
    .await;
    assert_eq!(r.code(), "insufficient_points");
    assert_eq!(balance(&app, &dad).await, 150);

    // The kid (not in consent) redeeming with `family` draws on nobody but self.
    let r = keyed(
        &app,
        &format!("/api/v1/members/{kid}/redemptions"),
        "f-4",
        json!({"points": 500, "store_code": "CD01", "family": true}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(balance(&app, &kid).await, 0);
    assert_ledger_sound(&app).await;
}
