//! Rebuilds the crate when a migration is added or changed.
//!
//! `sqlx::migrate!` embeds `migrations/` at compile time, and on stable Rust cargo does not
//! rerun the macro when a new file appears there: without this, a build after adding a
//! migration (and no Rust change) keeps migrating to the old schema. This is the build
//! script sqlx recommends (`sqlx migrate build-script`).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
