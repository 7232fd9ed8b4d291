//! Puts into the build what `lib.rs` embeds and no one writes by hand: the API description,
//! made from the API's types by `api-description`, and what the page ships from npm
//! (tus-js-client's browser build, for resumable uploads; `make setup` runs `npm ci` here).

fn main() {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("node_modules/tus-js-client/dist/tus.min.js");
    println!("cargo:rerun-if-changed={}", source.display());
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out_dir.join("openapi.json"), api_description::json()).expect("OUT_DIR is writable");
    let out = out_dir.join("tus.min.js");
    if let Err(e) = std::fs::copy(&source, &out) {
        panic!("{} is missing ({e}): run `make setup` (it runs `npm ci` in components/web)", source.display());
    }
}
