//! The API version in the request path, seen by a fake engine: a unix
//! socket that records every request line and answers like an engine of a
//! chosen API version.

use super::*;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

/// A fake engine speaking `api`; returns its socket path and the request
/// lines it has seen (shared with the serving task).
fn fake_engine(api: &'static str) -> (std::path::PathBuf, Arc<Mutex<Vec<String>>>) {
    let dir = std::env::temp_dir().join(format!(
        "tb-fake-engine-{}-{}",
        std::process::id(),
        api.replace('.', "-")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("docker.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // one request head (GETs: no body)
                    let end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    buf.drain(..end);
                    let line = head.lines().next().unwrap_or("").to_string();
                    let path = line.split(' ').nth(1).unwrap_or("").to_string();
                    log.lock().unwrap().push(line);
                    let (ctype, body) = if path.ends_with("/_ping") {
                        ("text/plain", "OK".to_string())
                    } else if path.ends_with("/version") {
                        (
                            "application/json",
                            format!(
                                r#"{{"Version":"99.0.0","ApiVersion":"{api}","MinAPIVersion":"1.24","Components":[{{"Name":"Fake Engine","Version":"99.0.0"}}]}}"#
                            ),
                        )
                    } else {
                        ("application/json", "[]".to_string())
                    };
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nApi-Version: {api}\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if conn.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (sock, seen)
}

fn paths(seen: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn every_request_after_negotiation_carries_the_engines_version() {
    let (sock, seen) = fake_engine("1.45");
    let docker = connect_unix(sock.to_str().unwrap()).await.unwrap();
    assert_eq!(api_used(&docker), (1, 45));
    docker
        .list_containers(None::<bollard::query_parameters::ListContainersOptions>)
        .await
        .unwrap();
    let info = engine_info(&docker).await;
    let p = paths(&seen);
    // negotiation asks unversioned (any engine answers), then never again
    assert_eq!(p[0], "/version", "{p:?}");
    assert_eq!(p[1], "/v1.45/_ping", "{p:?}");
    assert!(p[2].starts_with("/v1.45/containers/json"), "{p:?}");
    assert_eq!(p[3], "/v1.45/version", "{p:?}");
    assert!(p[1..].iter().all(|x| has_version(x)), "{p:?}");
    assert_eq!(
        (
            info.product.as_str(),
            info.api_used.as_str(),
            info.api_max.as_str()
        ),
        ("Fake Engine", "1.45", "1.45")
    );
    std::fs::remove_dir_all(sock.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn an_engine_newer_than_bollard_gets_bollards_version() {
    let (sock, seen) = fake_engine("1.99");
    let docker = connect_unix(sock.to_str().unwrap()).await.unwrap();
    let own = bollard::API_DEFAULT_VERSION;
    let want = format!("/v{}.{}/_ping", own.major_version, own.minor_version);
    assert_eq!(paths(&seen)[1], want);
    assert!(api_used(&docker) < (1, 99));
    std::fs::remove_dir_all(sock.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn an_engine_older_than_the_minimum_is_refused_by_name() {
    let (sock, seen) = fake_engine("1.40");
    let err = connect_unix(sock.to_str().unwrap()).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("API 1.40") && msg.contains("1.41"), "{msg}");
    // refused before any versioned request went out
    assert_eq!(paths(&seen), vec!["/version".to_string()]);
    std::fs::remove_dir_all(sock.parent().unwrap()).unwrap();
}

#[test]
fn versions_in_paths_are_recognised() {
    assert!(has_version("/v1.41/containers/json"));
    assert!(has_version("/v1.5/x"));
    assert!(!has_version("/version"));
    assert!(!has_version("/v1.41"));
    assert!(!has_version("/volumes/v1.2/x"));
    assert!(!has_version("/v1./x"));
    assert_eq!(parse_api("1.51"), (1, 51));
    assert_eq!(parse_api("x"), (0, 0));
}
