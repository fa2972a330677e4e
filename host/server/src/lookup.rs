//! The catalog as plugins read it (`portolan:plugin/catalog`, contract
//! 0.3.0): the runtime's [`CatalogLookup`] answered from the store.
//!
//! Every role may look entities up: reading the catalog is what the API
//! lets any viewer do, and a plugin sees nothing it could change. The
//! references follow `wit/catalog.wit`: the kind is required, the namespace
//! defaults to `default`.

use std::sync::mpsc;
use std::time::Instant;

use portolan_catalog::{EntityRef, RefDefaults, DEFAULT_NAMESPACE};
use portolan_runtime::model::Entity as PluginEntity;
use portolan_runtime::{CatalogLookup, LookupError};
use portolan_store::Store;

/// Answers plugins' lookups from `store`. The plugin call runs on a
/// blocking thread; the query runs as a task on the async runtime behind
/// `handle`, and the call waits for it no longer than its own deadline.
pub struct StoreLookup {
    pub store: Store,
    pub handle: tokio::runtime::Handle,
}

impl CatalogLookup for StoreLookup {
    fn lookup(
        &self,
        refs: &[String],
        deadline: Instant,
    ) -> Result<Vec<Option<PluginEntity>>, LookupError> {
        let defaults = RefDefaults {
            kind: None,
            namespace: DEFAULT_NAMESPACE,
        };
        let parsed = refs
            .iter()
            .enumerate()
            .map(|(index, text)| {
                EntityRef::parse(text, defaults).map_err(|e| LookupError::InvalidReference {
                    index,
                    message: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let store = self.store.clone();
        let (tx, rx) = mpsc::sync_channel(1);
        // A task and a channel rather than `Handle::block_on`: that panics
        // on a thread that drives the async runtime, and cannot give up at
        // the deadline.
        self.handle.spawn(async move {
            let _ = tx.send(store.entities(&parsed).await);
        });
        let wait = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(Ok(found)) => Ok(found
                .iter()
                .map(|e| {
                    e.as_ref()
                        .map(|e| crate::evaluate::plugin_entity(&e.entity))
                })
                .collect()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "a plugin's catalog lookup failed");
                Err(LookupError::Unavailable(
                    "the catalog could not be read; try again later".into(),
                ))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(LookupError::Unavailable(
                "the catalog did not answer before the call's deadline".into(),
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(LookupError::Unavailable(
                "the catalog lookup was interrupted (the portal is stopping?)".into(),
            )),
        }
    }
}
