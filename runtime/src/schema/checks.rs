//! The checks a value's schema states beyond its type, and what each says when it fails.
//!
//! Messages name the rule and the value, the way the issue tracker asked: `must be >= 0, got
//! -1`. JSON Schema's rules hold: a keyword only concerns values of its kind (a `minLength` says
//! nothing about a number), lengths count characters (Unicode scalar values), and a `pattern`
//! may match anywhere in the string unless it anchors itself.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use super::CompiledPattern;
use crate::catalog::shared_enum;

/// A schema's validation keywords. Generated code writes only the ones a schema has, the rest
/// from [`Checks::NONE`].
#[derive(Debug)]
pub struct Checks {
    pub minimum: Option<Bound>,
    pub maximum: Option<Bound>,
    pub multiple_of: Option<f64>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub pattern: Option<&'static Pattern>,
    pub format: Option<Format>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub unique_items: bool,
    pub min_properties: Option<u64>,
    pub max_properties: Option<u64>,
}

/// A numeric bound; `exclusive` excludes the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bound {
    pub value: f64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exclusive: bool,
}

impl Bound {
    pub const fn inclusive(value: f64) -> Bound {
        Bound {
            value,
            exclusive: false,
        }
    }

    pub const fn exclusive(value: f64) -> Bound {
        Bound {
            value,
            exclusive: true,
        }
    }
}

shared_enum! {
    /// The `format`s the gateway checks. Others (`binary`, `unixtime`, `double`, …) describe a
    /// value without narrowing it further than its type; `byte`/`base64` and `float` are left
    /// unchecked on purpose (data URLs and URL-safe base64 would be refused; no service refuses
    /// a number because it does not fit a single-precision float). Integer widths are checked
    /// by type.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub enum Format {
        /// RFC 3339 `date-time`.
        DateTime,
        /// RFC 3339 `full-date`.
        Date,
        /// An absolute URI: a scheme, then `:`.
        Uri,
        Uuid,
    }
}

/// A `pattern`, compiled the first time a value is checked against it.
#[derive(Debug)]
pub struct Pattern {
    pub source: &'static str,
    compiled: CompiledPattern,
}

impl Pattern {
    pub const fn new(source: &'static str) -> Pattern {
        Pattern {
            source,
            compiled: CompiledPattern::new(),
        }
    }

    fn matches(&self, text: &str) -> bool {
        // The build checked that each pattern compiles with this engine; one that somehow does
        // not is not held against the client.
        self.compiled
            .0
            .get_or_init(|| regex_lite::Regex::new(self.source).ok())
            .as_ref()
            .is_none_or(|re| re.is_match(text))
    }
}

/// A JSON number as parsed, kept exact where it is an integer.
#[derive(Debug, Clone, Copy)]
pub enum Number {
    Int(i64),
    UInt(u64),
    Float(f64),
}

impl Number {
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(v) => v as f64,
            Number::UInt(v) => v as f64,
            Number::Float(v) => v,
        }
    }

    /// The value as an integer, if it is one (`3.0` is).
    pub fn as_integer(self) -> Option<i128> {
        match self {
            Number::Int(v) => Some(i128::from(v)),
            Number::UInt(v) => Some(i128::from(v)),
            Number::Float(v) if v.fract() == 0.0 && v.abs() < 1.7e38 => Some(v as i128),
            Number::Float(_) => None,
        }
    }

    /// Whether the value cannot be a 64-bit integer. serde_json reads an integer literal that
    /// fits neither `i64` nor `u64` as a float, rounded: `-9223372036854775809` becomes exactly
    /// `i64::MIN as f64`. So a float this far from zero is out of range whatever it rounds to.
    pub fn beyond_64_bits(self) -> bool {
        matches!(self, Number::Float(v) if v.abs() >= 9_223_372_036_854_775_808.0)
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Number::Int(v) => write!(f, "{v}"),
            Number::UInt(v) => write!(f, "{v}"),
            Number::Float(v) => write!(f, "{}", shown(v)),
        }
    }
}

/// A number as a person writes it: `-1`, `0.5`, `2e25`.
pub fn shown(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{}", v as i64)
    } else if v != 0.0 && (v.abs() >= 1e16 || v.abs() < 1e-6) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

impl Checks {
    pub const NONE: Checks = Checks {
        minimum: None,
        maximum: None,
        multiple_of: None,
        min_length: None,
        max_length: None,
        pattern: None,
        format: None,
        min_items: None,
        max_items: None,
        unique_items: false,
        min_properties: None,
        max_properties: None,
    };

