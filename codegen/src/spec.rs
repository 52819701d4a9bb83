//! The checked model of a message definition: version ranges parsed, types
//! resolved, nested and common structs collected, and for every struct the
//! range of message versions in which it can appear.

use std::collections::BTreeMap;

use crate::json::{RawField, RawMessage};
use crate::naming::snake_case;

/// A contiguous range of versions; empty when `lo > hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub lo: i16,
    pub hi: i16,
}

impl Versions {
    pub const NONE: Versions = Versions { lo: 1, hi: 0 };
    pub const ALL: Versions = Versions {
        lo: 0,
        hi: i16::MAX,
    };

    /// Parse Kafka's version spec: `none`, `3`, `1-4` or `2+`.
    pub fn parse(s: &str) -> Result<Versions, String> {
        let s = s.trim();
        let num = |t: &str| {
            t.trim()
                .parse::<i16>()
                .map_err(|_| format!("bad version spec {s:?}"))
        };
        if s == "none" {
            Ok(Versions::NONE)
        } else if let Some(lo) = s.strip_suffix('+') {
            Ok(Versions {
                lo: num(lo)?,
                hi: i16::MAX,
            })
        } else if let Some((lo, hi)) = s.split_once('-') {
            Ok(Versions {
                lo: num(lo)?,
                hi: num(hi)?,
            })
        } else {
            let v = num(s)?;
            Ok(Versions { lo: v, hi: v })
        }
    }

    pub fn is_empty(self) -> bool {
        self.lo > self.hi
    }

    pub fn contains(self, v: i16) -> bool {
        self.lo <= v && v <= self.hi
    }

    pub fn intersect(self, o: Versions) -> Versions {
        let r = Versions {
            lo: self.lo.max(o.lo),
            hi: self.hi.min(o.hi),
        };
        if r.is_empty() {
            Versions::NONE
        } else {
            r
        }
    }

    /// The smallest range holding both.
    pub fn hull(self, o: Versions) -> Versions {
        if self.is_empty() {
            o
        } else if o.is_empty() {
            self
        } else {
            Versions {
                lo: self.lo.min(o.lo),
                hi: self.hi.max(o.hi),
            }
        }
    }

    /// `self` minus an open-ended range `o` (`o.hi == MAX`), which is again
    /// a range.
    pub fn minus_open(self, o: Versions) -> Versions {
        if o.is_empty() {
            self
        } else {
            self.intersect(Versions {
                lo: i16::MIN,
                hi: o.lo - 1,
            })
        }
    }

    pub fn covers(self, o: Versions) -> bool {
        o.is_empty() || (self.lo <= o.lo && o.hi <= self.hi)
    }

    pub fn iter(self) -> impl Iterator<Item = i16> {
        let (lo, hi) = (self.lo, self.hi);
        (lo..=hi).take(if self.is_empty() { 0 } else { usize::MAX })
    }

    /// Human form: `none`, `4`, `4-14`, `12+` (open when `hi` reaches the
    /// message's last version `max`).
    pub fn show(self, max: i16) -> String {
        if self.is_empty() {
            "none".into()
        } else if self.hi >= max {
            format!("{}+", self.lo)
        } else if self.lo == self.hi {
            format!("{}", self.lo)
        } else {
            format!("{}-{}", self.lo, self.hi)
        }
    }
}

/// Primitive field types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prim {
    Bool,
    Int8,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Int64,
    Float64,
    Uuid,
    String,
    Bytes,
    Records,
}

impl Prim {
    fn parse(s: &str) -> Option<Prim> {
        Some(match s {
            "bool" => Prim::Bool,
            "int8" => Prim::Int8,
            "int16" => Prim::Int16,
            "uint16" => Prim::Uint16,
            "int32" => Prim::Int32,
            "uint32" => Prim::Uint32,
            "int64" => Prim::Int64,
            "float64" => Prim::Float64,
            "uuid" => Prim::Uuid,
            "string" => Prim::String,
            "bytes" => Prim::Bytes,
            "records" => Prim::Records,
            _ => return None,
        })
    }

    /// Fixed wire width, for the types that have one.
    pub fn fixed_size(self) -> Option<usize> {
        Some(match self {
            Prim::Bool | Prim::Int8 => 1,
            Prim::Int16 | Prim::Uint16 => 2,
            Prim::Int32 | Prim::Uint32 => 4,
            Prim::Int64 | Prim::Float64 => 8,
            Prim::Uuid => 16,
            Prim::String | Prim::Bytes | Prim::Records => return None,
        })
    }
}

/// A field's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    Prim(Prim),
    Struct(String),
    /// Arrays hold primitives or structs, never arrays.
    Array(Box<Type>),
}

