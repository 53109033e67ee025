//! The application calls behind the console's member pages: store scope on
//! opening a member, name search, a member's orders, the access log, and
//! adjustments waiting for HQ approval.

use crate::helpers::TestApp;
use crate::on_both_backends;
use regulars_core::access::{Principal, Role};
use regulars_core::ledger::EntryKind;
use regulars_server::app::members;
use regulars_server::app::points::{self, Adjust, PointsQuery};
use regulars_server::app::AppError;
use serde_json::json;

on_both_backends!(
    store_staff_open_only_their_stores_members,
    name_search_orders_and_access_log,
    adjustments_above_the_limit_wait_for_another_admin,
);

fn who(actor: &str, role: Role, store: Option<&str>) -> Principal {
    Principal {
        actor: actor.into(),
        role,
        store: store.map(str::to_string),
    }
}

async fn two_members(app: &TestApp) -> (String, String) {
    app.create_store("CD01", "成都").await;
    app.create_store("SH03", "上海").await;
    let ours = app
        .create_member(json!({"phone": "13800138000", "name": "王小明", "home_store": "CD01"}))
        .await;
    let theirs = app
        .create_member(json!({"phone": "13700137002", "name": "张伟", "home_store": "SH03"}))
        .await;
    assert_eq!(ours.status, 201, "{}", ours.body);
    assert_eq!(theirs.status, 201, "{}", theirs.body);
    (
        ours.body["id"].as_str().unwrap().to_string(),
        theirs.body["id"].as_str().unwrap().to_string(),
    )
}

async fn store_staff_open_only_their_stores_members(app: TestApp) {
    let (ours, theirs) = two_members(&app).await;
    let manager = who("user:cd01", Role::StoreManager, Some("CD01"));
    let own = members::open_member(&app.regulars, &manager, &ours, false)
        .await
        .unwrap();
    assert_eq!(own.phone_masked, "138****8000");
    assert!(matches!(
        members::open_member(&app.regulars, &manager, &theirs, false).await,
        Err(AppError::Forbidden(_))
    ));
    assert!(matches!(
        members::member_orders(&app.regulars, &manager, &theirs, 10).await,
        Err(AppError::Forbidden(_))
    ));
    // A store manager may not reveal; HQ opens any member.
    assert!(matches!(
        members::open_member(&app.regulars, &manager, &ours, true).await,
        Err(AppError::Forbidden(_))
    ));
    let analyst = who("user:ana", Role::Analyst, None);
    assert!(
        members::open_member(&app.regulars, &analyst, &theirs, false)
            .await
            .is_ok()
    );
}

async fn name_search_orders_and_access_log(app: TestApp) {
    let (ours, theirs) = two_members(&app).await;
    let admin = who("user:hq_lin", Role::HqAdmin, None);
    let found = members::search_by_name(&app.regulars, &admin, "小明", 50)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, ours);
    let manager = who("user:sh", Role::StoreManager, Some("SH03"));
    assert!(members::search_by_name(&app.regulars, &manager, "小明", 50)
        .await
        .unwrap()
        .is_empty());
    let zhang = members::search_by_name(&app.regulars, &manager, "张", 50)
        .await
        .unwrap();
    assert_eq!(zhang.len(), 1);
    assert_eq!(zhang[0].id, theirs);

    let placed = app
        .post(
            "/api/v1/orders",
            json!({"store_code": "CD01", "pos_order_id": "P-1", "member_id": ours,
                "occurred_at": "2026-03-04T12:00:00+08:00", "channel": "dine_in",
                "items": [{"sku": "D001", "name": "毛肚", "category": "荤菜", "quantity": 1, "unit_price_fen": 9_800}],
                "paid_fen": 9_800}),
        )
        .await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    let orders = members::member_orders(&app.regulars, &admin, &ours, 10)
        .await
        .unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].paid_fen, 9_800);
    assert_eq!(orders[0].pos_order_id, "P-1");
    let points = points::points_of(&app.regulars, &admin, &ours, PointsQuery::default())
        .await
        .unwrap();
    assert!(
        points.entries[0].expires_at.is_some(),
        "earned points show when they expire"
    );

    members::open_member(&app.regulars, &admin, &ours, true)
        .await
        .unwrap();
    let log = members::access_log(&app.regulars, &admin, &ours)
        .await
        .unwrap();
    assert!(log
        .iter()
        .any(|a| a.action == "member.reveal" && a.actor == "user:hq_lin"));
    let staff = who("user:s", Role::Staff, Some("CD01"));
    assert!(matches!(
        members::access_log(&app.regulars, &staff, &ours).await,
        Err(AppError::Forbidden(_))
    ));
    let agent = who("user:agent", Role::ServiceAgent, None);
    assert!(members::access_log(&app.regulars, &agent, &ours)
        .await
        .is_ok());
}

