//! Copies what the page ships from npm (tus-js-client's browser build, for resumable uploads)
//! into the build, where `lib.rs` embeds it. `make setup` installs it (`npm ci` here).

fn main() {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("node_modules/tus-js-client/dist/tus.min.js");
    println!("cargo:rerun-if-changed={}", source.display());
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("tus.min.js");
    if let Err(e) = std::fs::copy(&source, &out) {
        panic!("{} is missing ({e}): run `make setup` (it runs `npm ci` in components/web)", source.display());
    }
}
