//! Test harness: a real server bound to port 0 in this process, and real WebSocket clients.
#![allow(dead_code)]

pub mod browser;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use taoyao_boot::Shutdown;
use taoyao_server::{Config, Running};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The admin login [`with_admin`] adds: (username, password).
pub const ADMIN: (&str, &str) = ("boss", "boss-password");

/// Adds the [`ADMIN`] login (an admin) to a test server's config.
pub fn with_admin(c: &mut Config) {
    c.auth.users.push(taoyao_signal::UserConfig {
        username: ADMIN.0.into(),
        password: ADMIN.1.into(),
        admin: true,
    });
}

/// The `auth.token_secret` that [`with_tokens`] sets (test-only, not a real secret).
pub const TOKEN_SECRET: &str = "test-token-secret-test-token-secret-0123";

/// Turns on access tokens (keeping the development password login for members).
pub fn with_tokens(c: &mut Config) {
    c.auth.token_secret = Some(TOKEN_SECRET.into());
}

/// An access token for `sub` signed with [`TOKEN_SECRET`], with or without the admin grant.
pub fn token(sub: &str, admin: bool) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    taoyao_signal::issue_token(
        TOKEN_SECRET,
        &taoyao_signal::Claims {
            sub: sub.into(),
            name: None,
            exp: now + 3600,
            iat: Some(now),
            jti: None,
            grants: taoyao_signal::Grants {
                admin,
                ..Default::default()
            },
        },
    )
    .unwrap()
}

/// A response's code ("" when it has none).
pub fn code(r: &Value) -> &str {
    r["code"].as_str().unwrap_or("")
}

/// How long a test waits for a message it expects.
pub const WAIT: Duration = Duration::from_secs(5);

/// Waits until `cond` holds, polling; panics naming `what` after `within`.
pub async fn eventually(within: Duration, what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    pub running: Option<Running>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::with(|_| {}).await
    }

    pub async fn with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let mut cfg = Config::default();
        cfg.server.listen = "127.0.0.1:0".parse().unwrap();
        tweak(&mut cfg);
        let shutdown = Shutdown::new();
        let running = taoyao_server::start(cfg, shutdown.clone())
            .await
            .expect("server starts");
        TestServer {
            addr: running.local_addr,
            shutdown,
            running: Some(running),
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/websocket.signal", self.addr)
    }

    pub fn hub(&self) -> &taoyao_signal::SignalHub {
        &self.running.as_ref().unwrap().parts.hub
    }

    pub fn parts(&self) -> &taoyao_server::Parts {
        &self.running.as_ref().unwrap().parts
    }

    pub async fn connect(&self) -> TestClient {
        TestClient::connect(&self.url()).await
    }

    /// A connected client registered with the development login.
    pub async fn client(&self, id: &str) -> TestClient {
        let mut c = self.connect().await;
        let r = c.register(id).await;
        assert_eq!(r["code"], "0000", "register {id}: {r}");
        c.expect("client::config").await;
        c
    }

    /// A client registered with the [`ADMIN`] login (the server needs [`with_admin`]).
    pub async fn admin_client(&self, id: &str) -> TestClient {
        let mut c = self.connect().await;
        let r = c
            .request(
                "client::register",
                json!({"clientId": id, "username": ADMIN.0, "password": ADMIN.1}),
            )
            .await;
        assert_eq!(r["code"], "0000", "register {id} as admin: {r}");
        c.expect("client::config").await;
        c
    }

    /// A server that records into a fresh temporary directory (removed with the `TempDir`).
    pub async fn recording() -> (tempfile::TempDir, TestServer) {
        Self::recording_with(|_| {}).await
    }

    /// [`TestServer::recording`] with more config.
    pub async fn recording_with(
        tweak: impl FnOnce(&mut Config),
    ) -> (tempfile::TempDir, TestServer) {
        let dir = tempfile::tempdir().unwrap();
        let rec_dir = dir.path().to_owned();
        let server = TestServer::with(|c| {
            c.recording.dir = rec_dir;
            tweak(c);
        })
        .await;
        (dir, server)
    }

    /// A server serving https / wss with freshly generated development certificates (in the
    /// returned `TempDir`; trust `DevCerts::ca_cert` to connect).
    pub async fn tls_with(
        tweak: impl FnOnce(&mut Config),
    ) -> (tempfile::TempDir, taoyao_boot::tls::DevCerts, TestServer) {
        let dir = tempfile::tempdir().unwrap();
        let certs = taoyao_boot::tls::generate_dev_certs(dir.path(), &[]).unwrap();
        let (cert, key) = (certs.server_cert.clone(), certs.server_key.clone());
        let server = TestServer::with(move |c| {
            c.server.tls.cert = Some(cert);
            c.server.tls.key = Some(key);
            tweak(c);
        })
        .await;
        (dir, certs, server)
    }

    /// A room's media counters: (members, streams, subscriptions, peer connections).
    pub async fn media_counts(&self, room: &str) -> (usize, usize, usize, usize) {
        let s = self
            .parts()
            .rooms
            .media_stats(room)
            .await
            .unwrap_or_else(|| panic!("room {room} exists"));
        (s.members, s.streams, s.subscriptions, s.peer_connections)
    }

    /// Triggers shutdown and waits for the server to stop.
    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(r) = self.running.take() {
            tokio::time::timeout(Duration::from_secs(15), r.wait())
                .await
                .expect("server stops in time")
                .expect("server stops cleanly");
        }
    }
}

