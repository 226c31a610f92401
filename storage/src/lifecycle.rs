//! Lifecycle policies in Amazon ECR's JSON format: parsing, ECR's
//! validation rules, and the evaluation (pure, so ECR's documented examples
//! are unit tests). A policy expires *images*: the manifests of a
//! repository that stand on their own (not a child of an index, not a
//! referrer, which live and go with what holds them).
//!
//! ECR's evaluation rules, kept here:
//! - rules apply in `rulePriority` order, lowest first;
//! - an image is expired by at most one rule;
//! - an image that matches the tag selection of a higher-priority rule is
//!   never expired by a lower-priority one, though it still counts towards
//!   that rule's `imageCountMoreThan` (rules "identify" images they cannot
//!   expire);
//! - `imageCountMoreThan N` keeps the N most recently pushed matching
//!   images and expires the older ones; `sinceImagePushed` /
//!   `sinceImagePulled` expire those pushed (pulled; pushed when never
//!   pulled) more than `countNumber` days ago;
//! - `tagPrefixList` / `tagPatternList` match an image when every entry
//!   matches at least one of its tags.

use crate::error::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};

const DAY: i64 = 86_400;
/// ECR's limit of wildcards per pattern.
const MAX_WILDCARDS: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rule {
    pub rule_priority: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub selection: Selection,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Selection {
    pub tag_status: TagStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_prefix_list: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_pattern_list: Option<Vec<String>>,
    pub count_type: CountType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_unit: Option<String>,
    pub count_number: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagStatus {
    Tagged,
    Untagged,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CountType {
    ImageCountMoreThan,
    SinceImagePushed,
    SinceImagePulled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    #[serde(rename = "type")]
    pub kind: ActionType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionType {
    Expire,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(
        ErrorCode::Unsupported,
        format!("invalid lifecycle policy: {}", msg.into()),
    )
}

impl Policy {
    /// Parse and validate policy text.
    pub fn parse(text: &str) -> Result<Policy> {
        let policy: Policy = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// ECR's rules for a policy to be accepted.
    pub fn validate(&self) -> Result<()> {
        if self.rules.is_empty() {
            return Err(invalid("a policy needs at least one rule"));
        }
        let mut seen = std::collections::HashSet::new();
        for r in &self.rules {
            let at = format!("rule {}", r.rule_priority);
            if r.rule_priority < 1 {
                return Err(invalid(format!(
                    "rulePriority must be 1 or more, got {}",
                    r.rule_priority
                )));
            }
            if !seen.insert(r.rule_priority) {
                return Err(invalid(format!(
                    "rulePriority {} is used twice; each rule needs its own",
                    r.rule_priority
                )));
            }
            let s = &r.selection;
            match (s.tag_status, &s.tag_prefix_list, &s.tag_pattern_list) {
                (TagStatus::Tagged, Some(_), Some(_)) => {
                    return Err(invalid(format!(
                        "{at}: tagPrefixList and tagPatternList cannot both be given"
                    )))
                }
                (TagStatus::Tagged, None, None) => {
                    return Err(invalid(format!(
                        "{at}: a tagged rule needs a tagPrefixList or a tagPatternList"
                    )))
                }
                (TagStatus::Tagged, Some(l), None) | (TagStatus::Tagged, None, Some(l))
                    if l.is_empty() || l.iter().any(String::is_empty) =>
                {
                    return Err(invalid(format!("{at}: tag lists cannot be or hold empty")))
                }
                (TagStatus::Untagged | TagStatus::Any, Some(_), _)
                | (TagStatus::Untagged | TagStatus::Any, _, Some(_)) => {
                    return Err(invalid(format!(
                        "{at}: tagPrefixList and tagPatternList are for tagged rules only"
                    )))
                }
                _ => {}
            }
            for p in s.tag_pattern_list.iter().flatten() {
                if p.matches('*').count() > MAX_WILDCARDS {
                    return Err(invalid(format!(
                        "{at}: pattern {p:?} has more than {MAX_WILDCARDS} wildcards"
                    )));
                }
            }
            if s.count_number < 1 {
                return Err(invalid(format!(
                    "{at}: countNumber must be 1 or more, got {}",
                    s.count_number
                )));
            }
            match (s.count_type, s.count_unit.as_deref()) {
                (CountType::ImageCountMoreThan, None) => {}
                (CountType::ImageCountMoreThan, Some(_)) => {
                    return Err(invalid(format!(
                        "{at}: countUnit is not allowed with imageCountMoreThan"
                    )))
                }
                (_, Some("days")) => {}
                (_, other) => {
                    return Err(invalid(format!(
                        "{at}: countUnit must be \"days\" with sinceImagePushed and sinceImagePulled, got {other:?}"
                    )))
                }
            }
        }
        let mut sorted: Vec<&Rule> = self.rules.iter().collect();
        sorted.sort_by_key(|r| r.rule_priority);
        if let Some(pos) = sorted
            .iter()
            .position(|r| r.selection.tag_status == TagStatus::Any)
        {
            if pos + 1 != sorted.len() {
                return Err(invalid(format!(
                    "the rule with tagStatus \"any\" (priority {}) must have the highest rulePriority",
                    sorted[pos].rule_priority
                )));
            }
        }
        Ok(())
    }
}

/// An image as a policy sees it.
#[derive(Debug, Clone)]
pub struct Image {
    pub digest: String,
    pub tags: Vec<String>,
    /// Unix seconds.
    pub pushed_at: i64,
    /// The same in milliseconds: what "newest" orders by.
    pub pushed_ms: i64,
    pub last_pulled: Option<i64>,
}

/// An image a policy expires, and the rule that does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expiry {
    pub digest: String,
    pub tags: Vec<String>,
    pub pushed_at: i64,
    pub last_pulled: Option<i64>,
    pub rule_priority: i64,
}

/// `*` matches any run of characters (ECR's tag patterns).
pub fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

impl Selection {
    fn selects(&self, image: &Image) -> bool {
        match self.tag_status {
            TagStatus::Any => true,
            TagStatus::Untagged => image.tags.is_empty(),
            TagStatus::Tagged => {
                if let Some(prefixes) = &self.tag_prefix_list {
                    prefixes
                        .iter()
                        .all(|p| image.tags.iter().any(|t| t.starts_with(p.as_str())))
                } else if let Some(patterns) = &self.tag_pattern_list {
                    patterns
                        .iter()
                        .all(|p| image.tags.iter().any(|t| glob(p, t)))
                } else {
                    false
                }
            }
        }
    }
}

/// What `policy` expires among `images` at `now`, oldest first.
pub fn evaluate(policy: &Policy, images: &[Image], now: i64) -> Vec<Expiry> {
    let mut rules: Vec<&Rule> = policy.rules.iter().collect();
    rules.sort_by_key(|r| r.rule_priority);
    // Images matched by the selection of a rule already applied.
    let mut claimed = vec![false; images.len()];
    let mut expired: Vec<Option<i64>> = vec![None; images.len()];
    for rule in rules {
        let s = &rule.selection;
        let mut matched: Vec<usize> = (0..images.len())
            .filter(|&i| s.selects(&images[i]))
            .collect();
        // Youngest first; ties by digest, so the outcome is stable.
        matched.sort_by(|&a, &b| {
            images[b]
                .pushed_ms
                .cmp(&images[a].pushed_ms)
                .then_with(|| images[a].digest.cmp(&images[b].digest))
        });
        let cut = now - s.count_number * DAY;
        let doomed: Vec<usize> = match s.count_type {
            CountType::ImageCountMoreThan => matched
                .iter()
                .copied()
                .skip(s.count_number as usize)
                .collect(),
            CountType::SinceImagePushed => matched
                .iter()
                .copied()
                .filter(|&i| images[i].pushed_at < cut)
                .collect(),
            CountType::SinceImagePulled => matched
                .iter()
                .copied()
                .filter(|&i| images[i].last_pulled.unwrap_or(images[i].pushed_at) < cut)
                .collect(),
        };
        for i in doomed {
            if !claimed[i] && expired[i].is_none() {
                expired[i] = Some(rule.rule_priority);
            }
        }
        for i in matched {
            claimed[i] = true;
        }
    }
    let mut out: Vec<Expiry> = images
        .iter()
        .zip(expired)
        .filter_map(|(img, rule)| {
            rule.map(|rule_priority| Expiry {
                digest: img.digest.clone(),
                tags: img.tags.clone(),
                pushed_at: img.pushed_at,
                last_pulled: img.last_pulled,
                rule_priority,
            })
        })
        .collect();
    out.sort_by(|a, b| a.pushed_at.cmp(&b.pushed_at).then(a.digest.cmp(&b.digest)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000 * DAY;

    fn img(name: &str, tags: &[&str], days_ago: i64) -> Image {
        Image {
            digest: name.to_owned(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: NOW - days_ago * DAY,
            pushed_ms: (NOW - days_ago * DAY) * 1000,
            last_pulled: None,
        }
    }

    fn expired(policy: &str, images: &[Image]) -> Vec<String> {
        let p = Policy::parse(policy).unwrap();
        let mut v: Vec<String> = evaluate(&p, images, NOW)
            .into_iter()
            .map(|e| e.digest)
            .collect();
        v.sort();
        v
    }

    fn two_rules(first: &str, second: &str) -> String {
        format!(
            r#"{{"rules": [
              {{"rulePriority": 1, "description": "Rule 1", "selection": {{"tagStatus": "tagged", {first}, "countType": "imageCountMoreThan", "countNumber": 1}}, "action": {{"type": "expire"}}}},
              {{"rulePriority": 2, "description": "Rule 2", "selection": {{"tagStatus": "tagged", {second}, "countType": "imageCountMoreThan", "countNumber": 1}}, "action": {{"type": "expire"}}}}
            ]}}"#
        )
    }

    /// ECR's "Example A": Rule 1 marks A; Rule 2 would mark A and B, but
    /// A is marked already and B matched Rule 1. Image A is expired.
    #[test]
    fn ecr_example_a() {
        let repo = [
            img("A", &["beta-1", "prod-1"], 10),
            img("B", &["beta-2", "prod-2"], 9),
            img("C", &["beta-3"], 8),
        ];
        let prefixes = two_rules(
            r#""tagPrefixList": ["prod"]"#,
            r#""tagPrefixList": ["beta"]"#,
        );
        assert_eq!(expired(&prefixes, &repo), ["A"]);
        let patterns = two_rules(
            r#""tagPatternList": ["prod*"]"#,
            r#""tagPatternList": ["beta*"]"#,
        );
        assert_eq!(expired(&patterns, &repo), ["A"]);
    }

    /// ECR's "Example B": Rule 1 (beta and prod) marks A and B; Rule 2
    /// (beta) identifies them too but cannot mark them again. Images A and
    /// B are expired.
    #[test]
    fn ecr_example_b() {
        let repo = [
            img("A", &["beta-1", "prod-1"], 10),
            img("B", &["beta-2", "prod-2"], 9),
            img("C", &["beta-3", "prod-3"], 8),
        ];
        let prefixes = two_rules(
            r#""tagPrefixList": ["beta", "prod"]"#,
            r#""tagPrefixList": ["beta"]"#,
        );
        assert_eq!(expired(&prefixes, &repo), ["A", "B"]);
    }

    /// ECR's single-rule examples: untagged images older than 14 days; one
    /// untagged image kept, the others expired.
    #[test]
    fn ecr_filtering_on_age_and_count() {
        let repo = [
            img("old", &[], 20),
            img("older", &[], 30),
            img("young", &[], 3),
            img("tagged-old", &["v1"], 40),
        ];
        let age = r#"{"rules": [{"rulePriority": 1, "description": "Expire images older than 14 days",
            "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
            "action": {"type": "expire"}}]}"#;
        assert_eq!(expired(age, &repo), ["old", "older"]);
        let count = r#"{"rules": [{"rulePriority": 1, "description": "Keep only one untagged image, expire all others",
            "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1},
            "action": {"type": "expire"}}]}"#;
        assert_eq!(expired(count, &repo), ["old", "older"]);
        let prod_age = r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged",
            "tagPatternList": ["prod*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
            "action": {"type": "expire"}}]}"#;
        let repo = [
            img("p-old", &["prod1"], 15),
            img("p-new", &["prod2"], 13),
            img("other", &["dev"], 99),
        ];
        assert_eq!(expired(prod_age, &repo), ["p-old"]);
    }

    #[test]
    fn since_pulled_counts_from_the_push_when_never_pulled() {
        let mut pulled = img("pulled", &["a"], 100);
        pulled.last_pulled = Some(NOW - 2 * DAY);
        let repo = [pulled, img("never", &["b"], 100), img("new", &["c"], 1)];
        let p = r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any",
            "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 30}, "action": {"type": "expire"}}]}"#;
        assert_eq!(expired(p, &repo), ["never"]);
    }

    #[test]
    fn ecr_validation_rules_with_clear_errors() {
        let rule = |prio: i64, sel: &str| {
            format!(
                r#"{{"rulePriority": {prio}, "selection": {sel}, "action": {{"type": "expire"}}}}"#
            )
        };
        let any = r#"{"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5}"#;
        let tagged = r#"{"tagStatus": "tagged", "tagPrefixList": ["v"], "countType": "imageCountMoreThan", "countNumber": 5}"#;
        let bad = |text: String, needle: &str| {
            let e = Policy::parse(&text).expect_err(&text);
            assert!(e.message.contains(needle), "{} lacks {needle:?}", e.message);
        };
        bad(
            format!(r#"{{"rules": [{}, {}]}}"#, rule(1, any), rule(2, tagged)),
            "must have the highest rulePriority",
        );
        bad(
            format!(r#"{{"rules": [{}, {}]}}"#, rule(1, tagged), rule(1, any)),
            "used twice",
        );
        bad(
            format!(
                r#"{{"rules": [{}]}}"#,
                rule(
                    1,
                    r#"{"tagStatus": "tagged", "tagPrefixList": ["a"], "tagPatternList": ["b*"], "countType": "imageCountMoreThan", "countNumber": 1}"#
                )
            ),
            "cannot both be given",
        );
        bad(
            format!(
                r#"{{"rules": [{}]}}"#,
                rule(
                    1,
                    r#"{"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1}"#
                )
            ),
            "needs a tagPrefixList or a tagPatternList",
        );
        bad(
            format!(
                r#"{{"rules": [{}]}}"#,
                rule(
                    1,
                    r#"{"tagStatus": "untagged", "tagPrefixList": ["a"], "countType": "imageCountMoreThan", "countNumber": 1}"#
                )
            ),
            "for tagged rules only",
        );
        bad(
            format!(
                r#"{{"rules": [{}]}}"#,
                rule(
                    1,
                    r#"{"tagStatus": "any", "countType": "sinceImagePushed", "countNumber": 1}"#
                )
            ),
            "countUnit must be \"days\"",
        );
        bad(
            format!(
                r#"{{"rules": [{}]}}"#,
                rule(
                    1,
                    r#"{"tagStatus": "any", "countType": "imageCountMoreThan", "countUnit": "days", "countNumber": 1}"#
                )
            ),
            "not allowed with imageCountMoreThan",
        );
        bad(
            format!(
                r#"{{"rules": [{}]}}"#,
                rule(
                    1,
                    r#"{"tagStatus": "tagged", "tagPatternList": ["*a*b*c*d*e"], "countType": "imageCountMoreThan", "countNumber": 1}"#
                )
            ),
            "more than 4 wildcards",
        );
        bad(
            format!(r#"{{"rules": [{}]}}"#, rule(0, any)),
            "rulePriority must be 1 or more",
        );
        bad(r#"{"rules": []}"#.to_string(), "at least one rule");
        bad(
            format!(
                r#"{{"rules": [{}]}}"#,
                rule(
                    1,
                    r#"{"tagStatus": "sometimes", "countType": "imageCountMoreThan", "countNumber": 1}"#
                )
            ),
            "unknown variant",
        );
        bad(r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "transition"}}]}"#.to_string(), "unknown variant");
        // Valid: an `any` rule last.
        Policy::parse(&format!(
            r#"{{"rules": [{}, {}]}}"#,
            rule(1, tagged),
            rule(2, any)
        ))
        .unwrap();
    }

    #[test]
    fn glob_matches_ecr_patterns() {
        assert!(glob("prod*", "prod-1"));
        assert!(glob("*test*1*2*3", "xtestx1y2z3"));
        assert!(!glob("prod*", "dev-prod"));
        assert!(glob("latest", "latest"));
        assert!(!glob("a*a", "a"));
        assert!(glob("*", ""));
    }
}
