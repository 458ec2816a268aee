//! Identity rules (DOMAIN.md §2, §20; PLATFORM.md §4): roles, who may call what, the password policy, e-mail
//! normalisation, the login lockout and refresh-token reuse.

/// The five roles. A user has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Admin,
    Appro,
    Production,
    Commercial,
    Comptable,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::Appro, Role::Production, Role::Commercial, Role::Comptable];

    pub fn code(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Appro => "APPRO",
            Role::Production => "PRODUCTION",
            Role::Commercial => "COMMERCIAL",
            Role::Comptable => "COMPTABLE",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == s)
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            Role::Admin => "Administrateur",
            Role::Appro => "Approvisionnement",
            Role::Production => "Production",
            Role::Commercial => "Commercial",
            Role::Comptable => "Comptable",
        }
    }

    /// Landing page after login (UI.md §2).
    pub fn landing(self) -> &'static str {
        match self {
            Role::Admin => "/tableau-de-bord",
            Role::Appro => "/appro",
            Role::Production => "/production",
            Role::Commercial => "/ventes",
            Role::Comptable => "/comptabilite",
        }
    }
}

/// Who may call a route. Every route declares one; a route without a declaration is refused to everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No session needed (health, login, refresh, the login and first-run pages).
    Public,
    /// Any authenticated user, whatever the role (me, logout, change password, my account).
    AnySession,
    /// Only these roles.
    Roles(&'static [Role]),
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No valid session: 401 (API) or a redirect to the login page.
    Unauthenticated,
    /// Authenticated, role not allowed: 403 `ACCES_REFUSE`, audited.
    Forbidden,
}

impl Access {
    pub fn check(self, role: Option<Role>) -> Result<(), Refusal> {
        match (self, role) {
            (Access::Public, _) => Ok(()),
            (_, None) => Err(Refusal::Unauthenticated),
            (Access::AnySession, Some(_)) => Ok(()),
            (Access::Roles(allowed), Some(r)) if allowed.contains(&r) => Ok(()),
            (Access::Roles(_), Some(_)) => Err(Refusal::Forbidden),
        }
    }

    /// Undeclared routes: refused to everyone, anonymous included.
    pub fn check_declared(declared: Option<Access>, role: Option<Role>) -> Result<(), Refusal> {
        match declared {
            Some(a) => a.check(role),
            None => Err(if role.is_some() { Refusal::Forbidden } else { Refusal::Unauthenticated }),
        }
    }

    /// Role codes for the OpenAPI document: `PUBLIC`, `AUTHENTICATED` or the role list.
    pub fn describe(self) -> Vec<&'static str> {
        match self {
            Access::Public => vec!["PUBLIC"],
            Access::AnySession => vec!["AUTHENTICATED"],
            Access::Roles(r) => r.iter().map(|r| r.code()).collect(),
        }
    }
}

pub const PASSWORD_MIN_CHARS: usize = 12;
pub const PASSWORD_MAX_CHARS: usize = 128;

/// The password policy (DOMAIN.md §20, PLATFORM.md §4.4). Returns the failed rules, empty when the password is
/// acceptable: `MIN_LENGTH` (also for more than 128 characters), `CHAR_CLASSES`, `SAME_AS_OLD`, `CONTAINS_EMAIL`.
pub fn password_failures(new: &str, old: Option<&str>, email: &str) -> Vec<&'static str> {
    let mut failed = Vec::new();
    let n = new.chars().count();
    if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&n) {
        failed.push("MIN_LENGTH");
    }
    let lower = new.chars().any(char::is_lowercase);
    let upper = new.chars().any(char::is_uppercase);
    let digit = new.chars().any(|c| c.is_ascii_digit());
    let other = new.chars().any(|c| !c.is_alphanumeric());
    if !(lower && upper && digit && other) {
        failed.push("CHAR_CLASSES");
    }
    if old.is_some_and(|o| o == new) {
        failed.push("SAME_AS_OLD");
    }
    let local = email.split('@').next().unwrap_or("").trim().to_lowercase();
    if !local.is_empty() && new.to_lowercase().contains(&local) {
        failed.push("CONTAINS_EMAIL");
    }
    failed
}

