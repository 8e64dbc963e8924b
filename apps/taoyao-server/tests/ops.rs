//! Running it in production: `/metrics` (parsed as Prometheus text, values moving with real
//! clients and real webrtc-rs media), the admin REST API (every route's door, every action,
//! bad input, the OpenAPI document), `/ready`, and webhooks to a real HTTP receiver (order,
//! signatures, a down or slow receiver holding up no signal, https receivers checked against
//! the trusted roots, the last events delivered at shutdown).

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{TestServer, code, eventually, media, member_in, received_from, token, with_tokens};
use serde_json::{Value, json};
use sha2::Digest;
use tokio::sync::mpsc;

// ---------- helpers ----------

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// `/metrics`, parsed.
async fn scrape(server: &TestServer) -> prometheus_parse::Scrape {
    scrape_at(server.addr).await
}

async fn scrape_at(addr: std::net::SocketAddr) -> prometheus_parse::Scrape {
    let res = http()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|e| panic!("/metrics does not parse: {e}\n{text}"))
}

/// The sum of every sample named `name` whose labels include `labels`.
fn value(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// Polls `/metrics` until `cond` holds.
async fn metrics_until(
    server: &TestServer,
    what: &str,
    cond: impl Fn(&prometheus_parse::Scrape) -> bool,
) -> prometheus_parse::Scrape {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = scrape(server).await;
        if cond(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An admin API call: (HTTP status, JSON body).
async fn api(
    server: &TestServer,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("http://{}/api/v1{path}", server.addr);
    let mut req = http().request(method.to_uppercase().parse().unwrap(), url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text}));
    (status, v)
}

async fn raw_api(
    server: &TestServer,
    method: &str,
    path: &str,
    body: Vec<u8>,
    content_type: &str,
) -> (u16, Value) {
    let url = format!("http://{}/api/v1{path}", server.addr);
    let res = http()
        .request(method.parse().unwrap(), url)
        .bearer_auth(token("ops", true))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let v = res.json().await.unwrap_or(Value::Null);
    (status, v)
}

fn fill(path: &str) -> String {
    path.trim_start_matches("/api/v1")
        .replace("{room}", "no-such-room")
        .replace("{client}", "nobody")
        .replace("{file}", "nobody-20260101T000000000Z.webm")
}

// ---------- metrics ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_as_clients_register_rooms_open_and_media_flows() {
    let (_dir, server) = TestServer::recording_with(with_tokens).await;
    let s = scrape(&server).await;
    assert_eq!(value(&s, "taoyao_clients_online", &[]), 0.0);
    assert_eq!(value(&s, "taoyao_rooms", &[]), 0.0);
    assert!(value(&s, "process_resident_memory_bytes", &[]) > 1e6);
    // The process may have used less than one clock tick (10 ms) yet: it is counted later.
    assert!(
        s.samples
            .iter()
            .any(|x| x.metric == "process_cpu_seconds_total")
    );

    let a = member_in(&server, "a", "metrics-sfu", "sfu").await;
    let b = member_in(&server, "b", "metrics-sfu", "sfu").await;
    let s = scrape(&server).await;
    assert_eq!(value(&s, "taoyao_clients_online", &[]), 2.0);
    assert_eq!(value(&s, "taoyao_connections_open", &[]), 2.0);
    let sfu_meeting = [("architecture", "sfu"), ("mode", "meeting")];
    assert_eq!(value(&s, "taoyao_rooms", &sfu_meeting), 1.0);
    assert_eq!(value(&s, "taoyao_room_members", &sfu_meeting), 2.0);
    let entered = [("signal", "room::enter"), ("code", "0000")];
    assert_eq!(value(&s, "taoyao_signals_handled_total", &entered), 2.0);
    let registered = [("signal", "client::register"), ("code", "0000")];
    assert_eq!(value(&s, "taoyao_signals_handled_total", &registered), 2.0);
    assert_eq!(
        value(&s, "taoyao_room_events_total", &[("event", "room_started")]),
        1.0
    );

    a.publish(media(), true, true).await.expect("a publishes");
    b.publish(media(), true, true).await.expect("b publishes");
    let sfu = [("architecture", "sfu")];
    let s = metrics_until(&server, "4 streams, 4 subscriptions", |s| {
        value(s, "taoyao_published_streams", &sfu) == 4.0
            && value(s, "taoyao_subscriptions", &sfu) == 4.0
    })
    .await;
    // Each member: one publish and one subscribe connection on the server.
    assert_eq!(value(&s, "taoyao_peer_connections", &sfu), 4.0);
    // Packets flow in and out, and keep flowing.
    let s = metrics_until(&server, "packets forwarded", |s| {
        value(s, "taoyao_stream_packets_forwarded", &sfu) > 100.0
    })
    .await;
    let received = value(&s, "taoyao_stream_packets_received", &sfu);
    assert!(received > 100.0, "{received}");
    metrics_until(&server, "more packets", |s| {
        value(s, "taoyao_stream_packets_received", &sfu) > received
    })
    .await;
    assert!(value(&s, "taoyao_media_tasks", &[]) > 0.0);
    assert!(value(&s, "process_cpu_seconds_total", &[]) > 0.0);
    // The media engine's running totals: copies and bytes to subscribers, keyframe requests
    // for the joiners; the mixer's counters are there (no mcu room yet: 0).
    let forwarded = value(&s, "taoyao_media_forwarded_packets_total", &[]);
    assert!(forwarded > 100.0, "{forwarded}");
    assert!(value(&s, "taoyao_media_forwarded_bytes_total", &[]) > 100.0 * forwarded);
    assert!(value(&s, "taoyao_media_keyframe_requests_total", &[]) >= 1.0);
    for name in [
        "taoyao_mixer_ticks_late_total",
        "taoyao_mixer_ticks_skipped_total",
    ] {
        assert!(
            s.samples.iter().any(|x| x.metric == name),
            "{name} is exported"
        );
    }
    metrics_until(&server, "more packets forwarded", |s| {
        value(s, "taoyao_media_forwarded_packets_total", &[]) > forwarded
    })
    .await;
    // The failed signal is counted under its code.
    let r = a
        .request("room::status", json!({"roomId": "no-such-room"}))
        .await
        .unwrap();
    assert_eq!(code(&r), "3404");

    // A recording: active while it runs, then finished with its bytes counted.
    let r = a
        .request(
            "record::start",
            json!({"roomId": "metrics-sfu", "clientId": "a"}),
        )
        .await
        .unwrap();
    assert_eq!(code(&r), "0000", "{r}");
    let s = scrape(&server).await;
    assert_eq!(value(&s, "taoyao_recordings_active", &[]), 1.0);
    assert_eq!(
        value(
            &s,
            "taoyao_signals_handled_total",
            &[("signal", "room::status"), ("code", "3404")]
        ),
        1.0
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = a
        .request(
            "record::stop",
            json!({"roomId": "metrics-sfu", "clientId": "a"}),
        )
        .await
        .unwrap();
    assert_eq!(code(&r), "0000", "{r}");
    let s = metrics_until(&server, "a finished recording", |s| {
        value(s, "taoyao_recordings_finished_total", &[("outcome", "ok")]) == 1.0
    })
    .await;
    assert_eq!(value(&s, "taoyao_recordings_active", &[]), 0.0);
    assert!(value(&s, "taoyao_recording_written_bytes_total", &[]) > 1000.0);

    b.vanish().await;
    // The room hears of the closed connection just after the registry does.
    let s = metrics_until(&server, "b gone", |s| {
        value(s, "taoyao_clients_online", &[]) == 1.0
            && value(s, "taoyao_room_members", &sfu_meeting) == 1.0
    })
    .await;
    assert_eq!(
        value(
            &s,
            "taoyao_room_events_total",
            &[("event", "participant_left")]
        ),
        1.0
    );
    server.stop().await;
}

/// Loss on the way in and retransmission requests on the way out are counted: a publisher whose
/// audio misses every 10th packet, a subscriber that drops 10% of what it receives and NACKs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_loss_and_subscriber_nacks_are_counted() {
    use taoyao_bench::member::Member;
    use taoyao_bench::peer::PeerOptions;
    let server = TestServer::start().await;
    let join = |id: &'static str, opts: PeerOptions| {
        let url = server.url();
        async move {
            let m = Member::connect(
                &url,
                json!({"clientId": id, "username": "taoyao", "password": "taoyao"}),
                opts,
            )
            .await
            .expect("member connects");
            m.enter_with(json!({"roomId": "lossy", "architecture": "sfu", "subscribe": "all"}))
                .await
                .expect("enters");
            m
        }
    };
    let s = scrape(&server).await;
    assert_eq!(
        value(&s, "taoyao_media_publisher_packets_lost_total", &[]),
        0.0
    );
    let publisher = join(
        "pub",
        PeerOptions {
            audio_gap_every: Some(10),
            ..PeerOptions::default()
        },
    )
    .await;
    let _lossy = join(
        "sub",
        PeerOptions {
            drop_incoming_pct: 10,
            ..PeerOptions::default()
        },
    )
    .await;
    publisher
        .publish(media(), true, true)
        .await
        .expect("publishes");
    let s = metrics_until(&server, "loss and NACKs counted", |s| {
        value(s, "taoyao_media_publisher_packets_lost_total", &[]) >= 5.0
            && value(s, "taoyao_media_nacks_received_total", &[]) >= 1.0
    })
    .await;
    // One in ten audio packets (50 a second) never arrives; video arrives whole.
    let lost = value(&s, "taoyao_media_publisher_packets_lost_total", &[]);
    let forwarded = value(&s, "taoyao_media_forwarded_packets_total", &[]);
    assert!(lost < forwarded / 5.0, "lost {lost} of about {forwarded}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_counted_and_metrics_can_have_their_own_listener() {
    let server = TestServer::with(|c| {
        c.signal.rate_per_sec = 1;
        c.signal.rate_burst = 1;
        c.signal.max_connections = 1;
        c.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let metrics_addr = server
        .running
        .as_ref()
        .unwrap()
        .metrics_addr
        .expect("a metrics listener");
    // Not on the main listener any more.
    let (status, _, _) = common::http_get(server.addr, "/metrics", "").await;
    assert_ne!(status, 200);
    let mut c = server.client("spammer").await;
    for _ in 0..5 {
        c.send("client::heartbeat", json!({})).await;
    }
    // The one connection allowed is taken: another upgrade is refused.
    let refused = tokio_tungstenite::connect_async(server.url()).await;
    assert!(refused.is_err(), "a second connection is refused");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = scrape_at(metrics_addr).await;
        if value(&s, "taoyao_signals_rate_limited_total", &[]) >= 1.0
            && value(&s, "taoyao_connections_refused_total", &[]) == 1.0
        {
            break;
        }
        assert!(Instant::now() < deadline, "refusals not counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_tls_handshakes_are_counted() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_dir, certs, server) = TestServer::tls_with(|c| {
        c.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let metrics_addr = server.running.as_ref().unwrap().metrics_addr.unwrap();
    assert_eq!(
        value(
            &scrape_at(metrics_addr).await,
            "taoyao_tls_handshake_failures_total",
            &[]
        ),
        0.0
    );
    // Plain HTTP to the TLS port: the handshake fails, twice.
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while value(
        &scrape_at(metrics_addr).await,
        "taoyao_tls_handshake_failures_total",
        &[],
    ) != 2.0
    {
        assert!(Instant::now() < deadline, "handshake failures not counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A real TLS client is not a failure.
    let mut c = common::TestClient::connect_tls(&server, &certs.ca_cert).await;
    assert_eq!(code(&c.register("secure").await), "0000");
    assert_eq!(
        value(
            &scrape_at(metrics_addr).await,
            "taoyao_tls_handshake_failures_total",
            &[]
        ),
        2.0
    );
    server.stop().await;
}

// ---------- admin API ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_route_needs_a_token_with_the_admin_grant() {
    let server = TestServer::with(with_tokens).await;
    let routes = taoyao_server::admin::routes();
    assert!(routes.len() >= 15, "{routes:?}");
    let user = token("user", false);
    let admin = token("ops", true);
    for (method, path) in &routes {
        let p = fill(path);
        let body = (*method != "get").then(|| json!({}));
        let (s, v) = api(&server, method, &p, None, body.clone()).await;
        assert_eq!(
            (s, code(&v)),
            (401, "3401"),
            "{method} {p} without a token: {v}"
        );
        let (s, v) = api(&server, method, &p, Some("not.a.token"), body.clone()).await;
        assert_eq!(
            (s, code(&v)),
            (401, "1003"),
            "{method} {p} with a bad token: {v}"
        );
        let (s, v) = api(&server, method, &p, Some(&user), body.clone()).await;
        assert_eq!((s, code(&v)), (403, "3403"), "{method} {p} non-admin: {v}");
        // With the admin grant the door opens (what is behind it is tested below).
        let (s, v) = api(&server, method, &p, Some(&admin), body).await;
        assert!(
            s != 401 && s != 403 && s < 500,
            "{method} {p} as admin: {s} {v}"
        );
    }
    let s = scrape(&server).await;
    let n = routes.len() as f64;
    assert_eq!(
        value(&s, "taoyao_admin_requests_total", &[("outcome", "refused")]),
        3.0 * n
    );
    // A password login is no way in, not even as a Basic header or a bearer "user:pass".
    let url = format!("http://{}/api/v1/rooms", server.addr);
    let res = http()
        .get(&url)
        .basic_auth("taoyao", Some("taoyao"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let (s, _) = api(&server, "get", "/rooms", Some("taoyao:taoyao"), None).await;
    assert_eq!(s, 401);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_secret_the_admin_api_stays_closed() {
    // Open mode (no users, no token secret): anyone may register, nobody may administer.
    let server = TestServer::with(|c| c.auth.users.clear()).await;
    let forged = token("ops", true);
    let (s, v) = api(&server, "get", "/rooms", Some(&forged), None).await;
    assert_eq!((s, code(&v)), (401, "3401"), "{v}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_actions_work_on_a_live_sfu_room() {
    let (_dir, server) = TestServer::recording_with(with_tokens).await;
    let t = token("ops", true);
    let t = Some(t.as_str());
    let (s, room) = api(
        &server,
        "post",
        "/rooms",
        t,
        Some(json!({"name": "ops-room", "architecture": "sfu"})),
    )
    .await;
    assert_eq!(s, 200, "{room}");
    let id = room["roomId"].as_str().unwrap().to_owned();
    assert_eq!(room["owner"], "ops");
    let (s, list) = api(&server, "get", "/rooms", t, None).await;
    assert_eq!(s, 200);
    assert!(
        list["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["roomId"] == id)
    );

    let a = member_in(&server, "a", &id, "sfu").await;
    let b = member_in(&server, "b", &id, "sfu").await;
    a.publish(media(), true, true).await.expect("a publishes");
    eventually(Duration::from_secs(20), "b hears a", || {
        received_from(&b, "a", false) > 10
    })
    .await;
    let (s, st) = api(&server, "get", &format!("/rooms/{id}"), t, None).await;
    assert_eq!(s, 200);
    assert_eq!(st["members"].as_array().unwrap().len(), 2, "{st}");
    let (s, members) = api(&server, "get", &format!("/rooms/{id}/members"), t, None).await;
    assert_eq!(s, 200);
    let ma = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["clientId"] == "a")
        .unwrap()
        .clone();
    assert_eq!(ma["streams"].as_array().unwrap().len(), 2, "{members}");
    // Each stream's received bytes grow (the dashboard's bitrate is their change).
    let bytes = |st: &Value| -> u64 {
        st["streams"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["clientId"] == "a")
            .map(|s| s["bytesReceived"].as_u64().expect("bytesReceived"))
            .sum()
    };
    let before = bytes(&st);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, st2) = api(&server, "get", &format!("/rooms/{id}"), t, None).await;
    assert!(bytes(&st2) > before, "{st2}");

    // Mute a's audio on the server: b stops receiving it, and both are told.
    let (s, m) = api(
        &server,
        "post",
        &format!("/rooms/{id}/members/a/mute"),
        t,
        Some(json!({"kind": "audio"})),
    )
    .await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(
        (m["audio"].clone(), m["video"].clone()),
        (json!(true), json!(false))
    );
    let told = a
        .note(Duration::from_secs(5), |n| {
            n["header"]["signal"] == "room::mute" && n["body"]["audio"] == true
        })
        .await;
    assert!(told.is_some(), "a is told it is muted");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = received_from(&b, "a", false);
    let video_before = received_from(&b, "a", true);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        received_from(&b, "a", false),
        before,
        "muted audio still flows"
    );
    assert!(
        received_from(&b, "a", true) > video_before,
        "video stops too"
    );
    let (s, _) = api(
        &server,
        "post",
        &format!("/rooms/{id}/members/a/mute"),
        t,
        Some(json!({"kind": "audio", "muted": false})),
    )
    .await;
    assert_eq!(s, 200);
    eventually(Duration::from_secs(10), "a's audio back", || {
        received_from(&b, "a", false) > before + 10
    })
    .await;

    // A data message reaches every member, from the admin.
    let (s, r) = api(
        &server,
        "post",
        &format!("/rooms/{id}/messages"),
        t,
        Some(json!({"text": "maintenance at 3"})),
    )
    .await;
    assert_eq!((s, r["delivered"].clone()), (200, json!(2)), "{r}");
    let note = b
        .note(Duration::from_secs(5), |n| {
            n["header"]["signal"] == "room::broadcast"
        })
        .await
        .expect("b gets the message");
    assert_eq!(note["body"]["text"], "maintenance at 3");
    assert_eq!(note["body"]["from"], "ops");

    let (s, r) = api(
        &server,
        "put",
        &format!("/rooms/{id}/mode"),
        t,
        Some(json!({"mode": "broadcast"})),
    )
    .await;
    assert_eq!((s, r["mode"].clone()), (200, json!("broadcast")), "{r}");
    let (s, _) = api(
        &server,
        "put",
        &format!("/rooms/{id}/mode"),
        t,
        Some(json!({"mode": "meeting"})),
    )
    .await;
    assert_eq!(s, 200);

    // Recording: start, stop, list, delete.
    let (s, r) = api(
        &server,
        "post",
        &format!("/rooms/{id}/recording/start"),
        t,
        Some(json!({"clientId": "a"})),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (s, r) = api(
        &server,
        "post",
        &format!("/rooms/{id}/recording/stop"),
        t,
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let (s, files) = api(&server, "get", &format!("/rooms/{id}/recordings"), t, None).await;
    assert_eq!(s, 200);
    let file = files["files"][0]["file"]
        .as_str()
        .expect("a file")
        .to_owned();
    let name = file.rsplit('/').next().unwrap().to_owned();
    let (s, r) = api(
        &server,
        "delete",
        &format!("/rooms/{id}/recordings/{name}"),
        t,
        None,
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let (_, files) = api(&server, "get", &format!("/rooms/{id}/recordings"), t, None).await;
    assert!(files["files"].as_array().unwrap().is_empty(), "{files}");
    let (s, r) = api(
        &server,
        "delete",
        &format!("/rooms/{id}/recordings/{name}"),
        t,
        None,
    )
    .await;
    assert_eq!((s, code(&r)), (404, "3404"));

    // A live with a as anchor, put on air and taken off by the admin.
    let (s, r) = api(
        &server,
        "post",
        &format!("/rooms/{id}/live/start"),
        t,
        Some(json!({"clientId": "a"})),
    )
    .await;
    assert_eq!((s, r["anchor"].clone()), (200, json!("a")), "{r}");
    let (_, st) = api(&server, "get", &format!("/rooms/{id}"), t, None).await;
    assert_eq!(st["live"]["anchor"], "a");
    let (s, r) = api(&server, "post", &format!("/rooms/{id}/live/stop"), t, None).await;
    assert_eq!(s, 200, "{r}");
    assert!(
        b.note(Duration::from_secs(5), |n| n["header"]["signal"]
            == "live::stop")
            .await
            .is_some()
    );

    // Expel b, then close the room.
    let (s, r) = api(
        &server,
        "delete",
        &format!("/rooms/{id}/members/b"),
        t,
        None,
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert!(
        b.note(Duration::from_secs(5), |n| n["header"]["signal"]
            == "room::expel")
            .await
            .is_some()
    );
    let (_, st) = api(&server, "get", &format!("/rooms/{id}"), t, None).await;
    assert_eq!(st["members"].as_array().unwrap().len(), 1);
    let (s, r) = api(&server, "delete", &format!("/rooms/{id}"), t, None).await;
    assert_eq!(s, 200, "{r}");
    assert!(
        a.note(Duration::from_secs(5), |n| n["header"]["signal"]
            == "room::close")
            .await
            .is_some()
    );
    let (s, r) = api(&server, "get", &format!("/rooms/{id}"), t, None).await;
    assert_eq!((s, code(&r)), (404, "3404"));
    server.stop().await;
}

/// (method, path, JSON body, expected status, expected code, what it tries)
type BadCase = (
    &'static str,
    String,
    Option<Value>,
    u16,
    &'static str,
    &'static str,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_code_never_a_500() {
    let server = TestServer::with(with_tokens).await;
    let t = token("ops", true);
    let t = Some(t.as_str());
    let (s, room) = api(
        &server,
        "post",
        "/rooms",
        t,
        Some(json!({"name": "bad", "architecture": "mesh"})),
    )
    .await;
    assert_eq!(s, 200);
    let id = room["roomId"].as_str().unwrap().to_owned();
    let r = |p: &str| format!("/rooms/{id}{p}");
    let cases: Vec<BadCase> = vec![
        (
            "get",
            "/rooms/nope".into(),
            None,
            404,
            "3404",
            "unknown room",
        ),
        (
            "delete",
            "/rooms/nope/members/x".into(),
            None,
            404,
            "3404",
            "unknown room",
        ),
        (
            "post",
            "/rooms".into(),
            Some(json!({"name": 5})),
            400,
            "3400",
            "wrong type",
        ),
        (
            "post",
            "/rooms".into(),
            Some(json!({"name": "x", "colour": 1})),
            400,
            "3400",
            "unknown field",
        ),
        (
            "post",
            "/rooms".into(),
            Some(json!({"name": "", "mode": "x"})),
            400,
            "3400",
            "empty name",
        ),
        (
            "put",
            r("/mode"),
            Some(json!({"mode": "disco"})),
            400,
            "3400",
            "unknown mode",
        ),
        (
            "put",
            r("/mode"),
            Some(json!({"mode": ["meeting"]})),
            400,
            "3400",
            "mode of the wrong type",
        ),
        (
            "post",
            r("/members/x/mute"),
            Some(json!({"muted": "yes"})),
            400,
            "3400",
            "muted not a bool",
        ),
        (
            "post",
            r("/members/x/mute"),
            Some(json!({})),
            404,
            "3404",
            "not a member",
        ),
        (
            "post",
            r("/messages"),
            Some(json!([1, 2])),
            400,
            "3400",
            "a message is an object",
        ),
        (
            "delete",
            r("/recordings/..%2F..%2Fetc%2Fpasswd"),
            None,
            400,
            "3400",
            "a path out of the directory",
        ),
        (
            "post",
            r("/live/start"),
            Some(json!({"clientId": "x"})),
            404,
            "3404",
            "anchor not a member",
        ),
        (
            "get",
            "/no/such/route".into(),
            None,
            404,
            "3404",
            "unknown route",
        ),
    ];
    for (method, path, body, status, want, what) in cases {
        let (s, v) = api(&server, method, &path, t, body).await;
        assert_eq!(
            (s, code(&v)),
            (status, want),
            "{what}: {method} {path}: {v}"
        );
    }
    let big = format!("{{\"name\":\"{}\"}}", "x".repeat(100_000));
    for (body, content_type, status, want, what) in [
        (
            b"{\"name\":".to_vec(),
            "application/json",
            400,
            "1002",
            "malformed",
        ),
        (
            b"{\"name\":\"x\"}".to_vec(),
            "text/plain",
            415,
            "3400",
            "not JSON",
        ),
        (
            big.into_bytes(),
            "application/json",
            413,
            "3400",
            "oversize",
        ),
    ] {
        let (s, v) = raw_api(&server, "POST", "/rooms", body, content_type).await;
        assert_eq!((s, code(&v)), (status, want), "{what}: {v}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_names_every_route_and_the_docs_page_lists_them() {
    let server = TestServer::with(with_tokens).await;
    let (s, doc) = api(&server, "get", "/openapi.json", None, None).await;
    assert_eq!(s, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let mut documented = HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["responses"].is_object(), "{method} {path} has responses");
            assert!(
                op["security"].is_array(),
                "{method} {path} names its security"
            );
            // Every path parameter is declared.
            for p in path.split('/').filter(|s| s.starts_with('{')) {
                let name = p.trim_matches(|c| c == '{' || c == '}');
                assert!(
                    op["parameters"].as_array().is_some_and(|ps| ps
                        .iter()
                        .any(|x| x["name"] == name && x["in"] == "path")),
                    "{method} {path} declares {name}"
                );
            }
            documented.insert((method.clone(), path.clone()));
        }
    }
    let served: HashSet<(String, String)> = taoyao_server::admin::routes()
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p))
        .collect();
    assert_eq!(
        documented, served,
        "the OpenAPI document and the router differ"
    );
    let (status, _, page) = common::http_get(server.addr, "/api/v1/docs", "").await;
    assert_eq!(status, 200);
    let page = String::from_utf8(page).unwrap();
    for (_, p) in &served {
        assert!(page.contains(p.as_str()), "docs page lists {p}");
    }
    server.stop().await;
}

// ---------- ready ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_checks_the_media_address_and_the_recording_dir() {
    let (_dir, server) = TestServer::recording().await;
    let (status, _, body) = common::http_get(server.addr, "/ready", "").await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, v["ready"].clone()), (200, json!(true)), "{v}");
    server.stop().await;

    // A recording "directory" that is a file cannot be written: not ready.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let server = TestServer::with(|c| c.recording.dir = file.clone()).await;
    let (status, _, body) = common::http_get(server.addr, "/ready", "").await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["checks"]["recordingDir"]["ok"], false);
    assert_eq!(v["checks"]["media"]["ok"], true);
    server.stop().await;
}

// ---------- webhooks ----------

const HOOK_SECRET: &str = "webhook-secret-webhook-secret-0123456789";

type Deliveries = mpsc::UnboundedReceiver<(String, Vec<u8>)>;

/// A webhook receiver's routes: hands each delivery's (Authorization, body) to the test,
/// answering after `delay`.
fn receiver_app(delay: Duration) -> (axum::Router, Deliveries) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let tx = tx.clone();
                async move {
                    tokio::time::sleep(delay).await;
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let _ = tx.send((auth, body.to_vec()));
                    "ok"
                }
            },
        ),
    );
    (app, rx)
}

