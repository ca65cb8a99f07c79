//! The write-ahead log: every acknowledged record is here, fsynced, before it is anywhere else.
//!
//! Files live in `<data>/wal/` and are named by a sequence number, `{seq:020}.wal`. Each
//! file is the 8-byte magic `SLWAL001` followed by records:
//!
//! ```text
//! ┌──────────────┬──────────────┬─────────┬──────────────────┐
//! │ len: u32 LE  │ crc: u32 LE  │ type: u8│ payload: len B   │
//! └──────────────┴──────────────┴─────────┴──────────────────┘
//! crc = CRC-32 (IEEE) over type and payload
//! ```
//!
//! One thread owns the open file and does **group commit**: it takes every append waiting in
//! its queue, writes them with one `write`, calls `fdatasync` once, then applies each batch to
//! the in-memory head (through the closure that came with it) in WAL order, and only then
//! acknowledges. Applying in the writer thread is what keeps the head and the WAL file in
//! step: a rotation (a new file, and a frozen head holding exactly the records of the old
//! files) is a queue item like an append, so no record can land in one file and the other
//! head.
//!
//! Replay reads the files in order; a record that is short or fails its checksum ends its
//! file there (a torn tail from a crash), the rest of that file is cut off, and start-up goes
//! on. Files whose sequence is at or below the checkpoint (see `catalog`) are already in
//! segments and are skipped and deleted.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use tokio::sync::oneshot;

use crate::StoreError;
use crate::series_refs::SeriesRefs;

/// File magic and format version.
pub const WAL_MAGIC: &[u8; 8] = b"SLWAL001";
/// Record header: length, checksum, type.
const RECORD_HEADER_BYTES: usize = 9;
/// Largest record payload: a bigger batch is refused before it is written.
pub const WAL_RECORD_BYTES_MAX: usize = 64 << 20;
/// Most bytes written by one group commit; more waiting appends go in the next group.
const GROUP_BYTES_MAX: usize = 16 << 20;
/// Appends waiting for the writer thread before senders wait for room.
const QUEUE_LEN_MAX: usize = 1024;

/// Record types. A number is never reused for another meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordType {
    /// A postcard-encoded `LogBatch` (see `logs::WalLogBatch`).
    Logs = 1,
    /// A postcard-encoded `MetricBatch` naming series by their labels (see
    /// `tsdb::decode_wal_batch`); no longer written, still replayed.
    Metrics = 2,
    /// A postcard-encoded `SpanBatch` (see `traces::WalBatchRef`).
    Spans = 3,
    /// A metrics batch naming series by file-local reference (see `series_refs`).
    MetricsByRef = 4,
}

impl RecordType {
    fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Logs),
            2 => Some(Self::Metrics),
            3 => Some(Self::Spans),
            4 => Some(Self::MetricsByRef),
            _ => None,
        }
    }
}

/// Called by the writer thread once a record is durable, to put it into the head.
pub type ApplyFn = Box<dyn FnOnce() + Send>;
/// Called by the writer thread at a rotation with the sequence of the file just sealed.
pub type RotateFn = Box<dyn FnOnce(u64) + Send>;
/// Observes each fsync's duration in seconds.
pub type FsyncObserver = Box<dyn Fn(f64) + Send>;

/// Encodes a record on the writer thread, numbering series in the file it lands in.
pub type EncodeFn = Box<dyn FnOnce(&mut SeriesRefs) -> Result<Vec<u8>, StoreError> + Send>;

/// A record's payload: encoded already, or to be encoded by the writer thread.
pub enum Payload {
    Bytes(Vec<u8>),
    /// Encoded by the writer, with an estimate of its size for group commit's bound.
    WithRefs(EncodeFn, usize),
}

enum Request {
    Append {
        record_type: RecordType,
        payload: Payload,
        apply: ApplyFn,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    Rotate {
        on_rotate: RotateFn,
        done: oneshot::Sender<Result<u64, StoreError>>,
    },
}

/// The handle through which the rest of the store appends; cheap to clone.
#[derive(Clone)]
pub struct Wal {
    tx: mpsc::SyncSender<Request>,
}

/// A record read back at replay.
pub struct ReplayedRecord {
    pub seq: u64,
    pub record_type: RecordType,
    pub payload: Vec<u8>,
}

/// What replay found.
#[derive(Debug, Default, Clone)]
pub struct ReplayStats {
    pub files: u64,
    pub records: u64,
    pub bytes: u64,
    /// Files whose tail was cut off because a record was torn or corrupt.
    pub torn_tails: u64,
}

pub fn wal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("wal")
}