/// French wording of each rule, for the checklist of the change-password page.
pub fn password_rule_fr(code: &str) -> &'static str {
    match code {
        "MIN_LENGTH" => "12 à 128 caractères",
        "CHAR_CLASSES" => "au moins une minuscule, une majuscule, un chiffre et un caractère spécial",
        "SAME_AS_OLD" => "différent de l'ancien mot de passe",
        "CONTAINS_EMAIL" => "ne contient pas la partie de l'adresse e-mail avant le @",
        _ => "règle inconnue",
    }
}

pub const PASSWORD_RULES: [&str; 4] = ["MIN_LENGTH", "CHAR_CLASSES", "SAME_AS_OLD", "CONTAINS_EMAIL"];

/// Trims and lower-cases an e-mail and checks its shape (`EMAIL_INVALIDE` otherwise).
pub fn normalize_email(raw: &str) -> Option<String> {
    let e = raw.trim().to_lowercase();
    let (local, domain) = e.split_once('@')?;
    let ok = !local.is_empty()
        && local.len() <= 64
        && e.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && e.chars().all(|c| !c.is_whitespace() && !c.is_control() && c != '<' && c != '>' && c != ',');
    ok.then_some(e)
}

pub const LOCKOUT_FAILURES: u32 = 5;
pub const LOCKOUT_SECS: i64 = 15 * 60;

/// A row of `login_attempts` (times in Unix seconds), kept whether or not the account exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attempts {
    pub failures: u32,
    pub first_failure_at: Option<i64>,
    pub locked_until: Option<i64>,
}

impl Attempts {
    /// Seconds until the lock ends, if locked at `now`.
    pub fn locked_for(&self, now: i64) -> Option<i64> {
        self.locked_until.filter(|&u| u > now).map(|u| u - now)
    }

    /// The row after one more failure at `now`: the fifth consecutive failure locks for 15 minutes. A lock that has
    /// run out starts a fresh count.
    pub fn after_failure(self, now: i64) -> Attempts {
        let base = if self.locked_until.is_some_and(|u| u <= now) { Attempts::default() } else { self };
        let failures = base.failures + 1;
        Attempts {
            failures,
            first_failure_at: base.first_failure_at.or(Some(now)),
            locked_until: if failures >= LOCKOUT_FAILURES { Some(now + LOCKOUT_SECS) } else { None },
        }
    }
}

/// A rotated refresh token presented again within this many seconds is a benign race (two tabs, a retry).
pub const REFRESH_REUSE_GRACE_SECS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshVerdict {
    /// Current token: rotate it.
    Rotate,
    /// Rotated less than 30 s ago: a new access token, no new refresh token, nothing revoked.
    Grace,
    /// Rotated earlier: theft assumed, the family is revoked and a SECURITY entry written.
    Reuse,
    /// Expired or revoked: 401.
    Invalid,
}

