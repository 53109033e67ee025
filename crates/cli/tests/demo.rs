//! `regulars demo`: makes the demo chain once, serves the API and the
//! console, and prints a working login and key; a second run reuses the data.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

struct Started {
    child: std::process::Child,
    base: String,
    password: String,
    api_key: String,
}

fn start_demo(db_url: &str) -> Started {
    let mut child = Command::new(env!("CARGO_BIN_EXE_regulars"))
        .args(["--database-url", db_url, "demo", "--listen", "127.0.0.1:0"])
        .env_remove("REGULARS_MASTER_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("demo starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut password, mut api_key) = (String::new(), String::new());
    let base = loop {
        let line = lines.next().expect("demo printed its address").unwrap();
        if let Some(rest) = line.trim().strip_prefix("Login:") {
            password = rest.split('/').nth(1).unwrap().trim().to_string();
        }
        if let Some(rest) = line.trim().strip_prefix("API key:") {
            api_key = rest.split_whitespace().next().unwrap().to_string();
        }
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.to_string();
        }
    };
    Started {
        child,
        base,
        password,
        api_key,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_a_chain_and_a_fresh_login_each_run() {
    let dir = std::env::temp_dir().join(format!("regulars-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("sqlite://{}/regulars.db", dir.display());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let mut first_password = String::new();
    for run in 0..2 {
        let demo = start_demo(&url);
        assert!(demo.password.len() >= 16, "a generated password is shown");
        assert!(demo.api_key.starts_with("rk_"));
        let stores: serde_json::Value = client
            .get(format!("{}/api/v1/stores", demo.base))
            .bearer_auth(&demo.api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let stores = stores.as_array().unwrap();
        assert_eq!(stores.len(), 20, "20 stores, not doubled on the second run");
        let regions: std::collections::BTreeSet<_> = stores
            .iter()
            .map(|s| s["region"].as_str().unwrap())
            .collect();
        assert_eq!(regions.len(), 5);
        let page: serde_json::Value = client
            .get(format!("{}/api/v1/members?limit=200", demo.base))
            .bearer_auth(&demo.api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let members = page["members"].as_array().unwrap();
        assert_eq!(members.len(), 200);
        assert!(members
            .iter()
            .any(|m| m["tags"].as_array().unwrap().iter().any(|t| t == "辣")));
        assert!(members
            .iter()
            .all(|m| m["name_masked"].as_str().is_some_and(|n| n.contains('*'))));
        // Hand-made and generated members are scored: every lifecycle stage a
        // marketer would target has members, and each member has insights.
        for (expression, at_least) in [
            ("lifecycle in [dormant, churned]", 100),
            ("lifecycle = active and p_alive > 0.5", 100),
            ("visits_12m >= 1", 1000),
        ] {
            let counted: serde_json::Value = client
                .post(format!("{}/api/v1/segments/count", demo.base))
                .bearer_auth(&demo.api_key)
                .json(&serde_json::json!({"expression": expression}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(
                counted["count"].as_i64().unwrap() >= at_least,
                "{expression}: {counted}"
            );
        }
        let insights = client
            .get(format!(
                "{}/api/v1/members/{}/insights",
                demo.base,
                members[0]["id"].as_str().unwrap()
            ))
            .bearer_auth(&demo.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(insights.status(), 200);
        let login = client
            .get(format!("{}/console/login", demo.base))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 200);
        assert!(login.text().await.unwrap().contains("Regulars"));
        if run == 0 {
            first_password = demo.password.clone();
        } else {
            assert_ne!(
                demo.password, first_password,
                "the password is issued fresh"
            );
        }
        let mut child = demo.child;
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut conn_check = std::fs::metadata(dir.join("master.key")).is_ok();
    conn_check &= std::fs::metadata(dir.join("regulars.db")).is_ok();
    assert!(
        conn_check,
        "the demo keeps its database and key in its folder"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
