//! Member sign-in on the H5 pages: the one-time code's rules (hashed, five
//! minutes, five tries, send limits, no enumeration), delivery through the
//! SMS gateway or the message log, and account deletion ending it all.

use crate::helpers::{random_phone, TestApp};
use crate::on_both_backends;
use crate::receivers::gateway;
use regulars_core::access::{Principal, Role};
use regulars_server::app::member_login::{self, CODE_TTL_MS};
use regulars_server::app::{member_self, AppError};
use regulars_store::now_ms;
use serde_json::json;

on_both_backends!(
    the_code_is_stored_hashed_and_signs_in_once,
    codes_expire_after_five_minutes,
    five_wrong_tries_end_the_code,
    sends_are_limited_per_phone_and_per_client,
    unknown_phones_get_the_same_answer_and_no_code,
    with_a_gateway_the_code_goes_by_sms_and_not_into_the_log,
    deleting_the_account_erases_the_person_and_ends_sign_in,
);

fn hq() -> Principal {
    Principal {
        actor: "user:hq_test".into(),
        role: Role::HqAdmin,
        store: None,
    }
}

async fn member(app: &TestApp) -> (String, String) {
    let phone = random_phone();
    let r = app
        .create_member(json!({"phone": phone, "name": "陈小春"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    (phone, r.body["id"].as_str().unwrap().to_string())
}

/// The six digits in the newest logged message.
async fn logged_code(app: &TestApp) -> String {
    let log = member_login::message_log(&app.regulars, &hq(), 10)
        .await
        .unwrap();
    let body = &log.first().expect("a logged message").body;
    six_digits(body).unwrap_or_else(|| panic!("no code in {body}"))
}

fn six_digits(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(6).enumerate().find_map(|(i, w)| {
        let before = i.checked_sub(1).map(|j| chars[j].is_ascii_digit());
        let after = chars.get(i + 6).map(|c| c.is_ascii_digit());
        (w.iter().all(|c| c.is_ascii_digit()) && before != Some(true) && after != Some(true))
            .then(|| w.iter().collect())
    })
}

fn code_of(e: &AppError) -> &str {
    match e {
        AppError::Unprocessable { code, .. } => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn codes_in_db(app: &TestApp) -> Vec<String> {
    let mut conn = app.regulars.db.reader().await.unwrap();
    sqlx::query_scalar::<_, String>("SELECT code_hash FROM member_login_codes")
        .fetch_all(&mut *conn)
        .await
        .unwrap()
}

async fn the_code_is_stored_hashed_and_signs_in_once(app: TestApp) {
    let (phone, id) = member(&app).await;
    member_login::request_code(&app.regulars, &phone, "10.0.0.1")
        .await
        .unwrap();
    let code = logged_code(&app).await;
    // Neither the code table nor the log's ciphertext holds the code.
    let hashes = codes_in_db(&app).await;
    assert_eq!(hashes.len(), 1);
    assert!(!hashes[0].contains(&code));
    assert_eq!(hashes[0].len(), 64);
    let mut conn = app.regulars.db.reader().await.unwrap();
    let bodies: Vec<Vec<u8>> = sqlx::query_scalar("SELECT body_enc FROM message_log")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    assert_eq!(bodies.len(), 1);
    assert!(!bodies[0].windows(6).any(|w| w == code.as_bytes()));

    let (token, session) = member_login::sign_in(&app.regulars, &phone, &code)
        .await
        .unwrap();
    assert_eq!(session.member_id, id);
    let again = member_login::session(&app.regulars, &token)
        .await
        .unwrap()
        .expect("the session opens");
    assert_eq!(again.member_id, id);
    // The session's token is stored only as its hash.
    let mut conn = app.regulars.db.reader().await.unwrap();
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM member_sessions")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], token);
    // A used code does not sign in twice.
    let e = member_login::sign_in(&app.regulars, &phone, &code)
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), "wrong_code");
}

async fn codes_expire_after_five_minutes(app: TestApp) {
    let (phone, _) = member(&app).await;
    let t0 = now_ms();
    member_login::request_code_at(&app.regulars, &phone, "10.0.0.2", t0)
        .await
        .unwrap();
    let code = logged_code(&app).await;
    let e = member_login::sign_in_at(&app.regulars, &phone, &code, t0 + CODE_TTL_MS + 1)
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), "code_dead");
    // Just inside the five minutes it works.
    member_login::sign_in_at(&app.regulars, &phone, &code, t0 + CODE_TTL_MS - 1000)
        .await
        .unwrap();
}

async fn five_wrong_tries_end_the_code(app: TestApp) {
    let (phone, _) = member(&app).await;
    member_login::request_code(&app.regulars, &phone, "10.0.0.3")
        .await
        .unwrap();
    let code = logged_code(&app).await;
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for attempt in 1..=5 {
        let e = member_login::sign_in(&app.regulars, &phone, wrong)
            .await
            .unwrap_err();
        let expected = if attempt < 5 {
            "wrong_code"
        } else {
            "code_dead"
        };
        assert_eq!(code_of(&e), expected, "try {attempt}");
    }
    // Dead: even the right code is refused now.
    let e = member_login::sign_in(&app.regulars, &phone, &code)
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), "code_dead");
    // Not six digits: a field message, not a try.
    let e = member_login::sign_in(&app.regulars, &phone, "12ab")
        .await
        .unwrap_err();
    assert!(matches!(e, AppError::Invalid(_)), "{e:?}");
}

