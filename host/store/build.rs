//! `sqlx::migrate!` embeds the migration files at compile time but cannot
//! tell cargo to watch the folder, so without this a new migration file would
//! be silently left out until something else triggers a rebuild.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
