//! The connection to one Redis server, or to a Redis Cluster.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{ConnectionInfo, FromRedisValue, RedisResult, ScriptInvocation};
use tokio::runtime::Handle;

#[derive(Debug, Clone)]
pub enum Connection {
    /// One server: a connection manager that reconnects by itself.
    Single(ConnectionManager),
    /// A cluster: commands go to the node that owns their keys' slot, following
    /// redirections and failovers.
    Cluster(Arc<LazyCluster>),
}

/// A cluster connection made on first use, and again after a failed attempt, so that a
/// cluster that is down when intercept starts is used once it is up.
pub struct LazyCluster {
    client: ClusterClient,
    connection: tokio::sync::Mutex<Option<ClusterConnection>>,
}

impl Connection {
    /// A connection to one server; made when first used (inside `runtime`).
    pub fn single(info: ConnectionInfo, timeout: Duration, runtime: &Handle) -> RedisResult<Self> {
        let client = redis::Client::open(info)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // Each command tries to connect once or twice; the next command tries again.
            // Waiting longer would only make callers wait for a store that is down.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(200));
        let _entered = runtime.enter();
        Ok(Connection::Single(ConnectionManager::new_lazy_with_config(
            client, config,
        )?))
    }

    /// A connection to the cluster `seed` belongs to; made when first used.
    pub fn cluster(seed: ConnectionInfo, timeout: Duration) -> RedisResult<Self> {
        let client = ClusterClientBuilder::new(vec![seed])
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(2)
            .min_retry_wait(20)
            .max_retry_wait(200)
            .build()?;
        Ok(Connection::Cluster(Arc::new(LazyCluster {
            client,
            connection: tokio::sync::Mutex::new(None),
        })))
    }

    /// Runs a script (`EVALSHA`, loading it first where the server does not have it).
    pub async fn invoke<T: FromRedisValue>(&self, call: &ScriptInvocation<'_>) -> RedisResult<T> {
        match self {
            Connection::Single(manager) => {
                with_refusal_retry(manager, |mut conn| async move {
                    call.invoke_async(&mut conn).await
                })
                .await
            }
            Connection::Cluster(lazy) => call.invoke_async(&mut lazy.get().await?).await,
        }
    }

    pub async fn ping(&self) -> RedisResult<String> {
        let ping = &redis::cmd("PING");
        match self {
            Connection::Single(manager) => {
                with_refusal_retry(manager, |mut conn| async move {
                    ping.query_async(&mut conn).await
                })
                .await
            }
            Connection::Cluster(lazy) => ping.query_async(&mut lazy.get().await?).await,
        }
    }
}

/// The connection manager remembers its last failed attempt and starts a new one only when
/// a command meets it: once Redis is back, the first command would fail for nothing. A
/// refused connection sent nothing, so trying once more cannot count anything twice.
async fn with_refusal_retry<T, Fut>(
    manager: &ConnectionManager,
    attempt: impl Fn(ConnectionManager) -> Fut,
) -> RedisResult<T>
where
    Fut: Future<Output = RedisResult<T>>,
{
    match attempt(manager.clone()).await {
        Err(e) if e.is_connection_refusal() => attempt(manager.clone()).await,
        other => other,
    }
}

impl std::fmt::Debug for LazyCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyCluster").finish_non_exhaustive()
    }
}

impl LazyCluster {
    async fn get(&self) -> RedisResult<ClusterConnection> {
        let mut slot = self.connection.lock().await;
        if let Some(conn) = &*slot {
            return Ok(conn.clone());
        }
        let conn = self.client.get_async_connection().await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }
}
