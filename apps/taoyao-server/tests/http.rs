//! Plain HTTP: health, and the web client embedded in the binary or served from a directory.

mod common;

use common::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    (status, ctype, body.to_owned())
}

#[tokio::test]
async fn health_and_the_embedded_web_client() {
    let server = TestServer::start().await;
    let (status, _, body) = get(server.addr, "/health").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, ctype, body) = get(server.addr, "/").await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/html"), "{ctype}");
    assert!(body.contains("js/app.js"));
    for path in [
        "/js/app.js",
        "/js/sdk/signal.js",
        "/js/sdk/room.js",
        "/js/sdk/call.js",
        "/js/sdk/peer.js",
    ] {
        let (status, ctype, _) = get(server.addr, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            ctype.contains("javascript"),
            "ES modules need a JavaScript type: {path} {ctype}"
        );
    }
    assert_eq!(get(server.addr, "/css/taoyao.css").await.1, "text/css");
    assert_eq!(get(server.addr, "/nope.js").await.0, 404);
    assert_eq!(get(server.addr, "/../Cargo.toml").await.0, 404);
    // The SDK's unit tests stay out of the binary.
    assert!(std::path::Path::new("../../web/js/sdk/test/fakes.js").is_file());
    assert_eq!(get(server.addr, "/js/sdk/test/fakes.js").await.0, 404);
    server.stop().await;
}

#[tokio::test]
async fn web_dir_serves_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<p>from disk</p>").unwrap();
    let path = dir.path().to_owned();
    let server = TestServer::with(move |c| c.server.web_dir = Some(path)).await;
    let (status, _, body) = get(server.addr, "/").await;
    assert_eq!((status, body.as_str()), (200, "<p>from disk</p>"));
    assert_eq!(get(server.addr, "/js/app.js").await.0, 404);
    server.stop().await;
}
