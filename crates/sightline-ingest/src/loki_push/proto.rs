//! Loki's `logproto.PushRequest`, hand-written from Loki's `pkg/push/push.proto` so we need no
//! protoc: field numbers and types are the wire contract and must not change.
//!
//! ```text
//! PushRequest      { repeated StreamAdapter streams = 1; }
//! StreamAdapter    { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
//! EntryAdapter     { google.protobuf.Timestamp timestamp = 1; string line = 2;
//!                    repeated LabelPairAdapter structuredMetadata = 3; }
//! LabelPairAdapter { string name = 1; string value = 2; }
//! Timestamp        { int64 seconds = 1; int32 nanos = 2; }
//! ```

/// A push: streams of entries.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// One stream: its label string (`{a="b"}`) and entries.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    /// A hash of the labels some clients send; ignored.
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// One log entry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    #[prost(string, tag = "2")]
    pub line: String,
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

/// One structured-metadata pair.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPairAdapter {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// Nanoseconds since the epoch; `None` when `nanos` is outside `0..1e9` or the sum
    /// overflows `i64`.
    pub fn to_ns(self) -> Option<i64> {
        if !(0..1_000_000_000).contains(&self.nanos) {
            return None;
        }
        self.seconds
            .checked_mul(1_000_000_000)?
            .checked_add(i64::from(self.nanos))
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    /// Bytes written by hand from the wire format, so the field numbers are checked against
    /// the spec rather than against our own encoder.
    #[test]
    fn decodes_hand_written_bytes() {
        #[rustfmt::skip]
        let bytes: &[u8] = &[
            0x0a, 0x1f,                                 // streams (1), 31 bytes
              0x0a, 0x07, b'{', b'a', b'=', b'"', b'b', b'"', b'}', // labels (1)
              0x12, 0x14,                               // entries (2), 20 bytes
                0x0a, 0x04, 0x08, 0x01, 0x10, 0x02,     // timestamp (1): seconds 1, nanos 2
                0x12, 0x02, b'h', b'i',                 // line (2)
                0x1a, 0x08,                             // structuredMetadata (3)
                  0x0a, 0x01, b'k', 0x12, 0x03, b'v', b'a', b'l',
        ];
        let push = PushRequest::decode(bytes).expect("valid protobuf");
        let stream = &push.streams[0];
        assert_eq!(stream.labels, r#"{a="b"}"#);
        let entry = &stream.entries[0];
        assert_eq!(
            entry.timestamp.and_then(Timestamp::to_ns),
            Some(1_000_000_002)
        );
        assert_eq!(entry.line, "hi");
        assert_eq!(
            entry.structured_metadata,
            [LabelPairAdapter {
                name: "k".into(),
                value: "val".into()
            }]
        );
        assert_eq!(push.encode_to_vec(), bytes);
    }

    #[test]
    fn timestamp_range() {
        let ts = |seconds, nanos| Timestamp { seconds, nanos }.to_ns();
        assert_eq!(ts(-1, 500_000_000), Some(-500_000_000));
        assert_eq!(ts(0, -1), None);
        assert_eq!(ts(0, 1_000_000_000), None);
        assert_eq!(ts(i64::MAX, 0), None);
    }
}
