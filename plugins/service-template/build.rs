//! Embeds `template/` into the plugin (see `template_tree::embed`).
fn main() {
    template_tree::embed::write("template", "template.rs");
}