    pub fn number(&self, value: Number) -> Result<(), String> {
        let v = value.as_f64();
        if let Some(b) = self.minimum
            && (v < b.value || (b.exclusive && v == b.value))
        {
            let op = if b.exclusive { ">" } else { ">=" };
            return Err(format!("must be {op} {}, got {value}", shown(b.value)));
        }
        if let Some(b) = self.maximum
            && (v > b.value || (b.exclusive && v == b.value))
        {
            let op = if b.exclusive { "<" } else { "<=" };
            return Err(format!("must be {op} {}, got {value}", shown(b.value)));
        }
        if let Some(m) = self.multiple_of {
            let q = v / m;
            if (q - q.round()).abs() > 1e-9 * q.abs().max(1.0) {
                return Err(format!("must be a multiple of {}, got {value}", shown(m)));
            }
        }
        Ok(())
    }

    pub fn string(&self, s: &str) -> Result<(), String> {
        if self.min_length.is_some() || self.max_length.is_some() {
            let length = s.chars().count() as u64;
            if let Some(n) = self.min_length
                && length < n
            {
                return Err(format!(
                    "must be at least {n} character{} long, got {length}",
                    plural(n)
                ));
            }
            if let Some(n) = self.max_length
                && length > n
            {
                return Err(format!(
                    "must be at most {n} character{} long, got {length}",
                    plural(n)
                ));
            }
        }
        if let Some(p) = self.pattern
            && !p.matches(s)
        {
            return Err(format!("must match the pattern `{}`", p.source));
        }
        if let Some(f) = self.format
            && !f.accepts(s)
        {
            return Err(format!("must be {}, got \"{}\"", f.describe(), excerpt(s)));
        }
        Ok(())
    }

    pub fn items(&self, count: usize) -> Result<(), String> {
        let count = count as u64;
        if let Some(n) = self.min_items
            && count < n
        {
            return Err(format!(
                "must have at least {n} item{}, got {count}",
                plural(n)
            ));
        }
        if let Some(n) = self.max_items
            && count > n
        {
            return Err(format!(
                "must have at most {n} item{}, got {count}",
                plural(n)
            ));
        }
        Ok(())
    }

    pub fn properties(&self, count: usize) -> Result<(), String> {
        let count = count as u64;
        if let Some(n) = self.min_properties
            && count < n
        {
            return Err(format!(
                "must have at least {n} propert{}, got {count}",
                if n == 1 { "y" } else { "ies" }
            ));
        }
        if let Some(n) = self.max_properties
            && count > n
        {
            return Err(format!(
                "must have at most {n} propert{}, got {count}",
                if n == 1 { "y" } else { "ies" }
            ));
        }
        Ok(())
    }

    /// The rules these checks state, each once.
    pub fn rules(&self) -> Vec<Rule<'static>> {
        let mut out = Vec::new();
        out.extend(self.minimum.map(Rule::Minimum));
        out.extend(self.maximum.map(Rule::Maximum));
        out.extend(self.multiple_of.map(Rule::MultipleOf));
        out.extend(self.min_length.map(Rule::MinLength));
        out.extend(self.max_length.map(Rule::MaxLength));
        out.extend(self.pattern.map(|p| Rule::Pattern(p.source)));
        out.extend(self.format.map(Rule::Format));
        out.extend(self.min_items.map(Rule::MinItems));
        out.extend(self.max_items.map(Rule::MaxItems));
        if self.unique_items {
            out.push(Rule::UniqueItems);
        }
        out.extend(self.min_properties.map(Rule::MinProperties));
        out.extend(self.max_properties.map(Rule::MaxProperties));
        out
    }
}

/// One rule a value is checked against beyond its type, as the route docs and
/// `aoai-gateway routes --json` say it: `>= 0`, `at most 4 items`, `format uri`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule<'a> {
    Minimum(Bound),
    Maximum(Bound),
    MultipleOf(f64),
    MinLength(u64),
    MaxLength(u64),
    Pattern(&'a str),
    Format(Format),
    MinItems(u64),
    MaxItems(u64),
    UniqueItems,
    MinProperties(u64),
    MaxProperties(u64),
}

