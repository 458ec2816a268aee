//! The operations kit (PLATFORM.md §12–§15): backups and restores.

pub mod backup;
