//! Embeds `template/` (the Rust layers) and the SDK templates of the other
//! languages, `sdk/LANG/templates/ROLE`, into the plugin (see
//! `template_tree::embed`): one copy of each template in the repository,
//! built as it is by the test suite and generated from here.
fn main() {
    template_tree::embed::write("template", "template.rs");
    template_tree::embed::write("../../sdk/python/templates", "python.rs");
    template_tree::embed::write("../../sdk/js/templates", "javascript.rs");
    template_tree::embed::write("../../sdk/c/templates", "c.rs");
}
