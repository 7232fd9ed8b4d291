//! Empty: a build script, so that the `cc` build-dependency (and its features) takes part.
fn main() {}
