//! `begin.lua` as the gateway calls it: the keys and arguments of a call's beginning (or of a
//! peek at what is left of its subscription's windows), and the script's reply read back. The
//! script's own header says what each argument and each reply value is; this file is its other
//! half and changes with it.

use redis::{Script, ScriptInvocation, Value};

use crate::limits::{Limits, Remaining, Which};

/// The windows a call is held to, as the script takes them.
pub struct Windows<'a> {
    pub subscription: &'a str,
    pub own: &'a Limits,
    /// The deployment and its limits, when it has limits of its own.
    pub deployment: Option<(&'a str, &'a Limits)>,
    pub tokens: u64,
}

/// A rotation's turn, as the script takes it.
pub struct Rotation<'a> {
    pub version: &'a str,
    pub deployment: &'a str,
    /// (name, weight) of each backend the turn may fall on.
    pub members: Vec<(&'a str, u32)>,
}

/// What the script is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reserve the call in its windows and take its rotation's turn.
    Begin,
    /// Only read what is left of the windows.
    Peek,
}

/// Whose window refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The subscription's own.
    Subscription,
    /// That of the deployment the call is to, which has limits of its own.
    Deployment,
}

/// What the script said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Admitted {
        remaining: Remaining,
        /// The backend the rotation chose, by name.
        chosen: Option<String>,
    },
    Refused {
        which: Which,
        scope: Scope,
        limit: u64,
        wait_ms: u64,
        remaining: Remaining,
    },
}

/// The script's invocation: `keys` are the subscription's windows and the rotation (each may be
/// a placeholder the script never reads).
pub fn invocation<'s>(
    script: &'s Script,
    keys: [String; 2],
    now: u64,
    windows: Option<&Windows<'_>>,
    rotation: Option<&Rotation<'_>>,
    mode: Mode,
) -> ScriptInvocation<'s> {
    let mut invocation = script.prepare_invoke();
    for key in keys {
        invocation.key(key);
    }
    invocation.arg(now).arg(windows.map_or(0, |w| w.tokens));
    let none = Limits::default();
    let (own, (scope, part)) = match windows {
        Some(w) => (w.own, w.deployment.unwrap_or(("", &none))),
        None => (&none, ("", &none)),
    };
    for limits in [own, part] {
        invocation
            .arg(limits.tokens_per_minute.unwrap_or(0))
            .arg(limits.requests_per_minute.unwrap_or(0))
            .arg(limits.tokens_per_day.unwrap_or(0));
    }
    invocation.arg(scope).arg(match mode {
        Mode::Begin => "begin",
        Mode::Peek => "peek",
    });
    for (name, weight) in rotation.map(|r| r.members.as_slice()).unwrap_or_default() {
        invocation.arg(*name).arg(*weight);
    }
    invocation
}

/// The script's reply; `None` when it is not one.
pub fn read(values: &[Value]) -> Option<Admission> {
    let int = |i: usize| -> Option<i64> {
        match values.get(i)? {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    };
    if int(0)? == 1 {
        let chosen = match values.get(3)? {
            Value::BulkString(bytes) if !bytes.is_empty() => {
                Some(String::from_utf8(bytes.clone()).ok()?)
            }
            _ => None,
        };
        return Some(Admission::Admitted {
            remaining: Remaining::of(int(1)?, int(2)?),
            chosen,
        });
    }
    // Windows 1-3 are the subscription's (tokens a minute, requests a minute, tokens a day),
    // 4-6 the deployment's.
    let window = int(1)?;
    Some(Admission::Refused {
        which: match (window - 1) % 3 {
            0 => Which::TokensPerMinute,
            1 => Which::RequestsPerMinute,
            _ => Which::TokensPerDay,
        },
        scope: if window > 3 {
            Scope::Deployment
        } else {
            Scope::Subscription
        },
        limit: u64::try_from(int(2)?).ok()?,
        wait_ms: u64::try_from(int(3)?).ok()?,
        remaining: Remaining::of(int(4)?, int(5)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read() {
        let admitted = [
            Value::Int(1),
            Value::Int(40),
            Value::Int(-1),
            Value::BulkString(b"eastus".to_vec()),
        ];
        assert_eq!(
            read(&admitted),
            Some(Admission::Admitted {
                remaining: Remaining {
                    tokens: Some(40),
                    requests: None
                },
                chosen: Some("eastus".into())
            })
        );
        let refused = [0, 5, 100, 1200, 3, -1].map(Value::Int);
        assert_eq!(
            read(&refused),
            Some(Admission::Refused {
                which: Which::RequestsPerMinute,
                scope: Scope::Deployment,
                limit: 100,
                wait_ms: 1200,
                remaining: Remaining {
                    tokens: Some(3),
                    requests: None
                },
            })
        );
        assert_eq!(read(&[Value::Nil]), None);
    }
}
