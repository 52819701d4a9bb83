//! Reading Kafka's message definition files: JSON with `//` line comments.
//!
//! The files under `clients/src/main/resources/common/message/` (shipped in
//! the kafka-clients jar as `common/message/*.json`) are plain JSON except
//! for `//` comments, which may appear on their own lines or after a value.
//! A `//` inside a string (for example a URL in an "about" text) is not a
//! comment.

use serde::Deserialize;
use serde_json::Value;

/// Remove `//` comments outside of string literals, keeping line breaks so
/// that serde_json's error positions still match the file.
pub fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut chars = src.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => {
                    // Keep the escaped character whatever it is (`\"`, `\\`).
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                }
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == '/' && chars.peek() == Some(&'/') {
            // Drop everything up to (not including) the end of the line.
            while let Some(&next) = chars.peek() {
                if next == '\n' {
                    break;
                }
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One message definition file, as written.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawMessage {
    pub api_key: Option<i16>,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub valid_versions: String,
    pub flexible_versions: Option<String>,
    #[serde(default)]
    pub latest_version_unstable: bool,
    #[serde(default)]
    pub fields: Vec<RawField>,
    #[serde(default)]
    pub common_structs: Vec<RawStruct>,
}

/// A named structure shared by several fields of one message.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawStruct {
    pub name: String,
    #[serde(default)]
    pub fields: Vec<RawField>,
}

/// One field, as written. `mapKey`, `entityType` and `zeroCopy` are not
/// needed: arrays are plain `Vec`s and byte fields are always zero-copy.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawField {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub versions: String,
    pub nullable_versions: Option<String>,
    pub tagged_versions: Option<String>,
    pub tag: Option<u32>,
    #[serde(default)]
    pub ignorable: bool,
    pub default: Option<Value>,
    pub about: Option<String>,
    pub flexible_versions: Option<String>,
    pub fields: Option<Vec<RawField>>,
}

/// Parse one definition file's text.
pub fn parse(src: &str) -> Result<RawMessage, String> {
    serde_json::from_str(&strip_comments(src)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_removed_but_not_inside_strings() {
        let src = "{ // top\n  \"a\": \"http://x//y\", // tail \"quoted\"\n  \"b\": \"q\\\"//\" }";
        let v: Value = serde_json::from_str(&strip_comments(src)).unwrap();
        assert_eq!(v["a"], "http://x//y");
        assert_eq!(v["b"], "q\"//");
    }
}
