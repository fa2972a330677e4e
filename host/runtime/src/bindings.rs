//! Host-side bindings generated from the WIT contract, one module per
//! supported contract version and, inside it, one module per plugin role.
//!
//! - [`v0_4`]: `portolan:plugin@0.4.0`, the current contract (`wit/` at the
//!   root of the repository): 0.3.0 plus the check's `evaluate-rules`;
//! - [`v0_3`]: `portolan:plugin@0.3.0`, frozen in `wit/v0.3.0/`: 0.2.0 plus
//!   the `catalog` import; its shapes are those of 0.4.0;
//! - [`v0_2`]: `portolan:plugin@0.2.0`, frozen in `wit/v0.2.0/`; its shapes
//!   are those of 0.3.0, so it converts like the current version and only
//!   lacks the `catalog` import;
//! - [`v0_1`]: `portolan:plugin@0.1.0`, frozen in `wit/v0.1.0/`; plugins
//!   built against it keep loading and are adapted to the current model
//!   (see `crate::convert`).
//!
//! In each version the first world generates the shared `types` and `host`
//! interfaces (and, from 0.3.0, `catalog`); the other worlds reuse them
//! through `with`, so one Rust type stands for one WIT type across the roles
//! of a version. WASI comes from wasmtime-wasi and wasmtime-wasi-http: every
//! version imports the same WASI 0.2.

use crate::Role;

/// Generates the four role worlds of one contract version from the WIT
/// folder `$wit`, inside the module whose absolute path is `$module` (the
/// `with` paths of the later worlds must name the first one's interfaces).
/// `$extra` maps the interfaces a version adds to the shared imports (e.g.
/// `catalog` from 0.3.0) the same way.
macro_rules! role_worlds {
    ($wit:tt, $($module:ident)::+ $(, { $($extra:tt)* })?) => {
        /// The `scorecard-check` world; also home of the shared interfaces.
        pub mod check {
            wasmtime::component::bindgen!({
                path: $wit,
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
                path: $wit,
                world: "portolan:plugin/catalog-source",
                require_store_data_send: true,
                with: {
                    "portolan:plugin/types": $($module)::+::check::portolan::plugin::types,
                    "portolan:plugin/host": $($module)::+::check::portolan::plugin::host,
                    $($($extra)*)?
                    "wasi": wasmtime_wasi::p2::bindings,
                    "wasi:http": wasmtime_wasi_http::p2::bindings::http,
                },
            });
        }

        /// The `scaffold-generator` world.
        pub mod generator {
            wasmtime::component::bindgen!({
                path: $wit,
                world: "portolan:plugin/scaffold-generator",
                require_store_data_send: true,
                with: {
                    "portolan:plugin/types": $($module)::+::check::portolan::plugin::types,
                    "portolan:plugin/host": $($module)::+::check::portolan::plugin::host,
                    $($($extra)*)?
                    "wasi": wasmtime_wasi::p2::bindings,
                    "wasi:http": wasmtime_wasi_http::p2::bindings::http,
                },
            });
        }

        /// The `action` world.
        pub mod action {
            wasmtime::component::bindgen!({
                path: $wit,
                world: "portolan:plugin/action",
                require_store_data_send: true,
                with: {
                    "portolan:plugin/types": $($module)::+::check::portolan::plugin::types,
                    "portolan:plugin/host": $($module)::+::check::portolan::plugin::host,
                    $($($extra)*)?
                    "wasi": wasmtime_wasi::p2::bindings,
                    "wasi:http": wasmtime_wasi_http::p2::bindings::http,
                },
            });
        }

        pub use check::portolan::plugin::host;
        pub use check::portolan::plugin::types;
    };
}

/// `portolan:plugin@0.4.0`, the current contract.
pub mod v0_4 {
    role_worlds!("../../wit", crate::bindings::v0_4, {
        "portolan:plugin/catalog": crate::bindings::v0_4::check::portolan::plugin::catalog,
    });
    pub use check::portolan::plugin::catalog;
}