impl fmt::Display for Rule<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let properties = |n: u64| if n == 1 { "property" } else { "properties" };
        match *self {
            Rule::Minimum(b) => write!(
                f,
                "{} {}",
                if b.exclusive { ">" } else { ">=" },
                shown(b.value)
            ),
            Rule::Maximum(b) => write!(
                f,
                "{} {}",
                if b.exclusive { "<" } else { "<=" },
                shown(b.value)
            ),
            Rule::MultipleOf(m) => write!(f, "a multiple of {}", shown(m)),
            Rule::MinLength(n) => write!(f, "at least {n} character{}", plural(n)),
            Rule::MaxLength(n) => write!(f, "at most {n} character{}", plural(n)),
            Rule::Pattern(p) => write!(f, "matches `{p}`"),
            Rule::Format(format) => write!(f, "format {}", format.name()),
            Rule::MinItems(n) => write!(f, "at least {n} item{}", plural(n)),
            Rule::MaxItems(n) => write!(f, "at most {n} item{}", plural(n)),
            Rule::UniqueItems => f.write_str("no repeated items"),
            Rule::MinProperties(n) => write!(f, "at least {n} {}", properties(n)),
            Rule::MaxProperties(n) => write!(f, "at most {n} {}", properties(n)),
        }
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The start of a value, for a message.
fn excerpt(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == 40 {
            out.push('…');
            break;
        }
        if c.is_control() {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

impl Format {
    /// The format a schema's `format` names, if the gateway checks it.
    pub fn from_openapi(name: &str) -> Option<Format> {
        Some(match name {
            "date-time" => Format::DateTime,
            "date" => Format::Date,
            "uri" => Format::Uri,
            "uuid" => Format::Uuid,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::DateTime => "date-time",
            Format::Date => "date",
            Format::Uri => "uri",
            Format::Uuid => "uuid",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Format::DateTime => "an RFC 3339 date-time such as 2024-10-21T08:30:00Z",
            Format::Date => "an RFC 3339 date such as 2024-10-21",
            Format::Uri => "an absolute URI (a scheme such as https: or data: first)",
            Format::Uuid => "a UUID such as 123e4567-e89b-12d3-a456-426614174000",
        }
    }

    fn accepts(self, s: &str) -> bool {
        match self {
            Format::DateTime => date_time(s),
            Format::Date => date(s.as_bytes()),
            Format::Uri => uri(s),
            Format::Uuid => uuid(s.as_bytes()),
        }
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.iter().try_fold(0u32, |n, d| {
        n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

/// `YYYY-MM-DD`, a real day.
fn date(b: &[u8]) -> bool {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Some(year), Some(month), Some(day)) =
        (digits(&b[0..4]), digits(&b[5..7]), digits(&b[8..10]))
    else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
fn date_time(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || !date(&b[..10]) || !matches!(b[10], b'T' | b't' | b' ') {
        return false;
    }
    let time = &b[11..];
    if time.len() < 9 || time[2] != b':' || time[5] != b':' {
        return false;
    }
    let (Some(h), Some(m), Some(sec)) = (
        digits(&time[0..2]),
        digits(&time[3..5]),
        digits(&time[6..8]),
    ) else {
        return false;
    };
    if h > 23 || m > 59 || sec > 60 {
        return false;
    }
    let mut rest = &time[8..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', hh @ ..] if hh.len() == 5 && hh[2] == b':' => {
            matches!((digits(&hh[0..2]), digits(&hh[3..5])), (Some(h), Some(m)) if h < 24 && m < 60)
        }
        _ => false,
    }
}

/// A scheme (`letter *(letter / digit / + / - / .)`), a `:`, and no spaces or controls.
fn uri(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let c = Checks {
            minimum: Some(Bound::inclusive(0.0)),
            maximum: Some(Bound::exclusive(2.0)),
            ..Checks::NONE
        };
        assert!(c.number(Number::Int(0)).is_ok());
        assert_eq!(
            c.number(Number::Int(-1)).unwrap_err(),
            "must be >= 0, got -1"
        );
        assert_eq!(
            c.number(Number::Float(2.0)).unwrap_err(),
            "must be < 2, got 2"
        );
        let m = Checks {
            multiple_of: Some(0.1),
            ..Checks::NONE
        };
        assert!(m.number(Number::Float(0.3)).is_ok());
        assert!(m.number(Number::Float(0.35)).is_err());
        assert_eq!(shown(2e25), "2e25");
        assert_eq!(shown(0.5), "0.5");
    }

    #[test]
    fn strings_count_characters_and_formats_are_read_strictly() {
        let c = Checks {
            min_length: Some(2),
            max_length: Some(3),
            ..Checks::NONE
        };
        assert!(c.string("éé").is_ok());
        assert_eq!(
            c.string("a").unwrap_err(),
            "must be at least 2 characters long, got 1"
        );
        assert!(c.string("abcd").is_err());
        for ok in ["2024-10-21T08:30:00Z", "2024-02-29T23:59:60.123+05:30"] {
            assert!(date_time(ok), "{ok}");
        }
        for bad in [
            "2024-10-21",
            "2023-02-29T00:00:00Z",
            "2024-10-21T25:00:00Z",
            "yesterday",
        ] {
            assert!(!date_time(bad), "{bad}");
        }
        assert!(uri("https://example.com/a") && uri("data:image/png;base64,AAAA"));
        assert!(!uri("example.com/a") && !uri("https://a b") && !uri("1http://x"));
        assert!(uuid(b"123e4567-e89b-12d3-a456-426614174000"));
        assert!(!uuid(b"123e4567e89b12d3a456426614174000"));
        let p: &'static Pattern = Box::leak(Box::new(Pattern::new("^[a-z]+$")));
        let c = Checks {
            pattern: Some(p),
            ..Checks::NONE
        };
        assert!(c.string("abc").is_ok());
        assert_eq!(
            c.string("ab1").unwrap_err(),
            "must match the pattern `^[a-z]+$`"
        );
    }
}
