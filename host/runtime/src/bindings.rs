//! Host-side bindings generated from the WIT contract (`wit/` at the root of
//! the repository), one module per plugin role.
//!
//! The first world generates the shared `types` and `host` interfaces; the
//! other worlds reuse them through `with`, so one Rust type stands for one WIT
//! type across roles. WASI comes from wasmtime-wasi and wasmtime-wasi-http.

/// The `scorecard-check` world; also home of the shared interfaces.
pub mod check {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "portolan:plugin/scorecard-check",
        require_store_data_send: true,
        with: {
            "wasi": wasmtime_wasi::p2::bindings,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        },
    });
}

/// The `catalog-source` world.
pub mod source {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "portolan:plugin/catalog-source",
        require_store_data_send: true,
        with: {
            "portolan:plugin/types": crate::bindings::check::portolan::plugin::types,
            "portolan:plugin/host": crate::bindings::check::portolan::plugin::host,
            "wasi": wasmtime_wasi::p2::bindings,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        },
    });
}

/// The `scaffold-generator` world.
pub mod generator {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "portolan:plugin/scaffold-generator",
        require_store_data_send: true,
        with: {
            "portolan:plugin/types": crate::bindings::check::portolan::plugin::types,
            "portolan:plugin/host": crate::bindings::check::portolan::plugin::host,
            "wasi": wasmtime_wasi::p2::bindings,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        },
    });
}

/// The `action` world.
pub mod action {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "portolan:plugin/action",
        require_store_data_send: true,
        with: {
            "portolan:plugin/types": crate::bindings::check::portolan::plugin::types,
            "portolan:plugin/host": crate::bindings::check::portolan::plugin::host,
            "wasi": wasmtime_wasi::p2::bindings,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        },
    });
}

pub use check::portolan::plugin::host;
pub use check::portolan::plugin::types;

/// The interface names each role exports, as they appear in a component's
/// type (`package/interface@version`). Used to tell which role a component
/// implements before it is type-checked against that role's world.
pub const ROLE_EXPORTS: &[(crate::Role, &str)] = &[
    (crate::Role::CatalogSource, "portolan:plugin/source@0.1.0"),
    (
        crate::Role::ScaffoldGenerator,
        "portolan:plugin/generator@0.1.0",
    ),
    (crate::Role::Action, "portolan:plugin/operation@0.1.0"),
    (crate::Role::ScorecardCheck, "portolan:plugin/check@0.1.0"),
];
