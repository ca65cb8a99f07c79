//! Object storage for segments, through the `object_store` crate.
//!
//! The default is the local filesystem under `<data>/segments`. A `file:///abs/path` URL
//! points elsewhere on disk; `memory://` keeps segments in memory (tests). Cloud stores
//! (`s3://`, `gs://`, `az://`) are the same trait and need only their `object_store`
//! feature; until that is built in, such a URL is refused with a clear error.

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;

use crate::StoreError;

pub type Objects = Arc<dyn ObjectStore>;

/// Opens the object store a URL names, or `<data>/segments` when there is none.
pub fn open(data_dir: &Path, url: Option<&str>) -> Result<Objects, StoreError> {
    let local = |dir: &Path| -> Result<Objects, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io("create segment dir", e))?;
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| StoreError::io("open segment dir", e))?
            .with_automatic_cleanup(true);
        Ok(Arc::new(fs))
    };
    match url {
        None | Some("") => local(&data_dir.join("segments")),
        Some(u) if u.starts_with("file://") => local(Path::new(&u["file://".len()..])),
        Some("memory://") => Ok(Arc::new(InMemory::new())),
        Some(u) => Err(StoreError::Io(format!(
            "object store url {u:?}: only file:// and memory:// are built into this binary"
        ))),
    }
}
