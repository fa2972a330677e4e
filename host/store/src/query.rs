//! The catalog's read side: filtered, searched and sorted pages of
//! entities ([`Store::list_entities`]), counts per value
//! ([`Store::entity_facets`]) and the relation graph around one entity
//! ([`Store::relation_graph`]).
//!
//! Any field of an entity can be filtered on, sorted by and counted, named
//! by a [`FieldPath`] (`spec.owner`, `metadata.annotations.backstage.io/x`).
//! The fields people use most live in their own indexed columns (kind,
//! namespace, name, lifecycle, type, and the owner as `relations.ownedBy`)
//! or tables (tags, relations) and are answered from indexes; any other
//! path is read from the stored JSON body (`json_extract`/`json_each` on
//! SQLite, `#>`/`jsonb_array_elements` on PostgreSQL), which costs a scan.
//! `target` is the one place that decides which.
//!
//! SQLite gets help that PostgreSQL's planner does not need (migration
//! 0003): per-kind counts of the promoted fields kept by triggers
//! (`counted`), a covering index for counts over them (`facts_index`),
//! and a choice between walking the order's index and sorting the matches
//! (`walk`).
//!
//! Values match case-insensitively: the columns hold lower-cased copies,
//! and paths read from JSON are lower-cased by the database (SQLite's
//! `lower` folds ASCII letters only, so there a non-ASCII capital in a
//! free-form field matches only itself). Only scalar values (strings,
//! numbers, booleans) match and count; an array matches and counts per
//! element, as `metadata.tags` does.
//!
//! Full-text search uses an FTS5 table kept by triggers on SQLite and a
//! generated `tsvector` column on PostgreSQL (migration 0003); both split
//! text at anything but letters and digits and match each word of the
//! query as a prefix, so `pay serv` finds `payments-service` as one types.
//!
//! Pages continue by keyset: the [`Cursor`] holds the last entity's sort
//! values and key, and the next page starts strictly after them, so deep
//! pages cost what the first does and concurrent writes never make a page
//! repeat or skip an entity that did not change.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use portolan_catalog::relations::names as relation_names;
use portolan_catalog::EntityRef;
use serde_json::{json, Value};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, Row};

use crate::entities::{group_relations, EntityRow, RelationOut, StoredEntity, INCOMING_RELATIONS};
use crate::store::Pool;
use crate::{Store, StoreError};

/// The largest page [`Store::list_entities`] returns, whatever is asked:
/// each entity carries its body and relations, so a page is bounded in
/// memory.
pub const MAX_PAGE_SIZE: u32 = 1_000;

/// Longest [`FieldPath`], in bytes.
pub const MAX_PATH_LEN: usize = 300;

/// Most segments in a [`FieldPath`].
pub const MAX_PATH_SEGMENTS: usize = 10;

/// Most sort keys in one query; each adds an expression to every
/// comparison of the keyset.
pub const MAX_SORT_KEYS: usize = 5;

/// Most words of a search that count; a longer query is refused by the
/// API rather than cut.
pub const MAX_SEARCH_TERMS: usize = 10;

/// Most values [`Store::entity_facets`] answers per field: the most
/// frequent ones. A facet on a field that is unique per entity (a name)
/// would otherwise answer the whole catalog.
pub const MAX_FACET_VALUES: usize = 1_000;

/// Deepest [`GraphQuery::depth`].
pub const MAX_GRAPH_DEPTH: u32 = 5;

/// Most nodes in a [`RelationGraph`]; past it the walk stops and says so
/// ([`RelationGraph::truncated`]). Bounds the answer and the work behind it
/// when a walk reaches a group that owns half the catalog.
pub const MAX_GRAPH_NODES: usize = 1_000;

/// Most edges in a [`RelationGraph`], for the same reason.
pub const MAX_GRAPH_EDGES: usize = 5_000;

/// Keys per `IN (...)` list on SQLite, below its bind limit.
const KEYS_PER_STATEMENT: usize = 8_000;

/// The FTS5 column weights for `bm25`, in the column order of
/// `entities_fts`: name, title, tags, description, other. PostgreSQL gives
/// the same columns the weights A, A, B, C, D.
const SQLITE_RANK: &str = "bm25(entities_fts, 10.0, 8.0, 4.0, 2.0, 1.0)";

/// The two keyed maps under `metadata` whose keys may contain dots.
const MAP_FIELDS: [&str; 2] = ["labels", "annotations"];

/// A path to a field of an entity, dot-separated: `kind`, `metadata.name`,
/// `spec.profile.email`. Under `metadata.labels.` and
/// `metadata.annotations.` the rest is one key, dots and slashes included
/// (`metadata.annotations.backstage.io/techdocs-ref`). `relations.<type>`
/// names an entity's relations of that type (their targets).
///
/// Segments are matched exactly (JSON keys are case-sensitive); values
/// are not.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath {
    text: String,
    segments: Vec<String>,
}

impl FieldPath {
    /// Parses a path; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<FieldPath, String> {
        if text.is_empty() {
            return Err("a field path may not be empty".into());
        }
        if text.len() > MAX_PATH_LEN {
            return Err(format!(
                "field path {text:?} is longer than {MAX_PATH_LEN} bytes"
            ));
        }
        for map in MAP_FIELDS {
            let prefix = format!("metadata.{map}.");
            if let Some(key) = text.strip_prefix(&prefix) {
                return FieldPath::map_entry(map, key);
            }
        }
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.len() > MAX_PATH_SEGMENTS {
            return Err(format!(
                "field path {text:?} has more than {MAX_PATH_SEGMENTS} segments"
            ));
        }
        for segment in &segments {
            if segment.is_empty() {
                return Err(format!(
                    "field path {text:?} has an empty segment; write segments separated by single dots, e.g. spec.owner"
                ));
            }
            if let Some(c) = segment
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
            {
                return Err(format!(
                    "field path {text:?} contains {c:?}; segments are letters, digits, '-' and '_' \
                     (keys of metadata.labels and metadata.annotations may also hold '.' and '/')"
                ));
            }
        }
        if segments[0] == "relations" && segments.len() > 2 {
            return Err(format!(
                "field path {text:?}: relations are named by type alone, e.g. relations.ownedBy"
            ));
        }
        Ok(FieldPath {
            text: text.to_owned(),
            segments,
        })
    }

    /// The path of one key of `metadata.labels` (`map` = `"labels"`) or
    /// `metadata.annotations` (`"annotations"`).
    pub fn map_entry(map: &str, key: &str) -> Result<FieldPath, String> {
        debug_assert!(MAP_FIELDS.contains(&map));
        if key.is_empty() {
            return Err(format!("the {map} key may not be empty"));
        }
        if key.len() > MAX_PATH_LEN {
            return Err(format!("the {map} key is longer than {MAX_PATH_LEN} bytes"));
        }
        if let Some(c) = key
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')))
        {
            return Err(format!(
                "{map} key {key:?} contains {c:?}; keys are letters, digits, '-', '_', '.' and '/'"
            ));
        }
        Ok(FieldPath {
            text: format!("metadata.{map}.{key}"),
            segments: vec!["metadata".into(), map.into(), key.into()],
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The keys from the entity's root.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The value at this path in an entity's JSON, if there is one.
    pub fn lookup<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.segments
            .iter()
            .try_fold(value, |v, segment| v.as_object()?.get(segment))
    }

    /// `relations` alone: the whole relations list (field selection only).
    fn is_relations(&self) -> bool {
        self.segments[0] == "relations" && self.segments.len() == 1
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Where a path's values are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A column of `entities` holding the value lower-cased; `nullable`
    /// when the field may be absent.
    Column {
        column: &'static str,
        nullable: bool,
    },
    /// `entity_tags`, lower-cased.
    Tags,
    /// `entity_relations` of this type (lower-cased), declared from the
    /// entity; values are target keys.
    Relations(String),
    /// Anywhere else in the body.
    Json(Vec<String>),
}

/// Which storage answers a path: the promoted columns and tables for the
/// fields the catalog filters, sorts and counts most, the JSON body for
/// any other.
///
/// The owner is promoted as `relations.ownedBy` (the resolved reference,
/// `group:default/team-a`, in `owner_key`), which is what the `owner`
/// filter means; `spec.owner` is the field as written (`team-a`) and is
/// read from the body.
fn target(path: &FieldPath) -> Target {
    let column = |column, nullable| Target::Column { column, nullable };
    match path.as_str() {
        "kind" => column("e.kind_key", false),
        "metadata.namespace" => column("e.namespace_key", false),
        "metadata.name" => column("e.name_key", false),
        "spec.lifecycle" => column("e.lifecycle", true),
        "spec.type" => column("e.spec_type", true),
        "metadata.tags" => Target::Tags,
        _ if path.segments[0] == "relations" && path.segments.len() == 2 => {
            let kind = path.segments[1].to_lowercase();
            if kind == "ownedby" {
                column("e.owner_key", true)
            } else {
                Target::Relations(kind)
            }
        }
        _ => Target::Json(path.segments.clone()),
    }
}

/// The columns of the `entities_facts` index (SQLite), which covers a
/// count or facet over any of them.
const FACT_COLUMNS: [&str; 5] = [
    "e.kind_key",
    "e.lifecycle",
    "e.spec_type",
    "e.owner_key",
    "e.namespace_key",
];

/// One condition on a field: its value is one of `values`
/// (case-insensitive), or, with no values, the field is present and not
/// null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldFilter {
    pub path: FieldPath,
    /// Alternatives; empty means "the field exists".
    pub values: Vec<String>,
}

impl FieldFilter {
    /// A filter; refuses `relations` without a type, which names no value.
    pub fn new(path: FieldPath, values: Vec<String>) -> Result<FieldFilter, String> {
        if path.is_relations() {
            return Err(
                "filter on relations of one type, e.g. relations.ownedBy=group:default/team-a"
                    .into(),
            );
        }
        Ok(FieldFilter { path, values })
    }
}

/// One sort key: a field, ascending unless `descending`. Values compare as
/// lower-cased text (numbers too); entities without the field sort as if
/// it were empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub path: FieldPath,
    pub descending: bool,
}

