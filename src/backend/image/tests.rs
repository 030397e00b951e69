//! The catalog, the recipe hash, mirrors, quoting, references.

use super::build::quote;
use super::*;

#[test]
fn catalog_lookup() {
    assert_eq!(spec(DEFAULT_IMAGE).map(|s| s.suite), Some("trixie"));
    assert_eq!(spec("testbed/redis:7.0").map(|s| s.suite), Some("bookworm"));
    let v = spec("testbed/valkey:8.1").expect("valkey in catalog");
    assert_eq!((v.product, v.version), ("valkey", "8.1"));
    assert!(v.packages.contains(&"valkey-sentinel"));
    assert!(spec("redis:7.4").is_none());
    for s in CATALOG {
        assert!(s.name.ends_with(&format!("{}:{}", s.product, s.version)));
    }
}

#[test]
fn mirror_from_deb822_skips_comments_and_security() {
    let text = "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\n\
                URIs: http://deb.debian.org/debian\nSuites: bookworm\n\n\
                Types: deb\nURIs: http://deb.debian.org/debian-security\n";
    assert_eq!(
        mirror_from_sources(text).as_deref(),
        Some("http://deb.debian.org/debian")
    );
    let sec = "Types: deb\nURIs: http://deb.debian.org/debian-security/\n";
    assert_eq!(mirror_from_sources(sec), None);
}

#[test]
fn mirror_from_one_line_format() {
    let text = "# deb http://old.example/debian bookworm main\n\
                deb https://packages.cloud.google.com/apt cloud-sdk main\n\
                deb [arch=amd64 signed-by=/k.gpg] https://mirror.example.org/debian/ bookworm main\n";
    assert_eq!(
        mirror_from_sources(text).as_deref(),
        Some("https://mirror.example.org/debian")
    );
    assert_eq!(
        mirror_from_sources("deb-src http://x/debian sid main"),
        None
    );
}

#[test]
fn label_values_are_quoted() {
    assert_eq!(quote(r#"a"b\c$d"#), r#""a\"b\\c\$d""#);
}

#[test]
fn references_split_at_the_tag() {
    assert_eq!(split_reference("redis:7.4"), ("redis", "7.4"));
    assert_eq!(
        split_reference("valkey/valkey"),
        ("valkey/valkey", "latest")
    );
    assert_eq!(split_reference("reg:5000/x"), ("reg:5000/x", "latest"));
    assert_eq!(
        split_reference("testbed/redis:8.0"),
        ("testbed/redis", "8.0")
    );
}

#[test]
fn valkey_9_1_comes_from_sid() {
    let v = spec("testbed/valkey:9.1").expect("valkey 9.1 in the catalog");
    assert_eq!((v.suite, v.product, v.version), ("sid", "valkey", "9.1"));
}

#[test]
fn the_recipe_hash_changes_with_any_input_and_only_then() {
    let base = *spec(DEFAULT_IMAGE).unwrap();
    assert_eq!(base.hash(), base.hash());
    assert_eq!(base.hash().len(), 16);
    let more = [REDIS_PACKAGES, &["libfaketime"]].concat();
    let more: &'static [&'static str] = Box::leak(more.into_boxed_slice());
    let changed = [
        ImageSpec {
            packages: more,
            ..base
        },
        ImageSpec {
            suite: "forky",
            ..base
        },
        ImageSpec {
            product: "valkey",
            ..base
        },
        ImageSpec {
            version: "8.2",
            ..base
        },
    ];
    for c in &changed {
        assert_ne!(c.hash(), base.hash(), "{}", c.recipe());
    }
    // every catalog entry has its own recipe
    let mut all: Vec<String> = CATALOG.iter().map(ImageSpec::hash).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), CATALOG.len());
    assert!(base.recipe().starts_with(&format!("recipe {RECIPE}\n")));
}

#[test]
fn an_image_is_current_only_with_its_recipes_label() {
    let s = spec(DEFAULT_IMAGE).unwrap();
    let mut info = ImageInfo {
        name: s.name.into(),
        id: "sha256:x".into(),
        size_bytes: 0,
        labels: BTreeMap::new(),
    };
    assert!(!s.built_by(&info), "an image without the label is rebuilt");
    info.labels
        .insert(LABEL_SPEC.into(), "0123456789abcdef".into());
    assert!(!s.built_by(&info));
    info.labels.insert(LABEL_SPEC.into(), s.hash());
    assert!(s.built_by(&info));
    assert!(!spec("testbed/redis:7.0").unwrap().built_by(&info));
}
