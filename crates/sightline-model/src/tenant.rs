//! Tenants: every record belongs to one, and no query sees another's data.

use std::fmt;

/// The tenant used when a request names none (no `X-Scope-OrgID` header).
pub const DEFAULT_TENANT: &str = "default";

/// Longest tenant id accepted.
pub const TENANT_ID_LEN_MAX: usize = 64;

/// A validated tenant id: 1..=64 characters of `[A-Za-z0-9_.-]`, never `.` or `..`.
///
/// The id is used as a path component in object storage, hence the strict alphabet.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

/// Why a tenant id was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TenantError {
    #[error("tenant id is empty")]
    Empty,
    #[error("tenant id is longer than {TENANT_ID_LEN_MAX} characters")]
    TooLong,
    #[error("tenant id {0:?} has a character outside [A-Za-z0-9_.-]")]
    BadCharacter(String),
}

impl TenantId {
    /// Validates `id` as a tenant id.
    pub fn new(id: &str) -> Result<Self, TenantError> {
        if id.is_empty() {
            return Err(TenantError::Empty);
        }
        if id.len() > TENANT_ID_LEN_MAX {
            return Err(TenantError::TooLong);
        }
        let ok = id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !ok || id == "." || id == ".." {
            return Err(TenantError::BadCharacter(id.to_string()));
        }
        Ok(Self(id.to_string()))
    }

    /// The default tenant.
    pub fn default_tenant() -> Self {
        Self(DEFAULT_TENANT.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self::default_tenant()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_tenant_ids() {
        assert!(TenantId::new("team-a_1.prod").is_ok());
        assert_eq!(TenantId::new(""), Err(TenantError::Empty));
        assert!(matches!(
            TenantId::new("a/b"),
            Err(TenantError::BadCharacter(_))
        ));
        assert!(matches!(
            TenantId::new(".."),
            Err(TenantError::BadCharacter(_))
        ));
        assert_eq!(TenantId::new(&"x".repeat(65)), Err(TenantError::TooLong));
    }
}