pub fn refresh_verdict(
    rotated_at: Option<i64>,
    revoked: bool,
    expires_at: i64,
    family_revoked: bool,
    now: i64,
) -> RefreshVerdict {
    if revoked || family_revoked {
        return RefreshVerdict::Invalid;
    }
    match rotated_at {
        Some(t) if now - t <= REFRESH_REUSE_GRACE_SECS => RefreshVerdict::Grace,
        Some(_) => RefreshVerdict::Reuse,
        None if expires_at <= now => RefreshVerdict::Invalid,
        None => RefreshVerdict::Rotate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_land_on_their_dashboard() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.code()), Some(r));
        }
        assert_eq!(Role::parse("admin"), None);
        assert_eq!(Role::Comptable.landing(), "/comptabilite");
    }

    #[test]
    fn access_is_deny_by_default() {
        const ADMIN_ONLY: Access = Access::Roles(&[Role::Admin]);
        assert_eq!(ADMIN_ONLY.check(Some(Role::Admin)), Ok(()));
        assert_eq!(ADMIN_ONLY.check(Some(Role::Comptable)), Err(Refusal::Forbidden));
        assert_eq!(ADMIN_ONLY.check(None), Err(Refusal::Unauthenticated));
        assert_eq!(Access::AnySession.check(Some(Role::Appro)), Ok(()));
        assert_eq!(Access::AnySession.check(None), Err(Refusal::Unauthenticated));
        assert_eq!(Access::Public.check(None), Ok(()));
        assert_eq!(Access::check_declared(None, Some(Role::Admin)), Err(Refusal::Forbidden));
        assert_eq!(Access::check_declared(None, None), Err(Refusal::Unauthenticated));
    }

    #[test]
    fn password_policy_lists_every_failed_rule() {
        assert!(password_failures("Fromage#2025!", None, "k.benali@fromagerie.dz").is_empty());
        assert_eq!(password_failures("Court#1a", None, "x@y.dz"), vec!["MIN_LENGTH"]);
        assert_eq!(password_failures("toutenminuscule1!", None, "x@y.dz"), vec!["CHAR_CLASSES"]);
        assert_eq!(password_failures("Fromage#2025!", Some("Fromage#2025!"), "x@y.dz"), vec!["SAME_AS_OLD"]);
        assert_eq!(password_failures("K.Benali#2025xx", None, "k.benali@fromagerie.dz"), vec!["CONTAINS_EMAIL"]);
        assert_eq!(password_failures("abc", None, "abc@y.dz"), vec!["MIN_LENGTH", "CHAR_CLASSES", "CONTAINS_EMAIL"]);
        // Accented letters count as letters, 12 characters (not bytes) are enough.
        assert!(password_failures("Éléphant#203", None, "x@y.dz").is_empty());
        assert_eq!(password_failures(&format!("Aa1#{}", "x".repeat(125)), None, "q@y.dz"), vec!["MIN_LENGTH"]);
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(normalize_email("  K.Benali@Fromagerie.DZ "), Some("k.benali@fromagerie.dz".into()));
        for bad in ["", "sans-arobase", "@fromagerie.dz", "a@b", "a@@b.dz", "a b@c.dz", "a@b..dz", "a@.b.dz"] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
    }

    #[test]
    fn five_failures_lock_for_fifteen_minutes() {
        let mut a = Attempts::default();
        for i in 0..4 {
            a = a.after_failure(1000 + i);
            assert_eq!(a.locked_for(1000 + i), None);
        }
        a = a.after_failure(1004);
        assert_eq!((a.failures, a.first_failure_at), (5, Some(1000)));
        assert_eq!(a.locked_for(1004), Some(900));
        assert_eq!(a.locked_for(1004 + 899), Some(1));
        assert_eq!(a.locked_for(1004 + 900), None);
        // A failure after the lock ran out starts a new count.
        let b = a.after_failure(1004 + 901);
        assert_eq!((b.failures, b.locked_until), (1, None));
    }

    #[test]
    fn refresh_reuse_has_a_thirty_second_grace() {
        use RefreshVerdict::*;
        assert_eq!(refresh_verdict(None, false, 2000, false, 1000), Rotate);
        assert_eq!(refresh_verdict(None, false, 1000, false, 1000), Invalid);
        assert_eq!(refresh_verdict(Some(990), false, 2000, false, 1000), Grace);
        assert_eq!(refresh_verdict(Some(970), false, 2000, false, 1000), Grace);
        assert_eq!(refresh_verdict(Some(969), false, 2000, false, 1000), Reuse);
        assert_eq!(refresh_verdict(None, false, 2000, true, 1000), Invalid);
        assert_eq!(refresh_verdict(Some(500), true, 2000, false, 1000), Invalid);
    }
}
