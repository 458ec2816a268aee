//! The HTTP application of Manchengo Smart ERP: JSON API, French pages, platform plumbing. Thin by design: handlers
//! extract input, call `store`, and render.

pub mod access;
pub mod api;
pub mod auth;
pub mod config;
pub mod export;
pub mod ops;
pub mod platform;
pub mod print;
pub mod server;
pub mod state;
pub mod sync;
pub mod web;
