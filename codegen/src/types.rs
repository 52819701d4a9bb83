//! Per-field facts shared by the code and sample emitters: Rust types,
//! defaults, version conditions and minimum encoded sizes.

use crate::spec::{Field, MessageDef, Prim, StructDef, Type, Versions};

/// Whether a set of versions holds, relative to the versions in which the
/// surrounding code can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Always,
    Never,
    /// `version >= n`
    Ge(i16),
    /// `version <= n`
    Le(i16),
    /// `lo <= version <= hi`
    In(i16, i16),
    /// `version < lo || version > hi` (the complement of `In`)
    Out(i16, i16),
}

impl Cond {
    /// `set` as seen from code that only runs in `within`.
    pub fn of(set: Versions, within: Versions) -> Cond {
        let s = set.intersect(within);
        if s.is_empty() {
            Cond::Never
        } else if s == within {
            Cond::Always
        } else {
            match (s.lo > within.lo, s.hi < within.hi) {
                (true, false) => Cond::Ge(s.lo),
                (false, true) => Cond::Le(s.hi),
                _ => Cond::In(s.lo, s.hi),
            }
        }
    }

    pub fn not(&self) -> Cond {
        match *self {
            Cond::Always => Cond::Never,
            Cond::Never => Cond::Always,
            Cond::Ge(n) => Cond::Le(n - 1),
            Cond::Le(n) => Cond::Ge(n + 1),
            Cond::In(a, b) => Cond::Out(a, b),
            Cond::Out(a, b) => Cond::In(a, b),
        }
    }

    /// A Rust boolean expression over `version`.
    pub fn expr(&self) -> String {
        match *self {
            Cond::Always => "true".into(),
            Cond::Never => "false".into(),
            Cond::Ge(n) => format!("version >= {n}"),
            Cond::Le(n) => format!("version <= {n}"),
            Cond::In(a, b) if a == b => format!("version == {a}"),
            Cond::In(a, b) => format!("({a}..={b}).contains(&version)"),
            Cond::Out(a, b) if a == b => format!("version != {a}"),
            Cond::Out(a, b) => format!("!({a}..={b}).contains(&version)"),
        }
    }
}

/// The Rust type of a value of `ty` (without the field's `Option`).
pub fn base_type(ty: &Type) -> String {
    match ty {
        Type::Prim(p) => prim_type(*p).into(),
        Type::Struct(s) => s.clone(),
        Type::Array(e) => format!("Vec<{}>", base_type(e)),
    }
}

fn prim_type(p: Prim) -> &'static str {
    match p {
        Prim::Bool => "bool",
        Prim::Int8 => "i8",
        Prim::Int16 => "i16",
        Prim::Uint16 => "u16",
        Prim::Int32 => "i32",
        Prim::Uint32 => "u32",
        Prim::Int64 => "i64",
        Prim::Float64 => "f64",
        Prim::Uuid => "Uuid",
        Prim::String => "String",
        Prim::Bytes | Prim::Records => "Bytes",
    }
}

/// The Rust type of a field.
pub fn field_type(f: &Field) -> String {
    if f.is_option() {
        format!("Option<{}>", base_type(&f.ty))
    } else {
        base_type(&f.ty)
    }
}

/// An integer default, accepting Kafka's decimal and `0x` hex forms.
fn parse_int(s: &str) -> Result<i128, String> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let v = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i128::from_str_radix(hex, 16)
    } else {
        t.parse::<i128>()
    }
    .map_err(|_| format!("bad integer default {s:?}"))?;
    Ok(if neg { -v } else { v })
}

fn int_literal(p: Prim, v: i128) -> Result<String, String> {
    let (min, max): (i128, i128) = match p {
        Prim::Int8 => (i8::MIN.into(), i8::MAX.into()),
        Prim::Int16 => (i16::MIN.into(), i16::MAX.into()),
        Prim::Uint16 => (0, u16::MAX.into()),
        Prim::Int32 => (i32::MIN.into(), i32::MAX.into()),
        Prim::Uint32 => (0, u32::MAX.into()),
        Prim::Int64 => (i64::MIN.into(), i64::MAX.into()),
        _ => return Err("not an integer type".into()),
    };
    let t = prim_type(p);
    if v < min || v > max {
        Err(format!("default {v} does not fit {t}"))
    } else if v == max && v > 0xffff {
        Ok(format!("{t}::MAX"))
    } else if v == min && v < -0xffff {
        Ok(format!("{t}::MIN"))
    } else {
        Ok(v.to_string())
    }
}

