use crate::helpers::{random_phone, TestApp};
use crate::on_both_backends;
use regulars_core::access::{Principal, Role};
use regulars_server::app::members::{create_members_batch, CreateMember};
use regulars_store::Backend;
use serde_json::json;

on_both_backends!(
    no_phone_or_name_in_the_database_files,
    phone_lookup_uses_an_index,
    reveal_needs_the_permission_and_is_audited,
);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Everything the database holds on disk (SQLite files) or would put in a
/// backup (`pg_dump`), as bytes.
fn database_bytes(app: &TestApp) -> Vec<u8> {
    match app.backend {
        Backend::Sqlite => {
            let path = app.sqlite_path.as_ref().unwrap();
            let mut all = Vec::new();
            for suffix in ["", "-wal", "-shm"] {
                let file = format!("{}{suffix}", path.display());
                if let Ok(bytes) = std::fs::read(&file) {
                    all.extend(bytes);
                }
            }
            assert!(all.len() > 10_000, "the SQLite file was read");
            all
        }
        Backend::Postgres => {
            let out = std::process::Command::new("pg_dump")
                .arg("--no-owner")
                .arg(format!("--dbname={}", app.database_url))
                .output()
                .expect("pg_dump must be installed to run this test");
            assert!(
                out.status.success(),
                "pg_dump failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.stdout.len() > 1_000);
            out.stdout
        }
    }
}

async fn no_phone_or_name_in_the_database_files(app: TestApp) {
    app.create_store("CD01", "成都").await;
    let names = ["欧阳娜娜", "诸葛孔明", "司马相如", "上官婉儿", "慕容复"];
    let mut written = Vec::new();
    for name in names {
        let phone = random_phone();
        let r = app
            .create_member(
                json!({"phone": phone, "name": name, "email": format!("{}@example.cn", &phone[3..]),
                "birthday": "1988-08-08", "home_store": "CD01", "notes": "坐窗边 喜欢毛肚"}),
            )
            .await;
        assert_eq!(r.status, 201);
        written.push((phone, name));
    }
    let bytes = database_bytes(&app);
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    // The test data really is in the database, just not in the clear.
    assert!(
        contains("蜀".as_bytes()) || contains(b"CD01"),
        "sanity: store data is visible"
    );
    for (phone, name) in &written {
        let e164 = format!("+86{phone}");
        for needle in [
            phone.as_bytes(),
            e164.as_bytes(),
            name.as_bytes(),
            "坐窗边".as_bytes(),
        ] {
            assert!(
                !contains(needle),
                "plaintext {:?} found in the database",
                String::from_utf8_lossy(needle)
            );
            assert!(
                !contains(hex(needle).as_bytes()),
                "hex of {:?} found in the database",
                String::from_utf8_lossy(needle)
            );
        }
    }
    let (phone, _) = &written[0];
    let masked = format!("{}****{}", &phone[..3], &phone[7..]);
    assert!(
        !contains(masked.as_bytes()),
        "not even the masked form is stored"
    );
}

async fn phone_lookup_uses_an_index(app: TestApp) {
    let admin = Principal {
        actor: "test".into(),
        role: Role::HqAdmin,
        store: None,
    };
    let batch: Vec<CreateMember> = (0..1500)
        .map(|_| serde_json::from_value(json!({"phone": random_phone()})).unwrap())
        .collect();
    create_members_batch(&app.regulars, &admin, batch)
        .await
        .unwrap();
    let probe = app
        .regulars
        .phone_index(&regulars_core::phone::Phone::parse("13800138000").unwrap());
    let sql = regulars_store::members::LOOKUP_BY_PHONE_SQL;
    let mut conn = app.regulars.db.reader().await.unwrap();
    let plan: Vec<String> = match app.backend {
        Backend::Sqlite => {
            let rows: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .bind(&probe)
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap();
            rows.into_iter().map(|r| r.3).collect()
        }
        Backend::Postgres => {
            sqlx::query("ANALYZE members")
                .execute(&mut *conn)
                .await
                .unwrap();
            let rows: Vec<(String,)> = sqlx::query_as(&format!("EXPLAIN {sql}"))
                .bind(&probe)
                .fetch_all(&mut *conn)
                .await
                .unwrap();
            rows.into_iter().map(|r| r.0).collect()
        }
    };
    let text = plan.join("\n");
    assert!(
        text.contains("INDEX") || text.contains("Index"),
        "plan uses no index:\n{text}"
    );
    assert!(
        !text.contains("SCAN members") && !text.contains("Seq Scan"),
        "plan scans the table:\n{text}"
    );
}

async fn reveal_needs_the_permission_and_is_audited(app: TestApp) {
    let phone = random_phone();
    let r = app
        .create_member(json!({"phone": phone, "name": "周杰", "birthday": "1979-01-18"}))
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();

    let analyst = app.key_for(Role::Analyst, None).await;
    let refused = app
        .send(
            "GET",
            &format!("/api/v1/members/{id}?reveal=true"),
            Some(&analyst),
            None,
        )
        .await;
    assert_eq!(refused.status, 403);
    let masked = app
        .send(
            "GET",
            &format!("/api/v1/members/{id}"),
            Some(&analyst),
            None,
        )
        .await;
    assert_eq!(masked.status, 200);
    assert!(
        !masked.body.to_string().contains(&phone),
        "analyst sees no phone"
    );
    assert!(!masked.body.to_string().contains("周杰"));

    let agent = app.key_for(Role::ServiceAgent, None).await;
    let shown = app
        .send(
            "GET",
            &format!("/api/v1/members/{id}?reveal=true"),
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["personal"]["phone"], format!("+86{phone}"));
    assert_eq!(shown.body["personal"]["name"], "周杰");
    assert_eq!(shown.body["personal"]["birthday"], "1979-01-18");

    let mut conn = app.regulars.db.reader().await.unwrap();
    let audit = regulars_store::staff::audit_of(&mut conn, &format!("member:{id}"))
        .await
        .unwrap();
    let reveals: Vec<_> = audit
        .iter()
        .filter(|a| a.action == "member.reveal")
        .collect();
    assert_eq!(reveals.len(), 1, "one reveal, one audit line: {audit:?}");
    assert!(reveals[0].actor.starts_with("key:"));
    assert!(
        audit.iter().all(|a| !a.detail.contains(&phone)),
        "no personal data in the audit log"
    );
}
