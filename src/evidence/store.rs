//! The streams of a run's evidence, kept with a bounded memory footprint: the client records
//! and the fakes' journals (upstream attempts, tool writes, exported spans). Each is a
//! [`Spool`]: the full stream goes to a compressed file as it arrives, and only the open chunk
//! stays in memory. What follows says it of records; it holds for every [`Spooled`] item.
//!
//! # Why records are streamed back from disk rather than summarised away
//! Checks read single requests (the failed ones' bodies, the ones a fault window saw, the
//! nonces that link a request to its upstream attempts). Replacing the records by summaries
//! would change what those checks mean; reading them back from disk keeps every check exact,
//! at the cost of a pass over a compressed file per question (cheap: a 10-minute run at
//! 1,000 requests/s is some 600k lines, decompressed at hundreds of MB/s). What the store
//! holds in memory is bounded by construction: at most [`RecordStore::CHUNK_RECORDS`] records
//! or [`RecordStore::CHUNK_BYTES`] of them, whichever comes first (see
//! [`RecordStore::resident_bytes`]).
//!
//! # The format
//! A chunk is sealed as one gzip member of JSON lines, one [`Record`] a line; the members are
//! appended to one file, which is therefore a plain `.jsonl.gz` (`zcat records.jsonl.gz`
//! reads it whole). The run's report directory gets a copy as [`RECORDS_FILE`], and
//! `evidence.json` names it instead of holding the records.
//!
//! # The cap
//! The file stops growing at [`RecordStore::DEFAULT_CAP_BYTES`]: the records of a chunk that
//! would cross it, and every record after, are not kept, only counted ([`CutRecords`]), and the
//! run says so as a gap. What is kept is then the run's first records, in arrival order.
//!
//! Records are kept in the order they arrive (when their answers completed), not sorted by
//! send time: sorting a stream needs all of it at once. The fakes' attempts likewise come in
//! the order they ended; a check that needs one request's attempts in arrival order sorts
//! that request's few.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Attempt, Record, SpanRecord, WriteAttempt};

/// The file a run's report directory holds the records in.
pub const RECORDS_FILE: &str = "records.jsonl.gz";
/// The files of the fakes' journals: upstream attempts, tool writes, exported spans.
pub const ATTEMPTS_FILE: &str = "attempts.jsonl.gz";
pub const WRITES_FILE: &str = "writes.jsonl.gz";
pub const SPANS_FILE: &str = "spans.jsonl.gz";

/// What a [`Spool`] can hold: one JSON line per item, a file name, a notion of failure for
/// the counts of cut items, and an estimate of its heap bytes for the memory bound.
pub trait Spooled: Serialize + serde::de::DeserializeOwned + Clone {
    /// The file a run's report directory holds the stream in.
    const FILE: &'static str;
    /// What the items are, for messages ("client records").
    const WHAT: &'static str;
    /// Counted apart among the cut items (a failed request, an attempt that got no 2xx).
    fn failed(&self) -> bool;
    /// Heap bytes beyond `size_of::<Self>()`, roughly.
    fn heap_bytes(&self) -> usize;
}

/// The client records of a run.
pub type RecordStore = Spool<Record>;
/// The upstream attempts every fake saw.
pub type AttemptStore = Spool<Attempt>;
/// The writes the tool fakes received.
pub type WriteStore = Spool<WriteAttempt>;
/// The spans the OTLP collector fake received.
pub type SpanStore = Spool<SpanRecord>;
/// A pass over the client records.
pub type Records<'a> = Pass<'a, Record>;

/// A stream of evidence items: compressed on disk, with the open chunk in memory.
pub struct Spool<T> {
    /// Sealed chunks, one gzip member each; `None` until the first chunk is sealed.
    disk: Option<Disk>,
    /// The open chunk: items not yet sealed, in arrival order.
    tail: Vec<T>,
    /// Estimated heap bytes of `tail`.
    tail_bytes: usize,
    /// Records kept (on disk and in `tail`).
    kept: u64,
    /// Records past the cap.
    cut: CutRecords,
    cap_bytes: u64,
    /// The first error met reading the stream back (the iterator then ends early).
    read_error: Mutex<Option<String>>,
    /// Read from `evidence.json`: the records file it names, not yet opened (see
    /// [`RecordStore::attach`]).
    detached: Option<PathBuf>,
}

