//! Target discovery: `static_configs` and `file_sd_configs`, producing [`TargetGroup`]s.
//!
//! File discovery reads JSON (`.json`) and YAML (`.yml`, `.yaml`) files holding a list of
//! `{targets: [...], labels: {...}}` groups, as Prometheus' file_sd does:
//! - a path's last element may be a pattern (`*`, `?`, `[...]`), matched against the files
//!   of its directory at every look;
//! - every group gets `__meta_filepath` (the file's path) and the source `<path>:<index>`;
//! - a file that cannot be read or parsed keeps the groups it had before (and the error is
//!   logged), so a half-written file never empties a job; a file that is gone, or no longer
//!   matches, loses its groups;
//! - JSON groups ignore unknown fields (Go's `encoding/json`), YAML groups refuse them
//!   (Prometheus reads YAML strictly).
//!
//! Prometheus is told of changes by inotify; here [`FileDiscovery::refresh`] is called often
//! and re-reads only files whose size or modification time changed, and every file once per
//! `refresh_interval` regardless.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use sightline_model::labels::is_valid_label_name;

use crate::config::{FileSdConfig, ScrapeConfig, StaticConfig};
use crate::target::TargetGroup;

/// The label holding the path of the file a target came from.
pub const FILE_PATH_LABEL: &str = "__meta_filepath";

/// How often the manager looks at file_sd files for changes, by default.
pub const FILE_SD_POLL_INTERVAL_DEFAULT: Duration = Duration::from_secs(2);

/// Largest file_sd file read.
pub const FILE_SD_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// The target groups of a job's `static_configs`, sources `static/0`, `static/1`, ….
pub fn static_groups(config: &ScrapeConfig) -> Vec<TargetGroup> {
    config
        .static_configs
        .iter()
        .enumerate()
        .map(|(i, group)| TargetGroup::from_static(format!("static/{i}"), group))
        .collect()
}

/// Why one file_sd file was not used.
#[derive(Debug, thiserror::Error)]
pub enum FileSdError {
    #[error("read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("read {path}: file is {bytes} bytes, larger than the limit of {limit_bytes}")]
    TooLarge {
        path: String,
        bytes: u64,
        limit_bytes: u64,
    },
    #[error("parse {path}: {reason}")]
    Parse { path: String, reason: String },
}

/// A file as last read.
#[derive(Clone, Debug)]
struct FileState {
    stamp: Option<(SystemTime, u64)>,
    groups: Vec<TargetGroup>,
}

/// The files of one job's `file_sd_configs`, and their groups as last read.
#[derive(Debug)]
pub struct FileDiscovery {
    configs: Vec<FileSdConfig>,
    files: BTreeMap<PathBuf, FileState>,
    /// When each config last re-read all its files.
    last_full_read: Vec<Option<Instant>>,
}

impl FileDiscovery {
    pub fn new(configs: Vec<FileSdConfig>) -> Self {
        let count = configs.len();
        Self {
            configs,
            files: BTreeMap::new(),
            last_full_read: vec![None; count],
        }
    }

    /// Whether the job has any file_sd config.
    pub fn is_empty(&self) -> bool {
        self.configs.is_empty()
    }

    /// Looks at the files: re-reads those that changed (all of a config whose
    /// `refresh_interval` passed), forgets those that are gone. Returns whether any group
    /// changed, and the errors of files that kept their previous groups.
    pub fn refresh(&mut self, now: Instant) -> (bool, Vec<FileSdError>) {
        let mut errors = Vec::new();
        let mut changed = false;
        let mut seen = BTreeSet::new();
        for (index, config) in self.configs.iter().enumerate() {
            let full = self.last_full_read[index]
                .is_none_or(|at| now.duration_since(at) >= config.refresh_interval);
            if full {
                self.last_full_read[index] = Some(now);
            }
            for pattern in &config.files {
                for path in list_files(pattern) {
                    if !seen.insert(path.clone()) {
                        continue;
                    }
                    let stamp = file_stamp(&path);
                    let previous = self.files.get(&path);
                    if !full && previous.is_some_and(|p| p.stamp.is_some() && p.stamp == stamp) {
                        continue;
                    }
                    match read_groups(&path) {
                        Ok(groups) => {
                            if previous.is_none_or(|p| p.groups != groups) {
                                changed = true;
                            }
                            self.files.insert(path, FileState { stamp, groups });
                        }
                        Err(error) => {
                            errors.push(error);
                            // Keep what the file gave before; retry at the next look.
                            if let Some(state) = self.files.get_mut(&path) {
                                state.stamp = None;
                            }
                        }
                    }
                }
            }
        }
        let before = self.files.len();
        self.files.retain(|path, _| seen.contains(path));
        changed |= self.files.len() != before;
        (changed, errors)
    }