impl SortKey {
    /// A sort key; refuses the fields that hold several values per entity
    /// (tags, relations), which have no one place in an order.
    pub fn new(path: FieldPath, descending: bool) -> Result<SortKey, String> {
        match target(&path) {
            Target::Tags | Target::Relations(_) => Err(format!(
                "cannot sort by {path}: an entity has several of them"
            )),
            _ if path.is_relations() => Err("cannot sort by relations".into()),
            _ => Ok(SortKey { path, descending }),
        }
    }
}

impl fmt::Display for SortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.descending {
            f.write_str("-")?;
        }
        f.write_str(self.path.as_str())
    }
}

/// The words of a search: split at anything that is not a letter or a
/// digit, lower-cased, without repeats, as the full-text indexes split
/// the entities' text.
pub fn search_terms(text: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        let word = word.to_lowercase();
        if !word.is_empty() && !terms.contains(&word) {
            terms.push(word);
        }
    }
    terms
}

/// What [`Store::list_entities`] returns, and (except for the page
/// settings) what [`Store::entity_facets`] counts over.
///
/// The typed filters (`kinds` ... `tags`) and `filters` must all hold;
/// within one filter the values are alternatives. Matching is
/// case-insensitive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntityQuery {
    pub kinds: Vec<String>,
    pub namespaces: Vec<String>,
    /// Owners as full references (an `ownedBy` relation's target).
    pub owners: Vec<EntityRef>,
    pub lifecycles: Vec<String>,
    /// `spec.type`.
    pub types: Vec<String>,
    pub tags: Vec<String>,
    /// Conditions on any field.
    pub filters: Vec<FieldFilter>,
    /// Full-text search: every word must match a word of the entity as a
    /// prefix (see [`search_terms`]). Text without any letter or digit
    /// searches nothing, so it matches every entity.
    pub search: Option<String>,
    /// The order; empty means by relevance when searching, otherwise by
    /// reference. The entity's key always breaks ties, so the order is
    /// total and pages never overlap.
    pub sort: Vec<SortKey>,
    /// Page size, at most [`MAX_PAGE_SIZE`].
    pub limit: u32,
    /// Continue after this position (from [`EntityPage::next_cursor`]);
    /// it must come from a query with the same order (see
    /// [`Cursor::decode`]).
    pub cursor: Option<Cursor>,
    /// Continue after this entity key (from [`EntityPage::next_after`]).
    /// Used only by the default order (no sort, no search) when `cursor`
    /// is not set; kept for callers that page by key.
    pub after: Option<String>,
    /// Leave each item's relations empty, saving their lookup (for callers
    /// that do not show them).
    pub skip_relations: bool,
}

/// How a query's pages are ordered.
#[derive(Debug, Clone, PartialEq)]
enum Order {
    /// By entity key only.
    Key,
    /// By search relevance, best first.
    Relevance,
    /// By these fields.
    Fields(Vec<SortKey>),
}

impl EntityQuery {
    fn terms(&self) -> Vec<String> {
        self.search.as_deref().map(search_terms).unwrap_or_default()
    }

    fn order(&self) -> Order {
        if !self.sort.is_empty() {
            Order::Fields(self.sort.clone())
        } else if !self.terms().is_empty() {
            Order::Relevance
        } else {
            Order::Key
        }
    }

    /// Names the order, so that a cursor from another order is refused.
    fn order_name(&self) -> String {
        match self.order() {
            Order::Key => "key".into(),
            Order::Relevance => "relevance".into(),
            Order::Fields(keys) => keys
                .iter()
                .map(SortKey::to_string)
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// One page of entities.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityPage {
    pub items: Vec<StoredEntity>,
    /// How many entities match the filters, on all pages.
    pub total: u64,
    /// Where the next page starts, when there is one.
    pub next_cursor: Option<Cursor>,
    /// The key of the page's last entity, when there is a next page: the
    /// default order's cursor (see [`EntityQuery::after`]).
    pub next_after: Option<String>,
}

/// One value of a cursor: a sort key's text, or a relevance score.
#[derive(Debug, Clone, PartialEq)]
enum SortValue {
    Text(String),
    Score(f64),
}

/// A position in a query's order: the sort values and key of the last
/// entity of a page. [`encode`](Self::encode) makes it an opaque string
/// for clients; [`decode`](Self::decode) checks it against the query it
/// is meant to continue.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    order: String,
    values: Vec<SortValue>,
    key: String,
}

impl Cursor {
    /// The cursor as a string of hex digits. Its content (JSON of the
    /// order's name, the key and the values) is not a contract.
    pub fn encode(&self) -> String {
        let values: Vec<Value> = self
            .values
            .iter()
            .map(|v| match v {
                SortValue::Text(s) => Value::String(s.clone()),
                SortValue::Score(x) => json!(x),
            })
            .collect();
        hex::encode(json!([self.order, self.key, values]).to_string())
    }

    /// Reads a cursor made by [`encode`](Self::encode) for a query with
    /// the same order as `query`.
    pub fn decode(text: &str, query: &EntityQuery) -> Result<Cursor, String> {
        const NOT_OURS: &str =
            "not a cursor this server handed out; pass nextCursor from the previous page";
        let bytes = hex::decode(text).map_err(|_| NOT_OURS.to_owned())?;
        let (order, key, values): (String, String, Vec<Value>) =
            serde_json::from_slice(&bytes).map_err(|_| NOT_OURS.to_owned())?;
        let expected = query.order_name();
        if order != expected {
            return Err(format!(
                "this cursor continues a list in another order ({order}); \
                 pass the same sort and search as the first page's"
            ));
        }
        let relevance = query.order() == Order::Relevance;
        let want = match query.order() {
            Order::Key => 0,
            Order::Relevance => 1,
            Order::Fields(keys) => keys.len(),
        };
        if values.len() != want {
            return Err(NOT_OURS.into());
        }
        let values = values
            .into_iter()
            .map(|v| match v {
                Value::String(s) if !relevance => Ok(SortValue::Text(s)),
                Value::Number(n) if relevance => {
                    n.as_f64().map(SortValue::Score).ok_or(NOT_OURS.to_owned())
                }
                _ => Err(NOT_OURS.to_owned()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Cursor { order, values, key })
    }
}

/// One value of a facet and how many entities have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FacetCount {
    /// The value, lower-cased (values match case-insensitively, so two
    /// spellings are one value).
    pub value: String,
    pub count: u64,
}

/// Which relations [`Store::relation_graph`] follows from each node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Relations the node has (`node ownedBy group`).
    Outgoing,
    /// Relations towards the node (`component ownedBy node`).
    Incoming,
    Both,
}

/// What [`Store::relation_graph`] walks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphQuery {
    pub root: EntityRef,
    /// How many relations away from the root, 1 to [`MAX_GRAPH_DEPTH`].
    pub depth: u32,
    pub direction: Direction,
    /// Relation types to follow (case-insensitive); empty means all.
    pub types: Vec<String>,
}

