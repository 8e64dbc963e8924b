//! Headless Chromium for end-to-end tests of the web client.
//!
//! Each browser test re-runs itself inside a private network namespace (`unshare -n`, as root)
//! so every packet stays on loopback, as ../shared/notes/webrtc-here.md recommends; where that is
//! not possible (not root), it runs in the current namespace. Pages opened with `&report=harness`
//! send their getStats() summaries to a WebSocket client registered as `harness`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::TestClient;

const NETNS_ENV: &str = "TAOYAO_TEST_IN_NETNS";

/// Chromium's path: `$TAOYAO_CHROMIUM`, else `chromium` on PATH. A missing browser fails the
/// test with the fix, rather than skipping it.
pub fn chromium() -> PathBuf {
    if let Ok(p) = std::env::var("TAOYAO_CHROMIUM") {
        return p.into();
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = PathBuf::from(dir).join("chromium");
        if p.is_file() {
            return p;
        }
    }
    panic!("chromium not found: run scripts/install-test-deps.sh (as root) or set TAOYAO_CHROMIUM");
}

/// Returns true when the caller should run the test body here; false when the body already ran
/// (successfully) in a child process inside a private network namespace.
pub fn enter_private_network(test_name: &str) -> bool {
    if std::env::var_os(NETNS_ENV).is_some() {
        return true;
    }
    let can_unshare = std::process::Command::new("unshare")
        .args(["-n", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !can_unshare {
        eprintln!("note: cannot make a private network namespace (not root?); running here");
        return true;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let status = std::process::Command::new("unshare")
        .args([
            "-n",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec \"$0\" \"$@\"",
        ])
        .arg(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(NETNS_ENV, "1")
        .status()
        .expect("run the test in a network namespace");
    assert!(
        status.success(),
        "{test_name} failed inside its network namespace"
    );
    false
}

/// One headless Chromium showing one page; killed on drop.
pub struct Browser {
    child: tokio::process::Child,
    log: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn open(url: &str) -> Browser {
        Self::open_with(url, &[])
    }

    /// Opens a page with extra Chromium flags.
    pub fn open_with(url: &str, extra: &[&str]) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let log = profile.path().join("chromium.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = tokio::process::Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                "--allow-loopback-in-peer-connection",
                "--autoplay-policy=no-user-gesture-required",
                "--enable-logging=stderr",
                "--remote-debugging-port=0",
            ])
            .args(extra)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .expect("start chromium");
        Browser {
            child,
            log,
            _profile: profile,
        }
    }

    /// The page's console lines and the browser's errors (for failure messages).
    pub fn console(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter(|l| l.contains("CONSOLE") || l.contains("taoyao") || l.contains("ERROR:"))
            .filter(|l| !l.contains("dbus") && !l.contains("DBus"))
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub async fn close(mut self) {
        let _ = self.child.kill().await;
    }

    /// Drives the page over Chromium's DevTools protocol: the browser runs with
    /// `--remote-debugging-port=0` and writes the port it chose to `DevToolsActivePort` in
    /// its profile; the page's target is found on `/json/list`.
    pub async fn devtools(&self) -> DevTools {
        let file = self._profile.path().join("DevToolsActivePort");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Some(p) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u16>().ok()))
            {
                break p;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromium wrote no DevToolsActivePort\n{}",
                self.console()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let url = loop {
            let targets: Vec<Value> =
                match reqwest::get(format!("http://127.0.0.1:{port}/json/list")).await {
                    Ok(r) => r.json().await.unwrap_or_default(),
                    Err(_) => Vec::new(),
                };
            if let Some(u) = targets
                .iter()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            {
                break u.to_owned();
            }
            assert!(tokio::time::Instant::now() < deadline, "no page target");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("DevTools WebSocket");
        DevTools { ws, next: 0 }
    }
}

/// One page's DevTools session: evaluate script, click, type, as a person's input would.
pub struct DevTools {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next: u64,
}

impl DevTools {
    /// Calls a DevTools method and returns its `result` (events in between are skipped).
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        use futures_util::{SinkExt, StreamExt};
        self.next += 1;
        let id = self.next;
        let msg = serde_json::json!({"id": id, "method": method, "params": params});
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::text(
                msg.to_string(),
            ))
            .await
            .expect("DevTools send");
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(20), self.ws.next())
                .await
                .expect("DevTools answers")
                .expect("DevTools open")
                .expect("DevTools frame");
            if let tokio_tungstenite::tungstenite::Message::Text(t) = frame {
                let v: Value = serde_json::from_str(t.as_str()).expect("DevTools JSON");
                if v["id"] == id {
                    assert!(v["error"].is_null(), "{method}: {}", v["error"]);
                    return v["result"].clone();
                }
            }
        }
    }

    /// The value of a script expression in the page (promises awaited).
    pub async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                serde_json::json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(
            r["exceptionDetails"].is_null(),
            "{expression}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Polls `expression` until it is true; panics naming `what` after `within`.
    pub async fn wait_for(&mut self, expression: &str, what: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.eval(expression).await != Value::Bool(true) {
            let page = self
                .eval("document.body ? document.body.innerText : ''")
                .await;
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; the page shows:\n{}",
                page.as_str().unwrap_or("")
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A mouse click (press and release) at the middle of the element `selector` finds.
    pub async fn click(&mut self, selector: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        let at = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({sel}); if (!e) return null; \
                 e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
                 return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
            ))
            .await;
        let (x, y) = match at.as_array() {
            Some(p) if p.len() == 2 => (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()),
            _ => panic!("nothing to click at {selector}"),
        };
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                serde_json::json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )
            .await;
        }
    }

    /// Focuses `selector` (by clicking it) and types `text` into it.
    pub async fn type_into(&mut self, selector: &str, text: &str) {
        self.click(selector).await;
        self.call("Input.insertText", serde_json::json!({"text": text}))
            .await;
    }
}

