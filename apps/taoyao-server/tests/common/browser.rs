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
    // Browser tests of one binary take turns: each runs three Chromiums and a server, and two
    // at once on two cores make their timings meaningless.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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
}

/// The reports `harness` receives from the page of `client_id` within `window`, in order.
pub async fn reports_from(
    harness: &mut TestClient,
    client_id: &str,
    window: Duration,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + window;
    let mut reports = Vec::new();
    while tokio::time::Instant::now() < deadline {
        if let Some(m) = harness
            .next_signal("client::unicast", Duration::from_millis(500))
            .await
            && m["body"]["clientId"] == client_id
        {
            reports.push(m["body"].clone());
        }
    }
    reports
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

// ---- driving a page like a person: Chromium's DevTools protocol --------------------------------

/// One command for the DevTools connection's task: the message (without its id) and where the
/// answer goes.
type CdpCommand = (Value, tokio::sync::oneshot::Sender<Value>);

/// A page of a [`Browser`], driven over the DevTools protocol (a thin client over the WebSocket
/// that `--remote-debugging-port=0` opens): clicks are real mouse events at an element's
/// centre, typing is `Input.insertText` into the focused field.
pub struct Page {
    commands: tokio::sync::mpsc::UnboundedSender<CdpCommand>,
    session: String,
}

/// How long [`Page::click`] and friends look for what they name.
pub const FIND_WITHIN: Duration = Duration::from_secs(15);

/// Finds the visible element a person would mean by `text` (its aria-label, its own text, a
/// label's text or a placeholder; exact first, then the start of it), scrolls it into view and
/// returns its centre and whether nothing covers it there.
const FIND_JS: &str = r#"
(function find(text, kinds) {
  const norm = (s) => (s ?? '').replace(/\s+/g, ' ').trim().toLowerCase();
  const want = norm(text);
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && el.checkVisibility({ visibilityProperty: true, opacityProperty: true });
  };
  const names = (el) => {
    const out = [el.getAttribute('aria-label'), el.getAttribute('title'), el.getAttribute('placeholder')];
    if (el.labels) for (const l of el.labels) out.push(l.innerText);
    if (!['INPUT', 'SELECT', 'TEXTAREA'].includes(el.tagName)) out.push(el.innerText);
    return out.map(norm).filter(Boolean);
  };
  // An open modal dialog is all a person can reach.
  const root = document.querySelector('dialog[open]') ?? document;
  const all = [...root.querySelectorAll(kinds)].filter(visible);
  const el = all.find((e) => names(e).includes(want)) ?? all.find((e) => names(e).some((n) => n.startsWith(want)));
  if (!el) return null;
  el.scrollIntoView({ block: 'center', inline: 'center' });
  const r = el.getBoundingClientRect();
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  const top = document.elementFromPoint(x, y);
  return { x, y, clear: !!top && (top === el || el.contains(top) || top.contains(el)), tag: el.tagName };
})
"#;

const CLICKABLE: &str = "button, a[href], [role=button], [role=tab], [role=menuitem], summary, input[type=checkbox], input[type=radio]";
const FIELDS: &str = "input, textarea, select";

