//! All integration tests in one binary (one link instead of ten). Storage tests run on SQLite and PostgreSQL.

mod api;
mod appro;
mod browser;
mod cache;
mod catalogue;
mod cli;
mod documents;
mod drills;
mod identity;
mod jobs;
mod ops;
mod procurement;
mod production;
mod runbook;
mod sales;
mod shutdown;
mod stock;
mod storage;
mod support;
mod sync;
