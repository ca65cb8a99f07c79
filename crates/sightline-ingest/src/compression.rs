//! Request bodies by `Content-Encoding`: identity, gzip, deflate, snappy and zstd.
//!
//! Every codec decompresses into a buffer that may not grow past the caller's
//! `limit_bytes` (use [`BODY_DECOMPRESSED_BYTES_MAX`] unless a route has its own), so a
//! decompression bomb stops at the limit with [`IngestError::DecompressedTooLarge`] instead of
//! exhausting memory. The encodings are those OpenTelemetry collectors and Loki, Prometheus
//! and Elasticsearch clients send:
//!
//! - `gzip` / `x-gzip`: one or more gzip members;
//! - `deflate`: zlib-wrapped as RFC 9110 says, or raw deflate as some clients send it;
//! - `snappy`: the framed format (it starts with the stream identifier), else the block format
//!   that Prometheus remote write uses under the same name;
//! - `zstd`: frames with a window of at most [`ZSTD_WINDOW_LOG_MAX`] (16 MiB), so one frame
//!   cannot make the decoder allocate more than that.

use std::io::Read;

use crate::error::IngestError;

/// Default limit of a decompressed request body.
pub const BODY_DECOMPRESSED_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Largest zstd window accepted: 2^24 bytes.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 24;

const OP: &str = "decode body";

/// The first chunk of every framed snappy stream.
const SNAPPY_FRAMED_MAGIC: &[u8] = b"\xff\x06\x00\x00sNaPpY";

/// Decodes `body` as `content_encoding` says (none, empty or `identity` for as-is), refusing to
/// produce more than `limit_bytes`.
pub fn decode_body(
    content_encoding: Option<&str>,
    body: &[u8],
    limit_bytes: usize,
) -> Result<Vec<u8>, IngestError> {
    let encoding = content_encoding.map(str::trim).unwrap_or("");
    let is = |name: &str| encoding.eq_ignore_ascii_case(name);
    if encoding.is_empty() || is("identity") {
        if body.len() > limit_bytes {
            return Err(IngestError::BodyTooLarge {
                op: OP,
                bytes: body.len(),
                limit_bytes,
            });
        }
        return Ok(body.to_vec());
    }
    if is("gzip") || is("x-gzip") {
        read_limited(flate2::read::MultiGzDecoder::new(body), "gzip", limit_bytes)
    } else if is("deflate") {
        if has_zlib_header(body) {
            read_limited(flate2::read::ZlibDecoder::new(body), "deflate", limit_bytes)
        } else {
            read_limited(
                flate2::read::DeflateDecoder::new(body),
                "deflate",
                limit_bytes,
            )
        }
    } else if is("snappy") {
        if body.starts_with(SNAPPY_FRAMED_MAGIC) {
            read_limited(snap::read::FrameDecoder::new(body), "snappy", limit_bytes)
        } else {
            decompress_snappy_block(body, limit_bytes, OP)
        }
    } else if is("zstd") {
        let mut decoder =
            zstd::stream::read::Decoder::new(body).map_err(|e| decompress_error("zstd", &e))?;
        decoder
            .window_log_max(ZSTD_WINDOW_LOG_MAX)
            .map_err(|e| decompress_error("zstd", &e))?;
        read_limited(decoder, "zstd", limit_bytes)
    } else {
        Err(IngestError::UnsupportedEncoding {
            encoding: crate::error::excerpt(encoding, 64),
        })
    }
}

/// Decompresses a snappy block (the format of Loki and Prometheus remote-write bodies),
/// checking the length the block declares against `limit_bytes` before allocating.
pub fn decompress_snappy_block(
    body: &[u8],
    limit_bytes: usize,
    op: &'static str,
) -> Result<Vec<u8>, IngestError> {
    let declared = snap::raw::decompress_len(body).map_err(|e| snappy_error(op, &e))?;
    if declared > limit_bytes {
        return Err(IngestError::DecompressedTooLarge {
            op,
            codec: "snappy",
            limit_bytes,
        });
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| snappy_error(op, &e))
}

fn snappy_error(op: &'static str, e: &snap::Error) -> IngestError {
    let text = e.to_string();
    IngestError::Decompress {
        op,
        codec: "snappy",
        reason: text.strip_prefix("snappy: ").unwrap_or(&text).to_string(),
    }
}

