//! The [`PoolStore`] several collectors share: every pool's holds in Redis,
//! every decision one Lua script (atomic in Redis), the same rules as the
//! in-process store. Per pool (keys share the hash tag `{account:pool}`):
//!
//! | key | what |
//! |---|---|
//! | `…:free` | sorted set: numbers nobody holds, by last use |
//! | `…:busy` | sorted set: numbers someone holds, by last use |
//! | `…:live` | hash: number → live holders |
//! | `…:sess` | hash: session → number |
//! | `…:lease` | sorted set: session → hold's end (ms) |
//! | `…:client:<ip>` | sorted set: that client's live sessions → hold's end |
//! | `…:seq`, `…:exh` | use counter (last-use order), exhausted assignments |
//!
//! Every key starts with a namespace (`RINGPATH_POOLS_REDIS_NAMESPACE`,
//! default `rp`). `<ns>:ready` says the store holds the truth: a Redis that lost its data
//! (restart without its file, a new instance) has no marker, every decision
//! refuses (`NotReady`: the source-level or site number is answered) until a
//! collector has refilled it from `ringpath.assignments` (`refill`) and set
//! the marker. A Redis that cannot be reached is a `PoolError`: no pool number
//! is handed out, the connection is retried in the background.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use ringpath_types::accounts::{AccountsFile, Pool};
use tokio::sync::Mutex;

use super::{Assignment, HoldRequest, PoolError, PoolFuture, PoolStore, PoolUse, Refusal};

/// Shared by every script: hold expiry, number release, last-use stamps.
const LIB: &str = r#"
local function release(p, s)
  local n = redis.call('HGET', p .. ':sess', s)
  redis.call('HDEL', p .. ':sess', s)
  redis.call('ZREM', p .. ':lease', s)
  if not n then return end
  local left = redis.call('HINCRBY', p .. ':live', n, -1)
  if left <= 0 then
    redis.call('HDEL', p .. ':live', n)
    local used = redis.call('ZSCORE', p .. ':busy', n)
    if used then
      redis.call('ZREM', p .. ':busy', n)
      redis.call('ZADD', p .. ':free', used, n)
    end
  end
end
local function expire(p, now)
  local gone = redis.call('ZRANGEBYSCORE', p .. ':lease', '-inf', now)
  for _, s in ipairs(gone) do release(p, s) end
end
local function use(p, n)
  local seq = redis.call('INCR', p .. ':seq')
  redis.call('ZREM', p .. ':free', n)
  redis.call('ZADD', p .. ':busy', seq, n)
end
local function renew(p, s, n, expires)
  redis.call('ZADD', p .. ':lease', expires, s)
  use(p, n)
  local live = tonumber(redis.call('HGET', p .. ':live', n) or '1')
  if live > 1 then return 1 end
  return 0
end
"#;

/// KEYS: none. ARGV: pool prefix, session, client, now, hold ms, client cap, ready key.
/// → {1, number, expires, shared, renewed} or {0, refusal}
const ASSIGN: &str = r#"
local p, s, client, now, hold, cap = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if redis.call('EXISTS', ARGV[7]) == 0 then return {0, 'not_ready'} end
expire(p, now)
local expires = now + hold
local ckey = p .. ':client:' .. client
local held = redis.call('HGET', p .. ':sess', s)
if held then
  local shared = renew(p, s, held, expires)
  redis.call('ZADD', ckey, 'XX', expires, s)
  redis.call('PEXPIRE', ckey, hold)
  return {1, held, expires, shared, 1}
end
redis.call('ZREMRANGEBYSCORE', ckey, '-inf', now)
if redis.call('ZCARD', ckey) >= cap then return {0, 'client_cap'} end
local pick = redis.call('ZRANGE', p .. ':free', 0, 0)
local shared = 0
if #pick == 0 then
  pick = redis.call('ZRANGE', p .. ':busy', 0, 0)
  if #pick == 0 then return {0, 'empty'} end
  shared = 1
  redis.call('INCR', p .. ':exh')
