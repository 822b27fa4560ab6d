//! SigmaSight backend: the library behind the `sigmasight` binary.
//!
//! The binary only parses its command line and calls into these modules; tests call them directly.

pub mod ascii;
pub mod auth;
pub mod cli;
pub mod config;
pub mod connections;
pub mod db;
pub mod domain;
pub mod etl;
// Compiled by build.rs; here only for its tests.
#[cfg(test)]
mod git_head;
pub mod healthcheck;
pub mod http;
pub mod metrics;
pub mod migrate;
pub mod seed;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod version;