    /// The groups of every file, in path order.
    pub fn groups(&self) -> Vec<TargetGroup> {
        self.files
            .values()
            .flat_map(|state| state.groups.iter().cloned())
            .collect()
    }
}

/// A file's size and modification time, to notice a change without reading it.
fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

/// The existing files a pattern names, sorted.
fn list_files(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    if !name.contains(['*', '?', '[']) {
        return if path.is_file() {
            vec![path.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|candidate| glob_match(name, candidate))
        })
        .map(|entry| match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.join(entry.file_name()),
            _ => PathBuf::from(entry.file_name()),
        })
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Go's `filepath.Match` for one path element: `*` (any run), `?` (one character),
/// `[...]` (a class, `^` negates, ranges with `-`), `\` escapes.
fn glob_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    glob_match_at(&pattern, &name)
}

fn glob_match_at(pattern: &[char], name: &[char]) -> bool {
    let Some((&first, rest)) = pattern.split_first() else {
        return name.is_empty();
    };
    match first {
        '*' => (0..=name.len()).any(|skip| glob_match_at(rest, &name[skip..])),
        '?' => !name.is_empty() && glob_match_at(rest, &name[1..]),
        '[' => {
            let Some((&c, name_rest)) = name.split_first() else {
                return false;
            };
            let Some(close) = rest.iter().skip(1).position(|&ch| ch == ']').map(|p| p + 1) else {
                return false;
            };
            let class = &rest[..close];
            let (negated, class) = match class.split_first() {
                Some(('^', inner)) => (true, inner),
                _ => (false, class),
            };
            let mut matched = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    matched |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    matched |= class[i] == c;
                    i += 1;
                }
            }
            matched != negated && glob_match_at(&rest[close + 1..], name_rest)
        }
        '\\' if !rest.is_empty() => {
            name.first() == Some(&rest[0]) && glob_match_at(&rest[1..], &name[1..])
        }
        literal => name.first() == Some(&literal) && glob_match_at(rest, &name[1..]),
    }
}

