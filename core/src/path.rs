//! Names taken from signed metadata become paths on a device; this is where they are
//! checked. A path in a release is relative, `/`-separated, and can only name a place
//! inside the install target.

/// The longest path a release may name, in bytes.
pub const MAX_PATH_LEN: usize = 4096;
/// The deepest a path may nest.
pub const MAX_PATH_DEPTH: usize = 64;

/// Why a path from metadata was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    #[error("the path is empty")]
    Empty,
    #[error("the path is absolute (starts with '/')")]
    Absolute,
    #[error("the path has a '..' component")]
    ParentDir,
    #[error("the path has a '.' component")]
    CurrentDir,
    #[error("the path has an empty component ('//' or a trailing '/')")]
    EmptyComponent,
    #[error("the path has a NUL byte")]
    Nul,
    #[error("the path has a control character")]
    ControlChar,
    #[error("the path has a '\\' (only '/' separates components)")]
    Backslash,
    #[error("the path is {len} bytes, longer than {MAX_PATH_LEN}")]
    TooLong { len: usize },
    #[error("the path nests {depth} deep, deeper than {MAX_PATH_DEPTH}")]
    TooDeep { depth: usize },
}

/// Checks that `path` is a relative path that stays below the directory it is joined
/// to: no leading `/`, no `..` or `.`, no empty component, no NUL or control byte, no
/// `\`.
pub fn check_path(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong { len: path.len() });
    }
    if path.starts_with('/') {
        return Err(PathError::Absolute);
    }
    if path.contains('\0') {
        return Err(PathError::Nul);
    }
    if path.chars().any(char::is_control) {
        return Err(PathError::ControlChar);
    }
    if path.contains('\\') {
        return Err(PathError::Backslash);
    }
    let mut depth = 0;
    for component in path.split('/') {
        depth += 1;
        match component {
            "" => return Err(PathError::EmptyComponent),
            "." => return Err(PathError::CurrentDir),
            ".." => return Err(PathError::ParentDir),
            _ => {}
        }
    }
    if depth > MAX_PATH_DEPTH {
        return Err(PathError::TooDeep { depth });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_paths_pass() {
        for p in [
            "a",
            "firmware.bin",
            "etc/app/config.toml",
            "a/b.c/..d",
            "..a",
        ] {
            assert_eq!(check_path(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn escaping_and_odd_paths_fail() {
        let cases = [
            ("", PathError::Empty),
            ("/etc/passwd", PathError::Absolute),
            ("../etc/passwd", PathError::ParentDir),
            ("a/../../b", PathError::ParentDir),
            ("a/..", PathError::ParentDir),
            ("./a", PathError::CurrentDir),
            ("a//b", PathError::EmptyComponent),
            ("a/", PathError::EmptyComponent),
            ("a\0b", PathError::Nul),
            ("a\nb", PathError::ControlChar),
            ("..\\x", PathError::Backslash),
        ];
        for (p, want) in cases {
            assert_eq!(check_path(p), Err(want), "{p:?}");
        }
        assert!(matches!(
            check_path("a/".repeat(100).trim_end_matches('/')),
            Err(PathError::TooDeep { .. })
        ));
        assert!(matches!(
            check_path(&"a".repeat(5000)),
            Err(PathError::TooLong { .. })
        ));
    }
}
