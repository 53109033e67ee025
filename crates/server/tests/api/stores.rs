use crate::helpers::TestApp;
use crate::on_both_backends;
use serde_json::json;

on_both_backends!(stores_are_created_listed_and_unique);

async fn stores_are_created_listed_and_unique(app: TestApp) {
    let r = app.create_store("CD01", "成都").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["code"], "CD01");
    assert_eq!(r.body["region"], "西南");
    assert_eq!(r.body["brand"], "shuxiang");

    let again = app.create_store("CD01", "成都").await;
    assert_eq!(again.status, 409);
    assert_eq!(again.code(), "store_exists");

    // Brand is optional: the default brand.
    let r = app
        .post(
            "/api/v1/stores",
            json!({"code": "GZ01", "name": "天河店", "region": "华南", "city": "广州"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["brand"], "default");

    let list = app.get("/api/v1/stores").await;
    assert_eq!(list.status, 200);
    let codes: Vec<_> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_str().unwrap().to_string())
        .collect();
    assert!(codes.contains(&"CD01".to_string()) && codes.contains(&"GZ01".to_string()));

    let one = app.get("/api/v1/stores/GZ01").await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["city"], "广州");

    let bad = app
        .post(
            "/api/v1/stores",
            json!({"code": "成都 1", "name": "x", "region": "r", "city": "c"}),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.code(), "invalid_field");
}