fn is_int(p: Prim) -> bool {
    matches!(
        p,
        Prim::Int8 | Prim::Int16 | Prim::Uint16 | Prim::Int32 | Prim::Uint32 | Prim::Int64
    )
}

/// The default value of a field, as a Rust expression.
pub fn default_expr(f: &Field) -> Result<String, String> {
    let d = f
        .default
        .as_deref()
        .filter(|d| !d.is_empty() || matches!(f.ty, Type::Prim(Prim::String)));
    let null = f.default_is_null();
    if null && !f.is_option() {
        return Err(format!(
            "{}: null default on a non-nullable field",
            f.json_name
        ));
    }
    let wrap = |e: String| {
        if null {
            "None".to_string()
        } else if f.is_option() {
            format!("Some({e})")
        } else {
            e
        }
    };
    Ok(match &f.ty {
        Type::Prim(p) if is_int(*p) => int_literal(*p, d.map(parse_int).transpose()?.unwrap_or(0))?,
        Type::Prim(Prim::Bool) => match d {
            None | Some("false") => "false".into(),
            Some("true") => "true".into(),
            Some(x) => return Err(format!("bad bool default {x:?}")),
        },
        Type::Prim(Prim::Float64) => {
            let v: f64 = d
                .map(|x| x.parse().map_err(|_| format!("bad float default {x:?}")))
                .transpose()?
                .unwrap_or(0.0);
            format!("{v:?}")
        }
        Type::Prim(Prim::Uuid) => {
            if d.is_some_and(|x| x != "AAAAAAAAAAAAAAAAAAAAAA") {
                return Err(format!("{}: uuid defaults are not supported", f.json_name));
            }
            "Uuid::ZERO".into()
        }
        Type::Prim(Prim::String) => wrap(match d {
            None | Some("") | Some("null") => "String::new()".into(),
            Some(s) => format!("String::from({s:?})"),
        }),
        Type::Prim(Prim::Bytes | Prim::Records) => wrap("Bytes::new()".into()),
        Type::Array(_) => wrap("Vec::new()".into()),
        Type::Struct(s) => wrap(format!("{s}::default()")),
        Type::Prim(_) => unreachable!("all primitives handled"),
    })
}

/// True when the default equals what `#[derive(Default)]` would produce.
pub fn default_is_natural(f: &Field) -> Result<bool, String> {
    let e = default_expr(f)?;
    Ok(match &f.ty {
        _ if f.is_option() => e == "None",
        Type::Prim(Prim::Bool) => e == "false",
        Type::Prim(Prim::Float64) => e == "0.0",
        Type::Prim(p) if is_int(*p) => e == "0",
        _ => true,
    })
}

/// A Rust boolean expression: does `place` (e.g. `self.x`) hold the
/// field's default?
pub fn is_default_expr(f: &Field, place: &str) -> Result<String, String> {
    let e = default_expr(f)?;
    Ok(match &f.ty {
        _ if f.is_option() && e == "None" => format!("{place}.is_none()"),
        Type::Prim(Prim::String) if f.is_option() => {
            let inner = e
                .strip_prefix("Some(")
                .and_then(|x| x.strip_suffix(')'))
                .unwrap_or("String::new()");
            let lit = if inner == "String::new()" {
                "\"\"".to_string()
            } else {
                inner
                    .strip_prefix("String::from(")
                    .and_then(|x| x.strip_suffix(')'))
                    .unwrap_or(inner)
                    .to_string()
            };
            format!("{place}.as_deref() == Some({lit})")
        }
        Type::Prim(Prim::String) => {
            if e == "String::new()" {
                format!("{place}.is_empty()")
            } else {
                let lit = e
                    .strip_prefix("String::from(")
                    .and_then(|x| x.strip_suffix(')'))
                    .unwrap_or(&e);
                format!("{place} == {lit}")
            }
        }
        Type::Prim(Prim::Bytes | Prim::Records) | Type::Array(_) if f.is_option() => {
            format!("{place}.as_ref().is_some_and(|v| v.is_empty())")
        }
        Type::Prim(Prim::Bytes | Prim::Records) | Type::Array(_) => format!("{place}.is_empty()"),
        Type::Struct(s) if f.is_option() => format!("{place}.as_ref() == Some(&{s}::default())"),
        Type::Struct(s) => format!("{place} == {s}::default()"),
        Type::Prim(Prim::Bool) if e == "true" => place.to_string(),
        Type::Prim(Prim::Bool) => format!("!{place}"),
        Type::Prim(_) => format!("{place} == {e}"),
    })
}

