//! A caller's JSON Web Token, read and checked: RS256 only (what Entra ID signs with), so that
//! neither `alg: none` nor a key taken for a MAC secret can pass.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// Longer tokens are refused unread (Entra's are a few kilobytes).
const MAX_TOKEN: usize = 16 * 1024;

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

/// The claims the gateway checks or maps; the rest are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct Claims {
    pub iss: Option<String>,
    pub aud: Option<Audience>,
    pub exp: Option<serde_json::Number>,
    pub nbf: Option<serde_json::Number>,
    /// The calling application: `azp` in v2.0 tokens, `appid` in v1.0 ones.
    pub azp: Option<String>,
    pub appid: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, wanted: &str) -> bool {
        match self {
            Audience::One(a) => a == wanted,
            Audience::Many(all) => all.iter().any(|a| a == wanted),
        }
    }
}

/// A token whose form is right; its signature and claims are still to be checked.
#[derive(Debug)]
pub struct Jwt<'t> {
    pub kid: String,
    pub claims: Claims,
    /// `header.payload`, what the signature signs.
    pub signed: &'t str,
    pub signature: Vec<u8>,
}

/// Whether an `Authorization: Bearer` value is a JWT rather than a subscription key: three
/// base64url parts, the first a JSON object (`eyJ` is `{"` encoded).
pub fn looks_like_jwt(value: &str) -> bool {
    value.starts_with("eyJ") && value.bytes().filter(|b| *b == b'.').count() == 2
}

/// The token, if its form is right and it is signed with RS256 under a named key.
pub fn parse(token: &str) -> Option<Jwt<'_>> {
    if token.len() > MAX_TOKEN {
        return None;
    }
    let (signed, signature) = token.rsplit_once('.')?;
    let (header, payload) = signed.split_once('.')?;
    let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header.alg != "RS256" {
        return None;
    }
    let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    Some(Jwt {
        kid: header.kid?,
        claims,
        signed,
        signature: URL_SAFE_NO_PAD.decode(signature).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn only_rs256_with_a_key_id_is_read() {
        let claims = part(r#"{"iss":"i","aud":["a","b"],"exp":1,"roles":["r"]}"#);
        let sig = URL_SAFE_NO_PAD.encode([1, 2, 3]);
        let good = format!("{}.{claims}.{sig}", part(r#"{"alg":"RS256","kid":"k1"}"#));
        let jwt = parse(&good).unwrap();
        assert_eq!(jwt.kid, "k1");
        assert!(jwt.claims.aud.unwrap().contains("b"));
        assert_eq!(jwt.signature, [1, 2, 3]);
        for header in [
            r#"{"alg":"none","kid":"k1"}"#,
            r#"{"alg":"HS256","kid":"k1"}"#,
            r#"{"alg":"RS256"}"#,
        ] {
            assert!(
                parse(&format!("{}.{claims}.{sig}", part(header))).is_none(),
                "{header}"
            );
        }
        assert!(parse(&format!("{}.{claims}.", part(r#"{"alg":"none"}"#))).is_none());
        assert!(parse("eyJ.x").is_none());
        assert!(looks_like_jwt(&good) && !looks_like_jwt("a-subscription-key"));
    }
}
