//! Callers who present an Entra ID token instead of a subscription key: which issuer's it is,
//! whether it checks out (signature, issuer, audience, expiry, not-before), and which
//! subscription its application or role maps to.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::jwt::{self, Jwt};
use super::keys::{KeySet, Verdict};
use crate::limits::now_ms;

/// One `[[auth.entra]]` entry, checked.
pub struct Issuer {
    /// The `iss` its tokens carry.
    pub issuer: String,
    pub audiences: Vec<String>,
    pub keys: Arc<KeySet>,
    /// Application id (`azp`/`appid`) → subscription index.
    pub applications: HashMap<String, usize>,
    /// Role → subscription index, in the order of the config.
    pub roles: Vec<(String, usize)>,
    pub skew: Duration,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("jwks_url", &self.keys.url)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused; the caller is told none of it.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    UnknownIssuer,
    UnknownKey,
    BadSignature,
    WrongAudience,
    Expired,
    NotYetValid,
    Unmapped,
}

impl Issuer {
    /// The subscription a token of this issuer maps to, if it checks out.
    pub fn check(&self, token: &Jwt<'_>) -> Result<usize, Refused> {
        match self
            .keys
            .verify(&token.kid, token.signed.as_bytes(), &token.signature)
        {
            Verdict::Valid => {}
            Verdict::Invalid => return Err(Refused::BadSignature),
            Verdict::UnknownKey => return Err(Refused::UnknownKey),
        }
        let claims = &token.claims;
        if claims.iss.as_deref() != Some(self.issuer.as_str()) {
            return Err(Refused::UnknownIssuer);
        }
        let aud = claims.aud.as_ref().ok_or(Refused::WrongAudience)?;
        if !self.audiences.iter().any(|a| aud.contains(a)) {
            return Err(Refused::WrongAudience);
        }
        // Seconds since the epoch, to the millisecond, as `exp` and `nbf` are compared.
        let now = now_ms() as f64 / 1000.0;
        let skew = self.skew.as_secs_f64();
        let exp = claims
            .exp
            .as_ref()
            .and_then(serde_json::Number::as_f64)
            .ok_or(Refused::Expired)?;
        if now >= exp + skew {
            return Err(Refused::Expired);
        }
        if let Some(nbf) = claims.nbf.as_ref() {
            let nbf = nbf.as_f64().ok_or(Refused::NotYetValid)?;
            if now + skew < nbf {
                return Err(Refused::NotYetValid);
            }
        }
        let application = claims.azp.as_deref().or(claims.appid.as_deref());
        if let Some(&index) = application.and_then(|a| self.applications.get(a)) {
            return Ok(index);
        }
        self.roles
            .iter()
            .find(|(role, _)| claims.roles.iter().any(|r| r == role))
            .map(|&(_, index)| index)
            .ok_or(Refused::Unmapped)
    }
}

/// The subscription a caller's token maps to, among the issuers configured; an unknown key id
/// has the issuer's key set fetched again (at most so often) and the token checked once more.
pub async fn authenticate(issuers: &[Issuer], token: &str) -> Result<usize, Refused> {
    let token = jwt::parse(token).ok_or(Refused::Malformed)?;
    let issuer = issuers
        .iter()
        .find(|i| token.claims.iss.as_deref() == Some(i.issuer.as_str()))
        .ok_or(Refused::UnknownIssuer)?;
    match issuer.check(&token) {
        Err(Refused::UnknownKey) if issuer.keys.refetched().await => issuer.check(&token),
        checked => checked,
    }
}
