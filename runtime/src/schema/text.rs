//! Validates a value that arrives as text (a path, query or header parameter, a form field)
//! against its type: a number must parse, an enum must hold one of its values, and the
//! spec's checks apply as they do in a JSON body.
//!
//! An array parameter arrives as one value per occurrence (`?include=a&include=b`); the caller
//! checks each against the array's item type. Objects in parameters (`deepObject`) are not
//! checked: the specs do not use them.

use super::checks::Number;
use super::{Body, Inherited, Kind, Ty};

/// Checks `value` against `ty`; the message says why it does not fit.
pub fn check(ty: &'static Ty, value: &str) -> Result<(), String> {
    walk(ty, value, None)
}

fn walk(ty: &'static Ty, value: &str, inherited: Option<&Inherited<'_>>) -> Result<(), String> {
    let here = Inherited {
        checks: ty.checks,
        outer: inherited,
    };
    let inherited = Some(&here);
    let checks = || Inherited::iter(inherited);
    match &ty.kind {
        Kind::String => checks().try_for_each(|c| c.string(value)),
        Kind::Integer(width) => {
            let (low, high) = width.range();
            let parsed = value
                .parse::<i64>()
                .map(Number::Int)
                .or_else(|_| value.parse::<u64>().map(Number::UInt));
            let Ok(number) = parsed else {
                let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
                return Err(
                    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                        format!(
                            "{} is out of range: must be an integer from {low} to {high}",
                            printable(value)
                        )
                    } else {
                        format!("expected an integer, got \"{}\"", printable(value))
                    },
                );
            };
            let n = number.as_integer().unwrap_or_default();
            if n < i128::from(low) || n > i128::from(high) {
                return Err(format!(
                    "{number} is out of range: must be an integer from {low} to {high}"
                ));
            }
            checks().try_for_each(|c| c.number(number))
        }
        Kind::Number => {
            let number = value
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| format!("expected a number, got \"{}\"", printable(value)))?;
            checks().try_for_each(|c| c.number(Number::Float(number)))
        }
        Kind::Boolean if matches!(value, "true" | "false") => Ok(()),
        Kind::Boolean => Err(format!(
            "expected true or false, got \"{}\"",
            printable(value)
        )),
        Kind::Array(item) => walk(item, value, None),
        Kind::Nullable(inner) => walk(inner, value, inherited),
        Kind::Any | Kind::Object | Kind::Map(_) => Ok(()),
        Kind::Model(model) => {
            let here = Inherited {
                checks: model.checks,
                outer: inherited,
            };
            match &model.body {
                Body::Alias(target) => walk(target, value, Some(&here)),
                Body::Enum(e) if !e.open && !e.values.contains(&value) => {
                    let listed: Vec<String> = e.values.iter().map(|v| format!("\"{v}\"")).collect();
                    Err(format!(
                        "must be one of {}, got \"{}\"",
                        listed.join(", "),
                        printable(value)
                    ))
                }
                Body::Enum(_) => Inherited::iter(Some(&here)).try_for_each(|c| c.string(value)),
                Body::Union(u) => {
                    let mut last = Ok(());
                    for variant in u.variants {
                        last = walk(&variant.ty, value, Some(&here));
                        if last.is_ok() {
                            break;
                        }
                    }
                    last
                }
                Body::Struct(_) | Body::AllOf(_) | Body::Untyped => Ok(()),
            }
        }
    }
}

fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::super::{Bound, Checks, Enum, Model, Width};
    use super::*;

    static LIMIT: Ty = Ty {
        kind: Kind::Integer(Width::I32),
        checks: &Checks {
            minimum: Some(Bound::inclusive(1.0)),
            maximum: Some(Bound::inclusive(100.0)),
            ..Checks::NONE
        },
    };
    static ORDER: Model = Model {
        name: "Order",
        body: Body::Enum(Enum {
            values: &["asc", "desc"],
            open: false,
        }),
        checks: &Checks::NONE,
    };

    #[test]
    fn parses_and_checks() {
        assert!(check(&LIMIT, "20").is_ok());
        assert_eq!(check(&LIMIT, "0").unwrap_err(), "must be >= 1, got 0");
        assert_eq!(
            check(&LIMIT, "many").unwrap_err(),
            "expected an integer, got \"many\""
        );
        assert_eq!(
            check(&LIMIT, "-23725349519123226624").unwrap_err(),
            "-23725349519123226624 is out of range: must be an integer from -2147483648 to 2147483647"
        );
        assert_eq!(
            check(&LIMIT, "9999999999").unwrap_err(),
            "9999999999 is out of range: must be an integer from -2147483648 to 2147483647"
        );
        static ORDER_TY: Ty = Ty::of(Kind::Model(&ORDER));
        assert!(check(&ORDER_TY, "asc").is_ok());
        assert_eq!(
            check(&ORDER_TY, "sideways").unwrap_err(),
            "must be one of \"asc\", \"desc\", got \"sideways\""
        );
        static NUMBER: Ty = Ty::of(Kind::Number);
        assert!(check(&NUMBER, "NaN").is_err());
    }
}