/// The negation of [`is_default_expr`], written without `!(..)` where
/// that reads better.
pub fn not_default_expr(f: &Field, place: &str) -> Result<String, String> {
    let e = is_default_expr(f, place)?;
    Ok(if let Some(x) = e.strip_suffix(".is_none()") {
        format!("{x}.is_some()")
    } else if let Some(x) = e.strip_prefix('!') {
        x.to_string()
    } else if matches!(f.ty, Type::Prim(Prim::Bool)) {
        format!("!{e}")
    } else if let Some((l, r)) = e.split_once(" == ") {
        format!("{l} != {r}")
    } else {
        format!("!{e}")
    })
}

/// Sizes and conditions that depend on the message (flexible versions,
/// struct lookups).
pub struct Sizes<'a> {
    pub msg: &'a MessageDef,
}

impl Sizes<'_> {
    /// Versions in which `f` uses compact (flexible) encodings.
    pub fn compact(&self, f: &Field) -> Versions {
        f.flexible_override.unwrap_or(self.msg.flexible)
    }

    fn struct_def(&self, name: &str) -> Result<&StructDef, String> {
        self.msg
            .find(name)
            .ok_or_else(|| format!("{}: unknown struct {name}", self.msg.name))
    }

    /// The smallest encoding of struct `name` at `version`.
    pub fn struct_min(&self, name: &str, version: i16) -> Result<usize, String> {
        let s = self.struct_def(name)?;
        let mut n = usize::from(self.msg.flexible.contains(version));
        for f in &s.fields {
            if f.regular().contains(version) {
                n += self.field_min(f, version)?;
            }
        }
        Ok(n)
    }

    fn field_min(&self, f: &Field, version: i16) -> Result<usize, String> {
        let compact = self.compact(f).contains(version);
        Ok(match &f.ty {
            Type::Struct(s) => {
                if f.nullable.contains(version) {
                    1
                } else {
                    self.struct_min(s, version)?
                }
            }
            Type::Array(_) => {
                if compact {
                    1
                } else {
                    4
                }
            }
            Type::Prim(p) => self.prim_min(*p, compact),
        })
    }

    fn prim_min(&self, p: Prim, compact: bool) -> usize {
        match p.fixed_size() {
            Some(n) => n,
            None if compact => 1,
            None if p == Prim::String => 2,
            None => 4,
        }
    }

    /// The smallest encoding of one element of array field `f`.
    pub fn elem_min(&self, f: &Field, version: i16) -> Result<usize, String> {
        let compact = self.compact(f).contains(version);
        match &f.ty {
            Type::Array(e) => match e.as_ref() {
                Type::Prim(p) => Ok(self.prim_min(*p, compact)),
                Type::Struct(s) => Ok(self.struct_min(s, version)?.max(1)),
                Type::Array(_) => Err("arrays of arrays are not supported".into()),
            },
            _ => Err("not an array".into()),
        }
    }

    /// The element minimum as a Rust expression for code running in `ctx`.
    pub fn elem_min_expr(&self, f: &Field, ctx: Versions) -> Result<String, String> {
        let mut runs: Vec<(i16, i16, usize)> = Vec::new();
        for v in ctx.lo..=ctx.hi.min(self.msg.valid.hi) {
            let m = self.elem_min(f, v)?;
            match runs.last_mut() {
                Some(last) if last.2 == m => last.1 = v,
                _ => runs.push((v, v, m)),
            }
        }
        Ok(match runs.as_slice() {
            [] => "1".into(),
            [(_, _, m)] => m.to_string(),
            _ => {
                let mut s = String::from("match version {");
                for (i, (lo, hi, m)) in runs.iter().enumerate() {
                    if i + 1 == runs.len() {
                        s += &format!(" _ => {m},");
                    } else if lo == hi {
                        s += &format!(" {lo} => {m},");
                    } else {
                        s += &format!(" {lo}..={hi} => {m},");
                    }
                }
                s + " }"
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;
    use crate::spec::build;

    const FETCH: &str = r#"{ "type": "request", "name": "FetchRequest", "apiKey": 1,
      "validVersions": "4-18", "flexibleVersions": "12+", "fields": [
      { "name": "Topics", "type": "[]FetchTopic", "versions": "0+", "about": "", "fields": [
        { "name": "Topic", "type": "string", "versions": "0-12", "about": "" },
        { "name": "TopicId", "type": "uuid", "versions": "13+", "about": "" },
        { "name": "Partitions", "type": "[]FetchPartition", "versions": "0+", "about": "", "fields": [
          { "name": "Partition", "type": "int32", "versions": "0+", "about": "" },
          { "name": "CurrentLeaderEpoch", "type": "int32", "versions": "9+", "default": "-1", "about": "" },
          { "name": "Records", "type": "records", "versions": "0+", "nullableVersions": "0+", "about": "" },
          { "name": "Dir", "type": "uuid", "versions": "17+", "taggedVersions": "17+", "tag": 0, "about": "" }
        ]}
      ]}
    ]}"#;

    #[test]
    fn element_minimums_by_version() {
        let m = build(&parse(FETCH).unwrap()).unwrap();
        let s = Sizes { msg: &m };
        let topics = &m.top().fields[0];
        let parts = &m.find("FetchTopic").unwrap().fields[2];
        // FetchPartition: int32 + records (int32 null marker), then + epoch
        // from v9; compact records (1) and a tag count (1) from v12; the
        // tagged uuid never counts.
        let want = [(4, 8), (9, 12), (12, 10), (18, 10)];
        for (v, n) in want {
            assert_eq!(s.elem_min(parts, v).unwrap(), n, "v{v}");
        }
        // FetchTopic: string (2) + array (4); compact 1 + 1 + tags 1 at v12;
        // uuid 16 + 1 + 1 from v13.
        for (v, n) in [(4, 6), (12, 3), (13, 18)] {
            assert_eq!(s.elem_min(topics, v).unwrap(), n, "v{v}");
        }
        let range = Versions { lo: 4, hi: 18 };
        assert_eq!(
            s.elem_min_expr(topics, range).unwrap(),
            "match version { 4..=11 => 6, 12 => 3, _ => 18, }"
        );
    }

    #[test]
    fn conditions() {
        let within = Versions { lo: 4, hi: 18 };
        let c = |lo, hi| Cond::of(Versions { lo, hi }, within);
        assert_eq!(c(0, i16::MAX), Cond::Always);
        assert_eq!(c(0, 3), Cond::Never);
        assert_eq!(c(12, i16::MAX).expr(), "version >= 12");
        assert_eq!(c(0, 14).expr(), "version <= 14");
        assert_eq!(c(7, 12).expr(), "(7..=12).contains(&version)");
        assert_eq!(c(7, 12).not().expr(), "!(7..=12).contains(&version)");
        assert_eq!(c(12, i16::MAX).not().expr(), "version <= 11");
    }

    #[test]
    fn defaults() {
        let m = build(&parse(FETCH).unwrap()).unwrap();
        let part = m.find("FetchPartition").unwrap();
        assert_eq!(default_expr(&part.fields[1]).unwrap(), "-1");
        assert_eq!(default_expr(&part.fields[2]).unwrap(), "None");
        assert_eq!(
            not_default_expr(&part.fields[1], "self.x").unwrap(),
            "self.x != -1"
        );
        assert_eq!(parse_int("0x7fffffff").unwrap(), 0x7fff_ffff);
        assert_eq!(int_literal(Prim::Int32, 0x7fff_ffff).unwrap(), "i32::MAX");
        assert!(int_literal(Prim::Int8, 300).is_err());
    }
}
