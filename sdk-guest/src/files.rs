//! Reading inputs from `/input` and writing outputs to `/output`.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use serde::Serialize;

use crate::{Error, Result};

/// Where the sandbox mounts the job's input files (read-only).
pub const INPUT_DIR: &str = "/input";

/// Where the job writes its output files; everything here is returned to the job owner.
pub const OUTPUT_DIR: &str = "/output";

/// Where the sandbox mounts the job's bundle assets (read-only): the files under `assets/` in its bundle
/// directory or packed bundle.
pub const ASSETS_DIR: &str = "/assets";

/// One file in [`INPUT_DIR`], as listed by [`inputs`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Input {
    /// The file's name relative to [`INPUT_DIR`], with `/` between path components (`images/a.png`).
    pub name: String,
    /// The file's full path, to open it with `std::fs`.
    pub path: PathBuf,
    /// The file's size in bytes.
    pub size: u64,
}

/// Lists every file under [`INPUT_DIR`], recursively, sorted by [`Input::name`].
///
/// Directories are descended into and not listed themselves. An absent `/input` (the job was run without
/// `--input`) gives an empty list.
pub fn inputs() -> Result<Vec<Input>> {
    list_files(Path::new(INPUT_DIR))
}

/// The path of the input `name` (relative to [`INPUT_DIR`]), whether it exists or not.
pub fn input_path(name: &str) -> PathBuf {
    Path::new(INPUT_DIR).join(name)
}

/// Reads the whole input file `name` (relative to [`INPUT_DIR`]).
///
/// A missing file gives [`Error::MissingInput`].
pub fn read_input(name: &str) -> Result<Vec<u8>> {
    read_in(Path::new(INPUT_DIR), name)
}

/// Reads the whole input file `name` (relative to [`INPUT_DIR`]) as UTF-8 text.
///
/// A missing file gives [`Error::MissingInput`], and text that is not UTF-8 gives [`Error::Invalid`].
pub fn read_input_to_string(name: &str) -> Result<String> {
    String::from_utf8(read_input(name)?)
        .map_err(|_| Error::Invalid(format!("input `{name}` is not valid UTF-8")))
}

/// The path of the asset `name` (relative to [`ASSETS_DIR`]), whether it exists or not.
pub fn asset_path(name: &str) -> PathBuf {
    Path::new(ASSETS_DIR).join(name)
}

/// Reads the whole asset file `name` (relative to [`ASSETS_DIR`]), e.g. a model shipped with the job.
///
/// A missing file gives [`Error::MissingAsset`].
pub fn read_asset(name: &str) -> Result<Vec<u8>> {
    read_asset_in(Path::new(ASSETS_DIR), name)
}

/// The path of the output `name` (relative to [`OUTPUT_DIR`]).
pub fn output_path(name: &str) -> PathBuf {
    Path::new(OUTPUT_DIR).join(name)
}

/// Writes `bytes` to the output file `name` (relative to [`OUTPUT_DIR`]), replacing it if it exists.
///
/// Parent directories are created as needed, so `write_output("plots/a.png", ..)` works.
pub fn write_output(name: &str, bytes: &[u8]) -> Result<()> {
    write_in(Path::new(OUTPUT_DIR), name, bytes)
}

/// Writes `value` as pretty-printed JSON (with a trailing newline) to the output file `name`.
pub fn write_output_json(name: &str, value: &impl Serialize) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_output(name, &bytes)
}

pub(crate) fn read_in(root: &Path, name: &str) -> Result<Vec<u8>> {
    let path = root.join(name);
    fs::read(&path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => Error::MissingInput {
            name: name.to_owned(),
        },
        _ => Error::io(path, source),
    })
}

pub(crate) fn read_asset_in(root: &Path, name: &str) -> Result<Vec<u8>> {
    read_in(root, name).map_err(|error| match error {
        Error::MissingInput { name } => Error::MissingAsset { name },
        other => other,
    })
}

pub(crate) fn write_in(root: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = root.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|source| Error::io(parent, source))?;
    }
    fs::write(&path, bytes).map_err(|source| Error::io(path, source))
}

pub(crate) fn list_files(root: &Path) -> Result<Vec<Input>> {
    let mut found = Vec::new();
    match fs::metadata(root) {
        Ok(meta) if meta.is_dir() => walk(root, "", &mut found)?,
        Ok(_) => {
            return Err(Error::Invalid(format!(
                "{} is not a directory",
                root.display()
            )));
        }
        Err(source) if source.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(Error::io(root, source)),
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

fn walk(dir: &Path, prefix: &str, found: &mut Vec<Input>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|source| Error::io(dir, source))?;
    for entry in entries {
        let entry = entry.map_err(|source| Error::io(dir, source))?;
        let path = entry.path();
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        // Follow symbolic links, as `std::fs::read` would.
        let meta = fs::metadata(&path).map_err(|source| Error::io(&path, source))?;
        if meta.is_dir() {
            walk(&path, &format!("{name}/"), found)?;
        } else {
            found.push(Input {
                name,
                path,
                size: meta.len(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_recursively_sorted_with_slash_names() {
        let dir = tempfile::tempdir().unwrap();
        write_in(dir.path(), "b.txt", b"bb").unwrap();
        write_in(dir.path(), "a/z.bin", b"z").unwrap();
        write_in(dir.path(), "a/c/d.txt", b"dddd").unwrap();
        let names: Vec<_> = list_files(dir.path())
            .unwrap()
            .into_iter()
            .map(|input| (input.name, input.size))
            .collect();
        assert_eq!(
            names,
            [
                ("a/c/d.txt".to_owned(), 4),
                ("a/z.bin".to_owned(), 1),
                ("b.txt".to_owned(), 2)
            ]
        );
    }

    #[test]
    fn absent_input_dir_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list_files(&dir.path().join("nope")).unwrap().is_empty());
    }

    #[test]
    fn missing_input_has_a_helpful_message() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_in(dir.path(), "x.csv").unwrap_err();
        assert!(matches!(err, Error::MissingInput { ref name } if name == "x.csv"));
        assert_eq!(
            err.to_string(),
            "input `x.csv` not found in /input; pass it with `netmind run --input DIR`"
        );
    }

    #[test]
    fn missing_asset_says_where_assets_come_from() {
        let dir = tempfile::tempdir().unwrap();
        write_in(dir.path(), "model.onnx", b"onnx").unwrap();
        assert_eq!(read_asset_in(dir.path(), "model.onnx").unwrap(), b"onnx");
        let err = read_asset_in(dir.path(), "labels.txt").unwrap_err();
        assert_eq!(
            err.to_string(),
            "asset `labels.txt` not found in /assets; put it in the bundle's assets/ directory"
        );
    }
}
