//! Reading `multipart/form-data` bodies that are already in memory: enough to check which parts
//! a form has (the validator) and to read small text fields (the simulated backend).

pub struct Part<'b> {
    pub name: String,
    pub filename: Option<String>,
    /// Its `Content-Type` is JSON (`application/json` or `…+json`), as OpenAPI has a form send
    /// an object field.
    pub json: bool,
    pub data: &'b [u8],
}

impl Part<'_> {
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(self.data).ok()
    }
}

/// The `boundary` parameter of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<&str> {
    param(content_type, "boundary").filter(|b| !b.is_empty())
}

/// A `key=value` parameter of a header value like `form-data; name="file"`.
fn param<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    header
        .split(';')
        .skip(1)
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
        .map(|(_, v)| v.trim().trim_matches('"'))
}

pub fn parts<'b>(body: &'b [u8], boundary: &str) -> Result<Vec<Part<'b>>, String> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut parts = Vec::new();
    let mut at =
        find(body, delimiter, 0).ok_or("the body has no part delimited by the boundary")?;
    loop {
        let after = at + delimiter.len();
        if body[after..].starts_with(b"--") {
            return Ok(parts);
        }
        let headers_start = find(body, b"\r\n", after).ok_or("a part has no headers")? + 2;
        let headers_end =
            find(body, b"\r\n\r\n", headers_start).ok_or("a part's headers do not end")?;
        let headers = String::from_utf8_lossy(&body[headers_start..headers_end]);
        let disposition = headers
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .ok_or("a part has no Content-Disposition header")?;
        let name = param(disposition, "name")
            .ok_or("a part's Content-Disposition has no name")?
            .to_string();
        let filename = param(disposition, "filename").map(str::to_string);
        let json = headers
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-type"))
            .is_some_and(|(_, v)| {
                aoai_runtime::catalog::ContentKind::of(v)
                    == aoai_runtime::catalog::ContentKind::Json
            });
        let data_start = headers_end + 4;
        let next = find(body, delimiter, data_start)
            .ok_or("the body does not end with the closing boundary")?;
        // The CRLF before a delimiter belongs to the delimiter.
        let data_end = if next >= data_start + 2 && &body[next - 2..next] == b"\r\n" {
            next - 2
        } else {
            next
        };
        parts.push(Part {
            name,
            filename,
            json,
            data: &body[data_start..data_end.max(data_start)],
        });
        at = next;
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() || needle.is_empty() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_parts() {
        let body = b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n--xyz\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--xyz--\r\n";
        let parts = parts(body, "xyz").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (
                parts[0].name.as_str(),
                parts[0].filename.as_deref(),
                parts[0].data
            ),
            ("file", Some("a.wav"), &b"RIFF"[..])
        );
        assert_eq!(parts[1].text(), Some("whisper"));
        assert_eq!(
            boundary("multipart/form-data; boundary=\"xyz\""),
            Some("xyz")
        );
    }

    #[test]
    fn rejects_malformed_bodies() {
        assert!(
            parts(
                b"--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
                "xyz"
            )
            .is_err()
        );
        assert!(parts(b"nothing here", "xyz").is_err());
        assert!(parts(b"--xyz\r\nX: y\r\n\r\nv\r\n--xyz--", "xyz").is_err());
        assert!(parts(b"--xyz", "xyz").is_err());
    }
}
