//! Pure rules of Manchengo Smart ERP: no I/O, no async, no clock.
//!
//! Business areas (stock, procurement, sales …) arrive as modules of their own; `platform` holds the rules of the
//! platform contract (PLATFORM.md) that can be computed from plain data.

pub mod audit;
pub mod canonical;
pub mod format;
pub mod identity;
pub mod platform;
pub mod rejection;
