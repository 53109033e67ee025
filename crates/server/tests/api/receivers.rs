//! Real receivers for what a test makes the server send: an SMTP server
//! that holds the conversation and keeps every mail, and an HTTP receiver
//! (SMS and WeChat gateways, webhook endpoints) that keeps every request
//! and, like a real provider, answers a repeated idempotency key with the
//! first message.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A mail as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent after DATA (headers and body).
    pub data: String,
}

pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

/// An SMTP server on a free port (RFC 5321's commands, no TLS).
pub async fn smtp_sink() -> SmtpSink {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mails = Arc::new(Mutex::new(Vec::new()));
    let kept = mails.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let kept = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read);
                let _ = write.write_all(b"220 sink.test ESMTP\r\n").await;
                let (mut from, mut to) = (String::new(), Vec::new());
                loop {
                    let mut line = String::new();
                    if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
                    } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
                        b"250 OK\r\n"
                    } else if upper.starts_with("RSET") {
                        from.clear();
                        to.clear();
                        b"250 OK\r\n"
                    } else if upper.starts_with("MAIL FROM:") {
                        from = line[10..].trim().to_string();
                        b"250 OK\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        to.push(line[8..].trim().to_string());
                        b"250 OK\r\n"
                    } else if upper.starts_with("DATA") {
                        let _ = write.write_all(b"354 end with .\r\n").await;
                        let mut data = String::new();
                        loop {
                            let mut l = String::new();
                            if lines.read_line(&mut l).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if l == ".\r\n" || l == ".\n" {
                                break;
                            }
                            data.push_str(l.strip_prefix('.').unwrap_or(&l));
                        }
                        kept.lock().unwrap().push(Mail {
                            from: std::mem::take(&mut from),
                            to: std::mem::take(&mut to),
                            data,
                        });
                        b"250 OK queued\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"502 command not implemented\r\n"
                    };
                    if write.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    SmtpSink { port, mails }
}

/// A request the gateway received.
#[derive(Debug, Clone)]
pub struct GatewayRequest {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub json: Value,
}

impl GatewayRequest {
    /// A header's value ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn idempotency_key(&self) -> &str {
        self.header("idempotency-key")
    }
}

#[derive(Default)]
struct GatewayState {
    requests: Mutex<Vec<GatewayRequest>>,
    /// Idempotency key → message id: a repeat is the same message.
    messages: Mutex<HashMap<String, String>>,
    /// Answer this many of the next requests with 500 (`usize::MAX`: all).
    fail_next: AtomicUsize,
}

#[derive(Clone)]
pub struct Gateway {
    pub base: String,
    state: Arc<GatewayState>,
}

impl Gateway {
    /// Every request, repeats included.
    pub fn requests(&self) -> Vec<GatewayRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Messages the provider accepted (one per idempotency key), with the
    /// request that first delivered each.
    pub fn messages(&self) -> Vec<GatewayRequest> {
        let accepted = self.state.messages.lock().unwrap().clone();
        let mut seen = std::collections::HashSet::new();
        self.requests()
            .into_iter()
            .filter(|r| accepted.contains_key(r.idempotency_key()))
            .filter(|r| seen.insert(r.idempotency_key().to_string()))
            .collect()
    }

    /// The address of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn fail_next(&self, n: usize) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }
}

async fn receive(
    State(state): State<Arc<GatewayState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let request = GatewayRequest {
        path: uri.path().to_string(),
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        body: body.to_vec(),
        headers,
    };
    let key = request.idempotency_key().to_string();
    state.requests.lock().unwrap().push(request);
    let failing = state
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return (StatusCode::INTERNAL_SERVER_ERROR, "busy".into());
    }
    let mut messages = state.messages.lock().unwrap();
    let next = messages.len() + 1;
    let id = messages
        .entry(key)
        .or_insert_with(|| format!("msg-{next}"))
        .clone();
    (StatusCode::OK, json!({"message_id": id}).to_string())
}

/// An HTTP gateway on a free port: POST anything under `/`.
pub async fn gateway() -> Gateway {
    let state = Arc::new(GatewayState::default());
    let app = Router::new()
        .route("/{*path}", post(receive))
        .with_state(state.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Gateway { base, state }
}
