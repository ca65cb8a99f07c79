//! `| pattern "<ip> - - <_> \"<method> <uri> <_>\" <status>"`: Loki's pattern parser.
//!
//! A pattern alternates literals and captures (`<name>`, or `<_>` to skip). Matching follows
//! Loki: a leading literal must start the line; each capture runs up to the first occurrence
//! of the literal after it; a trailing capture takes the rest of the line; when a literal is
//! missing, the capture before it takes the rest and matching stops.
//!
//! Invariants, checked by [`Pattern::new`]: at least one named capture, no two captures
//! side by side, no name twice.

use sightline_model::labels::is_valid_label_name;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Literal(String),
    /// `None` for `<_>`.
    Capture(Option<String>),
}

#[derive(Clone, Debug)]
pub struct Pattern {
    source: String,
    nodes: Vec<Node>,
}

impl Pattern {
    pub fn new(source: &str) -> Result<Self, String> {
        let mut nodes = Vec::new();
        let mut literal = String::new();
        let mut rest = source;
        while let Some(c) = rest.chars().next() {
            if c == '<'
                && let Some(close) = rest.find('>')
            {
                let name = &rest[1..close];
                if name == "_" || is_valid_label_name(name) {
                    if !literal.is_empty() {
                        nodes.push(Node::Literal(std::mem::take(&mut literal)));
                    }
                    if matches!(nodes.last(), Some(Node::Capture(_))) {
                        return Err("pattern has consecutive captures".to_string());
                    }
                    nodes.push(Node::Capture((name != "_").then(|| name.to_string())));
                    rest = &rest[close + 1..];
                    continue;
                }
            }
            literal.push(c);
            rest = &rest[c.len_utf8()..];
        }
        if !literal.is_empty() {
            nodes.push(Node::Literal(literal));
        }
        let names: Vec<&String> = nodes
            .iter()
            .filter_map(|n| match n {
                Node::Capture(Some(name)) => Some(name),
                _ => None,
            })
            .collect();
        if names.is_empty() {
            return Err("pattern has no named capture".to_string());
        }
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(format!("pattern captures {name:?} twice"));
            }
        }
        Ok(Self {
            source: source.to_string(),
            nodes,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Calls `emit(name, value)` for each named capture the line provides.
    pub fn extract<'a>(&self, line: &'a str, emit: &mut dyn FnMut(&str, &'a str)) {
        let mut nodes = self.nodes.as_slice();
        let mut rest = line;
        if let Some((Node::Literal(lit), tail)) = nodes.split_first() {
            match rest.strip_prefix(lit.as_str()) {
                Some(after) => rest = after,
                None => return,
            }
            nodes = tail;
        }
        while let Some((Node::Capture(name), tail)) = nodes.split_first() {
            match tail.split_first() {
                None => {
                    if let Some(name) = name {
                        emit(name, rest);
                    }
                    return;
                }
                Some((Node::Literal(lit), after_lit)) => match rest.find(lit.as_str()) {
                    Some(i) => {
                        if let Some(name) = name {
                            emit(name, &rest[..i]);
                        }
                        rest = &rest[i + lit.len()..];
                        nodes = after_lit;
                    }
                    None => {
                        if let Some(name) = name {
                            emit(name, rest);
                        }
                        return;
                    }
                },
                Some((Node::Capture(_), _)) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract(pattern: &str, line: &str) -> Vec<(String, String)> {
        let p = Pattern::new(pattern).expect("valid pattern");
        let mut out = Vec::new();
        p.extract(line, &mut |k, v| out.push((k.to_string(), v.to_string())));
        out
    }

    #[test]
    fn extracts_like_loki() {
        let got = extract(
            r#"<ip> - - <_> "<method> <uri> <_>" <status> <size>"#,
            r#"10.0.0.1 - - [10/Oct/2000] "GET /index.html HTTP/1.1" 200 2326"#,
        );
        let want = [
            ("ip", "10.0.0.1"),
            ("method", "GET"),
            ("uri", "/index.html"),
            ("status", "200"),
            ("size", "2326"),
        ];
        assert_eq!(
            got,
            want.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            extract("level=<level> ", "level=warn"),
            vec![("level".to_string(), "warn".to_string())]
        );
        assert!(
            extract("GET <path>", "POST /x").is_empty(),
            "leading literal must match"
        );
    }

    #[test]
    fn rejects_bad_patterns() {
        assert!(Pattern::new("<a><b>").is_err());
        assert!(Pattern::new("no captures <_>").is_err());
        assert!(Pattern::new("<a> <a>").is_err());
        assert!(
            Pattern::new("<not a name> <ok>").is_ok(),
            "invalid names stay literal"
        );
    }
}
