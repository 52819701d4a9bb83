//! Test values for every generated struct: for a given version, every field
//! that version carries is set to a distinct non-default value (or, in
//! "nulls" mode, to null where the version allows it). Written to
//! `protocol/tests/messages/samples.rs` and used by the round-trip,
//! differential and hostile-input tests.

use std::fmt::Write as _;

use crate::emit::mentions;
use crate::naming::plain;
use crate::spec::{Field, MessageDef, Prim, StructDef, Type};
use crate::types::{default_expr, Cond};

struct Ctx<'a> {
    msg: &'a MessageDef,
    module: String,
    counter: u32,
}

impl Ctx<'_> {
    fn path(&self, name: &str) -> String {
        format!("messages::{}::{name}", self.module)
    }

    fn next(&mut self) -> u32 {
        self.counter += 1;
        self.counter
    }

    /// A non-default value for a primitive, distinct per field.
    fn prim_value(&mut self, p: Prim, name: &str) -> String {
        let k = self.next();
        match p {
            Prim::Bool => unreachable!("handled by caller"),
            Prim::Int8 => format!("{}", 10 + k % 100),
            Prim::Int16 => format!("{}", 1_000 + k),
            Prim::Uint16 => format!("{}", 2_000 + k),
            Prim::Int32 => format!("{}", 100_000 + k),
            Prim::Uint32 => format!("{}", 200_000 + k),
            Prim::Int64 => format!("{}", 10_000_000_000u64 + u64::from(k)),
            Prim::Float64 => format!("{}.5", k),
            Prim::Uuid => format!("Uuid([{}; 16])", k % 255 + 1),
            Prim::String => format!("String::from(\"{name}-{k}\")"),
            Prim::Bytes => format!(
                "Bytes::from_static(&[{}, {}, {}])",
                k % 256,
                (k + 1) % 256,
                (k + 2) % 256
            ),
            Prim::Records => format!("Bytes::from_static(b\"records-{k}\")"),
        }
    }

    /// A non-null value of field `f` (without the field's `Option`).
    fn value(&mut self, f: &Field) -> Result<String, String> {
        let name = plain(&f.rust_name).to_string();
        Ok(match &f.ty {
            Type::Prim(Prim::Bool) => {
                if default_expr(f)? == "true" {
                    "false".into()
                } else {
                    "true".into()
                }
            }
            Type::Prim(p) => self.prim_value(*p, &name),
            Type::Struct(s) => format!("{}::sample(version, nulls)", self.path(s)),
            Type::Array(e) => match e.as_ref() {
                Type::Struct(s) => {
                    let one = format!("{}::sample(version, nulls)", self.path(s));
                    format!("if nulls {{ vec![{one}] }} else {{ vec![{one}, {one}] }}")
                }
                Type::Prim(Prim::Bool) => "if nulls { vec![] } else { vec![true, false] }".into(),
                Type::Prim(p) => {
                    let a = self.prim_value(*p, &name);
                    let b = self.prim_value(*p, &name);
                    format!("if nulls {{ Vec::new() }} else {{ vec![{a}, {b}] }}")
                }
                Type::Array(_) => return Err("arrays of arrays are not supported".into()),
            },
        })
    }

    fn field(&mut self, s: &StructDef, f: &Field) -> Result<String, String> {
        let present = f.versions.intersect(s.range);
        let mut v = self.value(f)?;
        if f.is_option() {
            v = match Cond::of(f.nullable, present) {
                Cond::Never => format!("Some({v})"),
                Cond::Always => format!("if nulls {{ None }} else {{ Some({v}) }}"),
                c => format!("if nulls && {} {{ None }} else {{ Some({v}) }}", c.expr()),
            };
        }
        Ok(match Cond::of(present, s.range) {
            Cond::Always => v,
            c => format!("if {} {{ {v} }} else {{ d.{} }}", c.expr(), f.rust_name),
        })
    }

    fn sample_impl(&mut self, s: &StructDef, out: &mut String) -> Result<(), String> {
        let mut fields = Vec::new();
        let mut uses_default = false;
        for f in &s.fields {
            let v = self.field(s, f)?;
            uses_default |= v.contains(" d.");
            fields.push(format!("{}: {v}", f.rust_name));
        }
        let body = fields.join(",\n");
        let version_used = mentions(&body, "version");
        let nulls_used = mentions(&body, "nulls");
        let _ = writeln!(
            out,
            "impl Sample for {} {{\nfn sample({}: i16, {}: bool) -> Self {{",
            self.path(&s.name),
            if version_used { "version" } else { "_version" },
            if nulls_used { "nulls" } else { "_nulls" },
        );
        if uses_default {
            out.push_str("let d = Self::default();\n");
        }
        let _ = writeln!(out, "Self {{\n{body}\n}}\n}}\n}}\n");
        Ok(())
    }
}

/// The text of `samples.rs` for the generated messages.
pub fn samples_rs(generated: &[MessageDef], kafka_version: &str) -> Result<String, String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// Generated by skotch-codegen from Apache Kafka {kafka_version}. Do not edit;\n\
         // run `scripts/codegen` instead.\n\n\
         //! Sample values of every generated message, for tests: every field the\n\
         //! chosen version carries holds a distinct non-default value, or null\n\
         //! (and arrays are short) in `nulls` mode.\n\n\
         use bytes::Bytes;\n\
         use skotch_protocol::messages::{{self, Message}};\n\
         use skotch_protocol::Uuid;\n\n\
         /// Builds test values.\n\
         pub trait Sample: Sized {{\n\
         /// A value with every field `version` carries set; `nulls` picks null\n\
         /// for nullable fields and short arrays.\n\
         fn sample(version: i16, nulls: bool) -> Self;\n}}\n\n\
         /// Something done for each generated message type.\n\
         pub trait Visit {{\n\
         /// Called once per message type.\n\
         fn visit<M: Message + Sample>(&mut self);\n}}\n\n\
         /// Call `v.visit` for every generated message type.\n\
         pub fn visit_all(v: &mut impl Visit) {{"
    );
    let mut sorted: Vec<&MessageDef> = generated.iter().collect();
    sorted.sort_by_key(|m| m.module());
    for m in &sorted {
        let _ = writeln!(out, "v.visit::<messages::{}>();", m.name);
    }
    out.push_str("}\n\n");
    for m in &sorted {
        let mut ctx = Ctx {
            msg: m,
            module: m.module(),
            counter: 0,
        };
        let msg = ctx.msg;
        for s in &msg.structs {
            ctx.sample_impl(s, &mut out)?;
        }
    }
    Ok(out)
}