/// One field of a struct.
#[derive(Debug, Clone)]
pub struct Field {
    /// Name as written in the JSON, e.g. `PartitionIndex`.
    pub json_name: String,
    /// Rust name, e.g. `partition_index` (keywords get `r#`).
    pub rust_name: String,
    pub ty: Type,
    pub versions: Versions,
    pub nullable: Versions,
    /// Versions in which the field travels in the tagged-field section.
    pub tagged: Versions,
    pub tag: Option<u32>,
    pub ignorable: bool,
    /// The "default" entry, as a string, when given.
    pub default: Option<String>,
    pub about: String,
    /// A per-field override of the message's flexible versions (only
    /// meaningful for strings and bytes; RequestHeader's ClientId).
    pub flexible_override: Option<Versions>,
}

impl Field {
    /// True when the Rust type is an `Option`.
    pub fn is_option(&self) -> bool {
        !self.nullable.is_empty() || self.ty == Type::Prim(Prim::Records)
    }
    /// True when the default is null (`None`).
    pub fn default_is_null(&self) -> bool {
        self.ty == Type::Prim(Prim::Records) || self.default.as_deref() == Some("null")
    }
    /// Versions in which the field is an ordinary (untagged) field.
    pub fn regular(&self) -> Versions {
        self.versions.minus_open(self.tagged)
    }
    /// Versions in which the field is a tagged field.
    pub fn tagged_in(&self) -> Versions {
        self.versions.intersect(self.tagged)
    }
}

/// A struct: the message body itself, an inline nested struct, or a common
/// struct.
#[derive(Debug, Clone)]
pub struct StructDef {
    pub name: String,
    pub about: String,
    pub fields: Vec<Field>,
    /// The message versions in which this struct can appear (the hull over
    /// all its uses). Fields outside it are dropped.
    pub range: Versions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
    Header,
    Data,
}

/// One message definition file.
#[derive(Debug, Clone)]
pub struct MessageDef {
    pub name: String,
    pub kind: Kind,
    pub api_key: Option<i16>,
    pub valid: Versions,
    pub flexible: Versions,
    pub latest_unstable: bool,
    /// The message body, then every nested or common struct in order of
    /// first appearance.
    pub structs: Vec<StructDef>,
}

impl MessageDef {
    pub fn top(&self) -> &StructDef {
        &self.structs[0]
    }

    pub fn find(&self, name: &str) -> Option<&StructDef> {
        self.structs.iter().find(|s| s.name == name)
    }

    /// Module name: `FetchRequest` -> `fetch_request`.
    pub fn module(&self) -> String {
        snake_case(&self.name)
    }
}

fn parse_field(raw: &RawField, structs: &mut Vec<StructDef>) -> Result<Field, String> {
    let ctx = |e: String| format!("field {}: {e}", raw.name);
    let (ty, elem_name) = match raw.ty.strip_prefix("[]") {
        Some(elem) => match Prim::parse(elem) {
            Some(p) => (Type::Array(Box::new(Type::Prim(p))), None),
            None => (
                Type::Array(Box::new(Type::Struct(elem.to_string()))),
                Some(elem),
            ),
        },
        None => match Prim::parse(&raw.ty) {
            Some(p) => (Type::Prim(p), None),
            None => (Type::Struct(raw.ty.clone()), Some(raw.ty.as_str())),
        },
    };
    if let (Some(name), Some(fields)) = (elem_name, &raw.fields) {
        if structs.iter().any(|s| s.name == name) {
            return Err(ctx(format!("struct {name} is defined twice")));
        }
        // Reserve the slot first so that structs are listed parent-first.
        let at = structs.len();
        structs.push(StructDef {
            name: name.to_string(),
            about: raw.about.clone().unwrap_or_default(),
            fields: Vec::new(),
            range: Versions::NONE,
        });
        let mut parsed = Vec::new();
        for f in fields {
            parsed.push(parse_field(f, structs)?);
        }
        structs[at].fields = parsed;
    } else if elem_name.is_none() && raw.fields.is_some() {
        return Err(ctx("primitive field with nested fields".into()));
    }
    let opt = |s: &Option<String>| -> Result<Versions, String> {
        s.as_deref()
            .map(Versions::parse)
            .transpose()
            .map(|v| v.unwrap_or(Versions::NONE))
    };
    let tagged = opt(&raw.tagged_versions).map_err(ctx)?;
    if !tagged.is_empty() && tagged.hi != i16::MAX {
        return Err(ctx("taggedVersions must be open-ended".into()));
    }
    if tagged.is_empty() != raw.tag.is_none() {
        return Err(ctx("tag and taggedVersions must come together".into()));
    }
    let default = match &raw.default {
        None => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(v) => Some(v.to_string()),
    };
    Ok(Field {
        json_name: raw.name.clone(),
        rust_name: crate::naming::field_name(&raw.name),
        ty,
        versions: Versions::parse(&raw.versions).map_err(ctx)?,
        nullable: opt(&raw.nullable_versions).map_err(ctx)?,
        tagged,
        tag: raw.tag,
        ignorable: raw.ignorable,
        default,
        about: raw.about.clone().unwrap_or_default(),
        flexible_override: raw
            .flexible_versions
            .as_deref()
            .map(Versions::parse)
            .transpose()
            .map_err(ctx)?,
    })
}