/// The sealed part of the stream.
struct Disk {
    file: File,
    /// Bytes written; members are appended at this offset.
    bytes: u64,
}

/// Items the cap left out: counted, never silently lost.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CutRecords {
    pub count: u64,
    /// Of those, failed ones (requests that did not succeed, attempts answered no 2xx).
    pub failed: u64,
}

impl<T: Spooled> Spool<T> {
    /// Items per sealed chunk: the most the store holds in memory. Large enough for gzip to
    /// find the repetition between records (same flows, same answers), small enough to stay a
    /// few MB whatever the run's length.
    pub const CHUNK_RECORDS: usize = 2048;
    /// Estimated bytes per chunk: a chunk is sealed earlier when its records are large
    /// (2 KiB body excerpts, a thousand stream gaps).
    pub const CHUNK_BYTES: usize = 4 << 20;
    /// The records file stops growing here: at the ~40-60 B a record compresses to, some
    /// 5 million requests (a 1,000 req/s soak of well over an hour).
    pub const DEFAULT_CAP_BYTES: u64 = 256 << 20;

    /// An empty store with the default cap.
    pub fn new() -> Self {
        Self::with_cap(Self::DEFAULT_CAP_BYTES)
    }

    /// An empty store whose file stops growing at `cap_bytes`.
    pub fn with_cap(cap_bytes: u64) -> Self {
        Spool {
            disk: None,
            tail: Vec::new(),
            tail_bytes: 0,
            kept: 0,
            cut: CutRecords::default(),
            cap_bytes,
            read_error: Mutex::new(None),
            detached: None,
        }
    }

    /// Appends one record; seals the open chunk when it is full. A record past the cap is
    /// counted in [`RecordStore::cut`] instead.
    pub fn push(&mut self, record: T) {
        if self.cut.count > 0 {
            self.count_cut(&record);
            return;
        }
        self.tail_bytes += record.heap_bytes();
        self.tail.push(record);
        self.kept += 1;
        if self.tail.len() >= Self::CHUNK_RECORDS || self.tail_bytes >= Self::CHUNK_BYTES {
            self.seal();
        }
    }

    fn count_cut(&mut self, record: &T) {
        self.cut.count += 1;
        if record.failed() {
            self.cut.failed += 1;
        }
    }

    /// Compresses the open chunk onto the file (or cuts it when it would cross the cap).
    fn seal(&mut self) {
        if self.tail.is_empty() {
            return;
        }
        let member = match compress(&self.tail) {
            Ok(member) => member,
            Err(e) => {
                self.note_error(format!("could not compress {}: {e}", T::WHAT));
                return;
            }
        };
        let written = self.disk.as_ref().map_or(0, |d| d.bytes);
        if written + member.len() as u64 > self.cap_bytes {
            for record in std::mem::take(&mut self.tail) {
                self.kept -= 1;
                self.count_cut(&record);
            }
            self.tail_bytes = 0;
            return;
        }
        if let Err(e) = self.append(&member) {
            // The chunk stays in memory: nothing is lost, the bound is exceeded by one chunk
            // for as long as the disk refuses.
            self.note_error(format!("could not spill {} to disk: {e}", T::WHAT));
            return;
        }
        self.tail.clear();
        self.tail_bytes = 0;
    }

    fn append(&mut self, member: &[u8]) -> io::Result<()> {
        if self.disk.is_none() {
            self.disk = Some(Disk {
                file: tempfile::tempfile()?,
                bytes: 0,
            });
        }
        let disk = self.disk.as_mut().expect("disk was just made");
        disk.file.write_all_at(member, disk.bytes)?;
        disk.bytes += member.len() as u64;
        Ok(())
    }

    fn note_error(&self, message: String) {
        tracing::warn!("{message}");
        let mut slot = self.read_error.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(message);
    }