/// `portolan:plugin@0.3.0`, the previous contract: the shapes of 0.4.0
/// without the check's `evaluate-rules`.
pub mod v0_3 {
    role_worlds!("../../wit/v0.3.0", crate::bindings::v0_3, {
        "portolan:plugin/catalog": crate::bindings::v0_3::check::portolan::plugin::catalog,
    });
    pub use check::portolan::plugin::catalog;
}

/// `portolan:plugin@0.2.0`, the previous contract: the shapes of 0.3.0
/// without the `catalog` import.
pub mod v0_2 {
    role_worlds!("../../wit/v0.2.0", crate::bindings::v0_2);
}

/// `portolan:plugin@0.1.0`, the previous contract, kept loading.
pub mod v0_1 {
    role_worlds!("../../wit/v0.1.0", crate::bindings::v0_1);
}

/// A version of the plugin contract the host loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Contract {
    /// `portolan:plugin@0.1.0`, adapted to the current model.
    #[serde(rename = "0.1.0")]
    V0_1,
    /// `portolan:plugin@0.2.0`: the shapes of 0.3.0 without the catalog.
    #[serde(rename = "0.2.0")]
    V0_2,
    /// `portolan:plugin@0.3.0`: the shapes of 0.4.0 without the check's
    /// `evaluate-rules`.
    #[serde(rename = "0.3.0")]
    V0_3,
    /// `portolan:plugin@0.4.0`, the current contract.
    #[serde(rename = "0.4.0")]
    V0_4,
}

impl Contract {
    /// The newest version: what the SDK builds against.
    pub const CURRENT: Contract = Contract::V0_4;

    /// The version as written in the WIT package, e.g. `0.3.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => "0.2.0",
            Contract::V0_3 => "0.3.0",
            Contract::V0_4 => "0.4.0",
        }
    }
}

impl std::fmt::Display for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The interface each role exports in each supported version, as it appears
/// in a component's type (`package/interface@version`). Used to tell which
/// role and version a component implements before it is type-checked
/// against that world.
pub const ROLE_EXPORTS: &[(Role, Contract, &str)] = &[
    (
        Role::CatalogSource,
        Contract::V0_4,
        "portolan:plugin/source@0.4.0",
    ),
    (
        Role::ScaffoldGenerator,
        Contract::V0_4,
        "portolan:plugin/generator@0.4.0",
    ),
    (
        Role::Action,
        Contract::V0_4,
        "portolan:plugin/operation@0.4.0",
    ),
    (
        Role::ScorecardCheck,
        Contract::V0_4,
        "portolan:plugin/check@0.4.0",
    ),
    (
        Role::CatalogSource,
        Contract::V0_3,
        "portolan:plugin/source@0.3.0",
    ),
    (
        Role::ScaffoldGenerator,
        Contract::V0_3,
        "portolan:plugin/generator@0.3.0",
    ),
    (
        Role::Action,
        Contract::V0_3,
        "portolan:plugin/operation@0.3.0",
    ),
    (
        Role::ScorecardCheck,
        Contract::V0_3,
        "portolan:plugin/check@0.3.0",
    ),
    (
        Role::CatalogSource,
        Contract::V0_2,
        "portolan:plugin/source@0.2.0",
    ),
    (
        Role::ScaffoldGenerator,
        Contract::V0_2,
        "portolan:plugin/generator@0.2.0",
    ),
    (
        Role::Action,
        Contract::V0_2,
        "portolan:plugin/operation@0.2.0",
    ),
    (
        Role::ScorecardCheck,
        Contract::V0_2,
        "portolan:plugin/check@0.2.0",
    ),
    (
        Role::CatalogSource,
        Contract::V0_1,
        "portolan:plugin/source@0.1.0",
    ),
    (
        Role::ScaffoldGenerator,
        Contract::V0_1,
        "portolan:plugin/generator@0.1.0",
    ),
    (
        Role::Action,
        Contract::V0_1,
        "portolan:plugin/operation@0.1.0",
    ),
    (
        Role::ScorecardCheck,
        Contract::V0_1,
        "portolan:plugin/check@0.1.0",
    ),
];