/// A target group in a JSON file: Go's `encoding/json` ignores unknown fields.
#[derive(Deserialize)]
struct JsonGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// Reads one file's groups.
pub fn read_groups(path: &Path) -> Result<Vec<TargetGroup>, FileSdError> {
    let display = path.display().to_string();
    let read_error = |e: std::io::Error| FileSdError::Read {
        path: display.clone(),
        reason: e.to_string(),
    };
    let bytes = std::fs::metadata(path).map_err(read_error)?.len();
    if bytes > FILE_SD_BYTES_MAX {
        return Err(FileSdError::TooLarge {
            path: display,
            bytes,
            limit_bytes: FILE_SD_BYTES_MAX,
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    let parse_error = |reason: String| FileSdError::Parse {
        path: display.clone(),
        reason,
    };
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let groups: Vec<Option<StaticConfig>> = if extension == "json" {
        let raw: Vec<Option<JsonGroup>> =
            serde_json::from_str(&text).map_err(|e| parse_error(e.to_string()))?;
        raw.into_iter()
            .map(|g| {
                g.map(|g| StaticConfig {
                    targets: g.targets,
                    labels: g.labels.unwrap_or_default(),
                })
            })
            .collect()
    } else {
        serde_yaml::from_str::<Option<Vec<Option<StaticConfig>>>>(&text)
            .map_err(|e| parse_error(e.to_string()))?
            .unwrap_or_default()
    };
    let mut out = Vec::with_capacity(groups.len());
    for (index, group) in groups.into_iter().enumerate() {
        let group = group.ok_or_else(|| parse_error("nil target group item found".into()))?;
        if let Some(bad) = group.labels.keys().find(|n| !is_valid_label_name(n)) {
            return Err(parse_error(format!("{bad:?} is not a valid label name")));
        }
        let mut target_group = TargetGroup::from_static(format!("{display}:{index}"), &group);
        target_group.labels.set(FILE_PATH_LABEL, &display);
        out.push(target_group);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_as_go_filepath_match() {
        let check = |pattern: &str, name: &str, want: bool| {
            assert_eq!(glob_match(pattern, name), want, "{pattern} {name}");
        };
        check("*.json", "a.json", true);
        check("*.json", ".json", true);
        check("*.json", "a.yml", false);
        check("targets-*.yml", "targets-1.yml", true);
        check("targets-*.yml", "other-1.yml", false);
        check("t?.json", "t1.json", true);
        check("t?.json", "t12.json", false);
        check("t[0-9].json", "t5.json", true);
        check("t[^0-9].json", "t5.json", false);
        check("t[^0-9].json", "tx.json", true);
        check("t\\*.json", "t*.json", true);
        check("t\\*.json", "tx.json", false);
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn addresses(groups: &[TargetGroup]) -> Vec<String> {
        groups
            .iter()
            .flat_map(|g| g.targets.iter())
            .map(|t| t.get("__address__").unwrap_or("").to_string())
            .collect()
    }

    #[test]
    fn reads_json_and_yaml_groups() {
        let dir = tempfile::tempdir().unwrap();
        let json = write(
            dir.path(),
            "a.json",
            r#"[{"targets": ["h1:9100", "h2:9100"], "labels": {"env": "prod"}, "extra": 1}]"#,
        );
        let groups = read_groups(&json).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].source, format!("{}:0", json.display()));
        assert_eq!(addresses(&groups), ["h1:9100", "h2:9100"]);
        assert_eq!(groups[0].labels.get("env"), Some("prod"));
        assert_eq!(
            groups[0].labels.get(FILE_PATH_LABEL),
            Some(json.display().to_string().as_str())
        );
        let yaml = write(
            dir.path(),
            "b.yaml",
            "- targets: [h3:80]\n  labels: {port: 9100}\n- targets: [h4:80]\n",
        );
        let groups = read_groups(&yaml).unwrap();
        assert_eq!(addresses(&groups), ["h3:80", "h4:80"]);
        assert_eq!(groups[0].labels.get("port"), Some("9100"));
        // YAML is strict, JSON values must be strings, label names must be valid.
        let check_err = |name: &str, text: &str, want: &str| {
            let path = write(dir.path(), name, text);
            let err = read_groups(&path).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        };
        check_err(
            "c.yml",
            "- targets: [a]\n  extra: 1\n",
            "unknown field `extra`",
        );
        check_err(
            "d.json",
            r#"[{"targets": ["a"], "labels": {"a": 1}}]"#,
            "parse",
        );
        check_err(
            "e.json",
            r#"[{"targets": ["a"], "labels": {"1a": "x"}}]"#,
            "not a valid label name",
        );
        check_err("f.json", "[null]", "nil target group item found");
        check_err("g.json", "{", "parse");
    }

    #[test]
    fn refresh_follows_changes_and_keeps_groups_of_broken_files() {
        let dir = tempfile::tempdir().unwrap();
        let pattern = dir.path().join("t-*.json").display().to_string();
        let mut discovery = FileDiscovery::new(vec![FileSdConfig {
            files: vec![pattern],
            refresh_interval: Duration::from_secs(300),
        }]);
        let t0 = Instant::now();
        assert!(!discovery.refresh(t0).0);
        assert!(discovery.groups().is_empty());

        let a = write(dir.path(), "t-a.json", r#"[{"targets": ["a:1"]}]"#);
        write(dir.path(), "other.json", r#"[{"targets": ["x:1"]}]"#);
        assert!(discovery.refresh(t0).0);
        assert_eq!(addresses(&discovery.groups()), ["a:1"]);
        assert!(!discovery.refresh(t0).0, "nothing changed");

        // A broken file keeps its previous groups and reports the error.
        std::fs::write(&a, "[{").unwrap();
        let (changed, errors) = discovery.refresh(t0);
        assert!(!changed);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(addresses(&discovery.groups()), ["a:1"]);

        std::fs::write(&a, r#"[{"targets": ["a:1", "a:2"]}]"#).unwrap();
        write(dir.path(), "t-b.json", r#"[{"targets": ["b:1"]}]"#);
        assert!(discovery.refresh(t0).0);
        assert_eq!(addresses(&discovery.groups()), ["a:1", "a:2", "b:1"]);

        std::fs::remove_file(&a).unwrap();
        assert!(discovery.refresh(t0).0);
        assert_eq!(addresses(&discovery.groups()), ["b:1"]);
    }
}
