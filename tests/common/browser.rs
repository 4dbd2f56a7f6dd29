//! Headless Chromium for the tests of the gateway's pages (docs, status). It is Debian's
//! `chromium` package, which the README's test command installs; `AOAI_TEST_CHROMIUM` names the
//! binary, defaulting to `chromium` on the PATH.

use std::path::PathBuf;
use std::process::Command;

pub fn chromium() -> PathBuf {
    let configured = std::env::var_os("AOAI_TEST_CHROMIUM")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let found = configured.or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("chromium"))
                .find(|p| p.exists())
        })
    });
    found.unwrap_or_else(|| panic!("Chromium not found: run scripts/test.sh, or apt-get install chromium, or set AOAI_TEST_CHROMIUM"))
}

/// Headless, without a sandbox (tests run as root) or background traffic.
pub const QUIET: [&str; 7] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
];

/// Runs headless Chromium with a fresh profile and no background traffic.
pub fn headless(args: &[String]) -> std::process::Output {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = std::env::temp_dir().join(format!("aoai-chromium-{}-{run}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let output = Command::new(chromium())
        .args(QUIET)
        .args([
            "--disable-quic",
            "--hide-scrollbars",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium starts");
    let _ = std::fs::remove_dir_all(&profile);
    output
}
