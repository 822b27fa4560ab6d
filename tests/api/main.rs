//! Integration tests: the real binary and the real library against a real PostgreSQL.
//!
//! `DATABASE_URL` names a server where each test creates its own database (`scripts/test.sh`
//! starts a throwaway one when it is unset).

mod auth;
mod browser;
mod compression;
mod config;
mod connections;
mod cors;
mod database;
mod db_prices;
mod demo;
mod errors;
mod etl;
mod etl_catchup;
mod etl_csv;
mod etl_load;
mod etl_refusals;
mod etl_runs;
mod health;
mod helpers;
mod logging;
mod login_limits;
mod metrics;
mod migrations;
mod modules;
mod openapi;
mod portfolios;
mod prices;
mod request_id;
pub mod roles;
mod shutdown;
mod symbols;
mod tls;
mod user_cache;
mod users;
