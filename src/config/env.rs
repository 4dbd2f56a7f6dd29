//! Overrides from the environment: `AOAI_GATEWAY__` and a key path, e.g.
//! `AOAI_GATEWAY__BACKENDS__EASTUS__ENDPOINT` (see the [module note](super)).

pub const ENV_PREFIX: &str = "AOAI_GATEWAY__";

/// Sets the key that variable `name` names in `table` to `value`, read as TOML where it parses
/// and as a string otherwise.
pub(super) fn apply_override(
    table: &mut toml::Table,
    name: &str,
    value: &str,
) -> Result<(), String> {
    let path: Vec<String> = name[ENV_PREFIX.len()..]
        .split("__")
        .map(|s| s.to_ascii_lowercase())
        .collect();
    if path.iter().any(String::is_empty) {
        return Err("empty key part in the variable name".into());
    }
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let mut current = table;
    let mut i = 0;
    while i + 1 < path.len() {
        let key = &path[i];
        if key == "backends" || key == "subscriptions" {
            let list = current
                .entry(key.clone())
                .or_insert_with(|| toml::Value::Array(Vec::new()));
            let toml::Value::Array(items) = list else {
                return Err(format!("`{key}` is not a list"));
            };
            let selector = &path[i + 1];
            let index = match selector.parse::<usize>() {
                Ok(n) if n < items.len() => n,
                Ok(n) => return Err(format!("`{key}` has no entry {n}")),
                Err(_) => match items.iter().position(|t| {
                    t.get("name")
                        .and_then(toml::Value::as_str)
                        .is_some_and(|n| n.eq_ignore_ascii_case(selector))
                }) {
                    Some(n) => n,
                    None => {
                        let mut entry = toml::Table::new();
                        entry.insert("name".into(), toml::Value::String(selector.clone()));
                        items.push(toml::Value::Table(entry));
                        items.len() - 1
                    }
                },
            };
            let toml::Value::Table(entry) = &mut items[index] else {
                return Err(format!("`{key}` entry {index} is not a table"));
            };
            current = entry;
            i += 2;
            continue;
        }
        let next = current
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(next) = next else {
            return Err(format!("`{key}` is not a table"));
        };
        current = next;
        i += 1;
    }
    match path.get(i) {
        Some(last) => {
            current.insert(last.clone(), parsed);
            Ok(())
        }
        None => Err("the variable names a list entry, not a key in it".into()),
    }
}
