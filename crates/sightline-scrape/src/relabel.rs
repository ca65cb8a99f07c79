//! Relabeling, exactly as Prometheus 2.42 applies `relabel_configs` and
//! `metric_relabel_configs`.
//!
//! A rule reads the values of its `source_labels` (a missing label reads as the empty
//! string), joins them with `separator` (default `;`), and acts:
//!
//! | action | effect |
//! |---|---|
//! | `replace` (default) | when `regex` matches the joined value, set the label named by `target_label` (expanded) to `replacement` (expanded, default `$1`); an empty result deletes `target_label` |
//! | `keep` / `drop` | drop the label set unless / if `regex` matches |
//! | `keepequal` / `dropequal` | drop the label set unless / if the joined value equals the value of `target_label` |
//! | `hashmod` | set `target_label` to the MD5 of the joined value (its last 8 bytes, big-endian) modulo `modulus` |
//! | `labelmap` | for every label whose name matches `regex`, copy its value to the expanded `replacement` |
//! | `labeldrop` / `labelkeep` | remove every label whose name matches / does not match `regex` |
//! | `lowercase` / `uppercase` | set `target_label` to the joined value in lower / upper case |
//!
//! `regex` is anchored at both ends (default `(.*)`), in Go's syntax ([`regex`] translates).
//! A label set to the empty string is removed, as everywhere in Prometheus' model.
//!
//! Two `replace` quirks of 2.42 are kept on purpose, so a configuration behaves as it did in
//! Prometheus: when `target_label` holds a template (`${1}_x`) and either the expanded name
//! is not a valid label name or the replacement expands to nothing, 2.42 deletes the label
//! literally named by the *unexpanded* template (which cannot exist), so nothing changes;
//! later versions delete the expanded label instead.
//!
//! Validation ([`RelabelConfig::validate`], run when a rule is deserialised) refuses what
//! Prometheus 2.42 refuses, with the same conditions: an unknown action, a bad regex, a
//! missing or invalid `target_label`, `hashmod` without a modulus, fields that `labeldrop`,
//! `labelkeep`, `keepequal`, `dropequal`, `lowercase` and `uppercase` do not take.
//!
//! Case mapping uses Rust's full Unicode mapping where Go maps rune by rune; the two differ
//! only for a handful of characters (`İ`, final `Σ`).

pub mod regex;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::Deserialize;
use sightline_model::Labels;
use sightline_model::labels::is_valid_label_name;

pub use self::regex::RelabelRegex;

/// The default separator of source label values.
pub const DEFAULT_SEPARATOR: &str = ";";

/// The default regex: everything, captured as `$1`.
pub const DEFAULT_REGEX: &str = "(.*)";

/// The default replacement.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// What a rule does; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    /// Parses an action name, case-insensitively as Prometheus does.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "replace" => Self::Replace,
            "keep" => Self::Keep,
            "drop" => Self::Drop,
            "keepequal" => Self::KeepEqual,
            "dropequal" => Self::DropEqual,
            "hashmod" => Self::HashMod,
            "labelmap" => Self::LabelMap,
            "labeldrop" => Self::LabelDrop,
            "labelkeep" => Self::LabelKeep,
            "lowercase" => Self::Lowercase,
            "uppercase" => Self::Uppercase,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replace => "replace",
            Self::Keep => "keep",
            Self::Drop => "drop",
            Self::KeepEqual => "keepequal",
            Self::DropEqual => "dropequal",
            Self::HashMod => "hashmod",
            Self::LabelMap => "labelmap",
            Self::LabelDrop => "labeldrop",
            Self::LabelKeep => "labelkeep",
            Self::Lowercase => "lowercase",
            Self::Uppercase => "uppercase",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a relabel rule was refused; the messages follow Prometheus' where it has one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelabelConfigError {
    #[error("unknown relabel action {0:?}")]
    UnknownAction(String),
    #[error("invalid relabel regex {regex:?}: {reason}")]
    BadRegex { regex: String, reason: String },
    #[error("{0:?} is not a valid label name in source_labels")]
    BadSourceLabel(String),
    #[error("relabel configuration for {0} action requires 'target_label' value")]
    MissingTargetLabel(Action),
    #[error("{label:?} is invalid 'target_label' for {action} action")]
    BadTargetLabel { label: String, action: Action },
    #[error("relabel configuration for hashmod requires non-zero modulus")]
    ZeroModulus,
    #[error("'replacement' can not be set for {0} action")]
    ReplacementNotAllowed(Action),
    #[error("{replacement:?} is invalid 'replacement' for {action} action")]
    BadReplacement { replacement: String, action: Action },
    #[error("{0} action requires only 'source_labels' and 'target_label', and no other fields")]
    OnlySourceAndTarget(Action),
    #[error("{0} action requires only 'regex', and no other fields")]
    OnlyRegex(Action),
}