async fn adjustments_above_the_limit_wait_for_another_admin(app: TestApp) {
    let (ours, _) = two_members(&app).await;
    let manager = who("user:cd01", Role::StoreManager, Some("CD01"));
    let admin = who("user:hq_lin", Role::HqAdmin, None);
    let other_admin = who("user:hq_zhao", Role::HqAdmin, None);
    let balance = |app: &TestApp| {
        let regulars = app.regulars.clone();
        let admin = admin.clone();
        let id = ours.clone();
        async move {
            points::points_of(&regulars, &admin, &id, PointsQuery::default())
                .await
                .unwrap()
                .balance
        }
    };
    let input = |points: i64| Adjust {
        points,
        reason: "生日宴补偿".into(),
        approver: None,
        kind: Some(EntryKind::Compensation),
    };
    // Bad requests are refused like adjustments.
    assert!(matches!(
        points::request_adjustment(&app.regulars, &manager, &ours, input(0)).await,
        Err(AppError::Invalid(_))
    ));
    assert!(matches!(
        points::request_adjustment(&app.regulars, &manager, &ours, input(-600)).await,
        Err(AppError::Invalid(_))
    ));
    let id = points::request_adjustment(&app.regulars, &manager, &ours, input(600))
        .await
        .unwrap();
    assert_eq!(balance(&app).await, 0, "nothing before approval");
    // Only HQ decides, and not on its own request.
    assert!(matches!(
        points::adjustment_requests(&app.regulars, &manager).await,
        Err(AppError::Forbidden(_))
    ));
    assert!(matches!(
        points::decide_adjustment(&app.regulars, &manager, &id, true).await,
        Err(AppError::Forbidden(_))
    ));
    let own = points::request_adjustment(&app.regulars, &admin, &ours, input(700))
        .await
        .unwrap();
    assert!(matches!(
        points::decide_adjustment(&app.regulars, &admin, &own, true).await,
        Err(AppError::Unprocessable {
            code: "own_request",
            ..
        })
    ));

    points::decide_adjustment(&app.regulars, &admin, &id, true)
        .await
        .unwrap();
    assert_eq!(balance(&app).await, 600);
    assert!(matches!(
        points::decide_adjustment(&app.regulars, &other_admin, &id, true).await,
        Err(AppError::Conflict {
            code: "already_decided",
            ..
        })
    ));
    assert_eq!(balance(&app).await, 600, "applied once");
    points::decide_adjustment(&app.regulars, &other_admin, &own, false)
        .await
        .unwrap();
    assert_eq!(balance(&app).await, 600, "a rejection changes nothing");

    let list = points::adjustment_requests(&app.regulars, &admin)
        .await
        .unwrap();
    let approved = list.iter().find(|r| r.id == id).unwrap();
    assert_eq!(approved.status, "approved");
    assert_eq!(approved.decided_by.as_deref(), Some("user:hq_lin"));
    assert_eq!(approved.requested_by, "user:cd01");
    assert_eq!(
        list.iter().find(|r| r.id == own).unwrap().status,
        "rejected"
    );
    let history = points::points_of(&app.regulars, &admin, &ours, PointsQuery::default())
        .await
        .unwrap();
    assert_eq!(history.entries[0].points, 600);
    assert_eq!(history.entries[0].reason, "生日宴补偿");
}