pub struct TestClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    inbox: VecDeque<Value>,
}

/// A small but valid SDP with one audio and one video section in the given direction.
pub fn sdp(direction: &str) -> String {
    let mut s = String::from(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n",
    );
    for (mid, kind, pt) in [(0, "audio", 111), (1, "video", 96)] {
        s += &format!(
            "m={kind} 9 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\na={direction}\r\na=rtpmap:{pt} {}\r\n",
            if kind == "audio" {
                "opus/48000/2"
            } else {
                "VP8/90000"
            }
        );
    }
    s
}

pub fn envelope(id: u64, signal: &str, body: Value) -> String {
    json!({"header": {"v": "1.0.0", "id": id, "signal": signal}, "body": body}).to_string()
}

impl TestClient {
    pub async fn connect(url: &str) -> TestClient {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects");
        TestClient {
            ws,
            next_id: 1000,
            inbox: VecDeque::new(),
        }
    }

    /// Connects over wss to a TLS server, trusting the CA in `ca_pem`.
    pub async fn connect_tls(server: &TestServer, ca_pem: &std::path::Path) -> TestClient {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca_pem).expect("CA file") {
            roots.add(c.expect("CA certificate")).expect("CA accepted");
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let url = format!("wss://localhost:{}/websocket.signal", server.addr.port());
        let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
            &url,
            None,
            false,
            Some(tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(
                tls,
            ))),
        )
        .await
        .expect("wss connects with the CA trusted");
        Self::from_stream(ws)
    }

    /// Wraps an already connected stream (e.g. over TLS).
    pub fn from_stream(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> TestClient {
        TestClient {
            ws,
            next_id: 1000,
            inbox: VecDeque::new(),
        }
    }

    pub async fn send_raw(&mut self, frame: Ws) {
        self.ws.send(frame).await.expect("send frame");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send_raw(Ws::text(text)).await;
    }

    /// Sends a request; returns its id.
    pub async fn send(&mut self, signal: &str, body: Value) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.send_text(&envelope(id, signal, body)).await;
        id
    }

    /// Sends a request and returns the response (same id); other messages are kept for later.
    pub async fn request(&mut self, signal: &str, body: Value) -> Value {
        let id = self.send(signal, body).await;
        self.response_to(id).await
    }

    pub async fn response_to(&mut self, id: u64) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        if let Some(pos) = self
            .inbox
            .iter()
            .position(|m| m["header"]["id"] == id && m.get("code").is_some())
        {
            return self.inbox.remove(pos).unwrap();
        }
        loop {
            let m = self
                .read_until(deadline)
                .await
                .unwrap_or_else(|| panic!("no response to {id}"));
            if m["header"]["id"] == id && m.get("code").is_some() {
                return m;
            }
            self.inbox.push_back(m);
        }
    }

    pub async fn register(&mut self, id: &str) -> Value {
        self.request(
            "client::register",
            json!({"clientId": id, "name": format!("name-{id}"), "clientType": "WEB",
                   "username": "taoyao", "password": "taoyao"}),
        )
        .await
    }

    async fn read_until(&mut self, deadline: tokio::time::Instant) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match frame.ok()? {
                Ws::Text(t) => {
                    return Some(serde_json::from_str(t.as_str()).expect("server sends JSON"));
                }
                Ws::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The next message (kept ones first).
    pub async fn recv(&mut self) -> Value {
        if let Some(m) = self.inbox.pop_front() {
            return m;
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        self.read_until(deadline).await.expect("a message")
    }

    /// The next message with this signal within `wait`, or None (others are kept).
    pub async fn next_signal(&mut self, signal: &str, wait: Duration) -> Option<Value> {
        if let Some(pos) = self
            .inbox
            .iter()
            .position(|m| m["header"]["signal"] == signal)
        {
            return self.inbox.remove(pos);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let m = self.read_until(deadline).await?;
            if m["header"]["signal"] == signal {
                return Some(m);
            }
            self.inbox.push_back(m);
        }
    }

    /// The next message with this signal; others are kept.
    pub async fn expect(&mut self, signal: &str) -> Value {
        if let Some(pos) = self
            .inbox
            .iter()
            .position(|m| m["header"]["signal"] == signal)
        {
            return self.inbox.remove(pos).unwrap();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let m = self.read_until(deadline).await.unwrap_or_else(|| {
                panic!("expected {signal}, got nothing; kept: {:?}", self.inbox)
            });
            if m["header"]["signal"] == signal {
                return m;
            }
            self.inbox.push_back(m);
        }
    }

    /// Asserts no message with this signal arrives within `wait` (others are kept).
    pub async fn expect_none(&mut self, signal: &str, wait: Duration) {
        assert!(
            !self.inbox.iter().any(|m| m["header"]["signal"] == signal),
            "unexpected {signal} already received"
        );
        let deadline = tokio::time::Instant::now() + wait;
        while let Some(m) = self.read_until(deadline).await {
            assert_ne!(m["header"]["signal"], signal, "unexpected message {m}");
            self.inbox.push_back(m);
        }
    }

    /// Reads until the server closes; returns the close frame (messages before it are kept).
    pub async fn expect_close(&mut self) -> Option<CloseFrame> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("server closes in time");
            match frame {
                Some(Ok(Ws::Close(f))) => return f,
                Some(Ok(Ws::Text(t))) => self
                    .inbox
                    .push_back(serde_json::from_str(t.as_str()).unwrap()),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Messages received so far and not yet taken.
    pub fn kept(&self) -> &VecDeque<Value> {
        &self.inbox
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Drops the TCP connection without a WebSocket close (a vanished client).
    pub fn vanish(self) {
        drop(self);
    }
}

/// Test media (VP8 + Opus made by ffmpeg once per test binary) with a tone of `hz` in the audio.
pub fn media_with_tone(hz: u32) -> std::sync::Arc<taoyao_bench::media::TestMedia> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    use taoyao_bench::media::{MediaSpec, TestMedia};
    static MADE: OnceLock<Mutex<HashMap<u32, Arc<TestMedia>>>> = OnceLock::new();
    let mut made = MADE
        .get_or_init(Default::default)
        .lock()
        .expect("media lock");
    made.entry(hz)
        .or_insert_with(|| {
            let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("media");
            let spec = MediaSpec {
                tone_hz: hz,
                ..MediaSpec::default()
            };
            Arc::new(TestMedia::make(&dir, &spec).expect("test media (ffmpeg)"))
        })
        .clone()
}

/// The default test media.
pub fn media() -> std::sync::Arc<taoyao_bench::media::TestMedia> {
    media_with_tone(taoyao_bench::media::MediaSpec::default().tone_hz)
}

/// A registered member driving real webrtc-rs peers.
pub async fn member(server: &TestServer, id: &str) -> std::sync::Arc<taoyao_bench::member::Member> {
    member_at(&server.url(), id).await
}

/// A registered member that entered `room` (made on `architecture` if new), subscribing to all.
pub async fn member_in(
    server: &TestServer,
    id: &str,
    room: &str,
    architecture: &str,
) -> std::sync::Arc<taoyao_bench::member::Member> {
    let m = member(server, id).await;
    m.enter_with(json!({"roomId": room, "architecture": architecture, "subscribe": "all"}))
        .await
        .expect("member enters");
    m
}

/// A registered member of the server at `url` (a server binary the test started).
pub async fn member_at(url: &str, id: &str) -> std::sync::Arc<taoyao_bench::member::Member> {
    taoyao_bench::member::Member::connect(
        url,
        json!({"clientId": id, "username": "taoyao", "password": "taoyao"}),
        taoyao_bench::peer::PeerOptions::default(),
    )
    .await
    .expect("member connects")
}

/// Packets `m` received so far from `from`'s track of that kind (0 if none).
pub fn received_from(m: &taoyao_bench::member::Member, from: &str, video: bool) -> u64 {
    m.sub()
        .received
        .find(from, video)
        .map_or(0, |t| t.packets())
}

/// A raw HTTP/1.1 GET: (status, lower-cased head, body bytes).
pub async fn http_get(
    addr: std::net::SocketAddr,
    path: &str,
    extra: &str,
) -> (u16, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP head");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, raw[split + 4..].to_vec())
}

/// Decodes the last `packets` Opus packets `m` received on its mixed track.
pub fn heard(m: &taoyao_bench::member::Member, packets: usize) -> Vec<i16> {
    let track = m
        .sub()
        .received
        .find("mix", false)
        .expect("a mixed audio track");
    let payloads = track.audio_payloads();
    let mut dec = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
    let mut pcm = Vec::new();
    let mut buf = vec![0i16; 5760];
    for p in &payloads[payloads.len().saturating_sub(packets)..] {
        let n = dec.decode(p, &mut buf, false).unwrap();
        pcm.extend_from_slice(&buf[..n]);
    }
    pcm
}
