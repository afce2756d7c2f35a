//! What `jwtgrant explain` shows: each rule of PROTOCOL.md run on one assertion (and
//! its client assertion), with pass, fail or skipped and why. The rules are the same
//! functions the server runs; the server stops at the first that fails, the
//! explanation records each and goes on where the next one has what it reads, so
//! its first failure is the server's refusal.

use std::fmt::Display;

use crate::client_auth::ClientAuthError;
use crate::error::GrantError;

/// A refusal with a stable rule code: the core's error types.
pub trait Refusal: Display {
    /// The rule code its description leads with.
    fn rule(&self) -> &'static str;
}

impl Refusal for GrantError {
    fn rule(&self) -> &'static str {
        GrantError::rule(self)
    }
}

impl Refusal for ClientAuthError {
    fn rule(&self) -> &'static str {
        ClientAuthError::rule(self)
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The rule holds.
    Pass,
    /// The rule refuses the assertion.
    Fail,
    /// Not run: what it reads is missing (an earlier rule failed) or it does not
    /// apply to this assertion.
    Skip,
}

impl Verdict {
    /// `pass`, `fail` or `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Skip => "skip",
        }
    }
}

/// One rule run on the assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked: `assertion`, `client_assertion` or `decision`.
    pub part: &'static str,
    /// The rule's name in PROTOCOL.md's words (`signature`, `audience`, ...).
    pub name: &'static str,
    /// Its outcome.
    pub verdict: Verdict,
    /// On a failure, the rule code the server's refusal leads with.
    pub rule: Option<&'static str>,
    /// Why: what held, the refusal's description, or why it was not run.
    pub reason: String,
}

/// The checks of one assertion, in the order the server runs them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Explanation {
    part: &'static str,
    checks: Vec<Check>,
}

impl Explanation {
    /// An empty explanation whose checks belong to `part`.
    pub fn new(part: &'static str) -> Self {
        Explanation {
            part,
            checks: Vec::new(),
        }
    }

    /// The checks that follow belong to `part`.
    pub fn part(&mut self, part: &'static str) {
        self.part = part;
    }

    /// Records a rule that holds.
    pub fn pass(&mut self, name: &'static str, reason: impl Into<String>) {
        self.push(name, Verdict::Pass, None, reason.into());
    }

    /// Records a rule that refuses, with the refusal the server would answer.
    pub fn fail(&mut self, name: &'static str, refusal: &impl Refusal) {
        self.push(
            name,
            Verdict::Fail,
            Some(refusal.rule()),
            refusal.to_string(),
        );
    }

    /// Records a rule that refuses, with the refusal and what the server does not
    /// tell the client (why a condition failed).
    pub fn fail_because(&mut self, name: &'static str, refusal: &impl Refusal, why: &str) {
        self.push(
            name,
            Verdict::Fail,
            Some(refusal.rule()),
            format!("{refusal} ({why})"),
        );
    }

    /// Records a rule not run, and why.
    pub fn skip(&mut self, name: &'static str, reason: impl Into<String>) {
        self.push(name, Verdict::Skip, None, reason.into());
    }

    /// Records the outcome of a rule: on success what `passed` says of its value,
    /// which is returned; on failure the refusal.
    pub fn check<T, E: Refusal>(
        &mut self,
        name: &'static str,
        result: Result<T, E>,
        passed: impl FnOnce(&T) -> String,
    ) -> Option<T> {
        match result {
            Ok(value) => {
                self.pass(name, passed(&value));
                Some(value)
            }
            Err(refusal) => {
                self.fail(name, &refusal);
                None
            }
        }
    }

    /// Every check, in order.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// The first failed check: the one the server's refusal names.
    pub fn first_failure(&self) -> Option<&Check> {
        self.checks.iter().find(|c| c.verdict == Verdict::Fail)
    }

    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        self.first_failure().is_none()
    }

    /// Whether no check failed after the first `start` ones.
    pub fn passed_since(&self, start: usize) -> bool {
        self.checks
            .get(start..)
            .is_none_or(|checks| checks.iter().all(|c| c.verdict != Verdict::Fail))
    }

    fn push(
        &mut self,
        name: &'static str,
        verdict: Verdict,
        rule: Option<&'static str>,
        reason: String,
    ) {
        self.checks.push(Check {
            part: self.part,
            name,
            verdict,
            rule,
            reason,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_the_refusal_and_parts_are_kept() {
        let mut explanation = Explanation::new("client_assertion");
        explanation.pass("parse", "a compact JWS");
        explanation.part("assertion");
        let value = explanation.check(
            "audience",
            Err::<(), _>(GrantError::AudienceMismatch),
            |_| String::new(),
        );
        assert!(value.is_none());
        explanation.fail("expiry", &GrantError::Expired);
        explanation.skip("jti_unused", "no jti");
        let first = explanation.first_failure().unwrap();
        assert_eq!(
            (first.part, first.name, first.rule),
            ("assertion", "audience", Some("audience_mismatch"))
        );
        assert!(first.reason.starts_with("audience_mismatch: "));
        assert_eq!(explanation.checks()[0].part, "client_assertion");
        assert_eq!(explanation.checks()[3].verdict.as_str(), "skip");
        assert!(!explanation.passed());
    }
}
