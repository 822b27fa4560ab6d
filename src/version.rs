//! What this build is: the crate version and the git commit it was built from.

/// The crate version, as in `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit this binary was built from (`GIT_COMMIT` at build time, else the checkout's
/// `HEAD`, else `unknown`). The image build passes it as a build argument, since the Docker
/// context holds no `.git`.
pub const GIT_COMMIT: &str = env!("SIGMASIGHT_GIT_COMMIT");
