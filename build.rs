//! Builds the clock shim (`clock-shim/shim.rs`) into a shared object with
//! the same rustc, so the library always has one to mount into containers
//! (`cargo test` never builds a workspace member's cdylib). It has no
//! dependencies, so plain rustc is enough — no nested cargo.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = PathBuf::from("clock-shim/shim.rs");
    println!("cargo:rerun-if-changed={}", src.display());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let so = out.join("libtestbed_clock.so");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let st = Command::new(rustc)
        .args([
            "--crate-type",
            "cdylib",
            "--crate-name",
            "testbed_clock",
            "--edition",
            "2021",
        ])
        .args([
            "-C",
            "opt-level=2",
            "-C",
            "panic=abort",
            "-C",
            "debuginfo=0",
            "--target",
            &target,
        ])
        .arg("-o")
        .arg(&so)
        .arg(&src)
        .status()
        .expect("running rustc for the clock shim");
    assert!(st.success(), "building the clock shim failed: {st}");
    println!("cargo:rustc-env=TESTBED_CLOCK_SHIM_BUILT={}", so.display());
}
