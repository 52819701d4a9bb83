//! Turning Kafka's PascalCase names into Rust names.

/// `PartitionIndex` -> `partition_index`, `KRaftVersion` -> `k_raft_version`,
/// `TopicIDs` -> `topic_ids`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                None => false,
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                // The last capital of an acronym starts a new word when a
                // lowercase letter follows (`HTTPServer` -> `http_server`),
                // but a plural `s` does not (`IDs`).
                Some(p) if p.is_ascii_uppercase() => {
                    next.is_some_and(|n| n.is_ascii_lowercase())
                        && !(next == Some('s')
                            && chars.get(i + 2).is_none_or(|c| c.is_ascii_uppercase()))
                }
                Some(_) => false,
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv",
    "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// A field name: snake case, with `r#` for keywords (`Type` -> `r#type`).
pub fn field_name(json: &str) -> String {
    let s = snake_case(json);
    if KEYWORDS.contains(&s.as_str()) {
        format!("r#{s}")
    } else {
        s
    }
}

/// The name to use in error messages and docs: without `r#`.
pub fn plain(rust_name: &str) -> &str {
    rust_name.strip_prefix("r#").unwrap_or(rust_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(snake_case("PartitionIndex"), "partition_index");
        assert_eq!(snake_case("KRaftVersionFeature"), "k_raft_version_feature");
        assert_eq!(snake_case("FetchRequest"), "fetch_request");
        assert_eq!(snake_case("ClientId"), "client_id");
        assert_eq!(snake_case("HTTPServer"), "http_server");
        assert_eq!(snake_case("TopicIDs"), "topic_ids");
        assert_eq!(snake_case("V1Topics"), "v1_topics");
        assert_eq!(field_name("Type"), "r#type");
    }
}