/// A plain-http webhook receiver on 127.0.0.1:0.
async fn receiver(delay: Duration) -> (String, Deliveries) {
    let (app, rx) = receiver_app(delay);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

/// An https webhook receiver on 127.0.0.1:0 with a server certificate of `certs`' own CA.
async fn tls_receiver(certs: &taoyao_boot::tls::DevCerts) -> (String, Deliveries) {
    let (app, rx) = receiver_app(Duration::ZERO);
    let tls = taoyao_boot::tls::server_config(&certs.server_cert, &certs.server_key).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("https://{}/hook", listener.local_addr().unwrap());
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(tls),
    )
    .unwrap();
    tokio::spawn(async move { server.serve(app.into_make_service()).await });
    (url, rx)
}

/// Checks a delivery as a receiver should: the JWT with the shared secret, then the body's
/// hash against its `sha256` claim. Returns the event.
fn verify(auth: &str, body: &[u8]) -> Value {
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.set_required_spec_claims(&["exp", "iat"]);
    v.set_issuer(&["taoyao"]);
    let claims = jsonwebtoken::decode::<Value>(
        auth,
        &jsonwebtoken::DecodingKey::from_secret(HOOK_SECRET.as_bytes()),
        &v,
    )
    .expect("a valid signature")
    .claims;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body));
    assert_eq!(claims["sha256"], hash, "the body's hash");
    serde_json::from_slice(body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_meeting_reaches_the_receiver_in_order_and_signed() {
    let (url, mut rx) = receiver(Duration::ZERO).await;
    let (_dir, server) = TestServer::recording_with(|c| {
        c.webhooks.urls = vec![url.clone()];
        c.webhooks.secret = Some(HOOK_SECRET.into());
    })
    .await;
    let a = member_in(&server, "a", "hooked", "sfu").await;
    let b = member_in(&server, "b", "hooked", "sfu").await;
    a.publish(media(), true, true).await.expect("a publishes");
    eventually(Duration::from_secs(20), "b gets a's media", || {
        received_from(&b, "a", true) > 0 && received_from(&b, "a", false) > 0
    })
    .await;
    let r = a
        .request(
            "record::start",
            json!({"roomId": "hooked", "clientId": "a"}),
        )
        .await
        .unwrap();
    assert_eq!(code(&r), "0000", "{r}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = a
        .request("record::stop", json!({"roomId": "hooked", "clientId": "a"}))
        .await
        .unwrap();
    assert_eq!(code(&r), "0000", "{r}");
    // The file's end reaches the room from the backend's writer, just after the answer: the
    // members' record::stop notification is that moment.
    assert!(
        a.note(Duration::from_secs(10), |n| n["header"]["signal"]
            == "record::stop"
            && n["body"]["file"].is_string())
            .await
            .is_some(),
        "a is told the recording finished"
    );
    let r = b
        .request("room::leave", json!({"roomId": "hooked"}))
        .await
        .unwrap();
    assert_eq!(code(&r), "0000");
    let r = a
        .request("room::close", json!({"roomId": "hooked"}))
        .await
        .unwrap();
    assert_eq!(code(&r), "0000");

    let mut events = Vec::new();
    while events
        .last()
        .is_none_or(|e: &Value| e["event"] != "room_finished")
    {
        let (auth, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("events so far: {events:#?}"))
            .unwrap();
        events.push(verify(&auth, &body));
    }
    let names: Vec<String> = events
        .iter()
        .map(|e| {
            let who = e["clientId"]
                .as_str()
                .map(|c| format!(":{c}"))
                .unwrap_or_default();
            format!("{}{who}", e["event"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        names,
        [
            "room_started",
            "participant_joined:a",
            "participant_joined:b",
            "track_published:a",
            "track_published:a",
            "recording_started:a",
            "recording_finished:a",
            "participant_left:b",
            // Closing the room ends a's streams before a leaves.
            "track_unpublished:a",
            "track_unpublished:a",
            "participant_left:a",
            "room_finished",
        ],
        "{events:#?}"
    );
    let ids: HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "ids are unique");
    assert!(events.iter().all(|e| e["room"] == "hooked"));
    assert!(
        events
            .windows(2)
            .all(|w| w[0]["timestamp"].as_u64() <= w[1]["timestamp"].as_u64())
    );
    let finished = &events[6];
    assert!(finished["file"].as_str().unwrap().starts_with("hooked/"));
    assert!(finished["bytes"].as_u64().unwrap() > 1000, "{finished}");
    assert!(
        finished["durationMs"].as_u64().unwrap() >= 1000,
        "{finished}"
    );
    let kinds: HashSet<&str> = events[3..5]
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, HashSet::from(["audio", "video"]));
    // Counted once the receiver's answer is back (just after it handed us the body).
    metrics_until(&server, "12 deliveries counted", |s| {
        value(
            s,
            "taoyao_webhook_events_total",
            &[("outcome", "delivered")],
        ) == 12.0
    })
    .await;
    server.stop().await;
}

/// The next `n` events the receiver gets, verified, as `event:clientId:kind`.
async fn next_events(rx: &mut mpsc::UnboundedReceiver<(String, Vec<u8>)>, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let (auth, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("events so far: {out:?}"))
            .unwrap();
        let e = verify(&auth, &body);
        out.push(format!(
            "{}:{}:{}",
            e["event"].as_str().unwrap(),
            e["clientId"].as_str().unwrap_or(""),
            e["kind"].as_str().unwrap_or("")
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_publishing_alone_yields_its_track_events() {
    let (url, mut rx) = receiver(Duration::ZERO).await;
    let server = TestServer::with(|c| {
        c.webhooks.urls = vec![url.clone()];
        c.webhooks.secret = Some(HOOK_SECRET.into());
    })
    .await;
    // Nobody else is in the room: no member is told of the streams, the room still is.
    let a = member_in(&server, "a", "solo", "sfu").await;
    assert_eq!(
        next_events(&mut rx, 2).await,
        ["room_started::", "participant_joined:a:"]
    );
    a.publish(media(), true, true).await.expect("a publishes");
    let mut published = next_events(&mut rx, 2).await;
    published.sort();
    assert_eq!(
        published,
        ["track_published:a:audio", "track_published:a:video"]
    );
    let r = a
        .request(
            "media::unpublish",
            json!({"roomId": "solo", "kind": "video"}),
        )
        .await
        .unwrap();
    assert_eq!(code(&r), "0000", "{r}");
    assert_eq!(next_events(&mut rx, 1).await, ["track_unpublished:a:video"]);
    let r = a
        .request("room::leave", json!({"roomId": "solo"}))
        .await
        .unwrap();
    assert_eq!(code(&r), "0000", "{r}");
    assert_eq!(
        next_events(&mut rx, 2).await,
        ["track_unpublished:a:audio", "participant_left:a:"]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_or_slow_receiver_delays_no_signal() {
    let (slow, mut slow_rx) = receiver(Duration::from_secs(3)).await;
    // A port nothing listens on: every attempt is refused and retried.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", l.local_addr().unwrap())
    };
    let server = TestServer::with(|c| {
        c.webhooks.urls = vec![down, slow];
        c.webhooks.secret = Some(HOOK_SECRET.into());
        c.webhooks.queue = 4;
        c.webhooks.retries = 3;
        c.webhooks.backoff_ms = 200;
        c.webhooks.timeout_ms = 10_000;
    })
    .await;
    let mut worst = Duration::ZERO;
    let mut clients = Vec::new();
    for i in 0..10 {
        let mut c = server.client(&format!("c{i}")).await;
        let t = Instant::now();
        let r = c.request("room::enter", json!({"roomId": "busy"})).await;
        worst = worst.max(t.elapsed());
        assert_eq!(code(&r), "0000", "{r}");
        clients.push(c);
    }
    for c in &mut clients {
        let t = Instant::now();
        let r = c.request("room::leave", json!({"roomId": "busy"})).await;
        worst = worst.max(t.elapsed());
        assert_eq!(code(&r), "0000", "{r}");
    }
    // Signals answer in their usual few milliseconds, not in the receivers' seconds.
    assert!(
        worst < Duration::from_millis(1000),
        "slowest signal took {worst:?}"
    );
    // 21 events per receiver into queues of 4: most are dropped, and counted.
    let s = scrape(&server).await;
    assert!(
        value(&s, "taoyao_webhook_events_total", &[("outcome", "dropped")]) >= 20.0,
        "{:?}",
        s.samples
            .iter()
            .filter(|x| x.metric.starts_with("taoyao_webhook"))
            .collect::<Vec<_>>()
    );
    // The slow receiver does get the first event, signed.
    let (auth, body) = tokio::time::timeout(Duration::from_secs(10), slow_rx.recv())
        .await
        .expect("the slow receiver gets an event")
        .unwrap();
    assert_eq!(verify(&auth, &body)["event"], "room_started");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_receivers_are_checked_against_the_trusted_roots() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = taoyao_boot::tls::generate_dev_certs(&dir.path().join("trusted"), &[]).unwrap();
    let other = taoyao_boot::tls::generate_dev_certs(&dir.path().join("other"), &[]).unwrap();
    let (good, mut good_rx) = tls_receiver(&trusted).await;
    let (bad, mut bad_rx) = tls_receiver(&other).await;
    let ca = trusted.ca_cert.clone();
    let server = TestServer::with(move |c| {
        c.webhooks.urls = vec![good, bad];
        c.webhooks.secret = Some(HOOK_SECRET.into());
        c.webhooks.ca_file = Some(ca);
        c.webhooks.retries = 0;
    })
    .await;
    let mut a = server.client("a").await;
    let r = a.request("room::enter", json!({"roomId": "secure"})).await;
    assert_eq!(code(&r), "0000", "{r}");
    let (auth, body) = tokio::time::timeout(Duration::from_secs(10), good_rx.recv())
        .await
        .expect("the trusted https receiver gets the event")
        .unwrap();
    assert_eq!(verify(&auth, &body)["event"], "room_started");
    // The receiver whose certificate no trusted root signed gets nothing: each attempt fails
    // its handshake and is counted.
    metrics_until(&server, "the untrusted receiver's deliveries fail", |s| {
        value(s, "taoyao_webhook_events_total", &[("outcome", "failed")]) >= 2.0
    })
    .await;
    assert!(
        bad_rx.try_recv().is_err(),
        "nothing reached the untrusted receiver"
    );
    server.stop().await;
}

#[test]
fn a_webhook_ca_file_that_holds_no_certificate_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.pem");
    std::fs::write(&path, "not a certificate").unwrap();
    let mut cfg = taoyao_server::config::WebhooksConfig {
        urls: vec!["https://127.0.0.1:9/hook".into()],
        secret: Some(HOOK_SECRET.into()),
        ca_file: Some(path),
        ..Default::default()
    };
    let start = |cfg: &taoyao_server::config::WebhooksConfig| {
        taoyao_server::webhooks::Webhooks::start(
            cfg,
            std::sync::Arc::new(taoyao_boot::IdGenerator::new()),
            std::sync::Arc::new(taoyao_server::metrics::Metrics::new()),
        )
        .map(|_| ())
    };
    let err = start(&cfg).unwrap_err();
    assert!(err.contains("no PEM certificate"), "{err}");
    cfg.ca_file = Some(dir.path().join("missing.pem"));
    let err = start(&cfg).unwrap_err();
    assert!(err.contains("missing.pem"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rooms_last_events_are_delivered_at_shutdown() {
    // Each delivery takes 300 ms, so the last ones are still queued when the server stops.
    let (url, mut rx) = receiver(Duration::from_millis(300)).await;
    let server = TestServer::with(|c| {
        c.webhooks.urls = vec![url.clone()];
        c.webhooks.secret = Some(HOOK_SECRET.into());
    })
    .await;
    let mut a = server.client("a").await;
    let mut b = server.client("b").await;
    for c in [&mut a, &mut b] {
        let r = c.request("room::enter", json!({"roomId": "ending"})).await;
        assert_eq!(code(&r), "0000", "{r}");
    }
    server.stop().await;
    let mut events = Vec::new();
    while let Ok((auth, body)) = rx.try_recv() {
        events.push(verify(&auth, &body)["event"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        events.first().map(String::as_str),
        Some("room_started"),
        "{events:?}"
    );
    assert_eq!(
        events.last().map(String::as_str),
        Some("room_finished"),
        "{events:?}"
    );
    for (what, n) in [("participant_joined", 2), ("participant_left", 2)] {
        assert_eq!(
            events.iter().filter(|e| *e == what).count(),
            n,
            "{what}: {events:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_at_shutdown_holds_it_only_for_the_drain_time() {
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", l.local_addr().unwrap())
    };
    let server = TestServer::with(|c| {
        c.webhooks.urls = vec![down];
        c.webhooks.secret = Some(HOOK_SECRET.into());
        c.webhooks.retries = 1_000;
        c.webhooks.backoff_ms = 100;
        c.webhooks.drain_ms = 1_000;
    })
    .await;
    let mut a = server.client("a").await;
    let r = a.request("room::enter", json!({"roomId": "stuck"})).await;
    assert_eq!(code(&r), "0000", "{r}");
    let metrics = server.parts().metrics.clone();
    let t = Instant::now();
    server.stop().await;
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "the server stopped {:?} after the signal",
        t.elapsed()
    );
    // Every event that never got through is counted as dropped.
    let text = metrics.encode();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let dropped = value(
        &scrape,
        "taoyao_webhook_events_total",
        &[("outcome", "dropped")],
    );
    assert!(dropped >= 3.0, "{text}");
}

// ---------- the admin CLI ----------

/// Runs `taoyao-server admin ARGS` (the real binary) with `env`: (exit code, stdout, stderr).
async fn admin_cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_taoyao-server"))
        .arg("admin")
        .args(args)
        .envs(env.iter().copied())
        .env_remove("TAOYAO_ADMIN_TOKEN")
        .output()
        .await
        .expect("taoyao-server runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_cli_calls_the_api_and_reports_its_errors() {
    let server = TestServer::with(with_tokens).await;
    let url = format!("http://{}", server.addr);
    let admin = token("ops", true);
    let with_token = |more: &[&str]| {
        let mut a = vec!["--url", url.as_str(), "--token", admin.as_str()];
        a.extend_from_slice(more);
        a.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>, env: Vec<(&'static str, &'static str)>| async move {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        admin_cli(&a, &env).await
    };

    // Create a room, see it listed, a member enters, the CLI expels it.
    let (code, out, err) = run(
        with_token(&["post", "/rooms", r#"{"name":"cli-room"}"#]),
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let room: Value = serde_json::from_str(&out).unwrap();
    let id = room["roomId"].as_str().expect("a room id").to_owned();
    let mut bob = server.client("bob").await;
    let r = bob.request("room::enter", json!({"roomId": id})).await;
    assert_eq!(common::code(&r), "0000", "{r}");
    let (code, out, err) = run(with_token(&["get", "/rooms"]), vec![]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&id), "{out}");
    let members = format!("/rooms/{id}/members/bob");
    let (code, _, err) = run(with_token(&["delete", &members]), vec![]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        bob.next_signal("room::expel", Duration::from_secs(5))
            .await
            .is_some(),
        "bob is told he was expelled"
    );

    // An API error: exit code 1 and the code on stderr.
    let (code, _, err) = run(with_token(&["get", "/rooms/no-such-room"]), vec![]).await;
    assert_eq!(code, 1);
    assert!(err.contains("404") && err.contains("3404"), "{err}");
    // A non-admin token is refused by the API.
    let user = token("bob", false);
    let (code, _, err) = run(
        vec![
            "--url".into(),
            url.clone(),
            "--token".into(),
            user,
            "get".into(),
            "/rooms".into(),
        ],
        vec![],
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("403"), "{err}");
    // Bad input to the CLI itself: exit code 2 before anything is sent.
    let (code, _, err) = run(with_token(&["patch", "/rooms"]), vec![]).await;
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(with_token(&["post", "/rooms", "{not json"]), vec![]).await;
    assert_eq!(code, 2);
    assert!(err.contains("not JSON"), "{err}");

    // No token given: one is signed with the config's secret (here from the environment).
    let (code, out, err) = run(
        vec!["--url".into(), url.clone(), "get".into(), "/rooms".into()],
        vec![("TAOYAO__AUTH__TOKEN_SECRET", common::TOKEN_SECRET)],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&id), "{out}");
    // ... and without a secret there is nothing to sign with.
    let (code, _, err) = run(
        vec!["--url".into(), url.clone(), "get".into(), "/rooms".into()],
        vec![],
    )
    .await;
    assert_eq!(code, 2);
    assert!(err.contains("token_secret"), "{err}");
    server.stop().await;
}
