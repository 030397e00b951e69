//! Where each key of `[expect]` is written, by its dotted path
//! (`["events", "+reboot"]`), so that an error names its line and column:
//! `toml::Value` keeps no spans, so the table is read a second time into a
//! tree that does.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

/// Where each key of `[expect]` is, by its dotted path.
pub(super) fn key_spans(text: &str) -> BTreeMap<Vec<String>, Range<usize>> {
    #[derive(Deserialize)]
    struct Doc {
        expect: Option<Node>,
    }
    let mut out = BTreeMap::new();
    if let Ok(Doc { expect: Some(n) }) = toml::from_str::<Doc>(text) {
        walk(&n, &mut Vec::new(), &mut out);
    }
    out
}

fn walk(n: &Node, path: &mut Vec<String>, out: &mut BTreeMap<Vec<String>, Range<usize>>) {
    if let Node::Table(entries) = n {
        for (k, v) in entries {
            path.push(k.get_ref().clone());
            out.insert(path.clone(), k.span());
            walk(v.get_ref(), path, out);
            path.pop();
        }
    }
}

/// A TOML value with the spans of its keys (toml's `Value` has none).
enum Node {
    Leaf,
    Table(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        struct Vis;
        impl<'de> Visitor<'de> for Vis {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a TOML value")
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<Node, A::Error> {
                while s.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Node::Leaf)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Node, A::Error> {
                let mut out = Vec::new();
                while let Some(e) = m.next_entry::<Spanned<String>, Spanned<Node>>()? {
                    out.push(e);
                }
                Ok(Node::Table(out))
            }
        }
        d.deserialize_any(Vis)
    }
}