/// Whether `body` starts with a zlib header (RFC 1950): deflate method, a valid check value.
fn has_zlib_header(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

/// Reads `reader` to its end, failing once more than `limit_bytes` come out.
fn read_limited(
    reader: impl Read,
    codec: &'static str,
    limit_bytes: usize,
) -> Result<Vec<u8>, IngestError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| decompress_error(codec, &e))?;
    if out.len() > limit_bytes {
        return Err(IngestError::DecompressedTooLarge {
            op: OP,
            codec,
            limit_bytes,
        });
    }
    Ok(out)
}

fn decompress_error(codec: &'static str, e: &std::io::Error) -> IngestError {
    IngestError::Decompress {
        op: OP,
        codec,
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::ErrorKind;

    const TEXT: &[u8] = b"{\"message\":\"hello\"}\n{\"message\":\"world\"}\n";

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("write to vec");
        e.finish().expect("finish to vec")
    }

    #[test]
    fn round_trips_every_encoding() {
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(TEXT).expect("write to vec");
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(TEXT).expect("write to vec");
        let mut framed = snap::write::FrameEncoder::new(Vec::new());
        framed.write_all(TEXT).expect("write to vec");
        let block = snap::raw::Encoder::new()
            .compress_vec(TEXT)
            .expect("compress");
        let zstd = zstd::encode_all(TEXT, 3).expect("compress");
        let mut two_members = gzip(&TEXT[..10]);
        two_members.extend(gzip(&TEXT[10..]));
        let cases: Vec<(Option<&str>, Vec<u8>)> = vec![
            (None, TEXT.to_vec()),
            (Some("identity"), TEXT.to_vec()),
            (Some(" GZIP "), gzip(TEXT)),
            (Some("x-gzip"), two_members),
            (Some("deflate"), zlib.finish().expect("finish")),
            (Some("deflate"), raw.finish().expect("finish")),
            (Some("snappy"), framed.into_inner().expect("flush")),
            (Some("snappy"), block),
            (Some("zstd"), zstd),
        ];
        for (encoding, body) in cases {
            let got = decode_body(encoding, &body, 1024).expect("decodes");
            assert_eq!(got, TEXT, "{encoding:?}");
        }
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        let zeros = vec![0u8; 1 << 20];
        let bomb = gzip(&zeros);
        assert!(bomb.len() < 4096);
        let e = decode_body(Some("gzip"), &bomb, 1 << 19).expect_err("over limit");
        assert_eq!(e.kind(), ErrorKind::TooLarge);
        assert_eq!(
            e.to_string(),
            "decode body: gzip: decompressed body is larger than the limit of 524288 bytes"
        );
        assert_eq!(
            decode_body(Some("gzip"), &bomb, 1 << 20).map(|v| v.len()),
            Ok(1 << 20)
        );
        let block = snap::raw::Encoder::new()
            .compress_vec(&zeros)
            .expect("compress");
        let e = decode_body(Some("snappy"), &block, 1000).expect_err("over limit");
        assert_eq!(e.kind(), ErrorKind::TooLarge);
        let zstd = zstd::encode_all(&zeros[..], 3).expect("compress");
        assert_eq!(
            decode_body(Some("zstd"), &zstd, 1000).map_err(|e| e.kind()),
            Err(ErrorKind::TooLarge)
        );
        let e = decode_body(None, &zeros, 1000).expect_err("over limit");
        assert_eq!(
            e.to_string(),
            "decode body: body is 1048576 bytes, larger than the limit of 1000 bytes"
        );
    }

    #[test]
    fn corrupt_and_unknown_encodings_are_bad_data() {
        let e = decode_body(Some("gzip"), b"not gzip", 1024).expect_err("corrupt");
        assert_eq!(e.kind(), ErrorKind::BadData);
        assert!(e.to_string().starts_with("decode body: gzip: "), "{e}");
        let e = decode_body(Some("snappy"), b"\xff\xff\xff\xff\xff", 1024).expect_err("corrupt");
        assert!(e.to_string().starts_with("decode body: snappy: "), "{e}");
        let e = decode_body(Some("br"), b"x", 1024).expect_err("unsupported");
        assert_eq!(
            e.to_string(),
            "decode body: unsupported content-encoding \"br\""
        );
        let mut truncated = gzip(TEXT);
        truncated.truncate(truncated.len() - 4);
        assert!(decode_body(Some("gzip"), &truncated, 1024).is_err());
    }
}
