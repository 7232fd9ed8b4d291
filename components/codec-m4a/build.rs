//! fdk-aac-sys's build script asks the linker for `libstdc++` whenever the *build machine* is
//! Linux (it checks `cfg!(target_os)` in the build script, which is the host's), also when the
//! target is wasm32. fdk-aac needs no C++ runtime at all (only C headers, no exceptions, RTTI or
//! `operator new`; see `.cargo/config.toml`), and there is no libstdc++ for wasm, so for wasm
//! targets this gives the linker an empty `libstdc++.a` to satisfy that request.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_FAMILY").as_deref() != Ok("wasm") {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // An archive with no members is just the global header.
    std::fs::write(out.join("libstdc++.a"), b"!<arch>\n").expect("write the empty archive");
    println!("cargo:rustc-link-search=native={}", out.display());
}
