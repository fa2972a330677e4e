//! API tokens: the bearer credentials of the HTTP API.
//!
//! A secret is `ptl_` followed by 64 lowercase hex digits (32 bytes from the
//! operating system's generator). It is shown once, in [`NewToken`], and
//! only its SHA-256 is stored. A plain, unsalted hash is enough here: salts
//! and slow hashes protect guessable passwords, and 256 random bits cannot
//! be guessed. Verification hashes the presented secret and looks the hash
//! up, so the work does not depend on how much of a guess was right, and
//! the index lookup can at most leak hash prefixes, which reveal nothing
//! about any secret.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{on_pool, on_write_pool, Pool};
use crate::{Store, StoreError};

/// Every secret starts with this, so secret scanners and people can tell a
/// leaked Portolan token from other random strings.
pub const SECRET_PREFIX: &str = "ptl_";

/// Random bytes in a secret (hex-encoded after the prefix).
const SECRET_BYTES: usize = 32;

/// Random bytes in a token id (16 hex characters).
const ID_BYTES: usize = 8;

/// `last_used_at` is only rewritten once this much time has passed since
/// the stored value, so a busy client costs one write a minute rather than
/// one per request.
pub const LAST_USED_GRANULARITY: Duration = Duration::from_secs(60);

/// How long verifying a token waits on SQLite for its turn to record the
/// token's use before leaving it to a later request.
const TOUCH_WAIT: Duration = Duration::from_millis(250);

/// What a token may do. Ordered: `Viewer < Member < Admin`, so a check
/// reads `role >= Role::Member`. Written in lowercase everywhere (serde,
/// [`fmt::Display`], [`FromStr`], the database).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything; changes nothing.
    Viewer,
    /// Also pushes entities and starts runs.
    Member,
    /// Also manages tokens, plugins and scorecards.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Member, Role::Admin];

    /// The lowercase name, as stored and serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a role name. The message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}; expected one of: viewer, member, admin")]
pub struct ParseRoleError(pub String);

impl FromStr for Role {
    type Err = ParseRoleError;

    /// Accepts exactly the lowercase names: roles end up in scripts and
    /// config, where one spelling is easier to grep for than several.
    fn from_str(s: &str) -> Result<Role, ParseRoleError> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| ParseRoleError(s.to_owned()))
    }
}

/// A token as the API shows it: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// 16 hex characters; names the token in listings and revocation. Not a
    /// credential.
    pub id: String,
    pub role: Role,
    /// Free text from whoever created it ("CI for team-payments").
    pub description: String,
    pub created_at: DateTime<Utc>,
    /// When the token last authenticated a request, to within
    /// [`LAST_USED_GRANULARITY`]; `None` if never.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A freshly created token with its secret. The secret exists only here:
/// show it to the user once and drop it.
#[derive(Clone)]
pub struct NewToken {
    pub info: TokenInfo,
    /// `ptl_` + 64 hex digits. Never stored, never logged.
    pub secret: String,
}

/// Redacts the secret so a stray `{:?}` in a log line cannot leak it.
impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("info", &self.info)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: String,
    role: String,
    description: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

impl TryFrom<TokenRow> for TokenInfo {
    type Error = StoreError;

    fn try_from(row: TokenRow) -> Result<TokenInfo, StoreError> {
        let role = row.role.parse().map_err(|e: ParseRoleError| {
            StoreError::InvalidData(format!("api token {}: {e}", row.id))
        })?;
        Ok(TokenInfo {
            id: row.id,
            role,
            description: row.description,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        })
    }
}

const TOKEN_COLUMNS: &str = "id, role, description, created_at, last_used_at";