/// One relabel rule, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct RelabelConfig {
    pub source_labels: Vec<String>,
    pub separator: String,
    pub regex: RelabelRegex,
    /// Whether `regex` was written in the configuration (`keepequal` and `dropequal` refuse
    /// one, even the default).
    pub regex_set: bool,
    pub modulus: u64,
    pub target_label: String,
    pub replacement: String,
    pub action: Action,
}

/// A rule as written, before its defaults and checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelabelConfig {
    #[serde(default)]
    source_labels: Vec<String>,
    separator: Option<String>,
    regex: Option<String>,
    #[serde(default)]
    modulus: u64,
    #[serde(default)]
    target_label: String,
    replacement: Option<String>,
    action: Option<String>,
}

impl<'de> Deserialize<'de> for RelabelConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `null` (an empty list item) is refused with Prometheus' message.
        let raw = Option::<RawRelabelConfig>::deserialize(deserializer)?.ok_or_else(|| {
            serde::de::Error::custom("empty or null relabeling rule in scrape config")
        })?;
        RelabelConfig::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

/// The pattern a templated `target_label` (for `replace`) or a `labelmap` replacement must
/// match: label-name characters and `$name` / `${name}` references.
fn is_valid_template(template: &str) -> bool {
    let mut rest = template;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('$') {
            let (name, after) = match after.strip_prefix('{') {
                Some(inner) => match inner.find('}') {
                    Some(end) => (&inner[..end], &inner[end + 1..]),
                    None => return false,
                },
                None => {
                    let end = after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return false;
            }
            rest = after;
        } else {
            let c = rest.as_bytes()[0];
            if !(c.is_ascii_alphanumeric() || c == b'_') {
                return false;
            }
            rest = &rest[1..];
        }
    }
    // A template may not start with a digit unless a reference comes first.
    let first = template.as_bytes()[0];
    first == b'$' || first.is_ascii_alphabetic() || first == b'_'
}

