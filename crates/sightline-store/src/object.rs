//! Object storage for segments, through the `object_store` crate.
//!
//! The default is the local filesystem under `<data>/segments`. A `file:///abs/path` URL
//! points elsewhere on disk; `memory://` keeps segments in memory (tests). Cloud stores
//! (`s3://`, `gs://`, `az://`) are the same trait and need only their `object_store`
//! feature; until that is built in, such a URL is refused with a clear error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;

use crate::StoreError;

/// The object store segments go to; derefs to the `ObjectStore`.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    /// The directory behind a local-filesystem store, whose files `put_durable` fsyncs.
    local_root: Option<PathBuf>,
}

impl std::ops::Deref for Objects {
    type Target = dyn ObjectStore;

    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

impl Objects {
    /// Writes an object and makes it durable before returning: a flush deletes WAL files
    /// right after, so a segment must survive a power loss, not only a crash. Cloud stores
    /// are durable when `put` returns; `object_store`'s local filesystem does not fsync, so
    /// here the file and its directory are fsynced.
    pub async fn put_durable(
        &self,
        path: &object_store::path::Path,
        bytes: Vec<u8>,
    ) -> Result<(), StoreError> {
        use object_store::ObjectStoreExt;
        self.store
            .put(path, bytes.into())
            .await
            .map_err(|e| StoreError::io(&format!("write {path}"), e))?;
        if let Some(root) = &self.local_root {
            let file = root.join(path.as_ref());
            tokio::task::spawn_blocking(move || {
                std::fs::File::open(&file)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| StoreError::io(&format!("fsync {}", file.display()), e))?;
                match file.parent() {
                    Some(dir) => crate::wal::sync_dir(dir),
                    None => Ok(()),
                }
            })
            .await
            .map_err(|e| StoreError::io("fsync segment", e))??;
        }
        Ok(())
    }
}

/// Opens the object store a URL names, or `<data>/segments` when there is none.
pub fn open(data_dir: &Path, url: Option<&str>) -> Result<Objects, StoreError> {
    let local = |dir: &Path| -> Result<Objects, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io("create segment dir", e))?;
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| StoreError::io("open segment dir", e))?
            .with_automatic_cleanup(true);
        Ok(Objects {
            store: Arc::new(fs),
            local_root: Some(dir.to_path_buf()),
        })
    };
    match url {
        None | Some("") => local(&data_dir.join("segments")),
        Some(u) if u.starts_with("file://") => local(Path::new(&u["file://".len()..])),
        Some("memory://") => Ok(Objects {
            store: Arc::new(InMemory::new()),
            local_root: None,
        }),
        Some(u) => Err(StoreError::Io(format!(
            "object store url {u:?}: only file:// and memory:// are built into this binary"
        ))),
    }
}