/// Build the model of one definition file.
pub fn build(raw: &RawMessage) -> Result<MessageDef, String> {
    let kind = match raw.kind.as_str() {
        "request" => Kind::Request,
        "response" => Kind::Response,
        "header" => Kind::Header,
        "data" => Kind::Data,
        k => return Err(format!("{}: unknown message type {k}", raw.name)),
    };
    let valid = Versions::parse(&raw.valid_versions)?;
    let flexible = match &raw.flexible_versions {
        Some(s) => Versions::parse(s)?,
        None => Versions::NONE,
    };
    let mut structs = vec![StructDef {
        name: raw.name.clone(),
        about: String::new(),
        fields: Vec::new(),
        range: valid,
    }];
    let mut top = Vec::new();
    for f in &raw.fields {
        top.push(parse_field(f, &mut structs).map_err(|e| format!("{}: {e}", raw.name))?);
    }
    structs[0].fields = top;
    for cs in &raw.common_structs {
        if structs.iter().any(|s| s.name == cs.name) {
            return Err(format!("{}: struct {} defined twice", raw.name, cs.name));
        }
        let at = structs.len();
        structs.push(StructDef {
            name: cs.name.clone(),
            about: String::new(),
            fields: Vec::new(),
            range: Versions::NONE,
        });
        let mut parsed = Vec::new();
        for f in &cs.fields {
            parsed.push(parse_field(f, &mut structs).map_err(|e| format!("{}: {e}", raw.name))?);
        }
        structs[at].fields = parsed;
    }
    let mut msg = MessageDef {
        name: raw.name.clone(),
        kind,
        api_key: raw.api_key,
        valid,
        flexible,
        latest_unstable: raw.latest_version_unstable,
        structs,
    };
    compute_ranges(&mut msg)?;
    Ok(msg)
}

/// Work out each struct's version range from its uses, drop fields that
/// never appear in it, and drop structs that are never used.
fn compute_ranges(msg: &mut MessageDef) -> Result<(), String> {
    let mut ranges: BTreeMap<String, Versions> = BTreeMap::new();
    fn walk(
        msg: &MessageDef,
        name: &str,
        range: Versions,
        ranges: &mut BTreeMap<String, Versions>,
        depth: usize,
    ) -> Result<(), String> {
        if depth > 32 {
            return Err(format!("{}: structs nest too deeply", msg.name));
        }
        let def = msg
            .find(name)
            .ok_or_else(|| format!("{}: unknown struct type {name}", msg.name))?;
        let e = ranges.entry(name.to_string()).or_insert(Versions::NONE);
        *e = e.hull(range);
        for f in &def.fields {
            let inner = f.versions.intersect(range);
            if inner.is_empty() {
                continue;
            }
            let target = match &f.ty {
                Type::Struct(s) => Some(s),
                Type::Array(e) => match e.as_ref() {
                    Type::Struct(s) => Some(s),
                    _ => None,
                },
                Type::Prim(_) => None,
            };
            if let Some(s) = target {
                walk(msg, s, inner, ranges, depth + 1)?;
            }
        }
        Ok(())
    }
    let top = msg.name.clone();
    walk(msg, &top, msg.valid, &mut ranges, 0)?;
    msg.structs
        .retain(|s| ranges.get(&s.name).is_some_and(|r| !r.is_empty()));
    for s in &mut msg.structs {
        s.range = ranges[&s.name];
        let range = s.range;
        s.fields.retain(|f| !f.versions.intersect(range).is_empty());
    }
    for s in &msg.structs {
        for f in &s.fields {
            if !f.tagged_in().is_empty() && !msg.flexible.covers(f.tagged_in().intersect(s.range)) {
                return Err(format!(
                    "{}: tagged field {} outside flexible versions",
                    msg.name, f.json_name
                ));
            }
        }
    }
    Ok(())
}
