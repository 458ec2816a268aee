//! Storage errors, classified the way callers must react to them (PLATFORM.md §10.1).

use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (refused, reset, timeout, SQLSTATE class 08, 57P01–57P03).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Serialization failure, deadlock or lock timeout: the caller may retry.
    #[error("concurrent modification: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Other(String),
}

/// The outcome of a business operation that failed: storage trouble, or a rule that refused the command.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("refused: {}", .0.code)]
    Rejected(domain::rejection::Rejection),
}

impl From<DbErr> for OpError {
    fn from(e: DbErr) -> Self {
        OpError::Store(e.into())
    }
}

impl From<domain::rejection::Rejection> for OpError {
    fn from(r: domain::rejection::Rejection) -> Self {
        OpError::Rejected(r)
    }
}

impl crate::db::Transient for OpError {
    fn is_transient(&self) -> bool {
        matches!(self, OpError::Store(StoreError::Conflict(_)))
    }
}

impl From<DbErr> for StoreError {
    fn from(e: DbErr) -> Self {
        classify(&e.to_string())
    }
}

/// Sorts an error message into the three classes. sqlx reports connection problems as I/O or pool-timeout errors and
/// PostgreSQL ones with their SQLSTATE, which SeaORM keeps in the message.
pub fn classify(message: &str) -> StoreError {
    let m = message.to_ascii_lowercase();
    let connection = [
        "connection refused",
        "connection reset",
        "broken pipe",
        "pool timed out",
        "timed out",
        "error communicating with database",
        "error connecting",
        "connection closed",
        "unexpected eof",
        "terminating connection",
        "the database system is",
        "no connection",
        "disconnected",
        "57p01",
        "57p02",
        "57p03",
        "sqlstate 08",
        "code: 08",
    ];
    let conflict = ["40001", "40p01", "55p03", "could not serialize", "deadlock", "database is locked", "lock timeout"];
    if connection.iter().any(|k| m.contains(k)) {
        StoreError::Unavailable(message.to_string())
    } else if conflict.iter().any(|k| m.contains(k)) {
        StoreError::Conflict(message.to_string())
    } else {
        StoreError::Other(message.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_class_errors_mean_unavailable() {
        assert!(matches!(
            classify("Connection Error: error communicating with database: Connection refused (os error 111)"),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify("Connection Error: pool timed out while waiting for an open connection"),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify(
                "Execution Error: error returned from database: 57P01 terminating connection due to administrator command"
            ),
            StoreError::Unavailable(_)
        ));
    }

    #[test]
    fn serialization_and_deadlocks_are_conflicts() {
        assert!(matches!(classify("error returned from database: deadlock detected"), StoreError::Conflict(_)));
        assert!(matches!(classify("database is locked"), StoreError::Conflict(_)));
    }

    #[test]
    fn other_errors_stay_other() {
        assert!(matches!(classify("UNIQUE constraint failed: server_secrets.name"), StoreError::Other(_)));
    }
}
