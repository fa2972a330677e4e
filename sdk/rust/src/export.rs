//! The `export!` macro: makes a type implementing one role trait the
//! component's export.

/// Exports `TYPE` as the plugin's one role. Write it once per plugin crate,
/// naming the role trait the type implements:
///
/// ```ignore
/// portolan_sdk::export!(CatalogSource for MySource);
/// portolan_sdk::export!(ScaffoldGenerator for MyTemplate);
/// portolan_sdk::export!(Action for MyAction);
/// portolan_sdk::export!(ScorecardCheck for MyCheck);
/// ```
///
/// It generates the role world's bindings in the calling crate (see "One
/// role per component" in the crate docs), converts between the WIT types
/// and the SDK's types, and exports the functions. The crate must depend on
/// this one under the name `portolan_sdk`.
#[macro_export]
macro_rules! export {
    (CatalogSource for $t:ty) => {
        $crate::__export_world!("portolan:plugin/catalog-source@0.4.0", source, {
            fn describe() -> wit::SourceInfo {
                let info = <$t as $crate::CatalogSource>::describe();
                wit::SourceInfo {
                    about: info.about,
                    settings_schema: info.settings_schema.map(|schema| schema.to_string()),
                }
            }

            fn sync(
                request: wit::SyncRequest,
            ) -> ::core::result::Result<wit::SyncPage, wit::Error> {
                use $crate::source::{Error, SyncRequest};
                <$t as $crate::CatalogSource>::sync(SyncRequest {
                    cursor: request.cursor,
                })
                .map(|page| wit::SyncPage {
                    entities: page.entities,
                    next_cursor: page.next_cursor,
                    total_hint: page.total_hint,
                })
                .map_err(|error| match error {
                    Error::Unreachable(m) => wit::Error::Unreachable(m),
                    Error::Unauthorized(m) => wit::Error::Unauthorized(m),
                    Error::InvalidData(m) => wit::Error::InvalidData(m),
                    Error::Misconfigured(m) => wit::Error::Misconfigured(m),
                    Error::Other(m) => wit::Error::Other(m),
                })
            }
        });
    };

    (ScaffoldGenerator for $t:ty) => {
        $crate::__export_world!("portolan:plugin/scaffold-generator@0.4.0", generator, {
            fn describe() -> wit::GeneratorInfo {
                let info = <$t as $crate::ScaffoldGenerator>::describe();
                wit::GeneratorInfo {
                    about: info.about,
                    tags: info.tags,
                    parameters_schema: info.parameters_schema.to_string(),
                }
            }

            fn generate(
                parameters: ::std::string::String,
            ) -> ::core::result::Result<wit::Output, wit::Error> {
                use $crate::scaffold::Error;
                let parameters = $crate::__private::parse_json(&parameters)
                    .map_err(|e| wit::Error::InvalidParameter((::std::string::String::new(), e)))?;
                <$t as $crate::ScaffoldGenerator>::generate(parameters)
                    .map(|output| wit::Output {
                        files: output
                            .files
                            .into_iter()
                            .map(|f| wit::File {
                                path: f.path,
                                content: f.content,
                                executable: f.executable,
                            })
                            .collect(),
                        entity: output.entity,
                        links: output.links,
                        messages: output.messages,
                    })
                    .map_err(|error| match error {
                        Error::InvalidParameter { pointer, reason } => {
                            wit::Error::InvalidParameter((pointer, reason))
                        }
                        Error::Other(m) => wit::Error::Other(m),
                    })
            }
        });
    };

    (Action for $t:ty) => {
        $crate::__export_world!("portolan:plugin/action@0.4.0", operation, {
            fn describe() -> wit::ActionInfo {
                use $crate::action::Role;
                let role = |role: Role| match role {
                    Role::Viewer => wit::Role::Viewer,
                    Role::Member => wit::Role::Member,
                    Role::Admin => wit::Role::Admin,
                };
                let info = <$t as $crate::Action>::describe();
                wit::ActionInfo {
                    about: info.about,
                    entity_kinds: info.entity_kinds,
                    entity_types: info.entity_types,
                    entity_tags: info.entity_tags,
                    input_schema: info.input_schema.to_string(),
                    required_role: role(info.required_role),
                    approval: info.approval.map(role),
                }
            }

            fn run(
                invocation: wit::Invocation,
            ) -> ::core::result::Result<wit::Outcome, wit::Error> {
                use $crate::action::{Error, Invocation};
                let input = $crate::__private::parse_json(&invocation.input)
                    .map_err(|e| wit::Error::InvalidInput((::std::string::String::new(), e)))?;
                let invocation = Invocation {
                    run_id: invocation.run_id,
                    actor: invocation.actor,
                    attempt: invocation.attempt,
                    input,
                    entity: invocation.entity,
                };
                <$t as $crate::Action>::run(invocation)
                    .map(|outcome| wit::Outcome {
                        output: outcome.output.to_string(),
                        links: outcome.links,
                    })
                    .map_err(|error| match error {
                        Error::InvalidInput { pointer, reason } => {
                            wit::Error::InvalidInput((pointer, reason))
                        }
                        Error::Failed(m) => wit::Error::Failed(m),
                        Error::Other(m) => wit::Error::Other(m),
                    })
            }
        });
    };

    (ScorecardCheck for $t:ty) => {
        $crate::__export_world!(
            "portolan:plugin/scorecard-check@0.4.0",
            check,
            {
                fn describe() -> wit::PluginInfo {
                    let info = <$t as $crate::ScorecardCheck>::describe();
                    wit::PluginInfo {
                        about: info.about,
                        checks: info
                            .checks
                            .into_iter()
                            .map(|check| wit::CheckInfo {
                                id: check.id,
                                title: check.title,
                                description: check.description,
                                entity_kinds: check.entity_kinds,
                                parameters_schema: check.parameters_schema.to_string(),
                            })
                            .collect(),
                    }
                }

                fn evaluate(
                    check: ::std::string::String,
                    parameters: ::std::string::String,
                    entities: ::std::vec::Vec<$crate::Entity>,
                ) -> ::core::result::Result<::std::vec::Vec<wit::Outcome>, wit::Error> {
                    let parameters = $crate::__private::parse_json(&parameters).map_err(|e| {
                        wit::Error::InvalidParameter((::std::string::String::new(), e))
                    })?;
                    __portolan_check_result(<$t as $crate::ScorecardCheck>::evaluate(
                        &check, parameters, entities,
                    ))
                }

                fn evaluate_rules(
                    rules: ::std::vec::Vec<wit::Rule>,
                    entities: ::std::vec::Vec<$crate::Entity>,
                ) -> ::std::vec::Vec<
                    ::core::result::Result<::std::vec::Vec<wit::Outcome>, wit::Error>,
                > {
                    // Rules whose parameters are not JSON fail alone; the
                    // others go to the plugin together.
                    let mut results: ::std::vec::Vec<
                        ::core::option::Option<
                            ::core::result::Result<::std::vec::Vec<wit::Outcome>, wit::Error>,
                        >,
                    > = ::std::vec::Vec::with_capacity(rules.len());
                    let mut parsed = ::std::vec::Vec::with_capacity(rules.len());
                    for rule in rules {
                        match $crate::__private::parse_json(&rule.parameters) {
                            ::core::result::Result::Ok(parameters) => {
                                results.push(::core::option::Option::None);
                                parsed.push($crate::check::Rule {
                                    check: rule.check,
                                    parameters,
                                });
                            }
                            ::core::result::Result::Err(e) => results.push(
                                ::core::option::Option::Some(::core::result::Result::Err(
                                    wit::Error::InvalidParameter((::std::string::String::new(), e)),
                                )),
                            ),
                        }
                    }
                    let mut answers = if parsed.is_empty() {
                        ::std::vec::Vec::new()
                    } else {
                        <$t as $crate::ScorecardCheck>::evaluate_rules(parsed, entities)
                    }
                    .into_iter();
                    results
                        .into_iter()
                        .map(|result| match result {
                            ::core::option::Option::Some(failed) => failed,
                            ::core::option::Option::None => match answers.next() {
                                ::core::option::Option::Some(answer) => {
                                    __portolan_check_result(answer)
                                }
                                // The plugin answered fewer rules than it was
                                // given: each rule left out fails, saying so.
                                ::core::option::Option::None => {
                                    ::core::result::Result::Err(wit::Error::Other(
                                        "evaluate_rules returned too few results".into(),
                                    ))
                                }
                            },
                        })
                        .collect()
                }
            },
            {
                /// An SDK answer in the contract's shape.
                fn __portolan_check_result(
                    answer: ::core::result::Result<
                        ::std::vec::Vec<$crate::check::Outcome>,
                        $crate::check::Error,
                    >,
                ) -> ::core::result::Result<::std::vec::Vec<wit::Outcome>, wit::Error> {
                    use $crate::check::{Error, Status};
                    answer
                        .map(|outcomes| {
                            outcomes
                                .into_iter()
                                .map(|o| wit::Outcome {
                                    status: match o.status {
                                        Status::Pass => wit::Status::Pass,
                                        Status::Fail => wit::Status::Fail,
                                        Status::Skip => wit::Status::Skip,
                                        Status::Error => wit::Status::Error,
                                    },
                                    message: o.message,
                                    value: o.value.map(|value| value.to_string()),
                                })
                                .collect()
                        })
                        .map_err(|error| match error {
                            Error::InvalidParameter { pointer, reason } => {
                                wit::Error::InvalidParameter((pointer, reason))
                            }
                            Error::UnknownCheck(check) => wit::Error::UnknownCheck(check),
                            Error::Other(m) => wit::Error::Other(m),
                        })
                }
            }
        );
    };

    ($role:ident for $t:ty) => {
        ::core::compile_error!(::core::concat!(
            "portolan_sdk::export!: unknown role `",
            ::core::stringify!($role),
            "`; expected CatalogSource, ScaffoldGenerator, Action or ScorecardCheck"
        ));
    };
}

/// Generates `WORLD`'s bindings in a private module of the calling crate and
/// implements its export interface `IFACE` with the given functions, which
/// refer to the generated interface as `wit`; the optional second block holds
/// helper items they share.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_world {
    ($world:tt, $iface:ident, { $($guest:tt)* } $(, { $($extra:tt)* })?) => {
        #[doc(hidden)]
        #[allow(dead_code, unused, missing_docs, clippy::all, unsafe_op_in_unsafe_fn)]
        mod __portolan_world {
            $crate::__generate_world!($world);
        }

        const _: () = {
            use __portolan_world::exports::portolan::plugin::$iface as wit;

            $($($extra)*)?

            struct PortolanExport;

            impl wit::Guest for PortolanExport {
                $($guest)*
            }

            __portolan_world::export!(PortolanExport with_types_in __portolan_world);
        };
    };
}