/// Collects `taoyao-stats` reports sent to `harness` until `done(latest reports by clientId)`
/// holds, or panics after `within` with the last reports and the browsers' consoles.
pub async fn wait_for_reports(
    harness: &mut TestClient,
    browsers: &[&Browser],
    within: Duration,
    done: impl Fn(&HashMap<String, Value>) -> bool,
) -> HashMap<String, Value> {
    let deadline = tokio::time::Instant::now() + within;
    let mut latest: HashMap<String, Value> = HashMap::new();
    loop {
        if done(&latest) {
            return latest;
        }
        if tokio::time::Instant::now() > deadline {
            let consoles: Vec<String> = browsers.iter().map(|b| b.console()).collect();
            panic!(
                "media did not flow within {within:?}.\nlast reports: {}\nconsoles:\n{}",
                serde_json::to_string_pretty(&latest).unwrap(),
                consoles.join("\n----\n")
            );
        }
        // The harness beats so the server keeps it while pages take their time.
        let _ = harness
            .send("client::heartbeat", serde_json::json!({}))
            .await;
        if let Some(m) = harness
            .next_signal("client::unicast", Duration::from_secs(2))
            .await
        {
            let body = &m["body"];
            if body["kind"] == "taoyao-stats"
                && let Some(id) = body["clientId"].as_str()
            {
                latest.insert(id.to_owned(), body.clone());
            }
        }
    }
}

/// Registers the `harness` client and opens one page per client id, entering `room` with extra
/// query parameters (e.g. `&architecture=sfu`) and reporting to the harness.
pub async fn open_pages(
    server: &super::TestServer,
    room: &str,
    extra: &str,
    pages: &[&str],
) -> (TestClient, Vec<Browser>) {
    let harness = server.client("harness").await;
    let base = format!("http://{}/", server.addr);
    let browsers = pages
        .iter()
        .map(|id| {
            Browser::open(&format!(
                "{base}?clientId={id}&name={id}&username=taoyao&password=taoyao&room={room}{extra}&report=harness"
            ))
        })
        .collect();
    (harness, browsers)
}

/// Opens one page per client id in `room` (with extra query parameters, e.g.
/// `&architecture=sfu`) and waits until every page decodes video, and receives decoded audio,
/// from every other page over a connected connection. Returns the last reports and the
/// browsers, still open (close them after checking the server's side).
pub async fn pages_see_and_hear_each_other(
    server: &super::TestServer,
    room: &str,
    extra: &str,
    pages: &[&str],
) -> (HashMap<String, Value>, Vec<Browser>) {
    let (mut harness, browsers) = open_pages(server, room, extra, pages).await;
    let refs: Vec<&Browser> = browsers.iter().collect();
    let reports = wait_for_reports(&mut harness, &refs, Duration::from_secs(60), |reports| {
        pages.iter().all(|me| {
            let Some(r) = reports.get(*me) else {
                return false;
            };
            pages.iter().filter(|p| *p != me).all(|other| {
                let peer = &r["room"]["peers"][*other];
                peer["connectionState"] == "connected"
                    && peer["video"]["framesDecoded"].as_u64().unwrap_or(0) > 0
                    && peer["audio"]["packetsReceived"].as_u64().unwrap_or(0) > 0
                    && peer["audio"]["totalSamplesReceived"].as_u64().unwrap_or(0) > 0
            })
        })
    })
    .await;
    for id in pages {
        eprintln!("{id}: {}", reports[*id]["room"]["peers"]);
        assert_eq!(
            reports[*id]["local"],
            serde_json::json!(["audio", "video"]),
            "{id} sends camera and microphone"
        );
    }
    (reports, browsers)
}