impl Store {
    /// Creates a token with the given role. The returned secret is the only
    /// copy; the database keeps its hash.
    pub async fn create_token(
        &self,
        role: Role,
        description: &str,
    ) -> Result<NewToken, StoreError> {
        let secret = format!("{SECRET_PREFIX}{}", random_hex(SECRET_BYTES));
        let info = TokenInfo {
            id: random_hex(ID_BYTES),
            role,
            description: description.to_owned(),
            created_at: now(),
            last_used_at: None,
        };
        on_write_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO api_tokens (id, secret_sha256, role, description, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&info.id)
            .bind(hash_secret(&secret))
            .bind(role.as_str())
            .bind(&info.description)
            .bind(info.created_at)
            .execute(pool)
            .await?;
        });
        Ok(NewToken { info, secret })
    }

    /// Returns the token a secret belongs to, or `None` if the secret is
    /// malformed, unknown or revoked. Records the use (see
    /// [`LAST_USED_GRANULARITY`]); the returned `last_used_at` includes it.
    pub async fn verify_token(&self, secret: &str) -> Result<Option<TokenInfo>, StoreError> {
        if !is_well_formed_secret(secret) {
            // Not one of ours: no need to ask the database.
            return Ok(None);
        }
        let hash = hash_secret(secret);
        let row = on_pool!(&self.pool, pool => {
            sqlx::query_as::<_, TokenRow>(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens \
                 WHERE secret_sha256 = $1 AND revoked_at IS NULL"
            ))
            .bind(&hash)
            .fetch_optional(pool)
            .await?
        });
        let Some(row) = row else {
            return Ok(None);
        };
        let mut info = TokenInfo::try_from(row)?;

        let now = now();
        let granularity = chrono::Duration::from_std(LAST_USED_GRANULARITY)
            .expect("LAST_USED_GRANULARITY fits in chrono::Duration");
        if info
            .last_used_at
            .is_none_or(|used| now - used >= granularity)
        {
            // On SQLite not behind a long queue of large writes (the
            // request would wait for all of them): past TOUCH_WAIT the use
            // is left for a later request to record.
            let turn = match &self.pool {
                Pool::Sqlite(_) => tokio::time::timeout(TOUCH_WAIT, self.writer_turn())
                    .await
                    .ok()
                    .map(Some),
                Pool::Postgres(_) => Some(None),
            };
            let written = match turn {
                None => Ok(0),
                // The WHERE clause repeats the staleness test so that
                // replicas verifying the same token at once write it once.
                Some(_turn) => on_pool!(&self.pool, pool => {
                    sqlx::query(
                        "UPDATE api_tokens SET last_used_at = $1 \
                         WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
                    )
                    .bind(now)
                    .bind(&info.id)
                    .bind(now - granularity)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected())
                }),
            };
            match written {
                Ok(1) => info.last_used_at = Some(now),
                Ok(_) => {} // another request got there first, or it waits
                // Bookkeeping must not lock people out: a busy SQLite file
                // or a read-only replica still lets a valid token through.
                Err(error) => tracing::warn!(
                    token = %info.id,
                    error = &error as &dyn std::error::Error,
                    "could not record API token use"
                ),
            }
        }
        Ok(Some(info))
    }

    /// Every token that is not revoked, oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = on_pool!(&self.pool, pool => {
            sqlx::query_as::<_, TokenRow>(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens \
                 WHERE revoked_at IS NULL ORDER BY created_at, id"
            ))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(TokenInfo::try_from).collect()
    }

    /// Revokes a token: its secret stops verifying at once. The row stays,
    /// with the revocation time, for audit. Returns `false` if there is no
    /// active token with this id (never existed, or already revoked).
    pub async fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        let done = on_write_pool!(self, pool => {
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(now())
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }
}

/// The current time at the precision both backends store (PostgreSQL keeps
/// microseconds), so a value we hand out equals the one read back later.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn is_well_formed_secret(secret: &str) -> bool {
    secret.strip_prefix(SECRET_PREFIX).is_some_and(|body| {
        body.len() == SECRET_BYTES * 2
            && body
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Viewer < Role::Member);
        assert!(Role::Member < Role::Admin);
        assert_eq!(Role::ALL.iter().max(), Some(&Role::Admin));
    }

    #[test]
    fn roles_round_trip_through_text_and_serde() {
        for role in Role::ALL {
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), role);
        }
        assert_eq!("admin".parse::<Role>(), Ok(Role::Admin));
    }

    #[test]
    fn unknown_role_error_lists_the_valid_ones() {
        for bad in ["owner", "Admin", " admin", ""] {
            let err = bad.parse::<Role>().unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
            assert!(msg.contains("viewer, member, admin"), "{msg}");
        }
    }

    #[test]
    fn generated_secrets_are_well_formed_and_distinct() {
        let a = format!("{SECRET_PREFIX}{}", random_hex(SECRET_BYTES));
        let b = format!("{SECRET_PREFIX}{}", random_hex(SECRET_BYTES));
        assert!(is_well_formed_secret(&a) && is_well_formed_secret(&b));
        assert_ne!(a, b);
        assert_eq!(random_hex(ID_BYTES).len(), 16);
    }

    #[test]
    fn malformed_secrets_are_rejected_before_the_database() {
        let good = format!("{SECRET_PREFIX}{}", "ab".repeat(SECRET_BYTES));
        assert!(is_well_formed_secret(&good));
        for bad in [
            String::new(),
            SECRET_PREFIX.to_owned(),
            good.to_uppercase(),
            good.replacen("ptl_", "xyz_", 1),
            format!("{good}0"),
            good[..good.len() - 1].to_owned(),
            good.replacen('a', "g", 1),
        ] {
            assert!(!is_well_formed_secret(&bad), "{bad}");
        }
    }

    #[test]
    fn hash_is_sha256_hex() {
        // SHA-256("abc") from FIPS 180-2, appendix B.1.
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn new_token_debug_hides_the_secret() {
        let token = NewToken {
            info: TokenInfo {
                id: "0123456789abcdef".into(),
                role: Role::Viewer,
                description: "d".into(),
                created_at: now(),
                last_used_at: None,
            },
            secret: "ptl_supersecret".into(),
        };
        let debug = format!("{token:?}");
        assert!(!debug.contains("supersecret"), "{debug}");
        assert!(debug.contains("0123456789abcdef"), "{debug}");
    }
}
