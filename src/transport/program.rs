//! Finding the program of a server command, and saying what is wrong when it cannot run.

use std::path::{Path, PathBuf};

/// Why a server command's program cannot be run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrunnable {
    /// A bare name that no directory of `PATH` holds (as an executable).
    NotOnPath,
    /// A path to nothing.
    NoSuchFile,
    /// A path to a directory.
    Directory,
    /// A path to a file without execute permission for us.
    NotExecutable,
}

impl std::fmt::Display for Unrunnable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unrunnable::NotOnPath => "it is not on PATH",
            Unrunnable::NoSuchFile => "there is no such file",
            Unrunnable::Directory => "it is a directory",
            Unrunnable::NotExecutable => "it is not executable (no execute permission)",
        })
    }
}

/// The program to start: a bare name is looked up on `PATH` (`which` also finds `.cmd`
/// shims such as `npx.cmd` on Windows); a path is taken as it is, if it can be run.
pub fn locate(program: &str) -> Result<PathBuf, Unrunnable> {
    which::which(program).map_err(|_| diagnose(program))
}

/// What is wrong with a program that `which` rejected.
fn diagnose(program: &str) -> Unrunnable {
    let names_a_path = program.contains('/') || program.contains(std::path::MAIN_SEPARATOR);
    if !names_a_path {
        return Unrunnable::NotOnPath;
    }
    match std::fs::metadata(Path::new(program)) {
        Err(_) => Unrunnable::NoSuchFile,
        Ok(m) if m.is_dir() => Unrunnable::Directory,
        // A file `which` refused: it lacks execute permission for us.
        Ok(_) => Unrunnable::NotExecutable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_a_program_cannot_run_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.py");
        std::fs::write(&file, "print(1)\n").unwrap();
        let shown = |p: &Path| p.display().to_string();
        assert_eq!(locate(&shown(dir.path())), Err(Unrunnable::Directory));
        assert_eq!(
            locate(&shown(&dir.path().join("missing"))),
            Err(Unrunnable::NoSuchFile)
        );
        assert_eq!(
            locate("no-such-program-anywhere-xyz"),
            Err(Unrunnable::NotOnPath)
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(locate(&shown(&file)), Err(Unrunnable::NotExecutable));
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
            assert_eq!(locate(&shown(&file)), Ok(file.clone()));
        }
    }
}
