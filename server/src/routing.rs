//! Who may call and where a call goes: trunk admission by source address and the dialled number.

use std::net::IpAddr;

use ipnet::IpNet;

/// A trunk as admission needs it: an id and the networks it may send from.
#[derive(Debug, Clone)]
pub struct TrunkAdmission {
    pub id: String,
    pub allowed: Vec<IpNet>,
    /// Any source may try: the trunk checks digest credentials instead of addresses.
    pub any_source: bool,
}

impl TrunkAdmission {
    /// Whether `source` may send signalling for this trunk.
    pub fn allows(&self, source: IpAddr) -> bool {
        let source = canonical(source);
        self.any_source || self.allowed.iter().any(|net| net.contains(&source))
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The dialled number of an INVITE: the Request-URI user part, else the `To` user part.
///
/// Visual separators are removed and a `tel:`-style leading `00` is not rewritten; numbers are
/// matched as configured (E.164 with `+`). A bare national number without `+` is tried with a
/// `+` prefix too by the caller of this function.
pub fn dialled_number(request_uri_user: Option<&str>, to_user: Option<&str>) -> Option<String> {
    let raw = request_uri_user
        .filter(|u| !u.trim().is_empty())
        .or(to_user)?;
    // Strip URI parameters carried in the user part (`+9180...;npdi`) and visual separators.
    let user = raw.split(';').next().unwrap_or(raw);
    let cleaned: String = user
        .chars()
        .filter(|c| !matches!(c, '-' | '.' | '(' | ')' | ' '))
        .collect();
    if cleaned.is_empty() {
        None
    } else {
        Some(cleaned)
    }
}

/// Candidate spellings of a dialled number to look up: as sent, and with a leading `+`.
pub fn number_candidates(dialled: &str) -> Vec<String> {
    let mut candidates = vec![dialled.to_string()];
    if !dialled.starts_with('+') && dialled.chars().all(|c| c.is_ascii_digit()) {
        candidates.push(format!("+{dialled}"));
    }
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trunk(id: &str, nets: &[&str]) -> TrunkAdmission {
        TrunkAdmission {
            id: id.to_string(),
            allowed: nets.iter().map(|n| n.parse().expect("cidr")).collect(),
            any_source: false,
        }
    }

    #[test]
    fn admits_only_sources_inside_a_trunks_networks() {
        let twilio = trunk("twilio", &["54.172.60.0/30", "54.244.51.0/30"]);
        let local = trunk("local", &["127.0.0.1/32", "::1/128"]);
        assert!(twilio.allows("54.172.60.3".parse().unwrap()));
        assert!(!twilio.allows("54.172.60.4".parse().unwrap()));
        assert!(local.allows("127.0.0.1".parse().unwrap()));
        assert!(!local.allows("127.0.0.5".parse().unwrap()));
        assert!(local.allows("::1".parse().unwrap()));
        assert!(local.allows("::ffff:127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn dialled_number_prefers_request_uri_then_to() {
        assert_eq!(
            dialled_number(Some("+918000000001"), Some("+910000")).as_deref(),
            Some("+918000000001")
        );
        assert_eq!(
            dialled_number(None, Some("+918000000099")).as_deref(),
            Some("+918000000099")
        );
        assert_eq!(
            dialled_number(Some(""), Some("+91800")).as_deref(),
            Some("+91800")
        );
        assert_eq!(
            dialled_number(Some("+91-800-000-0001;npdi"), None).as_deref(),
            Some("+918000000001")
        );
        assert_eq!(dialled_number(None, None), None);
    }

    #[test]
    fn bare_numbers_are_also_tried_with_a_plus() {
        assert_eq!(
            number_candidates("918000000001"),
            vec!["918000000001", "+918000000001"]
        );
        assert_eq!(number_candidates("+918000000001"), vec!["+918000000001"]);
        assert_eq!(number_candidates("clinic"), vec!["clinic"]);
    }
}