async fn sends_are_limited_per_phone_and_per_client(app: TestApp) {
    let (phone, _) = member(&app).await;
    let t0 = now_ms();
    let minute = 60_000;
    member_login::request_code_at(&app.regulars, &phone, "10.0.1.1", t0)
        .await
        .unwrap();
    // Once a minute, whichever address asks.
    let e = member_login::request_code_at(&app.regulars, &phone, "10.0.1.2", t0 + 30_000)
        .await
        .unwrap_err();
    assert!(matches!(e, AppError::TooManyRequests), "{e:?}");
    // Ten a day: nine more, a minute apart, then no more.
    for i in 1..10 {
        member_login::request_code_at(&app.regulars, &phone, "10.0.1.3", t0 + i * minute + 1)
            .await
            .unwrap_or_else(|e| panic!("send {i}: {e:?}"));
    }
    let e = member_login::request_code_at(&app.regulars, &phone, "10.0.1.4", t0 + 20 * minute)
        .await
        .unwrap_err();
    assert!(matches!(e, AppError::TooManyRequests), "{e:?}");

    // One address: 30 an hour, over any phones.
    let client = "10.0.2.1";
    for i in 0..member_login::PER_CLIENT_HOUR {
        member_login::request_code_at(&app.regulars, &random_phone(), client, t0 + i)
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e:?}"));
    }
    let e = member_login::request_code_at(&app.regulars, &random_phone(), client, t0 + 100)
        .await
        .unwrap_err();
    assert!(matches!(e, AppError::TooManyRequests), "{e:?}");
    member_login::request_code_at(&app.regulars, &random_phone(), "10.0.2.2", t0 + 100)
        .await
        .unwrap();
    // An hour later the address may ask again.
    member_login::request_code_at(&app.regulars, &random_phone(), client, t0 + 61 * minute)
        .await
        .unwrap();
}

