//! The admin dashboard (web/admin.html) in headless Chromium, driven like a person would over
//! the DevTools protocol: sign in with an admin token, see a room with two members, click
//! "Expel" on one, and the server removes that member.

mod common;

use std::time::Duration;

use common::browser::{Browser, enter_private_network};
use common::{TestServer, code, token, with_tokens};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_lists_a_room_and_expels_a_member() {
    if !enter_private_network("the_dashboard_lists_a_room_and_expels_a_member") {
        return;
    }
    let server = TestServer::with(with_tokens).await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    for c in [&mut alice, &mut bob] {
        let r = c.request("room::enter", json!({"roomId": "standup"})).await;
        assert_eq!(code(&r), "0000", "{r}");
    }
    let browser = Browser::open(&format!("http://{}/admin.html", server.addr));
    let page = browser.page().await;
    page.fill("Admin token", &token("ops", true)).await;
    page.click("Sign in").await;
    let members = "document.querySelectorAll('tr[data-room=\"standup\"][data-member]').length";
    page.wait_for(&format!("{members} === 2"), Duration::from_secs(20))
        .await;
    page.click("Expel bob").await;
    let expelled = bob.expect("room::expel").await;
    assert_eq!(expelled["body"]["roomId"], "standup");
    page.wait_for(
        &format!(
            "{members} === 1 && !!document.querySelector('tr[data-room=\"standup\"][data-member=\"alice\"]')"
        ),
        Duration::from_secs(20),
    )
    .await;
    let r = alice
        .request("room::client::list", json!({"roomId": "standup"}))
        .await;
    let ids: Vec<&str> = r["body"]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["clientId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alice"]);
    browser.close().await;
    server.stop().await;
}