/// An entity reached by a walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNode {
    /// `kind:namespace/name` as Backstage writes it.
    pub entity_ref: String,
    /// How many relations from the root (0 for the root).
    pub depth: u32,
    /// The entity's kind, namespace, name and title as written, if it is
    /// in the catalog (a relation may name an entity not registered yet).
    pub entity: Option<NodeEntity>,
}

/// What a graph node shows of an entity in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntity {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub title: Option<String>,
}

/// A relation between two nodes of a graph.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GraphEdge {
    pub source: String,
    pub kind: String,
    pub target: String,
}

/// The relations around one entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationGraph {
    /// The root first, then by depth and reference.
    pub nodes: Vec<GraphNode>,
    /// Every relation found between two of the nodes, sorted.
    pub edges: Vec<GraphEdge>,
    /// The walk stopped at [`MAX_GRAPH_NODES`] or [`MAX_GRAPH_EDGES`]
    /// before reaching the requested depth everywhere.
    pub truncated: bool,
}

// ---------------------------------------------------------------------------
// SQL building. The dialects differ enough (JSON access, full-text search,
// array binds) that statements are assembled as text with their arguments,
// then bound for whichever pool the store has.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
enum Arg {
    Text(String),
    /// PostgreSQL only: one array bind instead of a list of them.
    Texts(Vec<String>),
    Real(f64),
    Int(i64),
}

/// A statement under construction.
#[derive(Debug)]
struct Sql {
    dialect: Dialect,
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn new(dialect: Dialect) -> Sql {
        Sql {
            dialect,
            text: String::with_capacity(512),
            args: Vec::new(),
        }
    }

    fn push(&mut self, s: &str) -> &mut Sql {
        self.text.push_str(s);
        self
    }

    fn arg(&mut self, arg: Arg) -> &mut Sql {
        self.args.push(arg);
        match self.dialect {
            Dialect::Sqlite => self.text.push('?'),
            Dialect::Postgres => {
                self.text.push('$');
                self.text.push_str(&self.args.len().to_string());
            }
        }
        self
    }

    fn text_arg(&mut self, s: impl Into<String>) -> &mut Sql {
        self.arg(Arg::Text(s.into()))
    }

    /// ` IN (...)` on SQLite, ` = ANY(...)` on PostgreSQL.
    fn in_list(&mut self, values: &[String]) -> &mut Sql {
        match self.dialect {
            Dialect::Sqlite => {
                self.push(" IN (");
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        self.push(", ");
                    }
                    self.text_arg(v.as_str());
                }
                self.push(")")
            }
            Dialect::Postgres => {
                self.push(" = ANY(");
                self.arg(Arg::Texts(values.to_vec()));
                self.push("::text[])")
            }
        }
    }

    /// A JSON path argument: `$."a"."b"` on SQLite, `{a,b}` on PostgreSQL.
    fn path_arg(&mut self, segments: &[String]) -> &mut Sql {
        match self.dialect {
            Dialect::Sqlite => {
                let mut path = String::from("$");
                for s in segments {
                    // FieldPath admits no '"', so quoting needs no escape.
                    path.push_str(".\"");
                    path.push_str(s);
                    path.push('"');
                }
                self.text_arg(path)
            }
            Dialect::Postgres => {
                self.arg(Arg::Texts(segments.to_vec()));
                self.push("::text[]")
            }
        }
    }

    /// Text ordered byte-wise on both backends.
    fn collate(&mut self) -> &mut Sql {
        if self.dialect == Dialect::Postgres {
            self.push(" COLLATE \"C\"");
        }
        self
    }
}

/// A row of either backend.
enum AnyRow {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

impl AnyRow {
    fn text(&self, column: &str) -> Result<String, sqlx::Error> {
        match self {
            AnyRow::Sqlite(r) => r.try_get(column),
            AnyRow::Postgres(r) => r.try_get(column),
        }
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        match self {
            AnyRow::Sqlite(r) => r.try_get(column),
            AnyRow::Postgres(r) => r.try_get(column),
        }
    }

    fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
        match self {
            AnyRow::Sqlite(r) => r.try_get(column),
            AnyRow::Postgres(r) => r.try_get(column),
        }
    }

    fn real(&self, column: &str) -> Result<f64, sqlx::Error> {
        match self {
            AnyRow::Sqlite(r) => r.try_get(column),
            AnyRow::Postgres(r) => r.try_get(column),
        }
    }

    fn entity(&self) -> Result<EntityRow, sqlx::Error> {
        match self {
            AnyRow::Sqlite(r) => EntityRow::from_row(r),
            AnyRow::Postgres(r) => EntityRow::from_row(r),
        }
    }

    fn relation(&self) -> Result<RelationOut, sqlx::Error> {
        match self {
            AnyRow::Sqlite(r) => RelationOut::from_row(r),
            AnyRow::Postgres(r) => RelationOut::from_row(r),
        }
    }
}

impl Pool {
    fn dialect(&self) -> Dialect {
        match self {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }

    async fn fetch(&self, sql: &Sql) -> Result<Vec<AnyRow>, StoreError> {
        debug_assert_eq!(sql.dialect, self.dialect());
        Ok(match self {
            Pool::Sqlite(pool) => {
                let mut q = sqlx::query(&sql.text);
                for arg in &sql.args {
                    q = match arg {
                        Arg::Text(s) => q.bind(s.as_str()),
                        Arg::Real(x) => q.bind(*x),
                        Arg::Int(n) => q.bind(*n),
                        Arg::Texts(_) => unreachable!("SQLite lists are expanded"),
                    };
                }
                q.fetch_all(pool)
                    .await?
                    .into_iter()
                    .map(AnyRow::Sqlite)
                    .collect()
            }
            Pool::Postgres(pool) => {
                let mut q = sqlx::query(&sql.text);
                for arg in &sql.args {
                    q = match arg {
                        Arg::Text(s) => q.bind(s.as_str()),
                        Arg::Texts(v) => q.bind(v.as_slice()),
                        Arg::Real(x) => q.bind(*x),
                        Arg::Int(n) => q.bind(*n),
                    };
                }
                q.fetch_all(pool)
                    .await?
                    .into_iter()
                    .map(AnyRow::Postgres)
                    .collect()
            }
        })
    }
}

/// A query's conditions, normalised: each is one field and its
/// lower-cased alternatives (none: the field must exist).
struct Conditions {
    fields: Vec<(Target, Vec<String>)>,
    terms: Vec<String>,
}

impl Conditions {
    fn new(q: &EntityQuery) -> Conditions {
        let lower = |v: &[String]| v.iter().map(|s| s.to_lowercase()).collect::<Vec<_>>();
        let column = |column| Target::Column {
            column,
            nullable: true,
        };
        let mut fields = Vec::new();
        for (target, values) in [
            (column("e.kind_key"), lower(&q.kinds)),
            (column("e.namespace_key"), lower(&q.namespaces)),
            (column("e.lifecycle"), lower(&q.lifecycles)),
            (column("e.spec_type"), lower(&q.types)),
            (Target::Tags, lower(&q.tags)),
            (
                column("e.owner_key"),
                q.owners.iter().map(EntityRef::key).collect(),
            ),
        ] {
            // An empty typed filter means "no filter", not "exists".
            if !values.is_empty() {
                fields.push((target, values));
            }
        }
        for f in &q.filters {
            fields.push((target(&f.path), lower(&f.values)));
        }
        Conditions {
            fields,
            terms: q.terms(),
        }
    }

    fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.terms.is_empty()
    }

    /// Whether SQLite finds the matches in key order through an index
    /// without sorting: no condition (the key's own index), or one promoted
    /// column equal to one value (that column's `(column, entity_ref)`
    /// index).
    fn key_ordered(&self) -> bool {
        if !self.terms.is_empty() {
            return false;
        }
        match self.fields.as_slice() {
            [] => true,
            [(Target::Column { column, .. }, values)] => {
                values.len() == 1 && FACT_COLUMNS.contains(column)
            }
            _ => false,
        }
    }

    /// The columns the conditions read, if every one is in
    /// `entities_facts` and there is no search.
    fn fact_columns(&self) -> Option<HashSet<&'static str>> {
        if !self.terms.is_empty() {
            return None;
        }
        self.fields
            .iter()
            .map(|(target, _)| match target {
                Target::Column { column, .. } if FACT_COLUMNS.contains(column) => Some(*column),
                _ => None,
            })
            .collect()
    }
}

