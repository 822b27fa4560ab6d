//! What this build is: the crate version and the git commit it was built from.

/// The crate version, as in `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit this binary was built from: `GIT_COMMIT` at build time, else Railway's
/// `RAILWAY_GIT_COMMIT_SHA`, else the checkout's `HEAD` as its `.git` files say (the image
/// build's context holds them), else `unknown` (`build.rs`).
pub const GIT_COMMIT: &str = env!("SIGMASIGHT_GIT_COMMIT");
