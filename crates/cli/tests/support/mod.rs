//! What the process-level tests share: `regulars` on a database, `serve`
//! started and killed with SIGKILL.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

pub const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // test only

pub fn regulars(url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regulars"));
    cmd.arg("--database-url")
        .arg(url)
        .args(args)
        .env("REGULARS_MASTER_KEY", MASTER_KEY)
        .env("REGULARS_JOBS_INTERVAL_SECS", "0")
        .env("REGULARS_LOG", "warn")
        .env_remove("REGULARS_LISTEN")
        .env_remove("REGULARS_LOG_FORMAT");
    cmd
}

pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// `regulars serve` on a fresh port, stderr appended to `log`. Blocks until
/// the server printed its address.
pub fn start_server(url: &str, log: &Path) -> (Child, String) {
    start_server_with(regulars(url, &["serve", "--listen", "127.0.0.1:0"]), log)
}

/// `serve` as `command` says (settings in its environment).
pub fn start_server_with(mut command: Command, log: &Path) -> (Child, String) {
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::from(err))
        .spawn()
        .expect("serve starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(url) = line.strip_prefix("listening on ") {
                    break url.to_string();
                }
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("serve exited before it listened; its log:\n{}", tail(log));
            }
        }
    };
    // Keep reading whatever else it prints, so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, base)
}

/// The running server, killed when the test ends however it ends.
#[derive(Default)]
pub struct Running(Mutex<Option<Child>>);

impl Running {
    pub fn put(&self, child: Child) {
        *self.0.lock().unwrap() = Some(child);
    }
    /// SIGKILL (on Unix `Child::kill` sends SIGKILL) and reap.
    pub fn kill(&self) {
        if let Some(mut child) = self.0.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A new hq_admin API key on the database (`regulars apikey create`).
pub fn admin_key(url: &str) -> String {
    let out = regulars(
        url,
        &["apikey", "create", "--role", "hq_admin", "--name", "chaos"],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string()
}
