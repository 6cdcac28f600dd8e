//! The durable store: SQLite in the data directory (WAL, `synchronous=FULL`), owned by one thread.
//!
//! Async code sends closures to that thread and awaits the answer, so blocking SQLite calls never
//! run on the runtime and every write is committed before its caller can acknowledge it.

mod db;
mod schema;

pub use db::{CommitRow, Db, Record};
pub use schema::SCHEMA_VERSION;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use thiserror::Error;
use tokio::sync::oneshot;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("the store thread has stopped")]
    Closed,
}

enum Job {
    Run(Box<dyn FnOnce(&mut Db) + Send>),
    /// Finish the queued jobs and stop, even while handles are still held elsewhere.
    Stop,
}

/// A cheap, cloneable handle to the store thread.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Job>,
    path: PathBuf,
}

impl Store {
    /// Opens (creating and migrating) `<data_dir>/atserver.sqlite3` and starts the store thread.
    pub fn open(data_dir: &Path) -> Result<(Store, std::thread::JoinHandle<()>), StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join("atserver.sqlite3");
        let mut db = Db::open(&path)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("atserver-store".into())
            .spawn(move || {
                while let Ok(Job::Run(job)) = rx.recv() {
                    job(&mut db);
                }
            })?;
        Ok((Store { tx, path }, thread))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Asks the store thread to stop after the jobs already queued; later calls fail with
    /// [`StoreError::Closed`].
    pub fn close(&self) {
        let _ = self.tx.send(Job::Stop);
    }

    /// Runs `f` on the store thread.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
    {
        let (done, wait) = oneshot::channel();
        let job = Job::Run(Box::new(move |db| {
            let _ = done.send(f(db));
        }));
        self.tx.send(job).map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)?
    }
}
