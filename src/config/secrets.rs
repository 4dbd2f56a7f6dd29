//! Where a secret is read from: an environment variable, or a file as Kubernetes mounts a
//! secret (a key per file, often without a final newline, sometimes with one). Files are read
//! again on every reload, which is how a key is rotated without a restart.

use std::collections::HashMap;
use std::path::PathBuf;

/// The secret one of `var` (an environment variable) or `file` names; `Ok(None)` when neither
/// is given, an error when both are, or when the one given is missing or empty. `files` gains
/// the file read, for the reload watcher. The error names the variable or path, never the value.
pub(super) fn read(
    env: &HashMap<String, String>,
    var: Option<&str>,
    file: Option<&str>,
    files: &mut Vec<PathBuf>,
) -> Result<Option<String>, String> {
    match (var, file) {
        (Some(_), Some(_)) => Err("give one of the variable and the file, not both".into()),
        (Some(var), None) => env
            .get(var)
            .filter(|v| !v.is_empty())
            .cloned()
            .map(Some)
            .ok_or_else(|| format!("environment variable `{var}` is not set")),
        (None, Some(path)) => {
            files.push(PathBuf::from(path));
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("`{path}` cannot be read ({})", e.kind()))?;
            // A trailing newline is the editor's or `echo`'s, not the key's.
            let secret = text.trim_end_matches(['\n', '\r']);
            if secret.is_empty() {
                Err(format!("`{path}` is empty"))
            } else {
                Ok(Some(secret.to_string()))
            }
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_without_its_final_newline_and_watched() {
        let dir = std::env::temp_dir().join(format!("aoai-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, "key1\n").unwrap();
        let mut files = Vec::new();
        let path_text = path.to_str().unwrap();
        let env = HashMap::new();
        assert_eq!(
            read(&env, None, Some(path_text), &mut files).unwrap(),
            Some("key1".into())
        );
        assert_eq!(files, vec![path.clone()]);
        std::fs::write(&path, "").unwrap();
        assert!(read(&env, None, Some(path_text), &mut files).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_variable_or_nothing_but_not_both() {
        let env = HashMap::from([("K".to_string(), "v".to_string())]);
        let mut files = Vec::new();
        assert_eq!(
            read(&env, Some("K"), None, &mut files).unwrap(),
            Some("v".into())
        );
        assert_eq!(read(&env, None, None, &mut files).unwrap(), None);
        assert!(read(&env, Some("K"), Some("/x"), &mut files).is_err());
        let missing = read(&env, Some("NOPE"), None, &mut files).unwrap_err();
        assert!(missing.contains("NOPE"));
        assert!(files.is_empty());
    }
}