end
local n = pick[1]
use(p, n)
redis.call('HINCRBY', p .. ':live', n, 1)
redis.call('HSET', p .. ':sess', s, n)
redis.call('ZADD', p .. ':lease', expires, s)
redis.call('ZADD', ckey, expires, s)
redis.call('PEXPIRE', ckey, hold)
return {1, n, expires, shared, 0}
"#;

/// ARGV: session, now, hold ms (0: only look), ready key, pool prefixes in order.
/// → {index of the holding pool (1-based), number, expires, shared} or {0}
const HELD: &str = r#"
local s, now, hold = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('EXISTS', ARGV[4]) == 0 then return {0} end
for i = 5, #ARGV do
  local p = ARGV[i]
  expire(p, now)
  local n = redis.call('HGET', p .. ':sess', s)
  if n then
    if hold == 0 then return {i - 4, n, 0, 0} end
    local expires = now + hold
    return {i - 4, n, expires, renew(p, s, n, expires)}
  end
end
return {0}
"#;

/// ARGV: pool prefix, session, number, expires, now. → 1 restored, 0 not.
const RESTORE: &str = r#"
local p, s, n, expires, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
if expires <= now then return 0 end
if not redis.call('ZSCORE', p .. ':free', n) and not redis.call('ZSCORE', p .. ':busy', n) then return 0 end
expire(p, now)
if redis.call('HGET', p .. ':sess', s) == n then
  renew(p, s, n, expires)
  return 1
end
release(p, s)
use(p, n)
redis.call('HINCRBY', p .. ':live', n, 1)
redis.call('HSET', p .. ':sess', s, n)
redis.call('ZADD', p .. ':lease', expires, s)
return 1
"#;

/// ARGV: pool prefix, numbers… Keeps holds on numbers that stay; new numbers are free and never used.
const CONFIGURE: &str = r#"
local p = ARGV[1]
local want = {}
for i = 2, #ARGV do want[ARGV[i]] = true end
local sessions = redis.call('HGETALL', p .. ':sess')
for i = 1, #sessions, 2 do
  if not want[sessions[i + 1]] then release(p, sessions[i]) end
end
for _, set in ipairs({':free', ':busy'}) do
  for _, n in ipairs(redis.call('ZRANGE', p .. set, 0, -1)) do
    if not want[n] then
      redis.call('ZREM', p .. set, n)
      redis.call('HDEL', p .. ':live', n)
    end
  end
end
for i = 2, #ARGV do
  local n = ARGV[i]
  if not redis.call('ZSCORE', p .. ':free', n) and not redis.call('ZSCORE', p .. ':busy', n) then
    redis.call('ZADD', p .. ':free', 0, n)
  end
end
return 1
"#;

/// ARGV: pool prefix, now. → {live numbers, numbers, exhausted}
const UTILISATION: &str = r#"
local p, now = ARGV[1], tonumber(ARGV[2])
expire(p, now)
local busy = redis.call('ZCARD', p .. ':busy')
return {busy, busy + redis.call('ZCARD', p .. ':free'), tonumber(redis.call('GET', p .. ':exh') or '0')}
"#;

struct Scripts {
    assign: Script,
    held: Script,
    restore: Script,
    configure: Script,
    utilisation: Script,
}

impl Scripts {
    fn new() -> Scripts {
        let with_lib = |body: &str| Script::new(&[LIB, body].concat());
        Scripts { assign: with_lib(ASSIGN), held: with_lib(HELD), restore: with_lib(RESTORE), configure: with_lib(CONFIGURE), utilisation: with_lib(UTILISATION) }
    }
}



/// How long a failed connection attempt keeps the store "unavailable"
/// before the next one (requests meanwhile get the source-level number at once).
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);
/// Longest wait for one answer: a number request must not hang on Redis.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

pub struct RedisPools {
    client: redis::Client,
    namespace: String,
    /// The connection, made on first use and re-made after a failed attempt.
    conn: Mutex<Connection>,
    scripts: Scripts,
    /// The accounts file's pools, for utilisation.
    configured: std::sync::RwLock<Arc<AccountsFile>>,
}

