//! Backstage's naming rules (`KubernetesValidatorFunctions` and the default
//! `FieldFormatEntityPolicy`), one function per kind of value. Each returns
//! the problem as a phrase that reads after the field's name.

/// Longest name, namespace, kind, label value or tag (Kubernetes' limit).
pub const MAX_NAME_LEN: usize = 63;

/// Longest DNS subdomain: the prefix of an apiVersion, label or annotation key.
pub const MAX_DNS_SUBDOMAIN_LEN: usize = 253;

fn check_len(value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() {
        Err("must not be empty".into())
    } else if value.len() > max {
        Err(format!(
            "is {} characters long; at most {max} are allowed",
            value.len()
        ))
    } else {
        Ok(())
    }
}

/// Entity names: `[a-zA-Z0-9]` at both ends, `[-a-zA-Z0-9_.]` between, at
/// most 63 characters.
pub fn check_name(value: &str) -> Result<(), String> {
    check_len(value, MAX_NAME_LEN)?;
    let bytes = value.as_bytes();
    let inner_ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if !bytes.iter().all(|&b| inner_ok(b)) {
        return Err(format!(
            "{value:?} may only contain letters, digits, '-', '_' and '.'"
        ));
    }
    if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return Err(format!(
            "{value:?} must start and end with a letter or a digit"
        ));
    }
    Ok(())
}

/// Namespaces: a DNS label, `[a-z0-9]+(-[a-z0-9]+)*`, at most 63 characters.
pub fn check_namespace(value: &str) -> Result<(), String> {
    check_dns_label(value)
}

fn check_dns_label(value: &str) -> Result<(), String> {
    check_len(value, MAX_NAME_LEN)?;
    let ok = value.split('-').all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{value:?} must be lowercase letters and digits in groups joined by single '-'"
        ))
    }
}

fn check_dns_subdomain(value: &str) -> Result<(), String> {
    check_len(value, MAX_DNS_SUBDOMAIN_LEN)?;
    for label in value.split('.') {
        check_dns_label(label)
            .map_err(|_| format!("{value:?} must be a DNS name: lowercase labels joined by '.'"))?;
    }
    Ok(())
}

/// Kinds: a letter, then letters and digits, at most 63 characters.
pub fn check_kind(value: &str) -> Result<(), String> {
    check_len(value, MAX_NAME_LEN)?;
    let bytes = value.as_bytes();
    if bytes[0].is_ascii_alphabetic() && bytes.iter().all(u8::is_ascii_alphanumeric) {
        Ok(())
    } else {
        Err(format!(
            "{value:?} must be a letter followed by letters and digits"
        ))
    }
}

/// `apiVersion`: `version` or `group/version`, the group a DNS name, the
/// version letters and digits (`backstage.io/v1alpha1`).
pub fn check_api_version(value: &str) -> Result<(), String> {
    let version = match value.split_once('/') {
        Some((group, version)) => {
            check_dns_subdomain(group).map_err(|p| format!("group {p}"))?;
            version
        }
        None => value,
    };
    check_len(version, MAX_NAME_LEN).map_err(|p| format!("version {p}"))?;
    if version.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(format!(
            "{value:?} must be <group>/<version> with a version of letters and digits"
        ))
    }
}

/// Label and annotation keys: `[prefix/]name`, the prefix a DNS name and
/// the name an entity name (`backstage.io/techdocs-ref`).
pub fn check_key(value: &str) -> Result<(), String> {
    match value.split_once('/') {
        Some((prefix, name)) => {
            check_dns_subdomain(prefix).map_err(|p| format!("prefix {p}"))?;
            check_name(name)
        }
        None => check_name(value),
    }
}

/// Label values: empty, or like an entity name.
pub fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        Ok(())
    } else {
        check_name(value)
    }
}

/// Tags: lowercase `[a-z0-9:+#]` words joined by single '-', at most 63
/// characters (`java`, `c++`, `k8s:prod`).
pub fn check_tag(value: &str) -> Result<(), String> {
    check_len(value, MAX_NAME_LEN)?;
    let word = |w: &str| {
        !w.is_empty()
            && w.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b':' | b'+' | b'#')
            })
    };
    if value.split('-').all(word) {
        Ok(())
    } else {
        Err(format!(
            "{value:?} must be lowercase letters, digits, ':', '+' or '#', in words joined by single '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "payments-service", "A_b.c-9", &"x".repeat(63)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "a b", "a/b", "é", &"x".repeat(64), "_a"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn namespaces() {
        for ok in ["default", "team-a", "a1"] {
            assert!(check_namespace(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Default", "a_b", "a--b", "-a", "a."] {
            assert!(check_namespace(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kinds_and_api_versions() {
        assert!(check_kind("Component").is_ok());
        assert!(check_kind("API").is_ok());
        assert!(check_kind("1x").is_err());
        assert!(check_kind("my-kind").is_err());
        for ok in [
            "backstage.io/v1alpha1",
            "v1",
            "scaffolder.backstage.io/v1beta3",
        ] {
            assert!(check_api_version(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "backstage.io/",
            "/v1",
            "Backstage.io/v1",
            "a/b/c",
            "x/v-1",
        ] {
            assert!(check_api_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_values_and_tags() {
        for ok in [
            "tier",
            "backstage.io/techdocs-ref",
            "github.com/project-slug",
        ] {
            assert!(check_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "Bad.io/x", "x/", "/x"] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("gold").is_ok());
        assert!(check_label_value("not ok").is_err());
        for ok in ["java", "c++", "k8s:prod", "c#", "a-b"] {
            assert!(check_tag(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Java", "a b", "a--b", "-a", "a_b"] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
    }
}