    /// Records kept (readable by [`RecordStore::iter`]).
    pub fn len(&self) -> usize {
        self.kept as usize
    }

    pub fn is_empty(&self) -> bool {
        self.kept == 0
    }

    /// Records left out by the cap.
    pub fn cut(&self) -> &CutRecords {
        &self.cut
    }

    /// Bytes of the compressed stream sealed so far.
    pub fn disk_bytes(&self) -> u64 {
        self.disk.as_ref().map_or(0, |d| d.bytes)
    }

    /// Estimated heap bytes the store holds: the open chunk. Bounded by
    /// [`RecordStore::CHUNK_BYTES`] plus one record, however many records were pushed.
    pub fn resident_bytes(&self) -> usize {
        self.tail_bytes + self.tail.capacity() * std::mem::size_of::<T>()
    }

    /// What went wrong writing or reading the stream, if anything did: the records read back
    /// are then incomplete, and the run says so.
    pub fn error(&self) -> Option<String> {
        self.read_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every kept record, in arrival order, read back from the file and then the open chunk.
    /// Each call is a fresh pass; passes may run side by side.
    pub fn iter(&self) -> Pass<'_, T> {
        let disk = self.disk.as_ref().filter(|d| d.bytes > 0).map(|d| {
            let at = FileAt {
                file: &d.file,
                offset: 0,
                end: d.bytes,
            };
            BufReader::with_capacity(64 << 10, MultiGzDecoder::new(at))
        });
        Pass {
            store: self,
            disk,
            line: String::new(),
            tail: self.tail.iter(),
        }
    }

    /// Keeps only the records `keep` says yes to; returns how many went. A pass that writes
    /// a new stream (used once, when an interrupt leaves unfinished requests).
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) -> usize {
        let mut kept = Spool::with_cap(self.cap_bytes);
        let mut gone = 0;
        for record in self.iter() {
            if keep(&record) {
                kept.push(record);
            } else {
                gone += 1;
            }
        }
        kept.cut = self.cut.clone();
        if let Some(error) = self.error() {
            kept.note_error(error);
        }
        *self = kept;
        gone
    }

    /// Changes every item in place (a pass that writes a new stream), e.g. to move times
    /// onto another clock.
    pub fn update(&mut self, mut change: impl FnMut(&mut T)) {
        let mut changed = Spool::with_cap(self.cap_bytes);
        for mut item in self.iter() {
            change(&mut item);
            changed.push(item);
        }
        changed.cut = self.cut.clone();
        if let Some(error) = self.error() {
            changed.note_error(error);
        }
        *self = changed;
    }

    /// Empties the spool (its file goes too).
    pub fn clear(&mut self) {
        *self = Spool::with_cap(self.cap_bytes);
    }

    /// Counts `cut` more items as left out before they reached this spool (a fake's journal
    /// bound, a remote journal's ring).
    pub fn count_cut_before(&mut self, cut: &CutRecords) {
        self.cut.count += cut.count;
        self.cut.failed += cut.failed;
    }

    /// Writes the whole stream (sealed chunks, then the open one) to `out`: one `.jsonl.gz`
    /// file, which [`RecordStore::open`] reads.
    pub fn write_into(&self, out: &mut impl Write) -> io::Result<()> {
        if let Some(disk) = &self.disk {
            let mut at = FileAt {
                file: &disk.file,
                offset: 0,
                end: disk.bytes,
            };
            io::copy(&mut at, out)?;
        }
        if !self.tail.is_empty() {
            out.write_all(&compress(&self.tail)?)?;
        }
        out.flush()
    }

    /// A store reading a records file written by [`RecordStore::write_into`] (a past run's).
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let bytes = file.metadata()?.len();
        let mut store = Spool::with_cap(u64::MAX);
        store.disk = Some(Disk { file, bytes });
        store.kept = store.iter().count() as u64;
        if let Some(error) = store.error() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, error));
        }
        store.cap_bytes = bytes;
        Ok(store)
    }
}