#[derive(Default)]
struct Connection {
    manager: Option<ConnectionManager>,
    failed_at: Option<Instant>,
}

fn unavailable(e: impl std::fmt::Display) -> PoolError {
    PoolError::Unavailable(e.to_string())
}

impl RedisPools {
    /// A store on `url` (`redis://127.0.0.1:16379/`) under `namespace`; connects on first use.
    pub fn new(url: &str, namespace: &str) -> Result<RedisPools, PoolError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        Ok(RedisPools { client, namespace: namespace.to_owned(), conn: Mutex::new(Connection::default()), scripts: Scripts::new(), configured: Default::default() })
    }

    /// The key prefix of a pool: `<ns>:{account:pool}` (one hash tag: one slot).
    fn prefix(&self, account: &str, pool: &str) -> String {
        format!("{}:{{{account}:{pool}}}", self.namespace)
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.namespace)
    }

    async fn connection(&self) -> Result<ConnectionManager, PoolError> {
        let mut conn = self.conn.lock().await;
        if let Some(m) = &conn.manager {
            return Ok(m.clone());
        }
        if conn.failed_at.is_some_and(|at| at.elapsed() < RECONNECT_PAUSE) {
            return Err(PoolError::Unavailable("redis unreachable (retrying shortly)".into()));
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(RESPONSE_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT)
            .set_number_of_retries(1)
            .set_max_delay(200);
        match ConnectionManager::new_with_config(self.client.clone(), config).await {
            Ok(m) => {
                conn.manager = Some(m.clone());
                conn.failed_at = None;
                Ok(m)
            }
            Err(e) => {
                conn.failed_at = Some(Instant::now());
                Err(unavailable(e))
            }
        }
    }

}

/// A script's answer for an assignment.
fn assignment(reply: &[redis::Value]) -> Result<Result<Assignment, Refusal>, PoolError> {
    use redis::FromRedisValue;
    let int = |i: usize| reply.get(i).map(i64::from_redis_value).transpose().map_err(unavailable).map(|v| v.unwrap_or(0));
    let text = |i: usize| reply.get(i).map(String::from_redis_value).transpose().map_err(unavailable).map(|v| v.unwrap_or_default());
    if int(0)? == 0 {
        return Ok(Err(match text(1)?.as_str() {
            "client_cap" => Refusal::ClientCap,
            "empty" => Refusal::Empty,
            _ => Refusal::NotReady,
        }));
    }
    Ok(Ok(Assignment { number: text(1)?, expires_at: int(2)?, shared: int(3)? == 1, renewed: int(4)? == 1 }))
}

impl PoolStore for RedisPools {
    fn held_pool<'a>(&'a self, account: &'a str, pools: &'a [Pool], session: &'a str, now: i64) -> PoolFuture<'a, Option<String>> {
        Box::pin(async move {
            let mut c = self.connection().await?;
            let mut call = self.scripts.held.arg(session);
            call.arg(now).arg(0).arg(self.key("ready"));
            for p in pools {
                call.arg(self.prefix(account, &p.id));
            }
            let reply: Vec<redis::Value> = call.invoke_async(&mut c).await.map_err(unavailable)?;
            let index: usize = reply.first().map(redis::FromRedisValue::from_redis_value).transpose().map_err(unavailable)?.unwrap_or(0);
            Ok(index.checked_sub(1).and_then(|i| pools.get(i)).map(|p| p.id.clone()))
        })
    }

