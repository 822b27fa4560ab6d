//! The commit a git checkout has checked out, read from its files alone: `HEAD`, then the
//! loose ref or `packed-refs` it names. No `git` binary is needed, so the image build can
//! record the commit from the few `.git` files `.dockerignore` lets into the context.
//!
//! `build.rs` includes this file (`#[path]`); the library compiles it for its tests only.

use std::fs;
use std::path::{Path, PathBuf};

/// Where a checkout's git files are: `HEAD` in `git_dir`, refs in `common_dir` (the two differ
/// in a linked worktree, whose `.git` is a file naming its own directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitDirs {
    pub git_dir: PathBuf,
    pub common_dir: PathBuf,
}

impl GitDirs {
    /// The git directories of the checkout at `root`, if `root/.git` exists.
    pub fn find(root: &Path) -> Option<Self> {
        let dot_git = root.join(".git");
        let git_dir = if dot_git.is_dir() {
            dot_git
        } else {
            // A linked worktree or a submodule: `.git` is a file, `gitdir: <path>`.
            let text = fs::read_to_string(&dot_git).ok()?;
            let path = text.strip_prefix("gitdir:")?.trim();
            root.join(path)
        };
        let common_dir = match fs::read_to_string(git_dir.join("commondir")) {
            Ok(path) => git_dir.join(path.trim()),
            Err(_) => git_dir.clone(),
        };
        Some(Self {
            git_dir,
            common_dir,
        })
    }

    /// The files whose change means another commit is checked out.
    pub fn watched(&self) -> Vec<PathBuf> {
        vec![
            self.git_dir.join("HEAD"),
            self.common_dir.join("refs/heads"),
            self.common_dir.join("packed-refs"),
        ]
    }

    /// The commit `HEAD` resolves to: a detached `HEAD` is the commit itself; a symbolic one
    /// (`ref: refs/heads/main`) names a loose ref file or a line of `packed-refs`. `None` when
    /// the files are missing, the branch has no commit yet, or a value is not a commit id.
    pub fn head_commit(&self) -> Option<String> {
        let head = fs::read_to_string(self.git_dir.join("HEAD")).ok()?;
        let head = head.trim();
        let Some(name) = head.strip_prefix("ref:").map(str::trim) else {
            return is_commit_id(head).then(|| head.to_owned());
        };
        // A ref name never holds `..` (git-check-ref-format); refusing it keeps the lookup
        // inside the refs directory.
        if !name.starts_with("refs/") || name.split('/').any(|part| part == ".." || part.is_empty())
        {
            return None;
        }
        if let Ok(loose) = fs::read_to_string(self.common_dir.join(name)) {
            let loose = loose.trim();
            return is_commit_id(loose).then(|| loose.to_owned());
        }
        let packed = fs::read_to_string(self.common_dir.join("packed-refs")).ok()?;
        packed
            .lines()
            .filter(|line| !line.starts_with('#') && !line.starts_with('^'))
            .filter_map(|line| line.split_once(' '))
            .find(|(_, ref_name)| ref_name.trim() == name)
            .map(|(id, _)| id.to_owned())
            .filter(|id| is_commit_id(id))
    }
}

/// A full commit id: 40 hex digits (SHA-1) or 64 (SHA-256), in lower case as git writes them.
fn is_commit_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef01234567";
    const B: &str = "89abcdef0123456789abcdef0123456789abcdef";

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn checkout() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join(".git/refs/heads")).unwrap();
        root
    }

    fn head_of(root: &Path) -> Option<String> {
        GitDirs::find(root).unwrap().head_commit()
    }

    #[test]
    fn a_branch_resolves_through_its_loose_ref() {
        let root = checkout();
        write(
            &root.path().join(".git/HEAD"),
            "ref: refs/heads/feature/x\n",
        );
        write(
            &root.path().join(".git/refs/heads/feature/x"),
            &format!("{A}\n"),
        );
        assert_eq!(head_of(root.path()).as_deref(), Some(A));
    }

    #[test]
    fn a_branch_resolves_through_packed_refs_when_it_has_no_loose_ref() {
        let root = checkout();
        write(&root.path().join(".git/HEAD"), "ref: refs/heads/main\n");
        write(
            &root.path().join(".git/packed-refs"),
            &format!(
                "# pack-refs with: peeled fully-peeled sorted \n{B} refs/heads/dev\n{A} refs/heads/main\n^{B}\n"
            ),
        );
        assert_eq!(head_of(root.path()).as_deref(), Some(A));
    }

    #[test]
    fn a_loose_ref_wins_over_a_stale_packed_one() {
        let root = checkout();
        write(&root.path().join(".git/HEAD"), "ref: refs/heads/main\n");
        write(&root.path().join(".git/refs/heads/main"), B);
        write(
            &root.path().join(".git/packed-refs"),
            &format!("{A} refs/heads/main\n"),
        );
        assert_eq!(head_of(root.path()).as_deref(), Some(B));
    }

    #[test]
    fn a_detached_head_is_the_commit_itself() {
        let root = checkout();
        write(&root.path().join(".git/HEAD"), &format!("{A}\n"));
        assert_eq!(head_of(root.path()).as_deref(), Some(A));
    }

    #[test]
    fn a_linked_worktree_reads_head_from_its_own_dir_and_refs_from_the_common_one() {
        let main = checkout();
        write(&main.path().join(".git/HEAD"), "ref: refs/heads/main\n");
        write(&main.path().join(".git/refs/heads/main"), A);
        write(&main.path().join(".git/refs/heads/topic"), B);
        let worktree_git = main.path().join(".git/worktrees/topic");
        write(&worktree_git.join("HEAD"), "ref: refs/heads/topic\n");
        write(&worktree_git.join("commondir"), "../..\n");
        let worktree = tempfile::tempdir().unwrap();
        write(
            &worktree.path().join(".git"),
            &format!("gitdir: {}\n", worktree_git.display()),
        );
        assert_eq!(head_of(worktree.path()).as_deref(), Some(B));
        let watched = GitDirs::find(worktree.path()).unwrap().watched();
        assert!(watched.contains(&worktree_git.join("HEAD")), "{watched:?}");
        assert!(
            watched.contains(&worktree_git.join("../../refs/heads")),
            "{watched:?}"
        );
    }

    #[test]
    fn nothing_is_made_up_for_a_branch_without_commits_or_a_strange_head() {
        let root = checkout();
        write(&root.path().join(".git/HEAD"), "ref: refs/heads/main\n");
        assert_eq!(head_of(root.path()), None, "no commit yet");
        write(
            &root.path().join(".git/HEAD"),
            "ref: refs/heads/../../../etc/x\n",
        );
        assert_eq!(head_of(root.path()), None, "a ref outside refs/");
        write(&root.path().join(".git/HEAD"), "not a head\n");
        assert_eq!(head_of(root.path()), None, "not a commit id");
        assert_eq!(GitDirs::find(&root.path().join("nowhere")), None);
    }
}