impl<T: Spooled> Spool<T> {
    /// Opens the file that `evidence.json` in `dir` names. Only a bare file name in
    /// `dir` is accepted: evidence is data and never chooses where to read from.
    pub fn attach(&mut self, dir: &Path) -> io::Result<()> {
        let Some(name) = self.detached.take() else {
            return Ok(());
        };
        let bare = name.file_name().is_some_and(|f| f == name.as_os_str());
        if !bare {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "evidence.json names the {} file {}, which is not a file name in its \
                     directory",
                    T::WHAT,
                    name.display()
                ),
            ));
        }
        let path = dir.join(&name);
        let opened = Spool::open(&path).map_err(|e| {
            io::Error::new(e.kind(), format!("could not read {}: {e}", path.display()))
        })?;
        let cut = std::mem::take(&mut self.cut);
        *self = opened;
        self.cut = cut;
        Ok(())
    }

    /// True when read from `evidence.json` and not yet attached to its records file.
    pub fn is_detached(&self) -> bool {
        self.detached.is_some()
    }
}

impl<T: Spooled> Spool<T> {
    /// Every item, in memory. For tests that edit hand-built evidence, and for checks over
    /// small streams (say so where used).
    pub fn to_vec(&self) -> Vec<T> {
        self.iter().collect()
    }

    /// Edits the items in memory and stores them again (tests, and small streams).
    pub fn edit(&mut self, change: impl FnOnce(&mut Vec<T>)) {
        let mut records = self.to_vec();
        change(&mut records);
        *self = records.into();
    }
}

impl<T: Spooled> Default for Spool<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Drop for Spool<T> {
    fn drop(&mut self) {
        // The temporary file has no name: closing it frees its space.
        self.disk.take();
    }
}

/// One gzip member of JSON lines.
fn compress<T: Serialize>(records: &[T]) -> io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    for record in records {
        serde_json::to_writer(&mut encoder, record)?;
        encoder.write_all(b"\n")?;
    }
    encoder.finish()
}

impl Spooled for Record {
    const FILE: &'static str = RECORDS_FILE;
    const WHAT: &'static str = "client records";
    fn failed(&self) -> bool {
        !self.succeeded()
    }
    fn heap_bytes(&self) -> usize {
        record_heap_bytes(self)
    }
}

impl Spooled for Attempt {
    const FILE: &'static str = ATTEMPTS_FILE;
    const WHAT: &'static str = "upstream attempts";
    fn failed(&self) -> bool {
        !matches!(self.status, Some(200..=299))
    }
    fn heap_bytes(&self) -> usize {
        self.fake.capacity()
            + self.route.capacity()
            + self.key.as_ref().map_or(0, String::capacity)
            + self.fault.as_ref().map_or(0, String::capacity)
    }
}

impl Spooled for WriteAttempt {
    const FILE: &'static str = WRITES_FILE;
    const WHAT: &'static str = "tool writes";
    fn failed(&self) -> bool {
        !(200..=299).contains(&self.status)
    }
    fn heap_bytes(&self) -> usize {
        self.fake.capacity()
            + self.key.as_ref().map_or(0, String::capacity)
            + self.idempotency_key.as_ref().map_or(0, String::capacity)
    }
}

impl Spooled for SpanRecord {
    const FILE: &'static str = SPANS_FILE;
    const WHAT: &'static str = "spans";
    fn failed(&self) -> bool {
        self.status == super::SpanStatus::Error
    }
    fn heap_bytes(&self) -> usize {
        // Attribute maps: a node per entry, its key and its value's text, roughly.
        let attributes: usize = self
            .attributes
            .iter()
            .map(|(k, v)| 64 + k.capacity() + v.as_str().map_or(16, str::len))
            .sum();
        self.trace_id.capacity()
            + self.span_id.capacity()
            + self.parent_id.as_ref().map_or(0, String::capacity)
            + self.name.capacity()
            + self.service.as_ref().map_or(0, String::capacity)
            + attributes
    }
}

