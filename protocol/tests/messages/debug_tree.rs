//! A small parser for `{:?}` output, so that values of two different
//! crates' types can be compared field by field, by name.
//!
//! Both crates derive `Debug`, so a struct prints as `Name { field: value,
//! .. }`. Differences that do not matter are normalised away: newtype
//! wrappers and `Some(..)` are unwrapped (`BrokerId(5)` and `5` compare
//! equal), and our `Uuid([..16 bytes..])` becomes the hyphenated form the
//! `uuid` crate prints. Field names are compared without underscores.

use std::collections::BTreeMap;

/// A parsed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A struct's fields by name (the struct name is not compared).
    Struct(BTreeMap<String, Node>),
    /// A list.
    List(Vec<Node>),
    /// A map (`{k: v}`), kept as text.
    Map(String),
    /// A number, bool, UUID or string/bytes literal, as printed.
    Atom(String),
    /// `None`.
    Null,
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.at).copied()
    }

    fn eat(&mut self, c: u8) {
        assert_eq!(self.peek(), Some(c), "at {}: {}", self.at, self.rest());
        self.at += 1;
    }

    fn rest(&self) -> String {
        String::from_utf8_lossy(&self.s[self.at..self.s.len().min(self.at + 60)]).into()
    }

    /// A quoted literal, escapes included, returned as written.
    fn quoted(&mut self) -> String {
        let start = self.at;
        if self.s[self.at] == b'b' {
            self.at += 1;
        }
        self.at += 1; // opening quote
        while self.s[self.at] != b'"' {
            if self.s[self.at] == b'\\' {
                self.at += 1;
            }
            self.at += 1;
        }
        self.at += 1;
        String::from_utf8_lossy(&self.s[start..self.at]).into()
    }

    fn token(&mut self) -> String {
        let start = self.at;
        while self.at < self.s.len()
            && (self.s[self.at].is_ascii_alphanumeric() || b"_-.+#".contains(&self.s[self.at]))
        {
            self.at += 1;
        }
        assert!(
            self.at > start,
            "unexpected input at {}: {}",
            start,
            self.rest()
        );
        String::from_utf8_lossy(&self.s[start..self.at]).into()
    }

    fn list(&mut self, close: u8) -> Vec<Node> {
        let mut out = Vec::new();
        while self.peek() != Some(close) {
            out.push(self.value());
            if self.peek() == Some(b',') {
                self.at += 1;
            }
        }
        self.eat(close);
        out
    }

    fn value(&mut self) -> Node {
        match self.peek() {
            Some(b'"') => Node::Atom(self.quoted()),
            Some(b'b') if self.s.get(self.at + 1) == Some(&b'"') => Node::Atom(self.quoted()),
            Some(b'[') => {
                self.at += 1;
                Node::List(self.list(b']'))
            }
            Some(b'{') => {
                let start = self.at;
                let mut depth = 0;
                loop {
                    match self.s[self.at] {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                break;
                            }
                        }
                        b'"' => {
                            self.quoted();
                            continue;
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
                Node::Map(String::from_utf8_lossy(&self.s[start..self.at]).into())
            }
            _ => {
                let t = self.token();
                match self.peek() {
                    Some(b'{') => {
                        self.at += 1;
                        let mut fields = BTreeMap::new();
                        while self.peek() != Some(b'}') {
                            let name = self.token();
                            // Compare names without underscores: the crates
                            // split digits differently (`enable2_pc` versus
                            // `enable_2_pc` for `Enable2Pc`).
                            let name = name.strip_prefix("r#").unwrap_or(&name).replace('_', "");
                            self.eat(b':');
                            fields.insert(name, self.value());
                            if self.peek() == Some(b',') {
                                self.at += 1;
                            }
                        }
                        self.eat(b'}');
                        Node::Struct(fields)
                    }
                    Some(b'(') => {
                        self.at += 1;
                        let mut items = self.list(b')');
                        if t == "Uuid" {
                            return uuid(&items);
                        }
                        assert_eq!(items.len(), 1, "tuple {t} with {} fields", items.len());
                        items.remove(0)
                    }
                    _ if t == "None" => Node::Null,
                    _ => Node::Atom(t),
                }
            }
        }
    }
}

/// Our `Uuid([b0, .., b15])` as `uuid` prints it.
fn uuid(items: &[Node]) -> Node {
    let Some(Node::List(bytes)) = items.first() else {
        panic!("odd Uuid: {items:?}");
    };
    let mut s = String::new();
    for (i, b) in bytes.iter().enumerate() {
        let Node::Atom(b) = b else {
            panic!("odd Uuid byte")
        };
        let b: u8 = b.parse().unwrap();
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    Node::Atom(s)
}

/// Parse `{:?}` output.
pub fn parse(debug: &str) -> Node {
    let mut p = Parser {
        s: debug.as_bytes(),
        at: 0,
    };
    let v = p.value();
    assert_eq!(p.peek(), None, "trailing input: {}", p.rest());
    v
}

/// The result of a comparison.
#[derive(Debug, Default)]
pub struct Diff {
    /// Leaves compared and equal.
    pub equal: usize,
    /// `path: ours != theirs`
    pub mismatches: Vec<String>,
    /// Fields only one side has (by path, without list indexes).
    pub only_ours: Vec<String>,
    /// Fields only the other side has.
    pub only_theirs: Vec<String>,
}

/// Compare two parsed values field by field. `unknown_tagged_fields` (the
/// other crate's store of tags it does not know) is not a field.
pub fn compare(ours: &Node, theirs: &Node, path: &str, d: &mut Diff) {
    match (ours, theirs) {
        (Node::Struct(a), Node::Struct(b)) => {
            for (k, va) in a {
                match b.get(k) {
                    Some(vb) => compare(va, vb, &format!("{path}.{k}"), d),
                    None => d.only_ours.push(format!("{path}.{k}")),
                }
            }
            for k in b.keys() {
                if !a.contains_key(k) && k != "unknowntaggedfields" {
                    d.only_theirs.push(format!("{path}.{k}"));
                }
            }
        }
        (Node::List(a), Node::List(b)) if a.len() == b.len() => {
            for (x, y) in a.iter().zip(b) {
                compare(x, y, &format!("{path}[]"), d);
            }
        }
        (a, b) if a == b => d.equal += 1,
        (a, b) => d.mismatches.push(format!("{path}: {a:?} != {b:?}")),
    }
}

#[test]
fn parses_and_normalises() {
    let ours = parse(
        r#"X { a: Some("s\"x"), b: [Y { c: -1, d: Uuid([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]) }], r#type: b"\x01", e: None, f: 1.5 }"#,
    );
    let theirs = parse(
        r#"X { a: Some(StrBytes("s\"x")), b: [Y { c: BrokerId(-1), d: 00000000-0000-0000-0000-000000000001, unknown_tagged_fields: {} }], type: b"\x01", e: None, f: 1.5, g: true, unknown_tagged_fields: {1: b"{"} }"#,
    );
    let mut d = Diff::default();
    compare(&ours, &theirs, "X", &mut d);
    assert!(d.mismatches.is_empty(), "{:?}", d.mismatches);
    assert_eq!(d.equal, 6);
    assert_eq!(d.only_theirs, ["X.g"]);
}
