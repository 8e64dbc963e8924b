//! Server-side recording with real webrtc-rs peers sending VP8 + Opus: the files are checked
//! with ffprobe (one vp8 and one opus stream, the duration recorded) and decoded by ffmpeg
//! without errors, after a stop, after the publisher vanished and after SIGTERM.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{
    ADMIN, TestServer, eventually, http_get, media, member, member_at, member_in, with_admin,
};
use serde_json::{Value, json};
use taoyao_bench::member::Member;
use taoyao_bench::peer::PeerOptions;
use taoyao_media::ffcheck::{decode_errors, probe};

fn check_file(path: &Path, recorded: Duration) {
    let (codecs, duration) = probe(path);
    let mut sorted = codecs.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["opus", "vp8"],
        "{}: streams {codecs:?}",
        path.display()
    );
    let want = recorded.as_secs_f64();
    assert!(
        (duration - want).abs() <= 0.5,
        "{}: duration {duration:.3} s, recorded {want:.3} s",
        path.display()
    );
    let errors = decode_errors(path);
    if !errors.is_empty() {
        // Kept for a look with ffprobe -show_packets.
        let keep = std::env::temp_dir().join(format!(
            "taoyao-failed-{}",
            path.file_name().unwrap().to_string_lossy()
        ));
        let _ = std::fs::copy(path, &keep);
        panic!(
            "{} (copied to {}): {errors}",
            path.display(),
            keep.display()
        );
    }
}

fn webm_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "webm"));
    v
}

/// Publishes video + audio and waits until the server holds the member's tracks (they appear
/// with the first RTP packets, after the publish answer).
async fn publish(m: &Member, room: &str) {
    m.publish(media(), true, true).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = m
            .request("room::status", json!({"roomId": room}))
            .await
            .unwrap();
        let has_video = s["body"]["streams"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["clientId"] == m.id.as_str() && x["kind"] == "video")
        });
        if has_video {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} published no video: {s}",
            m.id
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Audio starts with video; give its track the same moment to arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

