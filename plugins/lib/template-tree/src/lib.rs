//! A folder of templates, embedded in a plugin at build time and rendered
//! with [minijinja](https://docs.rs/minijinja): the engine behind the
//! template plugins (`service-template`, `plugin-template`).
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`embed`] | for a plugin's `build.rs`: turns `template/` into a list of [`TemplateFile`]s |
//! | [`render`] (feature `render`) | renders the selected layers of that list with a JSON context |
//!
//! # The tree
//!
//! A plugin keeps its templates under `template/`. The first folder level
//! names *layers*: `template/base/...` and `template/rust/...` are the layers
//! `base` and `rust`. A generation renders the layers it selects (say `base`
//! plus the chosen language) into one tree, each file at its path below its
//! layer; two layers giving the same path is an error, not an override.
//!
//! - A file whose name ends in `.jinja` is a template: it is rendered and
//!   loses the suffix. Any other file is copied byte for byte, so a GitHub
//!   workflow full of `${{ }}` or a binary asset needs no escaping.
//! - Every path is rendered as a template too (`src/{{ module }}/app.py`);
//!   the result must stay a relative path with `/` separators, no `..` and
//!   no empty segment.
//! - A file that is executable in the plugin's source tree is generated
//!   executable.
//! - Undefined variables are errors (strict undefined): a typo in a template
//!   fails the generation naming the template, the line and the variable,
//!   instead of rendering an empty string. Optional parameters are therefore
//!   always in the context, as `none` when not given.
//! - Blocks eat their own line (`trim_blocks`, `lstrip_blocks`), so
//!   `{% if %}` on a line of its own leaves no blank line; the final newline
//!   of a file is kept. Nothing is auto-escaped.
//!
//! The filters are a small set of our own, since minijinja's builtins would
//! add ~240 KB to each component: `quote` (a double-quoted string literal,
//! valid in JSON, YAML, TOML, Python, Go and TypeScript), `rust_str` (the
//! same for Rust), `snake`
//! (`my-service` → `my_service`), `pascal` (`my-service` → `MyService`),
//! `one_line` (whitespace runs, newlines included, become one space), and
//! Jinja's `lower`, `upper`, `trim`, `replace(old, new)` and `join(sep)`.
//! The tests `defined`, `undefined` and `none` and all of Jinja's syntax
//! (`if`, `for`, `set`, `~`, `x if c else y`, `or`, ...) are there.

pub mod embed;
#[cfg(feature = "render")]
pub mod render;

/// One file of a template tree, as embedded by [`embed`].
#[derive(Debug, Clone, Copy)]
pub struct TemplateFile {
    /// Path below `template/`, `/`-separated; the first segment is the layer.
    pub path: &'static str,
    /// The file's bytes.
    pub contents: &'static [u8],
    /// Whether the source file has an executable bit.
    pub executable: bool,
}

#[cfg(feature = "render")]
pub use render::{render, Error, RenderedFile};
