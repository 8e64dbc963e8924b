//! The real web client in headless Chromium, in an sfu room: a member goes off stage (broadcast
//! mode) and comes back (named presenter, then meeting mode again); after each change the
//! owner's page decodes its video again, framesDecoded rising, not only a notification told.

mod common;

use std::time::Duration;

use common::browser::{Browser, enter_private_network, reports_from, wait_for_reports};
use common::{TestClient, TestServer, with_admin};
use serde_json::{Value, json};

/// The member's video as the owner's page decodes it: (packetsReceived, framesDecoded).
fn member_video(owner_report: &Value) -> (u64, u64) {
    let v = &owner_report["room"]["peers"]["stage-m"]["video"];
    (
        v["packetsReceived"].as_u64().unwrap_or(0),
        v["framesDecoded"].as_u64().unwrap_or(0),
    )
}

/// Waits (up to `within`) until the owner's reports show the member's frames decoded rising
/// over three reports in a row.
async fn decoding_again(harness: &mut TestClient, within: Duration, after: &str) {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen: Vec<u64> = Vec::new();
    while tokio::time::Instant::now() < deadline {
        for r in reports_from(harness, "stage-o", Duration::from_millis(500)).await {
            seen.push(member_video(&r).1);
            let n = seen.len();
            if n >= 3 && seen[n - 3] < seen[n - 2] && seen[n - 2] < seen[n - 1] {
                return;
            }
        }
    }
    panic!("{after}: the owner's page does not decode the member's video again: {seen:?}");
}

/// Its video stands still at the owner's page (the last three fresh reports agree).
async fn standing_still(harness: &mut TestClient, after: &str) {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let counts: Vec<(u64, u64)> = reports_from(harness, "stage-o", Duration::from_secs(4))
        .await
        .iter()
        .map(member_video)
        .collect();
    let last = &counts[counts.len().saturating_sub(3)..];
    assert!(
        last.len() == 3 && last.iter().all(|c| c.1 == last[0].1),
        "{after}: the member's video kept flowing: {counts:?}"
    );
}

async fn admin_ok(admin: &mut TestClient, signal: &str, mut body: Value) {
    body["roomId"] = json!("stage-e2e");
    let r = admin.request(signal, body).await;
    assert_eq!(r["code"], "0000", "{signal}: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sfu_member_off_stage_and_back_is_decoded_again() {
    if !enter_private_network("an_sfu_member_off_stage_and_back_is_decoded_again") {
        return;
    }
    let server = TestServer::with(with_admin).await;
    let mut harness = server.client("harness").await;
    let mut admin = server.admin_client("boss").await;
    let base = format!("http://{}/", server.addr);
    let page = |id: &str| {
        Browser::open(&format!(
            "{base}?clientId={id}&name={id}&username=taoyao&password=taoyao&room=stage-e2e&architecture=sfu&report=harness"
        ))
    };
    let owner = page("stage-o");
    wait_for_reports(&mut harness, &[&owner], Duration::from_secs(30), |r| {
        r.contains_key("stage-o")
    })
    .await;
    let m = page("stage-m");
    let both = [&owner, &m];
    wait_for_reports(&mut harness, &both, Duration::from_secs(60), |r| {
        r.get("stage-o").is_some_and(|o| member_video(o).1 > 0)
    })
    .await;
    // Broadcast mode: only the owner presents; the member's page stops sending.
    admin_ok(&mut admin, "room::mode", json!({"mode": "broadcast"})).await;
    wait_for_reports(&mut harness, &both, Duration::from_secs(30), |r| {
        r.get("stage-m")
            .is_some_and(|l| l["stage"]["mayPublish"] == false)
    })
    .await;
    standing_still(&mut harness, "broadcast mode").await;

    // Named presenter: its page publishes again, the owner's page decodes it again.
    admin_ok(
        &mut admin,
        "room::presenter",
        json!({"clientId": "stage-m", "action": "add"}),
    )
    .await;
    decoding_again(&mut harness, Duration::from_secs(20), "made presenter").await;

    // Off stage again, then meeting mode: decoded again.
    admin_ok(
        &mut admin,
        "room::presenter",
        json!({"clientId": "stage-m", "action": "remove"}),
    )
    .await;
    standing_still(&mut harness, "removed from the stage").await;
    admin_ok(&mut admin, "room::mode", json!({"mode": "meeting"})).await;
    decoding_again(
        &mut harness,
        Duration::from_secs(20),
        "back to meeting mode",
    )
    .await;
    owner.close().await;
    m.close().await;
    server.stop().await;
}