async fn unknown_phones_get_the_same_answer_and_no_code(app: TestApp) {
    let stranger = random_phone();
    member_login::request_code(&app.regulars, &stranger, "10.0.3.1")
        .await
        .unwrap();
    assert!(codes_in_db(&app).await.is_empty());
    assert!(member_login::message_log(&app.regulars, &hq(), 10)
        .await
        .unwrap()
        .is_empty());
    // The limits count strangers' phones alike, so they tell nothing either.
    let e = member_login::request_code(&app.regulars, &stranger, "10.0.3.1")
        .await
        .unwrap_err();
    assert!(matches!(e, AppError::TooManyRequests), "{e:?}");
    let e = member_login::sign_in(&app.regulars, &stranger, "123456")
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), "wrong_code");
    // The same over HTTP: the page reads the same for member and stranger.
    let (phone, _) = member(&app).await;
    let client = reqwest::Client::new();
    let mut pages = Vec::new();
    for p in [phone.as_str(), &random_phone()] {
        let form = client
            .get(format!("{}/m/login", app.base))
            .send()
            .await
            .unwrap();
        let cookie = form
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let csrf = cookie.split_once('=').unwrap().1.to_string();
        let answer = client
            .post(format!("{}/m/login", app.base))
            .header("cookie", &cookie)
            .form(&[("phone", p), ("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let html = answer.text().await.unwrap();
        assert!(html.contains("验证码已发送"), "{html}");
        pages.push(html.replace(p, "PHONE").replace(&csrf, "CSRF"));
    }
    // Only the fresh CSRF token differs, and it was taken out.
    let strip = |h: &str| {
        h.lines()
            .filter(|l| !l.contains("name=\"csrf\""))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&pages[0]), strip(&pages[1]));
}

async fn with_a_gateway_the_code_goes_by_sms_and_not_into_the_log(app: TestApp) {
    let sms = gateway().await;
    let r = app
        .send(
            "PUT",
            "/api/v1/campaign-channels",
            Some(&app.admin_key.clone()),
            Some(
                json!({"sms": {"url": format!("{}/sms", sms.base), "secret": "s3cret-for-tests"}}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (phone, id) = member(&app).await;
    member_login::request_code(&app.regulars, &phone, "10.0.4.1")
        .await
        .unwrap();
    let requests = sms.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0].json;
    assert_eq!(sent["member_id"], json!(id));
    assert_eq!(sent["template"], json!("login_code"));
    let code = sent["variables"]["code"].as_str().unwrap().to_string();
    assert!(sent["text"].as_str().unwrap().contains(&code));
    let log = member_login::message_log(&app.regulars, &hq(), 10)
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].delivery, "sent");
    assert!(!log[0].body.contains(&code), "{}", log[0].body);
    assert!(six_digits(&log[0].body).is_none());
    assert!(log[0].recipient.contains("****"));
    member_login::sign_in(&app.regulars, &phone, &code)
        .await
        .unwrap();
    // Staff other than hq_admin do not read the log.
    let analyst = Principal {
        actor: "user:a".into(),
        role: Role::Analyst,
        store: None,
    };
    assert!(matches!(
        member_login::message_log(&app.regulars, &analyst, 10).await,
        Err(AppError::Forbidden(_))
    ));
}

async fn deleting_the_account_erases_the_person_and_ends_sign_in(app: TestApp) {
    let (phone, id) = member(&app).await;
    member_login::request_code(&app.regulars, &phone, "10.0.5.1")
        .await
        .unwrap();
    let code = logged_code(&app).await;
    let (token, me) = member_login::sign_in(&app.regulars, &phone, &code)
        .await
        .unwrap();
    let export = member_self::export(&app.regulars, &me).await.unwrap();
    assert_eq!(
        export.personal["phone"].as_deref(),
        Some(format!("+86{phone}").as_str())
    );
    assert_eq!(export.personal["name"].as_deref(), Some("陈小春"));

    member_self::erase(&app.regulars, &me).await.unwrap();
    assert!(member_login::session(&app.regulars, &token)
        .await
        .unwrap()
        .is_none());
    let r = app.get(&format!("/api/v1/members/{id}")).await;
    assert_eq!(r.status, 404);
    let r = app.get(&format!("/api/v1/members?phone={phone}")).await;
    assert!(
        r.status == 404 || r.body["members"].as_array().is_some_and(|m| m.is_empty()),
        "{} {}",
        r.status,
        r.body
    );
    let mut conn = app.regulars.db.reader().await.unwrap();
    let (index, name): (Option<Vec<u8>>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT phone_index, name_enc FROM members WHERE id = $1")
            .bind(&id)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert!(index.is_none() && name.is_none());
    drop(conn);
    // A new code is never made for the phone now.
    let before = member_login::message_log(&app.regulars, &hq(), 10)
        .await
        .unwrap()
        .len();
    member_login::request_code_at(&app.regulars, &phone, "10.0.5.2", now_ms() + 61_000)
        .await
        .unwrap();
    assert_eq!(
        member_login::message_log(&app.regulars, &hq(), 10)
            .await
            .unwrap()
            .len(),
        before
    );
    assert!(codes_in_db(&app).await.is_empty());
}