impl RelabelConfig {
    fn from_raw(raw: RawRelabelConfig) -> Result<Self, RelabelConfigError> {
        let action_name = raw.action.as_deref().unwrap_or("replace");
        let action = Action::parse(action_name)
            .ok_or_else(|| RelabelConfigError::UnknownAction(action_name.to_string()))?;
        let regex_text = raw.regex.as_deref().unwrap_or(DEFAULT_REGEX);
        let regex = RelabelRegex::new(regex_text).map_err(|e| RelabelConfigError::BadRegex {
            regex: regex_text.to_string(),
            reason: e.to_string(),
        })?;
        let config = Self {
            source_labels: raw.source_labels,
            separator: raw
                .separator
                .unwrap_or_else(|| DEFAULT_SEPARATOR.to_string()),
            regex,
            regex_set: raw.regex.is_some(),
            modulus: raw.modulus,
            target_label: raw.target_label,
            replacement: raw
                .replacement
                .unwrap_or_else(|| DEFAULT_REPLACEMENT.to_string()),
            action,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the rule as Prometheus 2.42 does when it loads a configuration.
    pub fn validate(&self) -> Result<(), RelabelConfigError> {
        use Action::*;
        let action = self.action;
        if let Some(bad) = self
            .source_labels
            .iter()
            .find(|name| !is_valid_label_name(name))
        {
            return Err(RelabelConfigError::BadSourceLabel(bad.clone()));
        }
        if action == HashMod && self.modulus == 0 {
            return Err(RelabelConfigError::ZeroModulus);
        }
        let needs_target = matches!(
            action,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        );
        if needs_target && self.target_label.is_empty() {
            return Err(RelabelConfigError::MissingTargetLabel(action));
        }
        let bad_target = || RelabelConfigError::BadTargetLabel {
            label: self.target_label.clone(),
            action,
        };
        let target_ok = match action {
            Replace if self.target_label.contains('$') => is_valid_template(&self.target_label),
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual => {
                is_valid_label_name(&self.target_label)
            }
            _ => true,
        };
        if !target_ok {
            return Err(bad_target());
        }
        let replacement_changed = self.replacement != DEFAULT_REPLACEMENT;
        if matches!(action, Lowercase | Uppercase | KeepEqual | DropEqual) && replacement_changed {
            return Err(RelabelConfigError::ReplacementNotAllowed(action));
        }
        if action == LabelMap && !is_valid_template(&self.replacement) {
            return Err(RelabelConfigError::BadReplacement {
                replacement: self.replacement.clone(),
                action,
            });
        }
        if matches!(action, KeepEqual | DropEqual)
            && (self.regex_set || self.modulus != 0 || self.separator != DEFAULT_SEPARATOR)
        {
            return Err(RelabelConfigError::OnlySourceAndTarget(action));
        }
        if matches!(action, LabelDrop | LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || replacement_changed)
        {
            return Err(RelabelConfigError::OnlyRegex(action));
        }
        Ok(())
    }

    /// The joined values of the source labels.
    fn source_value(&self, labels: &Labels) -> String {
        let mut value = String::new();
        for (i, name) in self.source_labels.iter().enumerate() {
            if i > 0 {
                value.push_str(&self.separator);
            }
            value.push_str(labels.get(name).unwrap_or(""));
        }
        value
    }

    /// Applies this one rule; `false` when the label set is to be dropped.
    pub fn apply(&self, labels: &mut Labels) -> bool {
        let value = self.source_value(labels);
        match self.action {
            Action::Drop => return !self.regex.is_match(&value),
            Action::Keep => return self.regex.is_match(&value),
            Action::DropEqual => return labels.get(&self.target_label).unwrap_or("") != value,
            Action::KeepEqual => return labels.get(&self.target_label).unwrap_or("") == value,
            Action::Replace => self.replace(labels, &value),
            Action::Lowercase => labels.set(&self.target_label, &value.to_lowercase()),
            Action::Uppercase => labels.set(&self.target_label, &value.to_uppercase()),
            Action::HashMod => {
                let bucket = hashmod(&value, self.modulus);
                labels.set(&self.target_label, &bucket.to_string());
            }
            Action::LabelMap => {
                let snapshot = labels.clone();
                for (name, label_value) in snapshot.iter() {
                    if let Some(captures) = self.regex.captures(name) {
                        let new_name = self.regex.expand(&self.replacement, &captures);
                        if !new_name.is_empty() {
                            labels.set(&new_name, label_value);
                        }
                    }
                }
            }
            Action::LabelDrop | Action::LabelKeep => {
                let drop_matching = self.action == Action::LabelDrop;
                let names: Vec<String> = labels.iter().map(|(n, _)| n.to_string()).collect();
                for name in names {
                    if self.regex.is_match(&name) == drop_matching {
                        labels.remove(&name);
                    }
                }
            }
        }
        true
    }

    fn replace(&self, labels: &mut Labels, value: &str) {
        let Some(captures) = self.regex.captures(value) else {
            return;
        };
        let target = self.regex.expand(&self.target_label, &captures);
        if !is_valid_label_name(&target) {
            // 2.42 deletes the unexpanded name here (see the module documentation).
            labels.remove(&self.target_label);
            return;
        }
        let result = self.regex.expand(&self.replacement, &captures);
        if result.is_empty() {
            labels.remove(&self.target_label);
            return;
        }
        labels.set(&target, &result);
    }
}

/// Prometheus' `hashmod`: the last 8 bytes of the MD5 digest, big-endian, modulo `modulus`.
pub fn hashmod(value: &str, modulus: u64) -> u64 {
    let digest = md5::compute(value.as_bytes()).0;
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&digest[8..]);
    u64::from_be_bytes(tail) % modulus.max(1)
}

/// Applies `rules` in order; `None` when a rule dropped the label set.
pub fn relabel(mut labels: Labels, rules: &[RelabelConfig]) -> Option<Labels> {
    for rule in rules {
        if !rule.apply(&mut labels) {
            return None;
        }
    }
    Some(labels)
}
