//! What a routed location sends upstream of a viewer's query string
//! (`edge_router_query`). The cache and collapse keys are built from the
//! same value, so the key of an answer is exactly what the origin was
//! asked: a viewer cannot store one answer under another request's key.

use rtmp_live_types::delivery::{BadQuery, Canonical, Directives};

/// The rule of a location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryRule {
    /// Segments, parts, init segments: nothing of the query goes upstream
    /// (it names nothing; llhls refuses a part with one).
    #[default]
    Drop,
    /// Playlists: the LL-HLS delivery directives, canonical; anything else
    /// is a 400.
    Delivery,
}

/// The upstream query for `args` (without the `?`) under `rule`: empty for
/// none. Held inline: nothing is allocated per request.
pub fn upstream_query(rule: QueryRule, args: &[u8]) -> Result<Canonical, BadQuery> {
    match rule {
        QueryRule::Drop => Ok(Directives::default().canonical_bytes()),
        QueryRule::Delivery => Directives::parse(args).map(|d| d.canonical_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_parts_send_no_query() {
        for q in ["", "x=1", "_HLS_msn=1", "%00", "a&&b"] {
            assert_eq!(
                upstream_query(QueryRule::Drop, q.as_bytes()).as_deref(),
                Ok(&b""[..])
            );
        }
    }

    #[test]
    fn playlists_send_the_canonical_directives_or_are_refused() {
        let q = |s: &str| {
            upstream_query(QueryRule::Delivery, s.as_bytes())
                .map(|c| String::from_utf8(c.to_vec()).unwrap())
        };
        assert_eq!(q("").as_deref(), Ok(""));
        assert_eq!(
            q("_HLS_part=2&_HLS_msn=7").as_deref(),
            Ok("_HLS_msn=7&_HLS_part=2")
        );
        assert_eq!(q("_HLS_skip=v2").as_deref(), Ok("_HLS_skip=YES"));
        // the spellings: each a 400, never another key
        assert_eq!(
            q("_HLS_msn=99&_HLS_part=1&_HLS_msn=0"),
            Err(BadQuery::Repeated)
        );
        assert_eq!(q("_HLS_msn=0042"), Err(BadQuery::Msn));
        assert_eq!(q("_HLS_msn=+42"), Err(BadQuery::Msn));
        assert_eq!(
            q("_HLS_msn=1&_HLS_part=18446744073709551615"),
            Err(BadQuery::Part)
        );
        assert_eq!(q("v=1"), Err(BadQuery::Unknown));
    }
}
