//! File-system steps whose order and durability the publish protocol depends on.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::LakeError;

pub(crate) fn io(path: &Path) -> impl FnOnce(io::Error) -> LakeError + '_ {
    move |source| LakeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Makes a directory entry (a rename, a new file) durable: on Linux a rename is only on
/// disk once the directory that holds it is fsynced.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LakeError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(dir))
}

/// Creates `dir` and its missing parents; in the secure zone each one is 0700.
pub(crate) fn create_dirs(dir: &Path, private: bool) -> Result<(), LakeError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io(dir))?;
    if private {
        set_mode(dir, 0o700)?;
    }
    Ok(())
}

/// Sets a mode explicitly: `DirBuilder::mode` and `OpenOptions::mode` are filtered by the
/// umask, and a directory that already existed keeps whatever mode it had.
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<(), LakeError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io(path))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Opens a new file for writing; never overwrites (a leftover would mean a logic error).
pub(crate) fn create_file(path: &Path, private: bool) -> Result<fs::File, LakeError> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(path).map_err(io(path))?;
    if private {
        set_mode(path, 0o600)?;
    }
    Ok(file)
}

/// Every directory under `root` (itself included), deepest first, so that fsyncing them in
/// this order makes each entry durable after its contents.
pub(crate) fn dirs_deepest_first(root: &Path) -> Result<Vec<PathBuf>, LakeError> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let dir = out[i].clone();
        for entry in fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            if entry.file_type().map_err(io(&dir))?.is_dir() {
                out.push(entry.path());
            }
        }
        i += 1;
    }
    out.reverse();
    Ok(out)
}

pub(crate) fn remove_dir_all_if_exists(dir: &Path) -> Result<(), LakeError> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io(dir)(e)),
        _ => Ok(()),
    }
}

/// Names of `dir`'s entries that are run ids; a missing directory has none.
pub(crate) fn run_dirs(dir: &Path) -> Result<Vec<i64>, LakeError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut ids = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        if let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i64>().ok())
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}
