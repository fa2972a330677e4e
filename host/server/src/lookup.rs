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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use portolan_catalog::Entity;
    use portolan_store::testing::TestDatabase;
    use portolan_store::Origin;

    use super::*;

    /// A store holding `component:default/web`, and a lookup over it whose
    /// queries run on `handle`.
    async fn lookup_on(
        dir: &std::path::Path,
        handle: tokio::runtime::Handle,
    ) -> (StoreLookup, Store) {
        let db = TestDatabase::sqlite(dir).await;
        let store = Store::connect(&db.url).await.unwrap();
        let web: Entity = serde_json::from_value(serde_json::json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "web"},
            "spec": {"type": "service", "owner": "team-a", "lifecycle": "production"}
        }))
        .unwrap();
        store.put_entity(&web, &Origin::Api, None).await.unwrap();
        let lookup = StoreLookup {
            store: store.clone(),
            handle,
        };
        (lookup, store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lookup_answers_in_order_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let (lookup, store) = lookup_on(dir.path(), tokio::runtime::Handle::current()).await;
        let refs = [
            "component:web".to_owned(),
            "group:default/nobody".to_owned(),
        ];
        let found = tokio::task::spawn_blocking(move || {
            lookup.lookup(&refs, Instant::now() + Duration::from_secs(30))
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0].as_ref().map(|e| e.metadata.name.as_str()),
            Some("web")
        );
        assert!(found[1].is_none());
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lookup_gives_up_at_the_call_deadline() {
        let dir = tempfile::tempdir().unwrap();
        // A runtime nobody drives: the query spawned on it never runs, as
        // if the database were stuck, so the only way out is the deadline.
        let stuck = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (lookup, store) = lookup_on(dir.path(), stuck.handle().clone()).await;
        let wait = Duration::from_millis(200);
        let (took, answer) = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let answer = lookup.lookup(&["component:web".to_owned()], started + wait);
            (started.elapsed(), answer)
        })
        .await
        .unwrap();
        match answer {
            Err(LookupError::Unavailable(message)) => {
                assert!(message.contains("deadline"), "{message}")
            }
            other => panic!("expected the deadline to end the lookup: {other:?}"),
        }
        assert!(took >= wait, "gave up after {took:?}, before the deadline");
        // Dropping a runtime inside an async test would panic.
        stuck.shutdown_background();
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bad_reference_is_named_by_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let (lookup, store) = lookup_on(dir.path(), tokio::runtime::Handle::current()).await;
        let refs = ["component:web".to_owned(), "web".to_owned()];
        let answer = tokio::task::spawn_blocking(move || {
            lookup.lookup(&refs, Instant::now() + Duration::from_secs(30))
        })
        .await
        .unwrap();
        match answer {
            Err(LookupError::InvalidReference { index: 1, .. }) => {}
            other => panic!("{other:?}"),
        }
        store.close().await;
    }
}