/// A record's heap bytes, roughly: its strings and stream gaps.
fn record_heap_bytes(r: &Record) -> usize {
    let strings = r.flow.capacity()
        + r.request_id.capacity()
        + r.nonce.capacity()
        + r.body_excerpt.capacity()
        + r.response_request_id.as_ref().map_or(0, String::capacity)
        + r.error.as_ref().map_or(0, String::capacity);
    let gaps = r
        .stream
        .as_ref()
        .map_or(0, |s| s.gaps_ms.capacity() * std::mem::size_of::<f64>());
    strings + gaps
}

/// A reader over `[offset, end)` of a file that leaves the file's own cursor alone, so that
/// passes can run side by side.
struct FileAt<'a> {
    file: &'a File,
    offset: u64,
    end: u64,
}

impl Read for FileAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = (self.end - self.offset).min(buf.len() as u64) as usize;
        if left == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..left], self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

/// A pass over a [`Spool`]: owned items, read back one at a time.
pub struct Pass<'a, T> {
    store: &'a Spool<T>,
    disk: Option<BufReader<MultiGzDecoder<FileAt<'a>>>>,
    line: String,
    tail: std::slice::Iter<'a, T>,
}

impl<T: Spooled> Iterator for Pass<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if let Some(reader) = &mut self.disk {
            self.line.clear();
            match reader.read_line(&mut self.line) {
                Ok(0) => self.disk = None,
                Ok(_) => match serde_json::from_str(&self.line) {
                    Ok(record) => return Some(record),
                    Err(e) => {
                        self.store.note_error(format!(
                            "one of the {} could not be read back: {e}",
                            T::WHAT
                        ));
                        self.disk = None;
                    }
                },
                Err(e) => {
                    self.store
                        .note_error(format!("the {} could not be read back: {e}", T::WHAT));
                    self.disk = None;
                }
            }
        }
        self.tail.next().cloned()
    }
}

impl<T: Spooled> From<Vec<T>> for Spool<T> {
    fn from(records: Vec<T>) -> Self {
        records.into_iter().collect()
    }
}

impl<T: Spooled> FromIterator<T> for Spool<T> {
    fn from_iter<I: IntoIterator<Item = T>>(records: I) -> Self {
        let mut store = Spool::new();
        store.extend(records);
        store
    }
}

impl<T: Spooled> Extend<T> for Spool<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        for item in items {
            self.push(item);
        }
    }
}

impl<T: Spooled> Clone for Spool<T> {
    /// A copy with its own stream (a pass over this one).
    fn clone(&self) -> Self {
        let mut copy = Spool::with_cap(self.cap_bytes);
        for record in self.iter() {
            copy.push(record);
        }
        copy.cut = self.cut.clone();
        copy
    }
}

impl<T: Spooled + PartialEq> PartialEq for Spool<T> {
    fn eq(&self, other: &Self) -> bool {
        self.kept == other.kept && self.cut == other.cut && self.iter().eq(other.iter())
    }
}

impl<T> std::fmt::Debug for Spool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("kept", &self.kept)
            .field("cut", &self.cut)
            .field("disk_bytes", &self.disk.as_ref().map_or(0, |d| d.bytes))
            .field("in_memory", &self.tail.len())
            .finish()
    }
}

/// How `evidence.json` names a spool: the file beside it, and what it holds.
#[derive(Serialize, Deserialize)]
struct RecordsFile {
    file: String,
    kept: u64,
    #[serde(default)]
    cut: CutRecords,
}

/// Written into `evidence.json` as a [`RecordsFile`]: the items themselves go to
/// [`Spooled::FILE`] beside it (see `report::write_all`).
impl<T: Spooled> Serialize for Spool<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RecordsFile {
            file: T::FILE.into(),
            kept: self.kept,
            cut: self.cut.clone(),
        }
        .serialize(serializer)
    }
}

/// Either form `evidence.json` has held: the items inline (before the spool), or a
/// [`RecordsFile`], which [`Spool::attach`] then opens.
#[derive(Deserialize)]
#[serde(untagged)]
#[serde(bound = "T: serde::de::DeserializeOwned")]
enum StoredRecords<T> {
    Inline(Vec<T>),
    File(RecordsFile),
}

