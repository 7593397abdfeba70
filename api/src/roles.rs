//! The bearer credentials of the two narrow roles beside the registry
//! writers: the operator, who issues playback tokens, and the edges, which
//! report viewer counts. Each role has its own token and each token opens
//! only its role's routes, so a leaked edge token can neither issue
//! playback links nor rewrite the registry, and a registry token cannot
//! report viewers.

use subtle::ConstantTimeEq;

use crate::auth::{bearer, Tokens};
use crate::error::ApiError;

/// Shortest accepted role token: tokens are secrets.
pub const MIN_ROLE_TOKEN_LEN: usize = 16;

/// Who may act in one role.
#[derive(Clone)]
pub enum RoleToken {
    /// Callers must present this token.
    Token(String),
    /// No token configured and `--insecure-no-auth`: anyone may (as the
    /// registry writes are open then).
    Open,
    /// No token configured: the role's routes answer 503.
    Unset,
}

impl std::fmt::Debug for RoleToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RoleToken::Token(_) => "Token(redacted)",
            RoleToken::Open => "Open",
            RoleToken::Unset => "Unset",
        })
    }
}

impl RoleToken {
    /// A configured token (blank counts as unset): printable ASCII without
    /// spaces, at least [`MIN_ROLE_TOKEN_LEN`] characters. Errors name
    /// `var`, never the token.
    pub fn parse(var: &str, value: Option<&str>, insecure: bool) -> Result<RoleToken, String> {
        let Some(t) = value.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(if insecure {
                RoleToken::Open
            } else {
                RoleToken::Unset
            });
        };
        if t.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(format!(
                "{var}: the token must be printable ASCII without spaces"
            ));
        }
        if t.len() < MIN_ROLE_TOKEN_LEN {
            return Err(format!(
                "{var}: the token is {} characters long, at least {MIN_ROLE_TOKEN_LEN} are \
                 required (e.g. 32 hex characters from /dev/urandom)",
                t.len()
            ));
        }
        Ok(RoleToken::Token(t.to_string()))
    }

    /// The token, if one is configured.
    pub fn secret(&self) -> Option<&str> {
        match self {
            RoleToken::Token(t) => Some(t),
            _ => None,
        }
    }

    /// Whether an `Authorization` header value acts in this role: 401 for a
    /// missing or wrong token (compared in constant time), 503 `unset` when
    /// the role has no token and the API is not insecure.
    pub fn check(&self, header: Option<&str>, unset: &'static str) -> Result<(), ApiError> {
        match self {
            RoleToken::Open => Ok(()),
            RoleToken::Unset => Err(ApiError::Unavailable(unset)),
            RoleToken::Token(t) => {
                let given = bearer(header).ok_or(ApiError::Unauthorized)?;
                if bool::from(t.as_bytes().ct_eq(given.as_bytes())) {
                    Ok(())
                } else {
                    Err(ApiError::Unauthorized)
                }
            }
        }
    }
}

/// Refuses a configuration where one token serves two roles (the operator,
/// the edges, the registry writers): its holder would have both.
pub fn distinct(operator: &RoleToken, edge: &RoleToken, registry: &Tokens) -> Result<(), String> {
    let registry_has =
        |t: &str| !registry.is_open() && registry.check(Some(&format!("Bearer {t}"))).is_ok();
    if let (Some(o), Some(e)) = (operator.secret(), edge.secret()) {
        if o == e {
            return Err("API_OPERATOR_TOKEN and API_EDGE_TOKEN must differ".into());
        }
    }
    for (var, t) in [
        ("API_OPERATOR_TOKEN", operator.secret()),
        ("API_EDGE_TOKEN", edge.secret()),
    ] {
        if t.is_some_and(registry_has) {
            return Err(format!(
                "{var} must differ from API_REPORT_TOKEN and every API_ORIGIN_TOKENS token"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "operator-token-0123456789";

    #[test]
    fn parse_and_check() {
        let r = RoleToken::parse("X", Some(T), false).unwrap();
        assert!(r.check(Some(&format!("Bearer {T}")), "off").is_ok());
        assert!(r.check(Some(&format!("bearer  {T} ")), "off").is_ok());
        for bad in [
            None,
            Some(T),
            Some("Bearer operator-token-012345678"),
            Some("Basic x"),
            Some("Bearer "),
        ] {
            assert!(
                matches!(r.check(bad, "off"), Err(ApiError::Unauthorized)),
                "{bad:?}"
            );
        }
        let unset = RoleToken::parse("X", Some("  "), false).unwrap();
        assert!(matches!(
            unset.check(None, "off"),
            Err(ApiError::Unavailable("off"))
        ));
        let open = RoleToken::parse("X", None, true).unwrap();
        assert!(open.check(None, "off").is_ok());
        let e = RoleToken::parse("X", Some("short"), true).unwrap_err();
        assert!(e.contains("at least 16") && !e.contains("short"), "{e}");
        assert!(RoleToken::parse("X", Some("has a space in it!!"), false).is_err());
        assert_eq!(format!("{r:?}"), "Token(redacted)");
    }

    #[test]
    fn one_token_one_role() {
        let op = RoleToken::parse("O", Some(T), false).unwrap();
        let edge = RoleToken::parse("E", Some("edge-token-0123456789"), false).unwrap();
        let reg = Tokens::parse(
            Some("registry-token-0123456789"),
            Some("origin-token-0123=h:1"),
        )
        .unwrap();
        assert!(distinct(&op, &edge, &reg).is_ok());
        assert!(distinct(&op, &op, &reg).is_err());
        let same = Tokens::parse(None, Some(&format!("{T}=h:1"))).unwrap();
        assert!(distinct(&op, &edge, &same)
            .unwrap_err()
            .contains("API_OPERATOR_TOKEN"));
        let open = Tokens::parse(None, None).unwrap();
        assert!(distinct(&op, &edge, &open).is_ok());
    }
}
