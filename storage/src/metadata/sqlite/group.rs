//! Group commit of small writes that every push makes.

use crate::error::{Error, Result};
use sqlx::SqlitePool;

/// A write waiting for its group, and who waits for it to be committed.
pub(super) struct Pending<T> {
    row: T,
    done: tokio::sync::oneshot::Sender<std::result::Result<(), String>>,
}

/// Rows of one group write.
const GROUP: usize = 64;

/// Group commit: a small write that every push makes (a new upload
/// session) is answered only once committed, and under concurrent pushes
/// one multi-row statement serves all the writes that arrived while the
/// previous one ran, instead of one writer round trip each.
pub(super) async fn group_commit<T, F, Fut>(
    writer: SqlitePool,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Pending<T>>,
    write: F,
) where
    F: Fn(SqlitePool, Vec<T>) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(), sqlx::Error>>,
{
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let (rows, waiters): (Vec<T>, Vec<_>) = group.into_iter().map(|p| (p.row, p.done)).unzip();
        let outcome = write(writer.clone(), rows).await.map_err(|e| e.to_string());
        for done in waiters {
            let _ = done.send(outcome.clone());
        }
    }
}

/// Hand `row` to a group writer and wait for its commit.
pub(super) async fn grouped<T>(
    tx: &tokio::sync::mpsc::UnboundedSender<Pending<T>>,
    row: T,
) -> Result<()> {
    let (done, committed) = tokio::sync::oneshot::channel();
    let stopped = || Error::internal("metadata group writer stopped");
    tx.send(Pending { row, done }).map_err(|_| stopped())?;
    committed
        .await
        .map_err(|_| stopped())?
        .map_err(|e| Error::internal(format!("metadata database: {e}")))
}
