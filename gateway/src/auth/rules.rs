//! Who may call what: per route, prefix or service rules, and the default policy.

use std::collections::BTreeSet;

use serde::Deserialize;

/// What a rule requires of a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Anyone, with or without credentials (invalid credentials are still refused).
    Public,
    /// Any authenticated caller.
    Authenticated,
    /// An authenticated caller holding every one of these scopes (JWT scope claim, API key
    /// scopes, certificate scopes).
    Scopes(BTreeSet<String>),
}

/// The policy for calls no rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultPolicy {
    /// Refused (the default once an `[auth]` section exists): every callable method needs a
    /// rule naming it, its service or a prefix, so a method added under a prefix is not
    /// exposed by accident.
    #[default]
    Deny,
    /// Public.
    Allow,
}

/// One rule: a gRPC path, a path prefix or a service, and what it requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    /// `/pkg.Service/Method` (one method), a prefix ending in `/` or `.` (`/pkg.Service/`,
    /// `/pkg.`), or a full service name `pkg.Service` (all its methods).
    pub target: String,
    /// What callers need.
    pub access: Access,
}

impl AccessRule {
    /// A rule for `target` (see [`AccessRule::target`]).
    pub fn new(target: impl Into<String>, access: Access) -> Self {
        AccessRule {
            target: target.into(),
            access,
        }
    }

    /// The path prefix (or exact path) the rule covers, and whether it is exact.
    fn pattern(&self) -> (String, bool) {
        let target = self.target.as_str();
        if !target.starts_with('/') {
            return (format!("/{target}/"), false);
        }
        let exact = target.len() > 1
            && !target.ends_with('/')
            && !target.ends_with('.')
            && target[1..].contains('/');
        (target.to_owned(), exact)
    }

    /// `Err(message)` when the target is not one of the three forms.
    pub(crate) fn check(&self) -> Result<(), String> {
        let target = self.target.as_str();
        let valid = if let Some(rest) = target.strip_prefix('/') {
            !rest.is_empty() && !rest.starts_with('/') && !rest.contains("//")
        } else {
            !target.is_empty() && !target.contains('/')
        };
        if valid {
            Ok(())
        } else {
            Err(format!(
                "`{target}` is not a method (\"/pkg.Service/Method\"), a prefix (\"/pkg.\") or a service (\"pkg.Service\")"
            ))
        }
    }
}

/// The rules, most specific first: exact paths, then the longest prefix.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules {
    exact: Vec<(String, Access)>,
    prefixes: Vec<(String, Access)>,
}

impl Rules {
    pub(crate) fn new(rules: &[AccessRule]) -> Self {
        let mut compiled = Rules::default();
        for rule in rules {
            let (pattern, exact) = rule.pattern();
            if exact {
                compiled.exact.push((pattern, rule.access.clone()));
            } else {
                compiled.prefixes.push((pattern, rule.access.clone()));
            }
        }
        compiled
            .prefixes
            .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        compiled
    }

    /// The access the most specific rule for `path` requires, if any rule covers it.
    pub(crate) fn access(&self, path: &str) -> Option<&Access> {
        self.exact
            .iter()
            .find(|(exact, _)| exact == path)
            .or_else(|| {
                self.prefixes
                    .iter()
                    .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            })
            .map(|(_, access)| access)
    }

    /// Every rule as `(pattern, access)` text, for the admin `/routes` page.
    pub(crate) fn describe(&self) -> Vec<(String, String)> {
        self.exact
            .iter()
            .chain(&self.prefixes)
            .map(|(pattern, access)| (pattern.clone(), describe(access)))
            .collect()
    }
}

/// `public`, `authenticated` or `scopes: a, b`.
pub(crate) fn describe(access: &Access) -> String {
    match access {
        Access::Public => "public".into(),
        Access::Authenticated => "authenticated".into(),
        Access::Scopes(scopes) => format!(
            "scopes: {}",
            scopes.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_rule_wins() {
        let scopes = Access::Scopes(BTreeSet::from(["admin".to_owned()]));
        let rules = Rules::new(&[
            AccessRule::new("/demo.", Access::Authenticated),
            AccessRule::new("demo.v1.Greeter", Access::Public),
            AccessRule::new("/demo.v1.Greeter/Reset", scopes.clone()),
        ]);
        assert_eq!(
            rules.access("/demo.v1.Greeter/SayHello"),
            Some(&Access::Public)
        );
        assert_eq!(rules.access("/demo.v1.Greeter/Reset"), Some(&scopes));
        assert_eq!(
            rules.access("/demo.v2.Other/X"),
            Some(&Access::Authenticated)
        );
        assert_eq!(rules.access("/other.Svc/X"), None);
    }

    #[test]
    fn targets_are_checked() {
        for good in ["/a.B/C", "/a.", "/a.B/", "a.B"] {
            AccessRule::new(good, Access::Public)
                .check()
                .expect("valid target");
        }
        for bad in ["", "/", "a/B", "//x"] {
            assert!(
                AccessRule::new(bad, Access::Public).check().is_err(),
                "{bad}"
            );
        }
    }
}
