//! The WAL checkpoint: the highest WAL sequence whose records are all in segments.
//!
//! File `<data>/checkpoint`, 16 bytes: `seq: u64 LE │ crc: u32 LE (over seq) │ "SLCK"`.
//! Written to a temporary file, fsynced, renamed over the old one, and the directory fsynced,
//! so it is always either the old or the new value. A missing file means 0.
//!
//! Start-up trusts it both ways: WAL files at or below it are skipped (their records are in
//! segments), and segments above it are deleted (a flush that crashed before it finished;
//! the WAL still holds their records).

use std::fs;
use std::path::Path;

use crate::StoreError;
use crate::wal::sync_dir;

const MAGIC: &[u8; 4] = b"SLCK";

pub fn read(data_dir: &Path) -> Result<u64, StoreError> {
    let path = data_dir.join("checkpoint");
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(StoreError::io("read checkpoint", e)),
    };
    if bytes.len() != 16 || &bytes[12..16] != MAGIC {
        return Err(StoreError::Corrupt(
            "checkpoint: bad length or magic".into(),
        ));
    }
    let seq_bytes: [u8; 8] = bytes[0..8]
        .try_into()
        .map_err(|_| StoreError::Corrupt("checkpoint".into()))?;
    let crc = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if crc32fast::hash(&seq_bytes) != crc {
        return Err(StoreError::Corrupt("checkpoint: checksum mismatch".into()));
    }
    Ok(u64::from_le_bytes(seq_bytes))
}

pub fn write(data_dir: &Path, seq: u64) -> Result<(), StoreError> {
    let mut bytes = Vec::with_capacity(16);
    bytes.extend_from_slice(&seq.to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&seq.to_le_bytes()).to_le_bytes());
    bytes.extend_from_slice(MAGIC);
    let tmp = data_dir.join("checkpoint.tmp");
    let f = fs::File::create(&tmp).map_err(|e| StoreError::io("create checkpoint", e))?;
    use std::io::Write;
    (&f).write_all(&bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| StoreError::io("write checkpoint", e))?;
    fs::rename(&tmp, data_dir.join("checkpoint"))
        .map_err(|e| StoreError::io("rename checkpoint", e))?;
    sync_dir(data_dir)
}

#[cfg(test)]
mod tests {
    #[test]
    fn checkpoint_round_trips_and_defaults_to_zero() {
        let tmp = tempfile::tempdir().expect("tempdir");
        assert_eq!(super::read(tmp.path()).expect("read"), 0);
        super::write(tmp.path(), 42).expect("write");
        assert_eq!(super::read(tmp.path()).expect("read"), 42);
        std::fs::write(tmp.path().join("checkpoint"), b"garbage").expect("write");
        assert!(super::read(tmp.path()).is_err());
    }
}
