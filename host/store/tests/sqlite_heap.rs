//! SQLite on the program's allocator (`sqlite_memory`), in a test binary of
//! its own: the setting must come before the process's first SQLite
//! database, which the other suites open from many threads.

use portolan_catalog::Entity;
use portolan_store::{sqlite_memory, EntityQuery, Origin, Store};
use serde_json::json;

fn entity(i: usize) -> Entity {
    Entity::from_value(json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {
            "name": format!("svc-{i:05}"),
            "description": "x".repeat(i % 3_000),
            "tags": ["heap", format!("t{}", i % 7)],
        },
        "spec": {
            "type": "service",
            "lifecycle": "production",
            "owner": format!("team-{}", i % 5),
            "dependsOn": [format!("component:svc-{:05}", (i + 1) % 2_000)],
        },
    }))
    .expect("a valid entity")
}

#[tokio::test]
async fn sqlite_allocates_through_the_program_and_works_as_before() {
    assert!(
        sqlite_memory::use_program_allocator(),
        "this binary opens no database before"
    );

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("heap.db").display());
    let store = Store::connect(&url).await.expect("connect");
    // Bodies from nothing to several KB, so blocks of many sizes are
    // allocated, grown and freed.
    let all: Vec<Entity> = (0..2_000).map(entity).collect();
    for batch in all.chunks(500) {
        store
            .put_entities(batch, &Origin::Api)
            .await
            .expect("write");
    }
    let mut seen = 0;
    let mut query = EntityQuery {
        limit: 300,
        ..EntityQuery::default()
    };
    loop {
        let page = store.list_entities(&query).await.expect("page");
        for stored in &page.items {
            let i: usize = stored.entity.metadata.name[4..].parse().unwrap();
            assert_eq!(stored.entity, {
                let mut e = entity(i);
                e.relations = stored.entity.relations.clone();
                e
            });
            // Its own relations and the one its neighbour declares on it.
            let kinds: Vec<&str> = stored
                .entity
                .relations
                .iter()
                .map(|r| r.kind.as_str())
                .collect();
            assert_eq!(kinds, ["dependencyOf", "dependsOn", "ownedBy"], "{i}");
            seen += 1;
        }
        assert_eq!(page.total, 2_000);
        match page.next_after {
            Some(after) => query.after = Some(after),
            None => break,
        }
    }
    assert_eq!(seen, 2_000);
    // A search goes through the full-text index, a different part of
    // SQLite's heap use.
    let found = store
        .list_entities(&EntityQuery {
            search: Some("svc".into()),
            limit: 10,
            ..EntityQuery::default()
        })
        .await
        .expect("search");
    assert_eq!(found.total, 2_000);
    store.close().await;
    assert!(
        !sqlite_memory::use_program_allocator(),
        "once SQLite has initialised, the setting can no longer change"
    );
}