/// The full-text query: every term as a prefix.
fn fts_query(dialect: Dialect, terms: &[String]) -> String {
    // Terms hold letters and digits only (search_terms), so they need no
    // quoting beyond the syntax's own.
    match dialect {
        Dialect::Sqlite => terms
            .iter()
            .map(|t| format!("\"{t}\"*"))
            .collect::<Vec<_>>()
            .join(" "),
        Dialect::Postgres => terms
            .iter()
            .map(|t| format!("'{t}':*"))
            .collect::<Vec<_>>()
            .join(" & "),
    }
}

/// A scalar JSON value as the lower-cased text it matches as. SQLite's
/// `json_each` gives booleans as 1 and 0; spell them as PostgreSQL does.
const SQLITE_ELEMENT_TEXT: &str =
    "CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE lower(j.value) END";

/// The rows `j` of the scalar values at a path of `e.body`: the value
/// itself, or each element of an array. Pushes `FROM`-clause text; the
/// caller adds [`push_scalar_elements`] to its `WHERE`.
fn push_elements_from(sql: &mut Sql, segments: &[String]) {
    match sql.dialect {
        Dialect::Sqlite => {
            sql.push("json_each(e.body, ");
            sql.path_arg(segments);
            sql.push(") j");
        }
        Dialect::Postgres => {
            sql.push("LATERAL jsonb_array_elements(CASE jsonb_typeof(e.body #> ");
            sql.path_arg(segments);
            sql.push(") WHEN 'array' THEN e.body #> ");
            sql.path_arg(segments);
            sql.push(" ELSE jsonb_build_array(e.body #> ");
            sql.path_arg(segments);
            sql.push(") END) AS j(v)");
        }
    }
}

/// Keeps the scalar rows of [`push_elements_from`]: on SQLite, `json_each`
/// of an object walks its members, which are not values of the field.
fn push_scalar_elements(sql: &mut Sql) {
    match sql.dialect {
        Dialect::Sqlite => sql.push(
            "(j.key IS NULL OR typeof(j.key) = 'integer') \
             AND j.type IN ('text', 'integer', 'real', 'true', 'false')",
        ),
        Dialect::Postgres => sql.push("jsonb_typeof(j.v) IN ('string', 'number', 'boolean')"),
    };
}

fn element_text(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => SQLITE_ELEMENT_TEXT,
        Dialect::Postgres => "lower(j.v #>> '{}')",
    }
}

/// ` AND <condition>` for one field. With `unindexed` (SQLite only), the
/// column is written `+column`, SQLite's way of keeping the planner from
/// answering this condition with an index (see [`Walk`]).
fn push_condition(sql: &mut Sql, target: &Target, values: &[String], unindexed: bool) {
    let plus = if unindexed { "+" } else { "" };
    match (target, values.is_empty()) {
        (
            Target::Column {
                nullable: false, ..
            },
            true,
        ) => {}
        (Target::Column { column, .. }, true) => {
            sql.push(" AND ")
                .push(plus)
                .push(column)
                .push(" IS NOT NULL");
        }
        (Target::Column { column, .. }, false) => {
            sql.push(" AND ").push(plus).push(column).in_list(values);
        }
        (Target::Tags, exists) => {
            sql.push(" AND ").push(plus);
            sql.push("e.entity_ref IN (SELECT t.entity_ref FROM entity_tags t");
            if !exists {
                sql.push(" WHERE t.tag").in_list(values);
            }
            sql.push(")");
        }
        (Target::Relations(kind), true) if sql.dialect == Dialect::Sqlite => {
            sql.push(" AND ").push(plus).push("e.entity_ref IN (");
            push_relation_sources(sql, kind);
            sql.push(")");
        }
        (Target::Relations(kind), exists) => {
            sql.push(" AND ").push(plus);
            // Named targets are looked up by key; having any relation of
            // the type is a scan (migration 0013).
            sql.push(if exists {
                "e.entity_ref IN (SELECT r.source_key FROM entity_relations_scan r \
                 WHERE lower(r.type) = "
            } else {
                "e.entity_ref IN (SELECT r.source_key FROM entity_relations_by_target r \
                 WHERE lower(r.type) = "
            });
            sql.text_arg(kind.as_str());
            if !exists {
                sql.push(" AND r.target_key").in_list(values);
            }
            sql.push(")");
        }
        (Target::Json(segments), true) => match sql.dialect {
            Dialect::Sqlite => {
                sql.push(" AND IFNULL(json_type(e.body, ");
                sql.path_arg(segments);
                sql.push("), 'null') <> 'null'");
            }
            Dialect::Postgres => {
                sql.push(" AND jsonb_typeof(e.body #> ");
                sql.path_arg(segments);
                sql.push(") <> 'null'");
            }
        },
        (Target::Json(segments), false) => {
            sql.push(" AND EXISTS (SELECT 1 FROM ");
            push_elements_from(sql, segments);
            sql.push(" WHERE ");
            push_scalar_elements(sql);
            let text = element_text(sql.dialect);
            sql.push(" AND ").push(text).in_list(values);
            sql.push(")");
        }
    }
}

/// How a SQLite page query should find its rows, decided from how many
/// match (see [`Store::list_entities`]). PostgreSQL keeps statistics and
/// plans well on its own; SQLite has none unless someone runs ANALYZE,
/// and then guesses that any filter is selective: it fetches every match
/// through the filter's index and sorts them all, even when half the
/// catalog matches and walking the order's index would find a page after
/// a few rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// Let the planner choose: few matches, nothing to walk, or a
    /// condition whose index already yields the order (see [`walk`]).
    Planner,
    /// Walk the order's index and test each row: no condition may use an
    /// index.
    Order,
}

/// ` WHERE ...` for the conditions; with `search_inline`, the search is a
/// condition too (otherwise the caller joins the full-text matches).
fn push_where(sql: &mut Sql, c: &Conditions, search_inline: bool, walk: Walk) {
    sql.push(" WHERE 1 = 1");
    for (target, values) in &c.fields {
        push_condition(sql, target, values, walk == Walk::Order);
    }
    if search_inline && !c.terms.is_empty() {
        let query = fts_query(sql.dialect, &c.terms);
        match sql.dialect {
            Dialect::Sqlite => {
                sql.push(if walk == Walk::Planner {
                    " AND "
                } else {
                    " AND +"
                });
                sql.push("e.rowid IN (SELECT rowid FROM entities_fts WHERE entities_fts MATCH ");
                sql.text_arg(query);
                sql.push(")");
            }
            Dialect::Postgres => {
                sql.push(" AND e.search @@ to_tsquery('simple', ");
                sql.text_arg(query);
                sql.push(")");
            }
        }
    }
}