    fn assign<'a>(&'a self, pool: &'a Pool, r: HoldRequest<'a>) -> PoolFuture<'a, Result<Assignment, Refusal>> {
        Box::pin(async move {
            let mut c = self.connection().await?;
            let reply: Vec<redis::Value> = self
                .scripts
                .assign
                .arg(self.prefix(r.account, &pool.id))
                .arg(r.session)
                .arg(r.client)
                .arg(r.now)
                .arg(r.hold_ms)
                .arg(r.client_cap.min(i64::MAX as usize) as i64)
                .arg(self.key("ready"))
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)?;
            assignment(&reply)
        })
    }

    fn renew<'a>(&'a self, account: &'a str, pools: &'a [Pool], session: &'a str, now: i64, hold_ms: i64) -> PoolFuture<'a, Option<(String, Assignment)>> {
        Box::pin(async move {
            let mut c = self.connection().await?;
            let mut call = self.scripts.held.arg(session);
            call.arg(now).arg(hold_ms.max(1)).arg(self.key("ready"));
            for p in pools {
                call.arg(self.prefix(account, &p.id));
            }
            let reply: Vec<redis::Value> = call.invoke_async(&mut c).await.map_err(unavailable)?;
            let mut row = vec![redis::Value::Int(1)];
            row.extend(reply.iter().skip(1).cloned());
            row.push(redis::Value::Int(1));
            let index: usize = reply.first().map(redis::FromRedisValue::from_redis_value).transpose().map_err(unavailable)?.unwrap_or(0);
            let Some(pool) = index.checked_sub(1).and_then(|i| pools.get(i)) else { return Ok(None) };
            Ok(assignment(&row)?.ok().map(|a| (pool.id.clone(), a)))
        })
    }

    fn restore<'a>(&'a self, account: &'a str, pool: &'a Pool, session: &'a str, number: &'a str, _assigned_at: i64, expires_at: i64, now: i64) -> PoolFuture<'a, ()> {
        Box::pin(async move {
            let mut c = self.connection().await?;
            let _: i64 = self.scripts.restore.arg(self.prefix(account, &pool.id)).arg(session).arg(number).arg(expires_at).arg(now).invoke_async(&mut c).await.map_err(unavailable)?;
            Ok(())
        })
    }

    fn configure<'a>(&'a self, accounts: &'a AccountsFile) -> PoolFuture<'a, ()> {
        Box::pin(async move {
            *self.configured.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(accounts.clone());
            let mut c = self.connection().await?;
            for acc in &accounts.account {
                for pool in &acc.dni.pool {
                    let mut call = self.scripts.configure.arg(self.prefix(&acc.id, &pool.id));
                    for n in &pool.numbers {
                        call.arg(n);
                    }
                    let _: i64 = call.invoke_async(&mut c).await.map_err(unavailable)?;
                }
            }
            Ok(())
        })
    }

    fn utilisation(&self, now: i64) -> PoolFuture<'_, Vec<PoolUse>> {
        Box::pin(async move {
            let accounts = self.configured.read().unwrap_or_else(|p| p.into_inner()).clone();
            let mut c = self.connection().await?;
            let mut uses = Vec::new();
            for acc in &accounts.account {
                for pool in &acc.dni.pool {
                    let (live, size, exhausted): (usize, usize, u64) =
                        self.scripts.utilisation.arg(self.prefix(&acc.id, &pool.id)).arg(now).invoke_async(&mut c).await.map_err(unavailable)?;
                    uses.push(PoolUse { account: acc.id.clone(), pool: pool.id.clone(), live, size, exhausted_total: exhausted });
                }
            }
            Ok(uses)
        })
    }

    fn needs_refill(&self) -> PoolFuture<'_, bool> {
        Box::pin(async move {
            let mut c = self.connection().await?;
            Ok(!c.exists::<_, bool>(self.key("ready")).await.map_err(unavailable)?)
        })
    }

    fn claim_refill<'a>(&'a self, holder: &'a str) -> PoolFuture<'a, bool> {
        Box::pin(async move {
            let mut c = self.connection().await?;
            let set: Option<String> = redis::cmd("SET").arg(self.key("refilling")).arg(holder).arg("NX").arg("PX").arg(60_000).query_async(&mut c).await.map_err(unavailable)?;
            Ok(set.is_some())
        })
    }

    fn mark_ready(&self) -> PoolFuture<'_, ()> {
        Box::pin(async move {
            let mut c = self.connection().await?;
            redis::pipe().atomic().set(self.key("ready"), 1).ignore().del(self.key("refilling")).ignore().query_async::<()>(&mut c).await.map_err(unavailable)
        })
    }
}