fn file_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.wal"))
}

/// The sequence numbers of the WAL files in `dir`, ascending.
pub fn list_files(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut seqs = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| StoreError::io("list wal dir", e))? {
        let entry = entry.map_err(|e| StoreError::io("list wal dir", e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".wal")) else {
            continue;
        };
        if let Ok(seq) = stem.parse::<u64>() {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// Reads every record of the files above `checkpoint`, cutting torn tails off, and calls
/// `visit` for each in order. Files at or below the checkpoint are deleted.
pub fn replay(
    dir: &Path,
    checkpoint: u64,
    visit: &mut dyn FnMut(ReplayedRecord) -> Result<(), StoreError>,
) -> Result<ReplayStats, StoreError> {
    let mut stats = ReplayStats::default();
    for seq in list_files(dir)? {
        let path = file_path(dir, seq);
        if seq <= checkpoint {
            fs::remove_file(&path).map_err(|e| StoreError::io("remove checkpointed wal", e))?;
            continue;
        }
        stats.files += 1;
        let mut data = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut data))
            .map_err(|e| StoreError::io("read wal file", e))?;
        let mut pos = if data.starts_with(WAL_MAGIC) {
            WAL_MAGIC.len()
        } else {
            0
        };
        let good_end = loop {
            match read_record(&data, pos) {
                RecordRead::End => break pos,
                RecordRead::Torn(why) => {
                    tracing::warn!(file = %path.display(), offset = pos, why, "wal: cutting off torn tail");
                    stats.torn_tails += 1;
                    break pos;
                }
                RecordRead::Ok {
                    record_type,
                    payload,
                    next,
                } => {
                    stats.records += 1;
                    stats.bytes += payload.len() as u64;
                    visit(ReplayedRecord {
                        seq,
                        record_type,
                        payload: payload.to_vec(),
                    })?;
                    pos = next;
                }
            }
        };
        if good_end < WAL_MAGIC.len() {
            // Not even a whole magic: the file was created and the crash came first.
            fs::remove_file(&path).map_err(|e| StoreError::io("remove empty wal", e))?;
        } else if good_end < data.len() {
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| StoreError::io("open wal to cut tail", e))?;
            f.set_len(good_end as u64)
                .and_then(|_| f.sync_all())
                .map_err(|e| StoreError::io("cut wal tail", e))?;
        }
    }
    Ok(stats)
}

enum RecordRead<'a> {
    End,
    Torn(&'static str),
    Ok {
        record_type: RecordType,
        payload: &'a [u8],
        next: usize,
    },
}

fn read_record(data: &[u8], pos: usize) -> RecordRead<'_> {
    if pos == data.len() {
        return RecordRead::End;
    }
    let Some(header) = data.get(pos..pos + RECORD_HEADER_BYTES) else {
        return RecordRead::Torn("short record header");
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > WAL_RECORD_BYTES_MAX {
        return RecordRead::Torn("record length over the limit");
    }
    let start = pos + RECORD_HEADER_BYTES;
    let Some(payload) = data.get(start..start + len) else {
        return RecordRead::Torn("short record payload");
    };
    let mut h = crc32fast::Hasher::new();
    h.update(&header[8..9]);
    h.update(payload);
    if h.finalize() != crc {
        return RecordRead::Torn("checksum mismatch");
    }
    match RecordType::from_u8(header[8]) {
        Some(record_type) => RecordRead::Ok {
            record_type,
            payload,
            next: start + len,
        },
        None => RecordRead::Torn("unknown record type"),
    }
}

fn encode_record(out: &mut Vec<u8>, record_type: RecordType, payload: &[u8]) {
    let mut h = crc32fast::Hasher::new();
    h.update(&[record_type as u8]);
    h.update(payload);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.push(record_type as u8);
    out.extend_from_slice(payload);
}