impl Browser {
    /// The DevTools session of this browser's page.
    pub async fn page(&self) -> Page {
        let port_file = self._profile.path().join("DevToolsActivePort");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let text = loop {
            if let Ok(t) = std::fs::read_to_string(&port_file)
                && t.lines().count() >= 2
            {
                break t;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Chromium wrote no DevToolsActivePort: {}",
                self.console()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut lines = text.lines();
        let (port, path) = (lines.next().unwrap(), lines.next().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}{path}"))
            .await
            .expect("DevTools WebSocket");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(cdp_task(ws, rx));
        let mut page = Page {
            commands: tx,
            session: String::new(),
        };
        let target = loop {
            let targets = page.call("Target.getTargets", serde_json::json!({})).await;
            if let Some(t) = targets["targetInfos"]
                .as_array()
                .and_then(|a| a.iter().find(|t| t["type"] == "page"))
            {
                break t["targetId"].clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let attached = page
            .call(
                "Target.attachToTarget",
                serde_json::json!({"targetId": target, "flatten": true}),
            )
            .await;
        page.session = attached["sessionId"]
            .as_str()
            .expect("a DevTools session")
            .to_owned();
        page
    }
}

async fn cdp_task(
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    mut commands: tokio::sync::mpsc::UnboundedReceiver<CdpCommand>,
) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (mut out, mut inbound) = ws.split();
    let mut pending: HashMap<u64, tokio::sync::oneshot::Sender<Value>> = HashMap::new();
    let mut next_id = 1u64;
    loop {
        tokio::select! {
            cmd = commands.recv() => {
                let Some((mut msg, reply)) = cmd else { return };
                msg["id"] = next_id.into();
                pending.insert(next_id, reply);
                next_id += 1;
                if out.send(Message::text(msg.to_string())).await.is_err() {
                    return;
                }
            }
            frame = inbound.next() => {
                let Some(Ok(Message::Text(t))) = frame else {
                    if matches!(frame, None | Some(Err(_))) { return }
                    continue;
                };
                let Ok(msg) = serde_json::from_str::<Value>(t.as_str()) else { continue };
                // Events (no id) are not needed: the tests poll the page instead.
                if let Some(reply) = msg["id"].as_u64().and_then(|id| pending.remove(&id)) {
                    let _ = reply.send(msg);
                }
            }
        }
    }
}

impl Page {
    /// Sends one DevTools command (to the page's session once attached) and returns its result;
    /// panics on a protocol error.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        let mut msg = serde_json::json!({"method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = self.session.clone().into();
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commands
            .send((msg, tx))
            .expect("DevTools connection open");
        let answer = tokio::time::timeout(Duration::from_secs(20), rx)
            .await
            .unwrap_or_else(|_| panic!("no DevTools answer to {method}"))
            .expect("DevTools connection open");
        assert!(
            answer.get("error").is_none(),
            "{method} failed: {}",
            answer["error"]
        );
        answer["result"].clone()
    }

    /// Evaluates a JavaScript expression in the page (awaiting a promise) and returns its value.
    pub async fn eval(&self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                serde_json::json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(
            r.get("exceptionDetails").is_none(),
            "page threw on {expression}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    async fn find(&self, text: &str, kinds: &str) -> Value {
        let deadline = tokio::time::Instant::now() + FIND_WITHIN;
        let mut last = Value::Null;
        loop {
            let found = self
                .eval(&format!(
                    "{FIND_JS}({}, {})",
                    Value::from(text),
                    Value::from(kinds)
                ))
                .await;
            if found["clear"] == true {
                return found;
            }
            if !found.is_null() {
                last = found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nothing visible and clickable named {text:?} ({last}); the page shows:\n{}",
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn mouse_click(&self, x: f64, y: f64) {
        for (kind, buttons) in [("mouseMoved", 0), ("mousePressed", 1), ("mouseReleased", 0)] {
            self.call(
                "Input.dispatchMouseEvent",
                serde_json::json!({"type": kind, "x": x, "y": y, "button": "left", "buttons": buttons, "clickCount": 1}),
            )
            .await;
        }
    }

    /// Clicks the visible button, link or control named `text` (its label, aria-label or text).
    pub async fn click(&self, text: &str) {
        let at = self.find(text, CLICKABLE).await;
        self.mouse_click(at["x"].as_f64().unwrap(), at["y"].as_f64().unwrap())
            .await;
    }

    /// Clicks into the field labelled `label`, selects what it holds and types `text` over it.
    pub async fn fill(&self, label: &str, text: &str) {
        let at = self.find(label, FIELDS).await;
        self.mouse_click(at["x"].as_f64().unwrap(), at["y"].as_f64().unwrap())
            .await;
        self.eval("document.activeElement.select?.()").await;
        self.call("Input.insertText", serde_json::json!({"text": text}))
            .await;
    }

    /// Presses Enter in the focused element.
    pub async fn press_enter(&self) {
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                serde_json::json!({"type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": if kind == "keyDown" { "\r" } else { "" }}),
            )
            .await;
        }
    }

    /// Chooses the option whose text starts with `option` in the select labelled `label` (as
    /// a person picks from the list; the native list itself is not drawn headless).
    pub async fn choose(&self, label: &str, option: &str) {
        let at = self.find(label, "select").await;
        self.mouse_click(at["x"].as_f64().unwrap(), at["y"].as_f64().unwrap())
            .await;
        let ok = self
            .eval(&format!(
                "(() => {{ const s = document.activeElement; const want = {};
                   const o = [...(s?.options ?? [])].find((o) => o.text.trim().toLowerCase().startsWith(want.toLowerCase()));
                   if (!o) return false; s.value = o.value; s.dispatchEvent(new Event('input', {{bubbles: true}}));
                   s.dispatchEvent(new Event('change', {{bubbles: true}})); s.blur(); return true; }})()",
                Value::from(option)
            ))
            .await;
        assert_eq!(ok, true, "no option {option:?} in {label:?}");
    }

    /// What the page shows (its visible text).
    pub async fn text(&self) -> String {
        self.eval("document.body.innerText")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the page shows `text` (case-insensitive); panics with what it shows.
    pub async fn wait_for_text(&self, text: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let shown = self.text().await;
            if shown.to_lowercase().contains(&text.to_lowercase()) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the page did not show {text:?} within {within:?}; it shows:\n{shown}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the JavaScript expression is truthy; returns its value.
    pub async fn wait_for(&self, expression: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let v = self.eval(expression).await;
            if !(v.is_null() || v == false || v == 0 || v == "") {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{expression} stayed false for {within:?}; the page shows:\n{}",
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The page's diagnostics report (what `&report=` sends: connections' getStats summaries).
    pub async fn report(&self) -> Value {
        self.eval("window.taoyaoReport ? window.taoyaoReport() : null")
            .await
    }

    /// A phone's screen: 390 x 844 CSS pixels, touch, mobile.
    pub async fn phone(&self) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
        )
        .await;
    }

    /// A desktop window of `width` x `height`.
    pub async fn window(&self, width: u32, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
    }

    /// A PNG of what the page shows now.
    pub async fn screenshot(&self) -> Vec<u8> {
        let r = self
            .call(
                "Page.captureScreenshot",
                serde_json::json!({"format": "png"}),
            )
            .await;
        base64_decode(r["data"].as_str().expect("screenshot data"))
    }

    /// Saves a screenshot as `<name>.png` in `$TAOYAO_SCREENSHOTS` when that is set (how the
    /// README's pictures are made); otherwise does nothing.
    pub async fn save_screenshot(&self, name: &str) {
        if let Some(dir) = std::env::var_os("TAOYAO_SCREENSHOTS") {
            let png = self.screenshot().await;
            std::fs::write(PathBuf::from(dir).join(format!("{name}.png")), png)
                .expect("write screenshot");
        }
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63, // '/'
    };
    let bytes: Vec<u8> = text.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let v: Vec<u32> = chunk.iter().map(|c| u32::from(value(*c))).collect();
        let n = v.iter().fold(0u32, |acc, x| (acc << 6) | x) << (6 * (4 - v.len()));
        out.extend_from_slice(&n.to_be_bytes()[1..v.len()]);
    }
    out
}
