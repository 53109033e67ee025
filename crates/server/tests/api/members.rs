use crate::helpers::{random_phone, TestApp};
use crate::on_both_backends;
use serde_json::json;

on_both_backends!(
    create_then_duplicate_in_another_format_is_409,
    lookup_finds_the_member_by_any_writing_of_the_number,
    bad_phone_and_bad_birthday_are_422,
    unknown_ids_are_404,
    list_filters_and_pages,
    patch_changes_only_what_is_sent,
    tags_and_consents_keep_their_history,
    concurrent_registrations_of_one_phone_make_one_member,
);

async fn create_then_duplicate_in_another_format_is_409(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let r = app
        .create_member(json!({"phone": "13800138000", "name": "王小明", "gender": "male",
            "birthday": "1990-05-17", "home_store": "CD01", "consents": {"sms": true, "email": false}}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert!(r.body["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(r.body["phone_masked"], "138****8000");
    assert_eq!(r.body["tier"], "regular");
    assert_eq!(r.body["points_balance"], 0);
    assert_eq!(r.body["name_masked"], "王**");
    assert_eq!(r.body["birthday_month_day"], "05-17");
    assert_eq!(r.body["city"], "成都", "city comes from the home store");
    assert_eq!(r.body["consents"]["sms"]["granted"], true);
    assert_eq!(r.body["consents"]["email"]["granted"], false);
    assert!(
        r.body.get("personal").is_none(),
        "no plaintext without reveal"
    );

    for other in [
        "+86 138 0013 8000",
        "86-138-0013-8000",
        "0086 138 0013 8000",
    ] {
        let dup = app.create_member(json!({"phone": other})).await;
        assert_eq!(dup.status, 409, "{other}");
        assert_eq!(dup.code(), "member_exists");
        assert!(!dup.body["error"]["message"].as_str().unwrap().is_empty());
    }
}

async fn lookup_finds_the_member_by_any_writing_of_the_number(app: TestApp) {
    let created = app
        .create_member(json!({"phone": "+86 139 1234 5678"}))
        .await;
    assert_eq!(created.status, 201);
    let id = created.body["id"].as_str().unwrap();
    for form in [
        "13912345678",
        "+8613912345678",
        "86-139-1234-5678",
        "139 1234 5678",
    ] {
        let q = form.replace('+', "%2B").replace(' ', "%20");
        let r = app.get(&format!("/api/v1/members/lookup?phone={q}")).await;
        assert_eq!(r.status, 200, "{form}: {:?}", r.body);
        assert_eq!(r.body["id"], id);
    }
    let missing = app.get("/api/v1/members/lookup?phone=13700000000").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.code(), "member_not_found");
    let bad = app.get("/api/v1/members/lookup?phone=12345").await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.code(), "invalid_phone");
}

async fn bad_phone_and_bad_birthday_are_422(app: TestApp) {
    for phone in ["12345", "12800138000", "phone", "", "+0123456789"] {
        let r = app.create_member(json!({"phone": phone})).await;
        assert_eq!(r.status, 422, "{phone}");
        assert_eq!(r.code(), "invalid_phone", "{phone}");
    }
    for birthday in ["1990-02-30", "1990-13-01", "17/05/1990", "2999-01-01"] {
        let r = app
            .create_member(json!({"phone": random_phone(), "birthday": birthday}))
            .await;
        assert_eq!(r.status, 422, "{birthday}");
        assert_eq!(r.code(), "invalid_date", "{birthday}");
    }
    let r = app
        .create_member(json!({"phone": random_phone(), "home_store": "NOPE"}))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.code(), "unknown_store");
    // Nothing of the refused requests was stored.
    let page = app.get("/api/v1/members").await;
    assert_eq!(page.body["members"].as_array().unwrap().len(), 0);
}

async fn unknown_ids_are_404(app: TestApp) {
    let r = app
        .get("/api/v1/members/01234567-89ab-7def-8123-456789abcdef")
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "member_not_found");
    let r = app.get("/api/v1/stores/NOPE").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "store_not_found");
    let r = app
        .send(
            "PATCH",
            "/api/v1/members/nope",
            Some(&app.admin_key.clone()),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = app
        .post("/api/v1/members/nope/tags", json!({"tag": "辣"}))
        .await;
    assert_eq!(r.status, 404);
}

