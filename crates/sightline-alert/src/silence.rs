//! Silences, in Alertmanager's v2 shape: matchers and a time range; an alert every matcher
//! of an active silence accepts is not notified (it still shows in `/api/v1/alerts`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use sightline_model::matcher::MatchOp;
use sightline_model::{LabelMatcher, Labels};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub is_regex: bool,
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// A silence as posted (`id` empty for a new one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    #[serde(default)]
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
}

impl Silence {
    /// Checks a posted silence: matchers that compile, not all matching the empty value, an
    /// end after the start.
    pub fn check(&self) -> Result<Vec<LabelMatcher>, String> {
        if self.matchers.is_empty() {
            return Err("a silence needs at least one matcher".into());
        }
        if self.ends_at <= self.starts_at {
            return Err("endsAt must be after startsAt".into());
        }
        let matchers = self
            .matchers
            .iter()
            .map(|m| {
                let op = match (m.is_regex, m.is_equal) {
                    (false, true) => MatchOp::Eq,
                    (false, false) => MatchOp::Neq,
                    (true, true) => MatchOp::Re,
                    (true, false) => MatchOp::Nre,
                };
                LabelMatcher::new(&m.name, op, &m.value)
                    .map_err(|e| format!("matcher {}: {e}", m.name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if matchers.iter().all(LabelMatcher::matches_empty) {
            return Err("at least one matcher must not match the empty value".into());
        }
        Ok(matchers)
    }

    pub fn state(&self, now: DateTime<Utc>) -> &'static str {
        if now < self.starts_at {
            "pending"
        } else if now < self.ends_at {
            "active"
        } else {
            "expired"
        }
    }

    pub fn to_json(&self, now: DateTime<Utc>) -> Json {
        let mut v = serde_json::to_value(self).unwrap_or(Json::Null);
        v["status"] = json!({"state": self.state(now)});
        v["updatedAt"] = json!(self.starts_at);
        v
    }
}

/// Every silence, expired ones kept a day for the record.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Silences {
    list: Vec<Silence>,
}

impl Silences {
    /// Adds a silence, or updates one given by id, as Alertmanager does: an update of a
    /// silence that has started expires it and creates a new one (a new id). Returns the id.
    pub fn upsert(&mut self, mut s: Silence, now: DateTime<Utc>) -> Result<String, String> {
        s.check()?;
        if s.ends_at <= now {
            return Err("endsAt is in the past".into());
        }
        if !s.id.is_empty() {
            let Some(old) = self.list.iter().find(|x| x.id == s.id) else {
                return Err(format!("silence {} not found", s.id));
            };
            if old.state(now) == "pending" {
                let id = s.id.clone();
                self.list.retain(|x| x.id != id);
                self.list.push(s);
                return Ok(id);
            }
            let old_id = std::mem::take(&mut s.id);
            self.expire(&old_id, now);
        }
        s.id = uuid::Uuid::new_v4().to_string();
        let id = s.id.clone();
        self.list.push(s);
        Ok(id)
    }

    /// Ends a silence now; false when unknown.
    pub fn expire(&mut self, id: &str, now: DateTime<Utc>) -> bool {
        match self.list.iter_mut().find(|s| s.id == id) {
            Some(s) => {
                if s.ends_at > now {
                    s.ends_at = now;
                    if s.starts_at > now {
                        s.starts_at = now;
                    }
                }
                true
            }
            None => false,
        }
    }

    pub fn list(&self) -> &[Silence] {
        &self.list
    }

    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.list.iter().find(|s| s.id == id)
    }

    /// Whether an active silence covers `labels`.
    pub fn silenced(&self, labels: &Labels, now: DateTime<Utc>) -> bool {
        self.list.iter().any(|s| {
            s.state(now) == "active"
                && s.check()
                    .is_ok_and(|ms| ms.iter().all(|m| m.matches(labels)))
        })
    }

    /// Forgets silences expired more than a day ago.
    pub fn prune(&mut self, now: DateTime<Utc>) {
        self.list
            .retain(|s| now.signed_duration_since(s.ends_at) < chrono::Duration::days(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(name: &str, value: &str, regex: bool) -> Silence {
        let now = Utc::now();
        Silence {
            id: String::new(),
            matchers: vec![SilenceMatcher {
                name: name.into(),
                value: value.into(),
                is_regex: regex,
                is_equal: true,
            }],
            starts_at: now - chrono::Duration::seconds(1),
            ends_at: now + chrono::Duration::hours(1),
            created_by: "test".into(),
            comment: String::new(),
        }
    }

    impl Silences {
        fn upsert_now(&mut self, s: Silence) -> Result<String, String> {
            self.upsert(s, Utc::now())
        }
    }

    #[test]
    fn silences_match_expire_and_refuse_bad_matchers() {
        let mut set = Silences::default();
        let id = set
            .upsert_now(silence("alertname", "Slo.*", true))
            .expect("valid");
        let labels = Labels::from_pairs([("alertname", "SloBurn"), ("slo", "a")]);
        assert!(set.silenced(&labels, Utc::now()));
        assert!(!set.silenced(&Labels::from_pairs([("alertname", "Other")]), Utc::now()));
        assert!(set.expire(&id, Utc::now()));
        assert!(!set.silenced(&labels, Utc::now() + chrono::Duration::milliseconds(1)));
        assert!(set.upsert_now(silence("alertname", "", false)).is_err());
        assert!(set.upsert_now(silence("alertname", "(", true)).is_err());
        let mut unknown = silence("a", "b", false);
        unknown.id = "nope".into();
        assert!(set.upsert(unknown, Utc::now()).is_err());
    }
}
