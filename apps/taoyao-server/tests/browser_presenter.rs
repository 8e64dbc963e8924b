//! The real web client in headless Chromium: a mesh room in broadcast mode. The listener's page
//! sends nothing; named presenter (by an admin client), it starts sending on its running peer
//! connection and the owner's page decodes its camera; removed again, it stops sending.

mod common;

use std::time::Duration;

use common::browser::{Browser, enter_private_network, reports_from, wait_for_reports};
use common::{TestServer, with_admin};
use serde_json::{Value, json};

fn listener_video(owner_report: &Value) -> (u64, u64) {
    let v = &owner_report["room"]["peers"]["pres-l"]["video"];
    (
        v["packetsReceived"].as_u64().unwrap_or(0),
        v["framesDecoded"].as_u64().unwrap_or(0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mesh_listener_made_presenter_starts_sending_and_stops_when_removed() {
    if !enter_private_network(
        "a_mesh_listener_made_presenter_starts_sending_and_stops_when_removed",
    ) {
        return;
    }
    let server = TestServer::with(with_admin).await;
    let mut harness = server.client("harness").await;
    let mut admin = server.admin_client("boss").await;
    let base = format!("http://{}/", server.addr);
    let page = |id: &str| {
        Browser::open(&format!(
            "{base}?clientId={id}&name={id}&username=taoyao&password=taoyao&room=pres-e2e&architecture=mesh&mode=broadcast&report=harness"
        ))
    };
    // The owner makes the room (broadcast: the owner presents) before the listener arrives.
    let owner = page("pres-o");
    wait_for_reports(&mut harness, &[&owner], Duration::from_secs(30), |r| {
        r.get("pres-o")
            .is_some_and(|o| o["stage"]["mode"] == "broadcast")
    })
    .await;
    let listener = page("pres-l");
    let both = [&owner, &listener];
    let reports = wait_for_reports(&mut harness, &both, Duration::from_secs(60), |r| {
        r.get("pres-l").is_some_and(|l| {
            let o = &l["room"]["peers"]["pres-o"];
            o["connectionState"] == "connected"
                && o["video"]["framesDecoded"].as_u64().unwrap_or(0) > 0
        }) && r
            .get("pres-o")
            .is_some_and(|o| o["room"]["peers"]["pres-l"]["connectionState"] == "connected")
    })
    .await;
    assert_eq!(
        reports["pres-l"]["local"],
        json!([]),
        "a listener sends nothing"
    );
    assert_eq!(reports["pres-l"]["stage"]["mayPublish"], false);
    assert_eq!(
        listener_video(&reports["pres-o"]).0,
        0,
        "{}",
        reports["pres-o"]
    );

    // Named presenter: the listener's page sends on the connection it has.
    let r = admin
        .request(
            "room::presenter",
            json!({"roomId": "pres-e2e", "clientId": "pres-l", "action": "add"}),
        )
        .await;
    assert_eq!(r["code"], "0000", "{r}");
    let reports = wait_for_reports(&mut harness, &both, Duration::from_secs(30), |r| {
        r.get("pres-o").is_some_and(|o| {
            listener_video(o).1 > 0
                && o["room"]["peers"]["pres-l"]["audio"]["packetsReceived"]
                    .as_u64()
                    .unwrap_or(0)
                    > 0
        }) && r
            .get("pres-l")
            .is_some_and(|l| l["local"] == json!(["audio", "video"]))
    })
    .await;
    eprintln!("presenting: {}", reports["pres-o"]["room"]["peers"]);
    assert_eq!(reports["pres-l"]["stage"]["mayPublish"], true);

    // Removed: it stops sending (the owner's count of its packets stops growing).
    let r = admin
        .request(
            "room::presenter",
            json!({"roomId": "pres-e2e", "clientId": "pres-l", "action": "remove"}),
        )
        .await;
    assert_eq!(r["code"], "0000", "{r}");
    wait_for_reports(&mut harness, &both, Duration::from_secs(30), |r| {
        r.get("pres-l").is_some_and(|l| l["local"] == json!([]))
    })
    .await;
    // Give the renegotiation a moment, then read the owner's reports for four seconds: the
    // last ones (fresh, once the queue is drained) show the count standing still.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let counts: Vec<u64> = reports_from(&mut harness, "pres-o", Duration::from_secs(4))
        .await
        .iter()
        .map(|r| listener_video(r).0)
        .collect();
    let last = &counts[counts.len().saturating_sub(3)..];
    assert!(
        last.len() == 3 && last[0] > 0 && last.iter().all(|c| *c == last[0]),
        "the listener's video kept flowing after it was removed: {counts:?}"
    );
    owner.close().await;
    listener.close().await;
    server.stop().await;
}