async fn list_filters_and_pages(app: TestApp) {
    app.create_store("CD01", "成都").await;
    app.create_store("BJ01", "北京").await;
    let mut chengdu = Vec::new();
    for i in 0..7 {
        let store = if i % 2 == 0 { "CD01" } else { "BJ01" };
        let tags = if i < 3 { json!(["辣"]) } else { json!([]) };
        let r = app
            .create_member(json!({"phone": random_phone(), "home_store": store, "tags": tags}))
            .await;
        assert_eq!(r.status, 201);
        if store == "CD01" {
            chengdu.push(r.body["id"].as_str().unwrap().to_string());
        }
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/members?store=CD01&limit=3".to_string();
    loop {
        let page = app.get(&path).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        for m in page.body["members"].as_array().unwrap() {
            assert_eq!(m["home_store"], "CD01");
            seen.push(m["id"].as_str().unwrap().to_string());
        }
        match page.body["next_after"].as_str() {
            Some(after) => path = format!("/api/v1/members?store=CD01&limit=3&after={after}"),
            None => break,
        }
    }
    assert_eq!(seen, chengdu, "every Chengdu member once, in order");

    let spicy = app
        .get(&format!("/api/v1/members?tag={}", "%E8%BE%A3"))
        .await;
    assert_eq!(spicy.body["members"].as_array().unwrap().len(), 3);
    let gold = app.get("/api/v1/members?tier=gold").await;
    assert_eq!(gold.body["members"].as_array().unwrap().len(), 0);
    let regular = app.get("/api/v1/members?tier=regular&limit=200").await;
    assert_eq!(regular.body["members"].as_array().unwrap().len(), 7);
    let bad = app.get("/api/v1/members?tier=platinum").await;
    assert_eq!(bad.status, 400);
    let bad = app.get("/api/v1/members?limit=0").await;
    assert_eq!(bad.status, 422);
}

async fn patch_changes_only_what_is_sent(app: TestApp) {
    let r = app
        .create_member(json!({"phone": random_phone(), "name": "李娜", "email": "li.na@example.cn", "gender": "female"}))
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let key = app.admin_key.clone();
    let r = app
        .send("PATCH", &format!("/api/v1/members/{id}"), Some(&key),
            Some(json!({"name": "李娜娜", "email": null, "taste": {"spice_level": 3, "allergies": ["花生"]}})))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["name_masked"], "李**");
    assert_eq!(r.body["gender"], "female", "untouched");
    assert_eq!(r.body["taste"]["spice_level"], 3);
    let revealed = app.get(&format!("/api/v1/members/{id}?reveal=true")).await;
    assert_eq!(revealed.body["personal"]["name"], "李娜娜");
    assert!(revealed.body["personal"]["email"].is_null(), "null clears");
    let bad = app
        .send(
            "PATCH",
            &format!("/api/v1/members/{id}"),
            Some(&key),
            Some(json!({"birthday": "1990-02-31"})),
        )
        .await;
    assert_eq!(bad.status, 422);
    let bad = app
        .send(
            "PATCH",
            &format!("/api/v1/members/{id}"),
            Some(&key),
            Some(json!({"taste": {"spice_level": 9}})),
        )
        .await;
    assert_eq!(bad.status, 422);
    let still = app.get(&format!("/api/v1/members/{id}")).await;
    assert_eq!(
        still.body["taste"]["spice_level"], 3,
        "a refused change changes nothing"
    );
}

async fn tags_and_consents_keep_their_history(app: TestApp) {
    let r = app
        .create_member(json!({"phone": random_phone(), "consents": {"sms": true}}))
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("/api/v1/members/{id}/tags"),
            json!({"tag": "生日宴"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["tags"], json!(["生日宴"]));
    let key = app.admin_key.clone();
    let r = app
        .send(
            "DELETE",
            &format!("/api/v1/members/{id}/tags/%E7%94%9F%E6%97%A5%E5%AE%B4"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["tags"], json!([]));

    let r = app
        .send(
            "PUT",
            &format!("/api/v1/members/{id}/consents"),
            Some(&key),
            Some(json!({"sms": false, "wechat": true, "source": "paper_form"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["consents"]["sms"]["granted"], false);
    assert_eq!(r.body["consents"]["sms"]["source"], "paper_form");
    assert_eq!(r.body["consents"]["wechat"]["granted"], true);

    let mut conn = app.regulars.db.reader().await.unwrap();
    let events: Vec<(String, i64)> = sqlx::query_as(
        "SELECT channel, granted FROM consent_events WHERE member_id = $1 ORDER BY id",
    )
    .bind(&id)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(
        events,
        vec![("sms".into(), 1), ("sms".into(), 0), ("wechat".into(), 1)],
        "every consent decision is kept"
    );
}

async fn concurrent_registrations_of_one_phone_make_one_member(app: TestApp) {
    let phone = random_phone();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let app_base = app.base.clone();
        let key = app.admin_key.clone();
        // Different writings of the same number, all at once.
        let body = if i % 2 == 0 {
            json!({"phone": phone})
        } else {
            json!({"phone": format!("+86 {phone}")})
        };
        tasks.push(tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{app_base}/api/v1/members"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        7,
        "{statuses:?}"
    );
}
