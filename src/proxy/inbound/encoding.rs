//! Request bodies sent compressed (`Content-Encoding`): decoded for validation only.
//!
//! The gateway checks what the body says, so a compressed body is decoded first, in memory and
//! at most `limit` bytes of it: a small body that inflates past the limit (a compression bomb)
//! is refused as too large, without inflating the rest. The client's bytes, still compressed,
//! are what is forwarded, with their `Content-Encoding`. `gzip` (and `x-gzip`), `deflate` and
//! `br` are understood, in any order the header lists them; `identity` is nothing; any other
//! coding is refused (415), because a body the gateway cannot read is a body it cannot check.

use std::borrow::Cow;
use std::io::Read;

use actix_web::http::header::{self, HeaderMap};

use crate::proxy::error::GatewayError;

/// A content coding the gateway can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Deflate,
    Brotli,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
        }
    }
}

/// The codings applied to the body, in the order they were applied; empty for a body sent as
/// it is.
pub fn codings(headers: &HeaderMap) -> Result<Vec<Coding>, GatewayError> {
    let mut codings = Vec::new();
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let value = value
            .to_str()
            .map_err(|_| GatewayError::UnsupportedEncoding {
                given: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            })?;
        for token in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            codings.push(match token.to_ascii_lowercase().as_str() {
                "identity" => continue,
                "gzip" | "x-gzip" => Coding::Gzip,
                "deflate" => Coding::Deflate,
                "br" => Coding::Brotli,
                _ => {
                    return Err(GatewayError::UnsupportedEncoding {
                        given: token.to_string(),
                    });
                }
            });
        }
    }
    Ok(codings)
}

/// The body as the client meant it: `body` with `codings` (as [`codings`] lists them) undone,
/// at most `limit` bytes; `body` itself when it is not compressed.
pub fn decode_all<'b>(
    codings: &[Coding],
    body: &'b [u8],
    limit: usize,
) -> Result<Cow<'b, [u8]>, GatewayError> {
    let mut current = Cow::Borrowed(body);
    if current.is_empty() {
        return Ok(current);
    }
    for &coding in codings.iter().rev() {
        current = Cow::Owned(decode(coding, &current, limit)?);
    }
    Ok(current)
}

fn decode(coding: Coding, input: &[u8], limit: usize) -> Result<Vec<u8>, GatewayError> {
    let reader: Box<dyn Read + '_> = match coding {
        // `deflate` is zlib-wrapped (RFC 9110), though some clients send it raw.
        Coding::Deflate if !looks_like_zlib(input) => {
            Box::new(flate2::read::DeflateDecoder::new(input))
        }
        Coding::Deflate => Box::new(flate2::read::ZlibDecoder::new(input)),
        Coding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Coding::Brotli => Box::new(brotli_decompressor::Decompressor::new(input, 16 * 1024)),
    };
    let mut out = Vec::with_capacity(input.len().saturating_mul(4).min(limit));
    // One byte more than allowed tells a body at the limit from one over it.
    let read = reader
        .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut out);
    if let Err(e) = read {
        return Err(GatewayError::MalformedBody(format!(
            "it is labelled `Content-Encoding: {}` but cannot be decoded as such ({e})",
            coding.name()
        )));
    }
    if out.len() > limit {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    Ok(out)
}

/// A zlib stream starts with a header whose first two bytes, read as a big-endian number, are
/// a multiple of 31, with compression method 8.
fn looks_like_zlib(input: &[u8]) -> bool {
    match input {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;
    use std::io::Write;

    fn headers(encoding: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        h
    }

    fn decoded<'b>(
        headers: &HeaderMap,
        body: &'b [u8],
        limit: usize,
    ) -> Result<Cow<'b, [u8]>, GatewayError> {
        decode_all(&codings(headers)?, body, limit)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn decodes_each_coding_and_their_combinations() {
        let text = br#"{"input": "hello"}"#;
        assert_eq!(&*decoded(&HeaderMap::new(), text, 100).unwrap(), text);
        assert!(matches!(
            decoded(&headers("identity"), text, 100).unwrap(),
            Cow::Borrowed(_)
        ));
        assert_eq!(&*decoded(&headers("gzip"), &gzip(text), 100).unwrap(), text);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(text).unwrap();
        assert_eq!(
            &*decoded(&headers("deflate"), &z.finish().unwrap(), 100).unwrap(),
            text
        );
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(text).unwrap();
        assert_eq!(
            &*decoded(&headers("deflate"), &raw.finish().unwrap(), 100).unwrap(),
            text
        );
        // Applied gzip first, then gzip again.
        assert_eq!(
            &*decoded(&headers("gzip, gzip"), &gzip(&gzip(text)), 100).unwrap(),
            text
        );
    }

    #[test]
    fn refuses_what_it_cannot_read_or_what_inflates_past_the_limit() {
        assert!(matches!(
            decoded(&headers("zstd"), b"x", 100),
            Err(GatewayError::UnsupportedEncoding { .. })
        ));
        assert!(matches!(
            decoded(&headers("gzip"), b"{\"plain\": true}", 100),
            Err(GatewayError::MalformedBody(_))
        ));
        let bomb = gzip(&vec![b' '; 1_000_000]);
        assert!(bomb.len() < 10_000);
        assert!(matches!(
            decoded(&headers("gzip"), &bomb, 64 * 1024),
            Err(GatewayError::PayloadTooLarge { .. })
        ));
        assert_eq!(
            decoded(&headers("gzip"), &gzip(&[b'a'; 100]), 100)
                .unwrap()
                .len(),
            100
        );
    }
}