impl Wal {
    /// Starts the writer thread on a new file whose sequence is above every existing one.
    pub fn open(dir: &Path, fsync_observer: FsyncObserver) -> Result<Self, StoreError> {
        fs::create_dir_all(dir).map_err(|e| StoreError::io("create wal dir", e))?;
        let seq = list_files(dir)?.last().copied().unwrap_or(0) + 1;
        let file = create_file(dir, seq)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE_LEN_MAX);
        let writer = Writer {
            dir: dir.to_path_buf(),
            seq,
            file,
            fsync_observer,
            refs: SeriesRefs::default(),
        };
        thread::Builder::new()
            .name("sightline-wal".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::io("start wal thread", e))?;
        Ok(Self { tx })
    }

    /// Appends a record; resolves once it is fsynced and `apply` has run.
    pub async fn append(
        &self,
        record_type: RecordType,
        payload: Vec<u8>,
        apply: ApplyFn,
    ) -> Result<(), StoreError> {
        check_size(payload.len())?;
        self.append_payload(record_type, Payload::Bytes(payload), apply)
            .await
    }

    /// Appends a record that the writer thread encodes with the series numbering of the
    /// file it lands in; resolves once it is fsynced and `apply` has run.
    pub async fn append_with_refs(
        &self,
        record_type: RecordType,
        encode: EncodeFn,
        estimate: usize,
        apply: ApplyFn,
    ) -> Result<(), StoreError> {
        self.append_payload(record_type, Payload::WithRefs(encode, estimate), apply)
            .await
    }

    async fn append_payload(
        &self,
        record_type: RecordType,
        payload: Payload,
        apply: ApplyFn,
    ) -> Result<(), StoreError> {
        let (done, rx) = oneshot::channel();
        self.send(Request::Append {
            record_type,
            payload,
            apply,
            done,
        })
        .await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Seals the current file and starts the next; `on_rotate` runs in between, with no
    /// append in flight, and gets the sealed file's sequence.
    pub async fn rotate(&self, on_rotate: RotateFn) -> Result<u64, StoreError> {
        let (done, rx) = oneshot::channel();
        self.send(Request::Rotate { on_rotate, done }).await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn send(&self, req: Request) -> Result<(), StoreError> {
        // The queue is bounded; a full queue means the disk is behind, and the sender waits
        // on a blocking thread rather than stalling the async runtime.
        match self.tx.try_send(req) {
            Ok(()) => Ok(()),
            Err(mpsc::TrySendError::Full(req)) => {
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || tx.send(req).map_err(|_| StoreError::Closed))
                    .await
                    .map_err(|_| StoreError::Closed)?
            }
            Err(mpsc::TrySendError::Disconnected(_)) => Err(StoreError::Closed),
        }
    }
}

fn check_size(len: usize) -> Result<(), StoreError> {
    if len > WAL_RECORD_BYTES_MAX {
        return Err(StoreError::TooLarge(format!(
            "batch of {len} bytes is over the wal record limit of {WAL_RECORD_BYTES_MAX}"
        )));
    }
    Ok(())
}

/// Deletes the WAL files at or below `seq` (they are in segments now).
pub fn remove_through(dir: &Path, seq: u64) -> Result<(), StoreError> {
    for s in list_files(dir)? {
        if s <= seq {
            fs::remove_file(file_path(dir, s)).map_err(|e| StoreError::io("remove wal", e))?;
        }
    }
    Ok(())
}

fn create_file(dir: &Path, seq: u64) -> Result<File, StoreError> {
    let mut f = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(file_path(dir, seq))
        .map_err(|e| StoreError::io("create wal file", e))?;
    f.write_all(WAL_MAGIC)
        .and_then(|_| f.sync_all())
        .map_err(|e| StoreError::io("write wal magic", e))?;
    sync_dir(dir)?;
    Ok(f)
}

/// Fsyncs a directory so a file created or renamed in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("sync dir", e))
}

