//! The shape of the crate: which top-level modules use which (read from `src/`), and where SQL
//! may be written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Each file of `src/` with its top-level module and its code (comment lines left out).
fn sources() -> Vec<(String, PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&src).unwrap();
            let first = relative.components().next().unwrap().as_os_str();
            let module = first.to_str().unwrap().trim_end_matches(".rs").to_owned();
            let code = std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            (module, path, code)
        })
        .collect()
}

/// Top-level module -> the top-level modules its code names as `crate::<module>`.
fn uses() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, _, code) in sources() {
        if module == "lib" || module == "main" {
            continue;
        }
        let entry = graph.entry(module.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                entry.insert(name);
            }
        }
    }
    graph
}

#[test]
fn no_two_top_level_modules_use_each_other_directly_or_through_others() {
    let graph = uses();
    fn reaches(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_owned()];
        while let Some(next) = stack.pop() {
            for used in graph.get(&next).into_iter().flatten() {
                if used == to {
                    return true;
                }
                if seen.insert(used.clone()) {
                    stack.push(used.clone());
                }
            }
        }
        false
    }
    for module in graph.keys() {
        assert!(
            !reaches(&graph, module, module),
            "`{module}` uses itself through other modules: {graph:#?}"
        );
    }
}

#[test]
fn http_and_the_etl_reach_the_database_through_db_and_http_never_through_the_etl() {
    let graph = uses();
    assert!(graph["http"].contains("db"), "{:?}", graph["http"]);
    assert!(graph["etl"].contains("db"), "{:?}", graph["etl"]);
    assert!(!graph["http"].contains("etl"), "{:?}", graph["http"]);
    assert!(
        graph["domain"].is_empty(),
        "domain uses {:?}",
        graph["domain"]
    );
}

#[test]
fn every_statement_is_written_in_src_db() {
    for (module, path, code) in sources() {
        if module == "db" {
            continue;
        }
        for needle in [
            "sqlx::query",
            "query_as",
            "query_scalar",
            "raw_sql",
            "copy_in_raw",
        ] {
            assert!(
                !code.contains(needle),
                "{} writes SQL (`{needle}`): statements belong in src/db",
                path.display()
            );
        }
    }
}
