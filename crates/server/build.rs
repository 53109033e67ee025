//! The console's third-party browser assets (htmx, ECharts) come from npm,
//! pinned by `web/package-lock.json`, and are compiled into the binary so the
//! console works with no request leaving the machine. Nothing minified is
//! committed: when `web/node_modules` is missing or older than the lockfile
//! this runs `npm ci` once.

use std::path::Path;
use std::process::Command;

const ASSETS: [&str; 2] = [
    "node_modules/htmx.org/dist/htmx.min.js",
    "node_modules/echarts/dist/echarts.min.js",
];

fn main() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    println!("cargo:rerun-if-changed=web/package-lock.json");
    println!("cargo:rerun-if-changed=web/package.json");
    for asset in ASSETS {
        println!("cargo:rerun-if-changed=web/{asset}");
    }
    let stamp = web.join("node_modules/.package-lock.json");
    let lock = web.join("package-lock.json");
    let stale = match (modified(&stamp), modified(&lock)) {
        (Some(installed), Some(locked)) => installed < locked,
        _ => true,
    };
    if stale || ASSETS.iter().any(|a| !web.join(a).exists()) {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&web)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!(
                "`npm ci` in {} failed ({s}); the console's assets (htmx, ECharts) are needed to build",
                web.display()
            ),
            Err(e) => panic!(
                "cannot run npm ({e}): install Node.js and npm (apt-get install nodejs npm); \
                 the console's assets are installed from {}/package-lock.json",
                web.display()
            ),
        }
    }
    for asset in ASSETS {
        assert!(web.join(asset).exists(), "{asset} missing after npm ci");
    }
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}
