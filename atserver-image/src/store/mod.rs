//! The durable store: SQLite in the data directory (WAL, `synchronous=FULL`), owned by one thread.
//!
//! Async code sends closures to that thread and awaits the answer, so blocking SQLite calls never
//! run on the runtime and every write is committed before its caller can acknowledge it. Reads of
//! records usually skip the thread: they are answered from a bounded cache that the store thread
//! keeps coherent with what it committed (cache.rs).

mod access;
mod cache;
pub mod checkpoint;
mod db;
pub mod error;
mod record;
mod schema;

pub use db::{CommitRow, Db};
pub use error::StoreError;
pub use record::Record;
pub use schema::SCHEMA_VERSION;

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;

/// The store's file inside the data directory.
const DB_FILE: &str = "atserver.sqlite3";

enum Job {
    Run(Box<dyn FnOnce(&mut Db) + Send>),
    /// Finish the queued jobs and stop, even while handles are still held elsewhere.
    Stop,
}

/// Bytes of records the read cache keeps (a hot working set, not the whole store).
pub const RECORD_CACHE_BYTES: usize = 4 << 20;

/// A cheap, cloneable handle to the store thread.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Job>,
    path: PathBuf,
    cache: Arc<cache::RecordCache>,
    access: Arc<access::AccessBuffer>,
}

impl Store {
    /// True when `data_dir` holds no store yet: the next [`Store::open`] is this Atsign's first start.
    pub fn is_new(data_dir: &Path) -> bool {
        !data_dir.join(DB_FILE).exists()
    }

    /// Opens (creating and migrating) `<data_dir>/atserver.sqlite3` and starts the store thread.
    pub fn open(data_dir: &Path) -> Result<(Store, std::thread::JoinHandle<()>), StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join(DB_FILE);
        let mut db = Db::open(&path, RECORD_CACHE_BYTES)?;
        let (cache, access) = (db.cache(), db.access_buffer());
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("atserver-store".into())
            .spawn(move || {
                while let Ok(Job::Run(job)) = rx.recv() {
                    job(&mut db);
                }
                if let Err(e) = db.flush_access_log() {
                    tracing::warn!(error = %e, "access log not written at shutdown");
                }
            })?;
        let store = Store {
            tx,
            path,
            cache,
            access,
        };
        Ok((store, thread))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Asks the store thread to stop after the jobs already queued; later calls fail with
    /// [`StoreError::Closed`].
    pub fn close(&self) {
        let _ = self.tx.send(Job::Stop);
    }

    /// The record of `key` as last committed (expiry not applied): from the cache when it has the
    /// key, else read on the store thread, which caches it.
    pub async fn get(&self, key: &str) -> Result<Option<Arc<Record>>, StoreError> {
        if let Some(hit) = self.cache.get(key) {
            return Ok(hit);
        }
        let key = key.to_string();
        self.call(move |db| db.get_shared(&key)).await
    }

    /// Records an access for the statistics without waiting for it to be written (access.rs).
    pub fn log_access(
        &self,
        atsign: Option<&str>,
        key: Option<&str>,
        verb: &'static str,
        now: i64,
    ) {
        let full = self.access.push(access::AccessEntry {
            atsign: atsign.map(str::to_string),
            key: key.map(str::to_string),
            verb,
            time: now,
        });
        if full {
            let flush = Job::Run(Box::new(|db: &mut Db| {
                if let Err(e) = db.flush_access_log() {
                    tracing::warn!(error = %e, "access log entries lost");
                }
            }));
            // After shutdown the store thread writes what is left itself.
            let _ = self.tx.send(flush);
        }
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