/// The expression one sort key orders by: lower-cased text, never null.
fn push_sort_expr(sql: &mut Sql, key: &SortKey) {
    match target(&key.path) {
        Target::Column {
            column,
            nullable: false,
        } => {
            sql.push(column);
        }
        Target::Column { column, .. } => {
            sql.push("COALESCE(").push(column).push(", '')");
        }
        Target::Json(segments) => match sql.dialect {
            Dialect::Sqlite => {
                sql.push("CASE json_type(e.body, ");
                sql.path_arg(&segments);
                sql.push(
                    ") WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
                     WHEN 'null' THEN '' WHEN 'object' THEN '' WHEN 'array' THEN '' \
                     ELSE COALESCE(lower(json_extract(e.body, ",
                );
                sql.path_arg(&segments);
                sql.push(")), '') END");
            }
            Dialect::Postgres => {
                sql.push("CASE WHEN jsonb_typeof(e.body #> ");
                sql.path_arg(&segments);
                sql.push(") IN ('string', 'number', 'boolean') THEN lower(e.body #>> ");
                sql.path_arg(&segments);
                sql.push(") ELSE '' END");
            }
        },
        Target::Tags | Target::Relations(_) => unreachable!("SortKey::new refuses these"),
    }
    sql.collate();
}

/// One key of a page's order as SQL: how to write it, and which way.
enum OrderExpr<'a> {
    Field(&'a SortKey),
    /// Lower is better: SQLite's bm25, PostgreSQL's negated ts_rank.
    Score(&'a str),
}

impl OrderExpr<'_> {
    fn push(&self, sql: &mut Sql) {
        match self {
            OrderExpr::Field(key) => push_sort_expr(sql, key),
            OrderExpr::Score(query) => match sql.dialect {
                Dialect::Sqlite => {
                    sql.push("f.score");
                }
                Dialect::Postgres => {
                    sql.push("(-ts_rank(e.search, to_tsquery('simple', ");
                    sql.text_arg(*query);
                    sql.push(")))::float8");
                }
            },
        }
    }

    fn descending(&self) -> bool {
        matches!(self, OrderExpr::Field(k) if k.descending)
    }
}

/// ` AND <after the cursor>` in an order of `keys` then the entity key,
/// which runs the way of the first key.
fn push_keyset(sql: &mut Sql, keys: &[OrderExpr<'_>], cursor: &Cursor) {
    let key_desc = keys.first().is_some_and(OrderExpr::descending);
    let push_value = |sql: &mut Sql, v: &SortValue| match v {
        SortValue::Text(s) => {
            sql.text_arg(s.as_str());
        }
        SortValue::Score(x) => {
            sql.arg(Arg::Real(*x));
        }
    };
    let uniform = keys.iter().all(|k| k.descending() == key_desc);
    if uniform {
        // A row-value comparison, which both planners can run as an index
        // range when the order has an index.
        sql.push(" AND (");
        for key in keys {
            key.push(sql);
            sql.push(", ");
        }
        sql.push("e.entity_ref) ")
            .push(if key_desc { "<" } else { ">" });
        sql.push(" (");
        for v in &cursor.values {
            push_value(sql, v);
            sql.push(", ");
        }
        sql.text_arg(cursor.key.as_str());
        sql.push(")");
        return;
    }
    // Mixed directions: (k0 after c0) OR (k0 = c0 AND k1 after c1) OR ...
    sql.push(" AND (");
    for i in 0..=keys.len() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push("(");
        for (key, value) in keys.iter().zip(&cursor.values).take(i) {
            key.push(sql);
            sql.push(" = ");
            push_value(sql, value);
            sql.push(" AND ");
        }
        if i < keys.len() {
            keys[i].push(sql);
            sql.push(if keys[i].descending() { " < " } else { " > " });
            push_value(sql, &cursor.values[i]);
        } else {
            sql.push("e.entity_ref")
                .push(if key_desc { " < " } else { " > " });
            sql.text_arg(cursor.key.as_str());
        }
        sql.push(")");
    }
    sql.push(")");
}

impl Store {
    /// A page of entities matching the query, in its order, with the total
    /// number of matches.
    pub async fn list_entities(&self, query: &EntityQuery) -> Result<EntityPage, StoreError> {
        let pool = &self.pool;
        let dialect = pool.dialect();
        let conditions = Conditions::new(query);
        let limit = query.limit.clamp(1, MAX_PAGE_SIZE);

        let count = match counted(dialect, &conditions) {
            Some(counted) => counted.total(),
            // Every entity has one search row: count those alone rather
            // than look up each matching entity.
            None if dialect == Dialect::Sqlite && conditions.fields.is_empty() => {
                let mut count = Sql::new(dialect);
                count.push("SELECT COUNT(*) AS n FROM entities_fts WHERE entities_fts MATCH ");
                count.text_arg(fts_query(dialect, &conditions.terms));
                count
            }
            None => {
                let mut count = Sql::new(dialect);
                count.push("SELECT COUNT(*) AS n FROM entities e");
                count.push(facts_index(dialect, &conditions, None));
                push_where(&mut count, &conditions, true, Walk::Planner);
                count
            }
        };
        let total = pool.fetch(&count).await?[0].int("n")?;

        let order = query.order();
        let search_text = fts_query(dialect, &conditions.terms);
        let keys: Vec<OrderExpr<'_>> = match &order {
            Order::Key => Vec::new(),
            Order::Relevance => vec![OrderExpr::Score(&search_text)],
            Order::Fields(keys) => keys.iter().map(OrderExpr::Field).collect(),
        };
        let descending = keys.first().is_some_and(OrderExpr::descending);
        let by_score = order == Order::Relevance;
        let walk = walk(pool, &order, &conditions, total, limit).await?;

        // First the page's keys and sort values, then the bodies of those
        // alone: a sort that cannot walk an index then orders narrow rows,
        // not every match's JSON. When SQLite walks an index in the page's
        // order and stops at the limit, it reads no more rows than the page
        // holds, and the bodies come with the keys: a page of 1,000 is then
        // one statement instead of two and 1,000 fewer index probes.
        let inline_bodies = dialect == Dialect::Sqlite
            && order == Order::Key
            && (walk == Walk::Order || conditions.key_ordered());
        let mut sql = Sql::new(dialect);
        sql.push("SELECT e.entity_ref");
        if inline_bodies {
            sql.push(", e.body, e.etag, e.origin, e.created_at, e.updated_at");
        }
        for (i, key) in keys.iter().enumerate() {
            sql.push(", ");
            key.push(&mut sql);
            sql.push(&format!(" AS k{i}"));
        }
        sql.push(" FROM entities e");
        if by_score && dialect == Dialect::Sqlite {
            sql.push(&format!(
                " JOIN (SELECT rowid AS id, {SQLITE_RANK} AS score FROM entities_fts \
                 WHERE entities_fts MATCH "
            ));
            sql.text_arg(search_text.as_str());
            sql.push(") f ON f.id = e.rowid");
        }
        push_where(
            &mut sql,
            &conditions,
            !(by_score && dialect == Dialect::Sqlite),
            walk,
        );
        match (&query.cursor, &query.after) {
            (Some(cursor), _) => push_keyset(&mut sql, &keys, cursor),
            (None, Some(after)) if order == Order::Key => {
                sql.push(" AND e.entity_ref > ").text_arg(after.as_str());
            }
            _ => {}
        }
        sql.push(" ORDER BY ");
        let dir = |desc: bool| if desc { " DESC" } else { " ASC" };
        for (i, key) in keys.iter().enumerate() {
            sql.push(&format!("k{i}")).push(dir(key.descending()));
            sql.push(", ");
        }
        sql.push("e.entity_ref").push(dir(descending));
        sql.push(" LIMIT ").arg(Arg::Int(i64::from(limit) + 1));

        let mut rows = pool.fetch(&sql).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let mut page_keys = Vec::with_capacity(rows.len());
        let mut next_cursor = None;
        for (i, row) in rows.iter().enumerate() {
            let key = row.text("entity_ref")?;
            if more && i + 1 == limit as usize {
                let values = (0..keys.len())
                    .map(|k| {
                        let column = format!("k{k}");
                        Ok(if by_score {
                            SortValue::Score(row.real(&column)?)
                        } else {
                            SortValue::Text(row.text(&column)?)
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()?;
                next_cursor = Some(Cursor {
                    order: query.order_name(),
                    values,
                    key: key.clone(),
                });
            }
            page_keys.push(key);
        }

        let keys: Vec<&str> = page_keys.iter().map(String::as_str).collect();
        let mut bodies = if inline_bodies {
            let mut bodies = HashMap::with_capacity(rows.len());
            for row in &rows {
                let row = row.entity()?;
                bodies.insert(row.entity_ref.clone(), row);
            }
            bodies
        } else {
            entity_rows(pool, &keys).await?
        };
        let mut incoming = if query.skip_relations {
            None
        } else {
            Some(incoming_relations(pool, &keys).await?)
        };
        // An entity deleted between the two reads is left out of the page.
        let items = page_keys
            .iter()
            .filter_map(|key| bodies.remove(key))
            .map(|row| {
                let rels = incoming
                    .as_mut()
                    .map(|all| all.remove(&row.entity_ref).unwrap_or_default());
                row.into_stored(rels)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EntityPage {
            next_after: next_cursor.as_ref().map(|c| c.key.clone()),
            next_cursor,
            items,
            total: u64::try_from(total).unwrap_or(0),
        })
    }

    /// For each field, how many of the entities matching `query` have each
    /// value, most frequent first (then by value), at most
    /// [`MAX_FACET_VALUES`] per field. Arrays count per element; entities
    /// without the field are not counted. The page settings of `query`
    /// (sort, limit, cursor) are ignored.
    pub async fn entity_facets(
        &self,
        query: &EntityQuery,
        fields: &[FieldPath],
    ) -> Result<BTreeMap<String, Vec<FacetCount>>, StoreError> {
        let pool = &self.pool;
        let dialect = pool.dialect();
        let conditions = Conditions::new(query);
        let mut out = BTreeMap::new();
        for field in fields {
            if out.contains_key(field.as_str()) {
                continue;
            }
            let from_counts = counted(dialect, &conditions).and_then(|c| c.facet(&target(field)));
            if let Some(sql) = from_counts {
                out.insert(field.as_str().to_owned(), facet_counts(pool, &sql).await?);
                continue;
            }
            let mut sql = Sql::new(dialect);
            // `matching` restricts rows to the entities the query matches.
            let matching = |sql: &mut Sql, key: &str| {
                if !conditions.is_empty() {
                    sql.push(" AND ").push(key);
                    sql.push(" IN (SELECT e.entity_ref FROM entities e");
                    push_where(sql, &conditions, true, Walk::Planner);
                    sql.push(")");
                }
            };
            match target(field) {
                Target::Column { column, .. } => {
                    sql.push("SELECT ").push(column).collate();
                    sql.push(" AS v, COUNT(*) AS n FROM entities e");
                    sql.push(facts_index(dialect, &conditions, Some(column)));
                    push_where(&mut sql, &conditions, true, Walk::Planner);
                    sql.push(" AND ").push(column).push(" IS NOT NULL");
                }
                Target::Tags => {
                    sql.push("SELECT t.tag").collate();
                    sql.push(" AS v, COUNT(*) AS n FROM entity_tags t WHERE 1 = 1");
                    matching(&mut sql, "t.entity_ref");
                }
                Target::Relations(kind) if conditions.is_empty() && dialect == Dialect::Sqlite => {
                    sql.push("SELECT v, COUNT(*) AS n FROM (");
                    push_relation_pairs(&mut sql, &kind);
                    sql.push(")");
                }
                Target::Relations(kind) => {
                    sql.push("SELECT r.target_key").collate();
                    // Over the whole catalog a scan of every relation; under
                    // filters, the matching entities' relations looked up.
                    sql.push(if conditions.is_empty() {
                        " AS v, COUNT(DISTINCT r.source_key) AS n FROM entity_relations_scan r \
                         WHERE lower(r.type) = "
                    } else {
                        " AS v, COUNT(DISTINCT r.source_key) AS n FROM entity_relations r \
                         WHERE lower(r.type) = "
                    });
                    sql.text_arg(kind);
                    // Reverse relations name sources that may not be in
                    // the catalog; count entities only.
                    if conditions.is_empty() {
                        sql.push(" AND r.source_key IN (SELECT e.entity_ref FROM entities e)");
                    } else {
                        matching(&mut sql, "r.source_key");
                    }
                }
                Target::Json(segments) => {
                    sql.push("SELECT ").push(element_text(dialect)).collate();
                    sql.push(" AS v, COUNT(DISTINCT e.entity_ref) AS n FROM entities e, ");
                    push_elements_from(&mut sql, &segments);
                    push_where(&mut sql, &conditions, true, Walk::Planner);
                    sql.push(" AND ");
                    push_scalar_elements(&mut sql);
                }
            }
            sql.push(" GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ");
            sql.arg(Arg::Int(MAX_FACET_VALUES as i64));
            out.insert(field.as_str().to_owned(), facet_counts(pool, &sql).await?);
        }
        Ok(out)
    }

    /// The entities reachable from `query.root` through at most
    /// `query.depth` relations of the given types and direction, with the
    /// relations between them; `None` if the root is not in the catalog.
    /// Stops at [`MAX_GRAPH_NODES`] nodes or [`MAX_GRAPH_EDGES`] edges.
    pub async fn relation_graph(
        &self,
        query: &GraphQuery,
    ) -> Result<Option<RelationGraph>, StoreError> {
        let pool = &self.pool;
        let dialect = pool.dialect();
        let root = query.root.key();
        let Some(root_entity) = node_entities(pool, &[root.as_str()]).await?.remove(&root) else {
            return Ok(None);
        };
        let types: Vec<String> = query.types.iter().map(|t| t.to_lowercase()).collect();
        let depth_limit = query.depth.clamp(1, MAX_GRAPH_DEPTH);

        // Breadth first, one statement per direction and level.
        let mut depth_of: HashMap<String, u32> = HashMap::from([(root.clone(), 0)]);
        let mut shown: HashMap<String, String> = HashMap::new();
        let mut edges: HashSet<(String, String, String)> = HashSet::new();
        let mut frontier = vec![root.clone()];
        let mut truncated = false;
        'walk: for depth in 1..=depth_limit {
            let mut next = Vec::new();
            let directions: &[bool] = match query.direction {
                Direction::Outgoing => &[true],
                Direction::Incoming => &[false],
                Direction::Both => &[true, false],
            };
            for &outgoing in directions {
                for chunk in frontier.chunks(KEYS_PER_STATEMENT) {
                    let mut sql = Sql::new(dialect);
                    // Each view reads both halves by its own column
                    // through a primary key (migration 0011).
                    sql.push(if outgoing {
                        "SELECT source_key, type, target_key, target_ref \
                         FROM entity_relations WHERE source_key"
                    } else {
                        "SELECT source_key, type, target_key, target_ref \
                         FROM entity_relations_by_target WHERE target_key"
                    });
                    sql.in_list(chunk);
                    if !types.is_empty() {
                        sql.push(" AND lower(type)").in_list(&types);
                    }
                    sql.push(" ORDER BY source_key, type, target_key");
                    for row in pool.fetch(&sql).await? {
                        let source = row.text("source_key")?;
                        let kind = row.text("type")?;
                        let target = row.text("target_key")?;
                        shown
                            .entry(target.clone())
                            .or_insert(row.text("target_ref")?);
                        let other = if outgoing { &target } else { &source };
                        if !depth_of.contains_key(other) {
                            if depth_of.len() >= MAX_GRAPH_NODES {
                                truncated = true;
                                continue;
                            }
                            depth_of.insert(other.clone(), depth);
                            next.push(other.clone());
                        }
                        if edges.len() >= MAX_GRAPH_EDGES {
                            truncated = true;
                            break 'walk;
                        }
                        edges.insert((source, kind, target));
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }

        let keys: Vec<&str> = depth_of.keys().map(String::as_str).collect();
        let mut entities = node_entities(pool, &keys).await?;
        entities.insert(root.clone(), root_entity);
        // A node that is not in the catalog is shown as relations name it.
        let unnamed: Vec<String> = keys
            .iter()
            .filter(|k| !entities.contains_key(**k) && !shown.contains_key(**k))
            .map(|k| (*k).to_owned())
            .collect();
        for chunk in unnamed.chunks(KEYS_PER_STATEMENT) {
            let mut sql = Sql::new(dialect);
            sql.push(
                "SELECT target_key, target_ref FROM entity_relations_by_target WHERE target_key",
            );
            sql.in_list(chunk);
            for row in pool.fetch(&sql).await? {
                shown
                    .entry(row.text("target_key")?)
                    .or_insert(row.text("target_ref")?);
            }
        }
        let name = |key: &str| -> String {
            match entities.get(key) {
                Some(e) => EntityRef::new(&e.kind, &e.namespace, &e.name).to_string(),
                None => shown.get(key).cloned().unwrap_or_else(|| key.to_owned()),
            }
        };
        let mut nodes: Vec<GraphNode> = depth_of
            .iter()
            .map(|(key, depth)| GraphNode {
                entity_ref: name(key),
                depth: *depth,
                entity: entities.get(key).cloned(),
            })
            .collect();
        nodes.sort_by(|a, b| (a.depth, &a.entity_ref).cmp(&(b.depth, &b.entity_ref)));
        let mut edges: Vec<GraphEdge> = edges
            .into_iter()
            .filter(|(s, _, t)| depth_of.contains_key(s) && depth_of.contains_key(t))
            .map(|(s, kind, t)| GraphEdge {
                source: name(&s),
                kind,
                target: name(&t),
            })
            .collect();
        edges.sort();
        Ok(Some(RelationGraph {
            nodes,
            edges,
            truncated,
        }))
    }
}

/// SQLite: the keys of the entities that have a relation of type `kind`
/// (lower-cased, as a query names it), for an `IN (...)`.
///
/// Read from `entity_relations_incoming` itself in one pass, rather than
/// through the view `entity_relations_scan`, whose two arms over that
/// table each scan all of it and compare every row's type lower-cased:
/// a declared row of the type names its declaring entity, a row whose
/// reverse is the type names its target. The owner columns serve
/// `ownedBy` and `ownerOf`. Same rows as the view (the store's query
/// suite compares these answers with the entities on both backends).
fn push_relation_sources(sql: &mut Sql, kind: &str) {
    let Some(stored) = stored_relation_type(kind) else {
        // Nothing of any other type is stored.
        sql.push("SELECT NULL WHERE 0");
        return;
    };
    sql.push("SELECT iif(r.type = ");
    sql.text_arg(stored);
    sql.push(", r.origin_ref, r.target_key) FROM entity_relations_incoming r WHERE r.type = ");
    sql.text_arg(stored);
    sql.push(" OR r.reverse_type = ");
    sql.text_arg(stored);
    if is_owner_type(stored) {
        sql.push(" UNION ALL SELECT o.source_key FROM entity_relations_owner o WHERE o.type = ");
        sql.text_arg(stored);
    }
}

/// SQLite: each distinct (related entity `v`, entity `s` in the catalog
/// that has the relation) of type `kind`, for a facet over the whole
/// catalog: `s` has the relation towards `v`. One pass over
/// `entity_relations_incoming`, as in [`push_relation_sources`]; a
/// declaring entity is always in the catalog, a reverse row's target
/// only sometimes, so only those are looked up.
fn push_relation_pairs(sql: &mut Sql, kind: &str) {
    let Some(stored) = stored_relation_type(kind) else {
        sql.push("SELECT NULL AS v, NULL AS s WHERE 0");
        return;
    };
    let mine = |sql: &mut Sql, yes: &str, no: &str| {
        sql.push("iif(r.type = ");
        sql.text_arg(stored);
        sql.push(", ").push(yes).push(", ").push(no).push(")");
    };
    // Each pair once, as the view's COUNT(DISTINCT ...) counted them.
    sql.push("SELECT DISTINCT ");
    mine(sql, "r.target_key", "r.origin_ref");
    sql.push(" AS v, ");
    mine(sql, "r.origin_ref", "r.target_key");
    sql.push(" AS s FROM entity_relations_incoming r WHERE r.type = ");
    sql.text_arg(stored);
    sql.push(" OR (r.reverse_type = ");
    sql.text_arg(stored);
    sql.push(" AND r.target_key IN (SELECT e.entity_ref FROM entities e))");
    if is_owner_type(stored) {
        sql.push(
            " UNION SELECT o.target_key, o.source_key FROM entity_relations_owner o \
             WHERE o.type = ",
        );
        sql.text_arg(stored);
        sql.push(" AND o.source_key IN (SELECT e.entity_ref FROM entities e)");
    }
}

/// The relation type a query names (lower-cased) as the store writes it:
/// one of Backstage's, the only ones relations are derived as.
fn stored_relation_type(kind: &str) -> Option<&'static str> {
    relation_names::ALL
        .into_iter()
        .find(|t| t.eq_ignore_ascii_case(kind))
}

fn is_owner_type(stored: &str) -> bool {
    stored == relation_names::OWNED_BY || stored == relation_names::OWNER_OF
}

/// Runs a facet statement that yields `v` and `n`.
async fn facet_counts(pool: &Pool, sql: &Sql) -> Result<Vec<FacetCount>, StoreError> {
    pool.fetch(sql)
        .await?
        .iter()
        .map(|row| {
            Ok(FacetCount {
                value: row.text("v")?,
                count: u64::try_from(row.int("n")?).unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// The field a target is counted under in `entity_value_counts`
/// (SQLite), if it is.
fn counted_field(target: &Target) -> Option<&'static str> {
    match target {
        Target::Column { column, .. } => match *column {
            "e.kind_key" => Some("kind"),
            "e.namespace_key" => Some("metadata.namespace"),
            "e.lifecycle" => Some("spec.lifecycle"),
            "e.spec_type" => Some("spec.type"),
            "e.owner_key" => Some("relations.ownedBy"),
            _ => None,
        },
        Target::Tags => Some("metadata.tags"),
        _ => None,
    }
}

/// Conditions that `entity_value_counts` (SQLite) answers: no search, at
/// most one condition on the kind and one on another counted field, each
/// with values.
struct Counted<'a> {
    kinds: Option<&'a [String]>,
    other: Option<(&'static str, &'a [String])>,
}

fn counted(dialect: Dialect, c: &Conditions) -> Option<Counted<'_>> {
    if dialect != Dialect::Sqlite || !c.terms.is_empty() {
        return None;
    }
    let mut out = Counted {
        kinds: None,
        other: None,
    };
    for (target, values) in &c.fields {
        let field = counted_field(target)?;
        if values.is_empty() {
            return None;
        }
        if field == "kind" && out.kinds.is_none() {
            out.kinds = Some(values);
        } else if out.other.is_none() {
            // A second kind condition lands here too: value = kind_key
            // for the "kind" field, so the sum is the intersection.
            out.other = Some((field, values));
        } else {
            return None;
        }
    }
    match out.other {
        // An entity with two of the tags asked for would count twice.
        Some(("metadata.tags", values)) if values.len() > 1 => None,
        _ => Some(out),
    }
}

impl Counted<'_> {
    /// `SELECT n`: how many entities match.
    fn total(&self) -> Sql {
        let mut sql = Sql::new(Dialect::Sqlite);
        sql.push("SELECT IFNULL(SUM(n), 0) AS n FROM entity_value_counts WHERE field = ");
        match self.other {
            Some((field, values)) => {
                sql.text_arg(field);
                sql.push(" AND value").in_list(values);
            }
            None => {
                sql.text_arg("kind");
            }
        }
        if let Some(kinds) = self.kinds {
            sql.push(" AND kind_key").in_list(kinds);
        }
        sql
    }

    /// The facet statement for `target`, when the counts answer it.
    fn facet(&self, target: &Target) -> Option<Sql> {
        let field = counted_field(target)?;
        if self.other.is_some() {
            return None;
        }
        let mut sql = Sql::new(Dialect::Sqlite);
        sql.push("SELECT value AS v, SUM(n) AS n FROM entity_value_counts WHERE field = ");
        sql.text_arg(field);
        if let Some(kinds) = self.kinds {
            sql.push(" AND kind_key").in_list(kinds);
        }
        sql.push(" GROUP BY value HAVING SUM(n) > 0 ORDER BY 2 DESC, 1 LIMIT ");
        sql.arg(Arg::Int(MAX_FACET_VALUES as i64));
        Some(sql)
    }
}

/// ` INDEXED BY entities_facts` (SQLite) when a count over the
/// conditions, and over `facet` if given, reads two or more of the
/// promoted columns and nothing else: that index covers them all, so the
/// count is one scan of narrow entries, where SQLite would otherwise pick
/// one column's index and read each matching row. One column alone has
/// its own covering index.
fn facts_index(dialect: Dialect, c: &Conditions, facet: Option<&'static str>) -> &'static str {
    if dialect != Dialect::Sqlite {
        return "";
    }
    let Some(mut columns) = c.fact_columns() else {
        return "";
    };
    if let Some(facet) = facet {
        if !FACT_COLUMNS.contains(&facet) {
            return "";
        }
        columns.insert(facet);
    }
    if columns.len() >= 2 {
        " INDEXED BY entities_facts"
    } else {
        ""
    }
}

/// Whether a SQLite page should walk its order's index (see [`Walk`]).
/// Walking costs about `limit × entities / matches` rows (assuming the
/// matches spread evenly over the order); fetching the matches through
/// their filters and sorting them costs `matches` rows. The entity count
/// is estimated by the largest rowid, which costs one index probe.
///
/// Only the orders with an index walk: by key, and by name. Neither walks
/// when one condition's index already yields the order: each promoted
/// column's index `(column, entity_ref)` does for the key order under one
/// value, and `entities_kind_name` for the name order within one kind.
async fn walk(
    pool: &Pool,
    order: &Order,
    c: &Conditions,
    total: i64,
    limit: u32,
) -> Result<Walk, StoreError> {
    let single = |column: &str| {
        c.fields.iter().any(|(target, values)| {
            values.len() == 1
                && matches!(target, Target::Column { column: col, .. } if *col == column)
        })
    };
    let ordered_by_a_condition = match order {
        Order::Key => FACT_COLUMNS.iter().any(|column| single(column)),
        Order::Fields(keys) => match target(&keys[0].path) {
            Target::Column {
                column: "e.name_key",
                ..
            } => single("e.kind_key"),
            _ => return Ok(Walk::Planner),
        },
        Order::Relevance => return Ok(Walk::Planner),
    };
    if pool.dialect() != Dialect::Sqlite || c.is_empty() || total == 0 || ordered_by_a_condition {
        return Ok(Walk::Planner);
    }
    let mut sql = Sql::new(Dialect::Sqlite);
    sql.push("SELECT IFNULL(MAX(rowid), 0) AS n FROM entities");
    let entities = pool.fetch(&sql).await?[0].int("n")?;
    let (total, rows, limit) = (total as f64, entities as f64, f64::from(limit) + 1.0);
    Ok(if total * total > limit * rows {
        Walk::Order
    } else {
        Walk::Planner
    })
}

/// The stored rows of `keys` (those that exist), by key.
async fn entity_rows(pool: &Pool, keys: &[&str]) -> Result<HashMap<String, EntityRow>, StoreError> {
    let mut out = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(KEYS_PER_STATEMENT) {
        if chunk.is_empty() {
            continue;
        }
        let chunk: Vec<String> = chunk.iter().map(|k| (*k).to_owned()).collect();
        let mut sql = Sql::new(pool.dialect());
        sql.push(
            "SELECT entity_ref, body, etag, origin, created_at, updated_at \
             FROM entities WHERE entity_ref",
        );
        sql.in_list(&chunk);
        for row in pool.fetch(&sql).await? {
            let row = row.entity()?;
            out.insert(row.entity_ref.clone(), row);
        }
    }
    Ok(out)
}

/// Relations other entities declare towards each of `keys`, grouped by
/// key (the declared ones come from each body). A statement of its own,
/// with the keys as an IN list, which the index on the declared
/// relations' targets answers; a correlated subquery per entity in the
/// bodies' statement was tried and read 100,000 entities in 86 s instead
/// of 2 s.
async fn incoming_relations(
    pool: &Pool,
    keys: &[&str],
) -> Result<HashMap<String, Vec<portolan_catalog::Relation>>, StoreError> {
    let mut rows = Vec::new();
    for chunk in keys.chunks(KEYS_PER_STATEMENT) {
        if chunk.is_empty() {
            continue;
        }
        let chunk: Vec<String> = chunk.iter().map(|k| (*k).to_owned()).collect();
        let mut sql = Sql::new(pool.dialect());
        sql.push(INCOMING_RELATIONS);
        sql.in_list(&chunk);
        for row in pool.fetch(&sql).await? {
            rows.push(row.relation()?);
        }
    }
    Ok(group_relations(rows))
}

/// Kind, namespace, name and title of those of `keys` in the catalog.
async fn node_entities(
    pool: &Pool,
    keys: &[&str],
) -> Result<HashMap<String, NodeEntity>, StoreError> {
    let mut out = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(KEYS_PER_STATEMENT) {
        let chunk: Vec<String> = chunk.iter().map(|k| (*k).to_owned()).collect();
        let mut sql = Sql::new(pool.dialect());
        sql.push("SELECT entity_ref, kind, namespace, name, ");
        sql.push(match pool.dialect() {
            Dialect::Sqlite => "json_extract(body, '$.metadata.title')",
            Dialect::Postgres => "body #>> '{metadata,title}'",
        });
        sql.push(" AS title FROM entities WHERE entity_ref");
        sql.in_list(&chunk);
        for row in pool.fetch(&sql).await? {
            out.insert(
                row.text("entity_ref")?,
                NodeEntity {
                    kind: row.text("kind")?,
                    namespace: row.text("namespace")?,
                    name: row.text("name")?,
                    title: row.opt_text("title")?,
                },
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_at_dots_except_in_label_and_annotation_keys() {
        let p = FieldPath::parse("spec.profile.email").unwrap();
        assert_eq!(p.segments(), ["spec", "profile", "email"]);
        let p = FieldPath::parse("metadata.annotations.backstage.io/techdocs-ref").unwrap();
        assert_eq!(
            p.segments(),
            ["metadata", "annotations", "backstage.io/techdocs-ref"]
        );
        assert_eq!(p.as_str(), "metadata.annotations.backstage.io/techdocs-ref");
        for bad in [
            "",
            "spec..owner",
            ".spec",
            "spec.",
            "spec.o wner",
            "spec.\"x\"",
            "relations.ownedBy.x",
            "metadata.labels.",
            "metadata.labels.a\"b",
        ] {
            assert!(FieldPath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lookup_walks_objects() {
        let v = json!({"spec": {"profile": {"email": "a@b"}}, "metadata": {"tags": ["x"]}});
        let p = |s| FieldPath::parse(s).unwrap();
        assert_eq!(p("spec.profile.email").lookup(&v), Some(&json!("a@b")));
        assert_eq!(p("metadata.tags").lookup(&v), Some(&json!(["x"])));
        assert_eq!(p("spec.profile.name").lookup(&v), None);
        assert_eq!(p("metadata.tags.x").lookup(&v), None);
    }

    #[test]
    fn promoted_fields_use_their_columns() {
        let t = |s| target(&FieldPath::parse(s).unwrap());
        assert!(matches!(
            t("metadata.name"),
            Target::Column {
                column: "e.name_key",
                ..
            }
        ));
        assert!(matches!(
            t("relations.ownedBy"),
            Target::Column {
                column: "e.owner_key",
                ..
            }
        ));
        assert_eq!(
            t("spec.owner"),
            Target::Json(vec!["spec".into(), "owner".into()])
        );
        assert_eq!(t("metadata.tags"), Target::Tags);
        assert_eq!(t("relations.partOf"), Target::Relations("partof".into()));
        assert_eq!(
            t("spec.system"),
            Target::Json(vec!["spec".into(), "system".into()])
        );
    }

    #[test]
    fn sorting_by_several_valued_fields_is_refused() {
        let p = |s| FieldPath::parse(s).unwrap();
        assert!(SortKey::new(p("metadata.tags"), false).is_err());
        assert!(SortKey::new(p("relations.partOf"), false).is_err());
        // An entity has one owner.
        assert!(SortKey::new(p("relations.ownedBy"), false).is_ok());
        assert!(SortKey::new(p("relations"), false).is_err());
        assert!(SortKey::new(p("spec.system"), true).is_ok());
        assert!(FieldFilter::new(p("relations"), vec![]).is_err());
    }

    #[test]
    fn search_terms_split_like_the_indexes() {
        assert_eq!(
            search_terms("Payments-Service  jane@example.com"),
            ["payments", "service", "jane", "example", "com"]
        );
        assert_eq!(search_terms("a a A"), ["a"]);
        assert!(search_terms(" -- ").is_empty());
        assert_eq!(search_terms("Café"), ["café"]);
    }

    #[test]
    fn cursors_round_trip_and_belong_to_their_order() {
        let by_name = EntityQuery {
            sort: vec![SortKey::new(FieldPath::parse("metadata.name").unwrap(), true).unwrap()],
            ..EntityQuery::default()
        };
        let cursor = Cursor {
            order: by_name.order_name(),
            values: vec![SortValue::Text("web".into())],
            key: "component:default/web".into(),
        };
        assert_eq!(Cursor::decode(&cursor.encode(), &by_name).unwrap(), cursor);
        let err = Cursor::decode(&cursor.encode(), &EntityQuery::default()).unwrap_err();
        assert!(err.contains("another order"), "{err}");
        for garbage in ["zz", "ff", &hex::encode("[1,2,3]")] {
            assert!(Cursor::decode(garbage, &by_name).is_err(), "{garbage}");
        }

        let searching = EntityQuery {
            search: Some("pay".into()),
            ..EntityQuery::default()
        };
        let cursor = Cursor {
            order: searching.order_name(),
            values: vec![SortValue::Score(-1.25e-6)],
            key: "component:default/web".into(),
        };
        assert_eq!(
            Cursor::decode(&cursor.encode(), &searching).unwrap(),
            cursor
        );
    }

    #[test]
    fn mixed_directions_expand_the_keyset() {
        let p = |s| FieldPath::parse(s).unwrap();
        let a = SortKey::new(p("spec.lifecycle"), false).unwrap();
        let b = SortKey::new(p("metadata.name"), true).unwrap();
        let cursor = Cursor {
            order: String::new(),
            values: vec![SortValue::Text("x".into()), SortValue::Text("y".into())],
            key: "k".into(),
        };
        let mut sql = Sql::new(Dialect::Sqlite);
        push_keyset(
            &mut sql,
            &[OrderExpr::Field(&a), OrderExpr::Field(&b)],
            &cursor,
        );
        assert_eq!(
            sql.text,
            " AND ((COALESCE(e.lifecycle, '') > ?) OR (COALESCE(e.lifecycle, '') = ? AND e.name_key < ?) \
             OR (COALESCE(e.lifecycle, '') = ? AND e.name_key = ? AND e.entity_ref > ?))"
        );
        assert_eq!(sql.args.len(), 6);
    }
}
