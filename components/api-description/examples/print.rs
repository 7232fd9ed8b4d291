//! Prints the API description as the web component embeds it: `cargo run -p api-description --example print`.
fn main() { println!("{}", api_description::json()); }
