//! Pure rules of Manchengo Smart ERP: no I/O, no async, no clock.
//!
//! One module per business area (`identity`, `parties`, `stock`, …); `money` holds the arithmetic every area shares;
//! `platform` holds the rules of the platform contract (PLATFORM.md) that can be computed from plain data.

pub mod accounting;
pub mod audit;
pub mod canonical;
pub mod catalogue;
pub mod delivery;
pub mod format;
pub mod identity;
pub mod inventory;
pub mod kpi;
pub mod money;
pub mod parties;
pub mod platform;
pub mod procurement;
pub mod production;
pub mod purchase;
pub mod rejection;
pub mod sales;
pub mod stock;
pub mod sync;
pub mod timbre;
pub mod validation;
pub mod words;