impl<'de, T: Spooled> Deserialize<'de> for Spool<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match StoredRecords::<T>::deserialize(deserializer)? {
            StoredRecords::Inline(records) => records.into(),
            StoredRecords::File(named) => {
                let mut store = Spool::with_cap(u64::MAX);
                store.cut = named.cut;
                store.kept = named.kept;
                store.detached = Some(PathBuf::from(named.file));
                store
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u64) -> Record {
        Record {
            at_ms: i as f64,
            flow: "chat".into(),
            request_id: format!("req-{i}"),
            nonce: format!("n{i}"),
            status: Some(if i.is_multiple_of(10) { 503 } else { 200 }),
            latency_ms: (i % 97) as f64,
            body_excerpt: r#"{"answer":"Paris is the capital of France."}"#.into(),
            ..Record::default()
        }
    }

    /// The bound holds by construction: however many records go in, the store holds at most
    /// one open chunk in memory (asserted on bytes, not on the process's RSS).
    #[test]
    fn memory_stays_within_one_chunk_however_many_records_go_in() {
        let mut store = RecordStore::new();
        let mut most = 0;
        for i in 0..10_000 {
            store.push(record(i));
            most = most.max(store.resident_bytes());
        }
        let one_chunk = RecordStore::CHUNK_RECORDS
            * (std::mem::size_of::<Record>() + record_heap_bytes(&record(9_999)));
        assert!(most <= one_chunk, "{most} > {one_chunk}");
        assert_eq!(store.len(), 10_000);
        assert!(store.disk_bytes() > 0);
        // Every record reads back, in the order it came, twice over (passes are independent).
        assert!(store.iter().map(|r| r.at_ms as u64).eq(0..10_000));
        assert_eq!(store.iter().filter(|r| !r.succeeded()).count(), 1_000);
        assert_eq!(store.error(), None);
    }

    #[test]
    fn records_past_the_cap_are_counted_not_kept() {
        let mut store = RecordStore::with_cap(20_000);
        for i in 0..20_000 {
            store.push(record(i));
        }
        let cut = store.cut().clone();
        assert!(cut.count > 0 && store.len() < 20_000);
        assert_eq!(store.len() as u64 + cut.count, 20_000);
        assert!(store.disk_bytes() <= 20_000);
        // What is kept is the run's first records.
        assert!(store
            .iter()
            .map(|r| r.at_ms as u64)
            .eq(0..store.len() as u64));
        // Failures among the cut ones are counted too (every tenth request failed).
        let failed_kept = store.iter().filter(|r| !r.succeeded()).count() as u64;
        assert_eq!(failed_kept + cut.failed, 2_000);
    }

    #[test]
    fn the_written_file_is_plain_gzip_json_lines_and_reads_back() {
        let mut store = RecordStore::new();
        for i in 0..5_000 {
            store.push(record(i));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECORDS_FILE);
        let mut out = File::create(&path).unwrap();
        store.write_into(&mut out).unwrap();
        let mut text = String::new();
        MultiGzDecoder::new(File::open(&path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text.lines().count(), 5_000);
        let first: Record = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first, record(0));

        // evidence.json names the file; attaching reads it back whole.
        let named = serde_json::to_string(&store).unwrap();
        assert!(named.contains(RECORDS_FILE), "{named}");
        let mut again: RecordStore = serde_json::from_str(&named).unwrap();
        assert!(again.is_detached());
        again.attach(dir.path()).unwrap();
        assert!(again == store);
    }

    #[test]
    fn evidence_never_chooses_where_records_are_read_from() {
        let named = r#"{"file": "../../etc/passwd", "kept": 1}"#;
        let mut store: RecordStore = serde_json::from_str(named).unwrap();
        let error = store.attach(Path::new("/tmp")).unwrap_err().to_string();
        assert!(
            error.contains("not a file name in its directory"),
            "{error}"
        );
    }

    #[test]
    fn old_evidence_with_inline_records_still_reads() {
        let inline = serde_json::to_string(&vec![record(1), record(2)]).unwrap();
        let store: RecordStore = serde_json::from_str(&inline).unwrap();
        assert_eq!(store.to_vec(), vec![record(1), record(2)]);
    }
}