fn ok(r: &Value) -> &Value {
    assert_eq!(r["code"], "0000", "{r}");
    &r["body"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_second_recording_is_one_playable_webm_and_only_owner_or_self_may_record() {
    let (dir, server) = TestServer::recording().await;
    let a = member_in(&server, "rec-a", "rec-sfu", "sfu").await;
    let b = member_in(&server, "rec-b", "rec-sfu", "sfu").await;
    publish(&a, "rec-sfu").await;

    // b is neither the owner nor a: refused.
    let r = b
        .request(
            "record::start",
            json!({"roomId": "rec-sfu", "clientId": "rec-a"}),
        )
        .await
        .unwrap();
    assert_eq!(r["code"], "3403", "{r}");
    // Nobody is recorded that is not in the room.
    let r = a
        .request(
            "record::start",
            json!({"roomId": "rec-sfu", "clientId": "nobody"}),
        )
        .await
        .unwrap();
    assert_eq!(r["code"], "3404", "{r}");

    let r = a
        .request(
            "record::start",
            json!({"roomId": "rec-sfu", "clientId": "rec-a"}),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let file = ok(&r)["recordings"][0]["file"].as_str().unwrap().to_owned();
    assert!(
        file.starts_with("rec-sfu/rec-a-") && file.ends_with("Z.webm"),
        "{file}"
    );
    let note = b
        .note(Duration::from_secs(5), |n| {
            n["header"]["signal"] == "record::start"
        })
        .await
        .expect("b is told the recording started");
    assert_eq!(note["body"]["clientId"], "rec-a");
    // Twice is an error; status shows it.
    let r = a
        .request(
            "record::start",
            json!({"roomId": "rec-sfu", "clientId": "rec-a"}),
        )
        .await
        .unwrap();
    assert_eq!(r["code"], "3400", "{r}");
    let status = a
        .request("room::status", json!({"roomId": "rec-sfu"}))
        .await
        .unwrap();
    assert_eq!(
        ok(&status)["recordings"][0]["clientId"],
        "rec-a",
        "{status}"
    );

    tokio::time::sleep(Duration::from_secs(10)).await;
    let recorded = started.elapsed();
    let r = a
        .request(
            "record::stop",
            json!({"roomId": "rec-sfu", "clientId": "rec-a"}),
        )
        .await
        .unwrap();
    assert_eq!(ok(&r)["stopped"][0], "rec-a");
    let note = b
        .note(Duration::from_secs(5), |n| {
            n["header"]["signal"] == "record::stop"
        })
        .await
        .expect("b is told the recording stopped");
    assert_eq!(note["body"]["file"], file.as_str());
    assert!(note["body"].get("error").is_none(), "{note}");
    check_file(&dir.path().join(&file), recorded);

    let list = a
        .request("record::list", json!({"roomId": "rec-sfu"}))
        .await
        .unwrap();
    assert_eq!(ok(&list)["files"][0]["file"], file.as_str(), "{list}");
    let r = a
        .request(
            "record::stop",
            json!({"roomId": "rec-sfu", "clientId": "rec-a"}),
        )
        .await
        .unwrap();
    assert_eq!(r["code"], "3404", "{r}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcu_publisher_that_vanishes_leaves_a_finalized_file() {
    let (dir, server) = TestServer::recording().await;
    let owner = member_in(&server, "van-o", "rec-mcu", "mcu").await;
    let p = member_in(&server, "van-p", "rec-mcu", "mcu").await;
    publish(&p, "rec-mcu").await;
    // The room owner records the whole room: only p has media.
    let r = owner
        .request("record::start", json!({"roomId": "rec-mcu"}))
        .await
        .unwrap();
    let started = Instant::now();
    let body = ok(&r);
    assert_eq!(body["recordings"].as_array().unwrap().len(), 1, "{body}");
    let file = body["recordings"][0]["file"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let recorded = started.elapsed();
    p.vanish().await;
    let note = owner
        .note(Duration::from_secs(10), |n| {
            n["header"]["signal"] == "record::stop"
        })
        .await
        .expect("the owner is told the recording ended");
    assert_eq!(note["body"]["clientId"], "van-p");
    check_file(&dir.path().join(&file), recorded);
    server.stop().await;
}

/// A recording cut by `recording.max_duration_ms` is finalized and `record::stop` says how long
/// the file is (not 0) with the limit's error beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_cut_by_its_limit_reports_the_files_duration_and_why() {
    let (dir, server) = TestServer::recording_with(|c| c.recording.max_duration_ms = 3_000).await;
    let a = member_in(&server, "cut-a", "rec-cut", "sfu").await;
    publish(&a, "rec-cut").await;
    let r = a
        .request(
            "record::start",
            json!({"roomId": "rec-cut", "clientId": "cut-a"}),
        )
        .await
        .unwrap();
    let file = ok(&r)["recordings"][0]["file"].as_str().unwrap().to_owned();
    let note = a
        .note(Duration::from_secs(10), |n| {
            n["header"]["signal"] == "record::stop"
        })
        .await
        .expect("the limit ends the recording");
    let body = &note["body"];
    assert_eq!(body["file"], file.as_str(), "{body}");
    let error = body["error"].as_str().expect("the limit's error");
    assert!(error.contains("limit"), "{body}");
    let reported = body["durationMs"].as_u64().unwrap();
    let path = dir.path().join(&file);
    let (_, on_file) = probe(&path);
    assert!(
        (reported as f64 / 1000.0 - on_file).abs() <= 0.5,
        "record::stop says {reported} ms, the file lasts {on_file:.3} s"
    );
    assert!(reported >= 2_500, "{body}");
    check_file(&path, Duration::from_secs_f64(on_file));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_dir_that_cannot_be_made_is_an_error_and_the_room_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let rec_dir = blocker.join("recordings");
    let server = TestServer::with(|c| c.recording.dir = rec_dir).await;
    let a = member_in(&server, "err-a", "rec-err", "sfu").await;
    let b = member_in(&server, "err-b", "rec-err", "sfu").await;
    publish(&a, "rec-err").await;
    let r = a
        .request(
            "record::start",
            json!({"roomId": "rec-err", "clientId": "err-a"}),
        )
        .await
        .unwrap();
    assert_eq!(r["code"], "3500", "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("cannot write"),
        "{r}"
    );
    // b still gets a's media.
    let before = b
        .sub()
        .received
        .tracks()
        .iter()
        .map(|t| t.packets())
        .sum::<u64>();
    eventually(Duration::from_secs(10), "b to keep receiving", || {
        b.sub()
            .received
            .tracks()
            .iter()
            .map(|t| t.packets())
            .sum::<u64>()
            > before + 100
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_recording_finalizes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("taoyao.toml");
    let rec_dir = dir.path().join("recordings");
    // A free port, found by binding and releasing it: another test's server may take it in
    // between, so a server that cannot bind is started again on another.
    let (mut child, port) = 'start: {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            std::fs::write(
                &config,
                format!(
                    "[server]\nlisten = \"127.0.0.1:{port}\"\n[recording]\ndir = {:?}\n",
                    rec_dir.to_str().unwrap()
                ),
            )
            .unwrap();
            let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_taoyao-server"))
                .arg("--config")
                .arg(&config)
                .env("RUST_LOG", "warn")
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                if let Some(status) = child.try_wait().unwrap() {
                    let mut err = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        use tokio::io::AsyncReadExt;
                        let _ = e.read_to_string(&mut err).await;
                    }
                    if err.contains("in use") {
                        eprintln!("port {port} taken meanwhile; again");
                        break;
                    }
                    panic!("the server exited ({status}): {err}");
                }
                assert!(Instant::now() < deadline, "the server did not start");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if child.try_wait().unwrap().is_none() {
                break 'start (child, port);
            }
        }
        panic!("no free port for the server after 5 tries");
    };
    let url = format!("ws://127.0.0.1:{port}/websocket.signal");
    // Keep reading the server's log so a full pipe never blocks it.
    if let Some(mut e) = child.stderr.take() {
        tokio::spawn(async move {
            let mut sink = tokio::io::sink();
            let _ = tokio::io::copy(&mut e, &mut sink).await;
        });
    }
    let a = member_at(&url, "term-a").await;
    a.enter_with(json!({"roomId": "rec-term", "architecture": "sfu", "subscribe": "all"}))
        .await
        .unwrap();
    publish(&a, "rec-term").await;
    let r = a
        .request(
            "record::start",
            json!({"roomId": "rec-term", "clientId": "term-a"}),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let file = ok(&r)["recordings"][0]["file"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let recorded = started.elapsed();
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("the server exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    a.close_peers().await;
    assert_eq!(webm_files(&rec_dir.join("rec-term")).len(), 1);
    check_file(&rec_dir.join(&file), recorded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_download_by_signed_link_only() {
    let (dir, server) = TestServer::recording_with(|c| {
        // Short links, so the test can watch one expire.
        c.recording.link_ttl_ms = 3000;
        with_admin(c);
    })
    .await;
    let a = member_in(&server, "dl-a", "rec-dl", "sfu").await;
    publish(&a, "rec-dl").await;
    let r = a
        .request(
            "record::start",
            json!({"roomId": "rec-dl", "clientId": "dl-a"}),
        )
        .await
        .unwrap();
    let file = ok(&r)["recordings"][0]["file"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = a
        .request(
            "record::stop",
            json!({"roomId": "rec-dl", "clientId": "dl-a"}),
        )
        .await
        .unwrap();
    ok(&r);
    // Someone outside the room gets no list, so no link.
    let outsider = member(&server, "dl-x").await;
    outsider
        .enter_with(json!({"roomId": "rec-dl-other", "architecture": "sfu"}))
        .await
        .unwrap();
    let r = outsider
        .request("record::list", json!({"roomId": "rec-dl"}))
        .await
        .unwrap();
    assert_eq!(r["code"], "3403", "{r}");

    let list = a
        .request("record::list", json!({"roomId": "rec-dl"}))
        .await
        .unwrap();
    let entry = &ok(&list)["files"][0];
    assert_eq!(entry["file"], file.as_str(), "{list}");
    let url = entry["url"].as_str().unwrap().to_owned();
    let name = file.split_once('/').unwrap().1.to_owned();
    assert!(
        url.starts_with(&format!("/recordings/{file}?token=")),
        "{url}"
    );
    let on_disk = std::fs::read(dir.path().join(&file)).unwrap();

    // The link downloads the file, byte for byte, as a webm attachment.
    let (status, head, body) = http_get(server.addr, &url, "").await;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: video/webm"), "{head}");
    assert!(
        head.contains(&format!(
            "content-disposition: attachment; filename=\"{}\"",
            name.to_ascii_lowercase()
        )),
        "{head}"
    );
    assert_eq!(body.len(), on_disk.len());
    assert!(body == on_disk, "the download differs from the file");
    // Range requests work (players seek with them).
    let (status, head, body) = http_get(server.addr, &url, "Range: bytes=0-99\r\n").await;
    assert_eq!(status, 206, "{head}");
    assert_eq!(body, on_disk[..100]);

    let token = url.split_once("?token=").unwrap().1.to_owned();
    // No token, a malformed one: 401. A forged one, or this file's token on another path: 403.
    let bare = format!("/recordings/{file}");
    assert_eq!(http_get(server.addr, &bare, "").await.0, 401);
    assert_eq!(
        http_get(server.addr, &format!("{bare}?token=nonsense"), "")
            .await
            .0,
        401
    );
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    assert_eq!(
        http_get(server.addr, &format!("{bare}?token={forged}"), "")
            .await
            .0,
        403
    );
    assert_eq!(
        http_get(
            server.addr,
            &format!("/recordings/rec-dl-other/{name}?token={token}"),
            ""
        )
        .await
        .0,
        403
    );
    // Traversal, plain or encoded, never reaches the disk.
    for (path, want) in [
        (format!("/recordings/rec-dl/..?token={token}"), 400),
        (format!("/recordings/rec-dl/%2E%2E?token={token}"), 400),
        (
            format!("/recordings/..%2F..%2Fetc/passwd?token={token}"),
            400,
        ),
        (
            format!("/recordings/rec-dl/..%2F..%2FCargo.toml?token={token}"),
            400,
        ),
        (format!("/recordings/rec-dl/..%5C{name}?token={token}"), 400),
        ("/recordings/../Cargo.toml".to_owned(), 400),
        ("/recordings/rec-dl/../../Cargo.toml".to_owned(), 404),
    ] {
        let (status, head, _) = http_get(server.addr, &path, "").await;
        assert_eq!(status, want, "{path}: {head}");
    }

    // The room closes; an admin still lists its files and gets working links.
    let r = a
        .request("room::close", json!({"roomId": "rec-dl"}))
        .await
        .unwrap();
    ok(&r);
    let boss = Member::connect(
        &server.url(),
        json!({"clientId": "dl-boss", "username": ADMIN.0, "password": ADMIN.1}),
        PeerOptions::default(),
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(5), "the room to close", || {
        server.parts().rooms.room_count() == 1
    })
    .await;
    let list = boss
        .request("record::list", json!({"roomId": "rec-dl"}))
        .await
        .unwrap();
    let admin_url = ok(&list)["files"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(http_get(server.addr, &admin_url, "").await.0, 200);
    // Not an admin: a closed room is not found.
    let r = a
        .request("record::list", json!({"roomId": "rec-dl"}))
        .await
        .unwrap();
    assert_eq!(r["code"], "3404", "{r}");

    // recording.link_ttl_ms later the link no longer works.
    tokio::time::sleep(Duration::from_millis(4100)).await;
    assert_eq!(http_get(server.addr, &url, "").await.0, 401);
    server.stop().await;
}

/// ffmpeg's mean volume of a file's audio, in dB.
fn mean_volume(path: &Path) -> f64 {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "info", "-i"])
        .arg(path)
        .args(["-af", "volumedetect", "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    text.lines()
        .find_map(|l| l.split("mean_volume: ").nth(1))
        .and_then(|v| v.trim_end_matches(" dB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no volumedetect output: {text}"))
}

/// A mix recording: one Opus stream lasting `expected` seconds, decoded cleanly, with the
/// publishers' tones in it (silence would be about -91 dB).
fn check_mix_file(path: &Path, expected: std::ops::RangeInclusive<f64>) {
    let (codecs, duration) = probe(path);
    assert_eq!(codecs, ["opus"], "{}", path.display());
    assert!(
        expected.contains(&duration),
        "duration {duration:.3} s, expected {expected:.3?} s"
    );
    let errors = decode_errors(path);
    assert!(errors.is_empty(), "{errors}");
    let volume = mean_volume(path);
    eprintln!("mix file: {duration:.3} s, mean volume {volume} dB");
    assert!(volume > -40.0, "mean volume {volume} dB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcu_room_records_its_mix_as_one_opus_file() {
    let (dir, server) = TestServer::recording().await;
    let owner = member_in(&server, "mix-o", "rec-mix", "mcu").await;
    let p = member_in(&server, "mix-p", "rec-mix", "mcu").await;
    let q = member_in(&server, "mix-q", "rec-mix", "mcu").await;
    publish(&p, "rec-mix").await;
    publish(&q, "rec-mix").await;

    // Only the owner records the mix; only mcu rooms have one.
    let r = p
        .request("record::start", json!({"roomId": "rec-mix", "mix": true}))
        .await
        .unwrap();
    assert_eq!(r["code"], "3403", "{r}");
    let r = owner
        .request("record::start", json!({"roomId": "rec-mix", "mix": "yes"}))
        .await
        .unwrap();
    assert_eq!(r["code"], "3400", "{r}");

    let r = owner
        .request("record::start", json!({"roomId": "rec-mix", "mix": true}))
        .await
        .unwrap();
    let started = Instant::now();
    let file = ok(&r)["recordings"][0]["file"].as_str().unwrap().to_owned();
    assert!(file.starts_with("rec-mix/mix-"), "{file}");
    let note = p
        .note(Duration::from_secs(5), |n| {
            n["header"]["signal"] == "record::start"
        })
        .await
        .expect("members are told the mix is recorded");
    assert_eq!(note["body"]["mix"], true, "{note}");
    let r = owner
        .request("record::start", json!({"roomId": "rec-mix", "mix": true}))
        .await
        .unwrap();
    assert_eq!(r["code"], "3400", "twice: {r}");
    let status = owner
        .request("room::status", json!({"roomId": "rec-mix"}))
        .await
        .unwrap();
    let recs = &ok(&status)["recordings"];
    assert!(
        recs.as_array()
            .unwrap()
            .iter()
            .any(|x| x["mix"] == true && x["file"] == file.as_str()),
        "{status}"
    );

    tokio::time::sleep(Duration::from_secs(5)).await;
    let recorded = started.elapsed();
    let r = owner
        .request("record::stop", json!({"roomId": "rec-mix", "mix": true}))
        .await
        .unwrap();
    assert_eq!(ok(&r)["mix"], true, "{r}");
    let note = p
        .note(Duration::from_secs(5), |n| {
            n["header"]["signal"] == "record::stop"
        })
        .await
        .expect("members are told the mix recording ended");
    assert_eq!(note["body"]["mix"], true, "{note}");
    assert_eq!(note["body"]["file"], file.as_str(), "{note}");
    let r = recorded.as_secs_f64();
    check_mix_file(&dir.path().join(&file), r - 0.5..=r + 0.5);
    let r = owner
        .request("record::stop", json!({"roomId": "rec-mix", "mix": true}))
        .await
        .unwrap();
    assert_eq!(r["code"], "3404", "{r}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sfu_room_has_no_mix_to_record() {
    let server = TestServer::start().await;
    let a = member(&server, "nomix-a").await;
    a.enter_with(json!({"roomId": "rec-nomix", "architecture": "sfu"}))
        .await
        .unwrap();
    let r = a
        .request("record::start", json!({"roomId": "rec-nomix", "mix": true}))
        .await
        .unwrap();
    assert_eq!(r["code"], "3400", "{r}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_room_finalizes_its_mix_recording() {
    let (dir, server) = TestServer::recording().await;
    let owner = member_in(&server, "mixc-o", "rec-mixc", "mcu").await;
    let p = member_in(&server, "mixc-p", "rec-mixc", "mcu").await;
    publish(&p, "rec-mixc").await;
    let r = owner
        .request("record::start", json!({"roomId": "rec-mixc", "mix": true}))
        .await
        .unwrap();
    let started = Instant::now();
    let file = ok(&r)["recordings"][0]["file"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let recorded = started.elapsed();
    let r = owner
        .request("room::close", json!({"roomId": "rec-mixc"}))
        .await
        .unwrap();
    ok(&r);
    // The room task finalizes the file as it ends (ffprobe then finds its duration); the
    // members are gone by then, so it may hold a little silence past the close, never less
    // than what was recorded.
    let path = dir.path().join(&file);
    eventually(
        Duration::from_secs(10),
        "the mix file to be finalized (it has a duration)",
        || probe(&path).1 > 0.0,
    )
    .await;
    let r = recorded.as_secs_f64();
    check_mix_file(&path, r - 0.5..=r + 1.5);
    server.stop().await;
}
