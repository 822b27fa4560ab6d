//! Embeds the git commit into the binary and rebuilds when migrations change
//! (`sqlx::migrate!` embeds them, and cargo cannot see that dependency on its own).
//!
//! The commit is the first of: `GIT_COMMIT` (the image build's argument, as CI passes it),
//! `RAILWAY_GIT_COMMIT_SHA` (Railway's build variable), the checkout's own `.git` files (the
//! image build's context holds `HEAD` and the refs, so a plain `docker compose up --build`
//! records it too), `git rev-parse HEAD`; else `unknown`.

#[path = "src/git_head.rs"]
mod git_head;

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=GIT_COMMIT");
    println!("cargo:rerun-if-env-changed=RAILWAY_GIT_COMMIT_SHA");
    let git = git_head::GitDirs::find(Path::new("."));
    // Watch HEAD and the refs only where they exist: a missing path would make cargo rerun this
    // script on every build.
    for path in git.iter().flat_map(git_head::GitDirs::watched) {
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    let commit = given("GIT_COMMIT")
        .or_else(|| given("RAILWAY_GIT_COMMIT_SHA"))
        .or_else(|| git.as_ref().and_then(git_head::GitDirs::head_commit))
        .or_else(git_rev_parse)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SIGMASIGHT_GIT_COMMIT={commit}");
}

/// A build variable's value, unless it is empty or the Dockerfile's `unknown` default.
fn given(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty() && value != "unknown")
}

fn git_rev_parse() -> Option<String> {
    let output = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|c| !c.is_empty())
}
