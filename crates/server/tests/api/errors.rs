use crate::helpers::{random_phone, TestApp};
use crate::on_both_backends;
use serde_json::json;

on_both_backends!(
    bad_requests_get_json_errors_never_500,
    openapi_describes_the_api
);

async fn raw(
    app: &TestApp,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let mut req = app
        .client
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{}", app.base, path),
        )
        .bearer_auth(&app.admin_key)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

/// method, path, content type, body, expected status, expected code
type Case = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    u16,
    &'static str,
);

async fn bad_requests_get_json_errors_never_500(app: TestApp) {
    let json_ct = Some("application/json");
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/api/v1/members",
            json_ct,
            b"{\"phone\": ".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "POST",
            "/api/v1/members",
            json_ct,
            b"not json".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "POST",
            "/api/v1/members",
            json_ct,
            br#"{"phone": 13800138000}"#.to_vec(),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/api/v1/members",
            json_ct,
            br#"{"phone": "13800138000", "gender": "robot"}"#.to_vec(),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/api/v1/members",
            json_ct,
            br#"{"phone": "13800138000", "favourite_colour": "red"}"#.to_vec(),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/api/v1/members",
            json_ct,
            br#"{"name": "no phone"}"#.to_vec(),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/api/v1/members",
            json_ct,
            b"[1,2,3]".to_vec(),
            422,
            "invalid_body",
        ),
        (
            "POST",
            "/api/v1/members",
            Some("text/plain"),
            br#"{"phone": "13800138000"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/api/v1/members",
            json_ct,
            {
                let mut big = br#"{"phone": "13800138000", "notes": ""#.to_vec();
                big.extend(std::iter::repeat_n(b'x', 1024 * 1024 + 100));
                big.extend(br#""}"#);
                big
            },
            413,
            "body_too_large",
        ),
        (
            "GET",
            "/api/v1/nothing-here",
            None,
            vec![],
            404,
            "route_not_found",
        ),
        (
            "DELETE",
            "/api/v1/stores",
            None,
            vec![],
            405,
            "method_not_allowed",
        ),
        (
            "GET",
            "/api/v1/members?limit=abc",
            None,
            vec![],
            400,
            "invalid_query",
        ),
        (
            "GET",
            "/api/v1/members/lookup",
            None,
            vec![],
            400,
            "invalid_query",
        ),
        (
            "POST",
            "/api/v1/stores",
            json_ct,
            br#"{"code": "X1", "name": "n", "region": "r"}"#.to_vec(),
            422,
            "invalid_body",
        ),
    ];
    for (method, path, ct, body, status, code) in cases {
        let (got, json) = raw(&app, method, path, ct, body).await;
        assert_eq!(got, status, "{method} {path}: {json}");
        assert_eq!(json["error"]["code"], code, "{method} {path}: {json}");
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{method} {path} needs a message: {json}"
        );
    }
    // None of that created anything, and a good request still works.
    let page = app.get("/api/v1/members").await;
    assert_eq!(page.body["members"].as_array().unwrap().len(), 0);
    let ok = app.create_member(json!({"phone": random_phone()})).await;
    assert_eq!(ok.status, 201);
}

async fn openapi_describes_the_api(app: TestApp) {
    let r = app.send("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(r.status, 200);
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3."));
    let paths = r.body["paths"].as_object().unwrap();
    for p in [
        "/healthz",
        "/api/v1/stores",
        "/api/v1/stores/{code}",
        "/api/v1/members",
        "/api/v1/members/lookup",
        "/api/v1/members/{id}",
        "/api/v1/members/{id}/tags",
        "/api/v1/members/{id}/consents",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    assert!(paths["/api/v1/members"]["post"]["requestBody"].is_object());
    assert!(r.body["components"]["securitySchemes"]["api_key"].is_object());
    let health = app.send("GET", "/healthz", None, None).await;
    assert_eq!(health.status, 200);
    assert!(health.headers.contains_key("x-request-id"));
}