struct Writer {
    dir: PathBuf,
    seq: u64,
    file: File,
    fsync_observer: FsyncObserver,
    /// Series numbers of the current file; forgotten whenever a file starts.
    refs: SeriesRefs,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Request>) {
        let mut buf = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            let mut bytes = 0usize;
            while bytes < GROUP_BYTES_MAX {
                match rx.try_recv() {
                    Ok(req) => {
                        if let Request::Append { payload, .. } = &req {
                            bytes += match payload {
                                Payload::Bytes(b) => b.len(),
                                Payload::WithRefs(_, estimate) => *estimate,
                            };
                        }
                        group.push(req);
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(group, &mut buf);
        }
        // Every handle is gone: the store is closing. Nothing is buffered, all is synced.
    }

    /// Writes and syncs the appends of a group that come before the first rotation, acks
    /// them, then does the rotation, and goes on with the rest.
    fn commit_group(&mut self, group: Vec<Request>, buf: &mut Vec<u8>) {
        let mut pending: Vec<(ApplyFn, oneshot::Sender<Result<(), StoreError>>)> = Vec::new();
        buf.clear();
        for req in group {
            match req {
                Request::Append {
                    record_type,
                    payload,
                    apply,
                    done,
                } => {
                    let bytes = match payload {
                        Payload::Bytes(b) => Ok(b),
                        Payload::WithRefs(encode, _) => {
                            encode(&mut self.refs).and_then(|b| check_size(b.len()).map(|()| b))
                        }
                    };
                    match bytes {
                        Ok(b) => {
                            encode_record(buf, record_type, &b);
                            pending.push((apply, done));
                        }
                        Err(e) => {
                            // Its encoding may have numbered series that no written
                            // record defines: start the numbering again.
                            self.refs.clear();
                            let _ = done.send(Err(e));
                        }
                    }
                }
                Request::Rotate { on_rotate, done } => {
                    self.flush_pending(buf, &mut pending);
                    let _ = done.send(self.rotate(on_rotate));
                }
            }
        }
        self.flush_pending(buf, &mut pending);
    }

    fn flush_pending(
        &mut self,
        buf: &mut Vec<u8>,
        pending: &mut Vec<(ApplyFn, oneshot::Sender<Result<(), StoreError>>)>,
    ) {
        if pending.is_empty() {
            return;
        }
        let started = Instant::now();
        let result = self
            .file
            .write_all(buf)
            .and_then(|_| self.file.sync_data())
            .map_err(|e| StoreError::io("write wal", e));
        (self.fsync_observer)(started.elapsed().as_secs_f64());
        buf.clear();
        for (apply, done) in pending.drain(..) {
            let r = match &result {
                Ok(()) => {
                    apply();
                    Ok(())
                }
                Err(e) => Err(e.clone()),
            };
            let _ = done.send(r);
        }
        if result.is_err() {
            // A failed write may have left a partial record; start a fresh file so the
            // next records are not behind it. Replay cuts the partial one off.
            if let Err(e) = self.next_file() {
                tracing::error!(error = %e, "wal: cannot start a new file after a write error");
            }
        }
    }

    fn rotate(&mut self, on_rotate: RotateFn) -> Result<u64, StoreError> {
        let sealed = self.seq;
        self.next_file()?;
        on_rotate(sealed);
        Ok(sealed)
    }

    fn next_file(&mut self) -> Result<(), StoreError> {
        // Whatever happens, the numbers of the file so far are not to be used again: a
        // failed write may not have written their definitions.
        self.refs.clear();
        let file = create_file(&self.dir, self.seq + 1)?;
        self.seq += 1;
        self.file = file;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn noop() -> FsyncObserver {
        Box::new(|_| {})
    }

    fn replay_all(dir: &Path, checkpoint: u64) -> (Vec<Vec<u8>>, ReplayStats) {
        let mut got = Vec::new();
        let stats = replay(dir, checkpoint, &mut |r| {
            got.push(r.payload);
            Ok(())
        })
        .expect("replay");
        (got, stats)
    }

    #[tokio::test]
    async fn appends_are_applied_in_order_and_replayed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("wal");
        let wal = Wal::open(&dir, noop()).expect("open");
        let applied = Arc::new(Mutex::new(Vec::new()));
        for i in 0..50u8 {
            let a = applied.clone();
            wal.append(
                RecordType::Logs,
                vec![i; i as usize],
                Box::new(move || a.lock().expect("lock").push(i)),
            )
            .await
            .expect("append");
        }
        assert_eq!(*applied.lock().expect("lock"), (0..50).collect::<Vec<u8>>());
        let (got, stats) = replay_all(&dir, 0);
        assert_eq!(got.len(), 50);
        assert_eq!(got[7], vec![7u8; 7]);
        assert_eq!(stats.torn_tails, 0);
    }

    #[tokio::test]
    async fn torn_tail_is_cut_off_not_fatal() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("wal");
        let wal = Wal::open(&dir, noop()).expect("open");
        for i in 0..3u8 {
            wal.append(RecordType::Logs, vec![i; 100], Box::new(|| {}))
                .await
                .expect("append");
        }
        drop(wal);
        let path = file_path(&dir, 1);
        let full = fs::read(&path).expect("read");
        // Every cut inside the last record leaves the first two records readable.
        let last_start = full.len() - (RECORD_HEADER_BYTES + 100);
        for cut in last_start..full.len() {
            fs::write(&path, &full[..cut]).expect("write");
            let (got, stats) = replay_all(&dir, 0);
            assert_eq!(got.len(), 2, "cut at {cut}");
            assert_eq!(stats.torn_tails, u64::from(cut != last_start));
            assert_eq!(fs::read(&path).expect("read").len(), last_start);
        }
        // A flipped bit in the middle record ends the file there.
        let mut bad = full.clone();
        bad[WAL_MAGIC.len() + RECORD_HEADER_BYTES + 100 + RECORD_HEADER_BYTES + 5] ^= 1;
        fs::write(&path, &bad).expect("write");
        let (got, stats) = replay_all(&dir, 0);
        assert_eq!((got.len(), stats.torn_tails), (1, 1));
    }

    #[tokio::test]
    async fn rotation_separates_files_and_checkpoint_skips_them() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("wal");
        let wal = Wal::open(&dir, noop()).expect("open");
        wal.append(RecordType::Logs, b"a".to_vec(), Box::new(|| {}))
            .await
            .expect("append");
        let sealed_seen = Arc::new(Mutex::new(0));
        let s = sealed_seen.clone();
        let sealed = wal
            .rotate(Box::new(move |seq| *s.lock().expect("lock") = seq))
            .await
            .expect("rotate");
        assert_eq!((sealed, *sealed_seen.lock().expect("lock")), (1, 1));
        wal.append(RecordType::Logs, b"b".to_vec(), Box::new(|| {}))
            .await
            .expect("append");
        drop(wal);
        assert_eq!(list_files(&dir).expect("list"), vec![1, 2]);
        let (got, _) = replay_all(&dir, 1);
        assert_eq!(got, vec![b"b".to_vec()]);
        assert_eq!(
            list_files(&dir).expect("list"),
            vec![2],
            "checkpointed file removed"
        );
    }

    #[tokio::test]
    async fn a_record_not_written_makes_the_writer_number_series_again() {
        use crate::series_refs::{RefReplay, encode};
        use sightline_model::{Labels, MetricBatch, Sample, SeriesSamples, TenantId};
        let batch = |host: &str| {
            Arc::new(MetricBatch {
                tenant: TenantId::new("t").expect("tenant"),
                series: vec![SeriesSamples {
                    labels: Labels::from_pairs([("__name__", "cpu"), ("host", host)]),
                    samples: vec![Sample {
                        timestamp_ms: 1,
                        value: 1.0,
                    }],
                    exemplars: vec![],
                }],
                metadata: vec![],
            })
        };
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("wal");
        let wal = Wal::open(&dir, noop()).expect("open");
        let append = |b: Arc<MetricBatch>, fail: bool| {
            let wal = wal.clone();
            async move {
                let encode_fn: EncodeFn = Box::new(move |refs| {
                    let bytes = encode(&b, refs)?;
                    if fail {
                        return Err(StoreError::TooLarge("refused after numbering".into()));
                    }
                    Ok(bytes)
                });
                wal.append_with_refs(RecordType::MetricsByRef, encode_fn, 0, Box::new(|| {}))
                    .await
            }
        };
        append(batch("a"), false).await.expect("append");
        // Numbers "b" as 1, then is not written: the next record must define "b" itself.
        append(batch("b"), true).await.expect_err("refused");
        append(batch("b"), false).await.expect("append");
        append(batch("a"), false).await.expect("append");
        drop(wal);
        let interner = sightline_model::LabelInterner::default();
        let mut replay = RefReplay::default();
        let mut hosts = Vec::new();
        super::replay(&dir, 0, &mut |r| {
            let b = replay.decode(r.seq, &r.payload, &interner)?;
            hosts.push(b.series[0].labels.get("host").unwrap_or("").to_string());
            Ok(())
        })
        .expect("replay");
        assert_eq!(hosts, ["a", "b", "a"]);
    }
}
