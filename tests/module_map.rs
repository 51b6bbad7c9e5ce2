//! The module map in ARCHITECTURE.md is the code's: every top-level module of `src/` is listed
//! under its folder's (or file's) name with exactly the modules it uses (`crate::<module>` in
//! code, comments aside), and dependencies point one way (no cycle, so no two modules import each
//! other).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Map = BTreeMap<String, BTreeSet<String>>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The map as documented: the lines `module → a, b` of the block after `<!-- module map -->`.
fn documented() -> Map {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let (_, after) = text
        .split_once("<!-- module map -->")
        .expect("ARCHITECTURE.md has a `<!-- module map -->` block");
    let block = after
        .split("```")
        .nth(1)
        .expect("the module map is a fenced block after the marker");
    let mut map = Map::new();
    for line in block.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (module, deps) = line
            .split_once('→')
            .unwrap_or_else(|| panic!("a map line is `module → a, b`: {line}"));
        let deps = deps
            .split(',')
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty() && d != "(nothing)")
            .collect();
        map.insert(module.trim().to_owned(), deps);
    }
    map
}

/// The top-level modules of `src/` (folders and files but `lib.rs`, `main.rs` and `bin/`, whose
/// programs are clients of the server, not modules of the library).
fn modules() -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root().join("src")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let is_module = path.is_dir() || path.extension().is_some_and(|e| e == "rs");
        if is_module && !["lib", "main", "bin"].contains(&name.as_str()) {
            found.push((name, path));
        }
    }
    found.sort();
    found
}

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            rust_files(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_owned());
    }
}

/// The code of a file without its comments (line comments and doc comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| match line.trim_start().starts_with("//") {
            true => "",
            false => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every top-level module named after `crate::`, in paths and grouped imports
/// (`crate::{a::b, c}`).
fn uses(code: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut item, mut end) = (1, String::new(), 0);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 1 => {
                        used.insert(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    end = i;
                    break;
                }
                item.push(c);
            }
            used.insert(first_segment(&item));
            rest = &group[end..];
        } else {
            used.insert(first_segment(rest));
        }
    }
    used.remove("");
    used
}

fn first_segment(path: &str) -> String {
    path.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

fn actual() -> Map {
    let mut map = Map::new();
    for (module, path) in modules() {
        let mut files = Vec::new();
        rust_files(&path, &mut files);
        let mut deps = BTreeSet::new();
        for file in files {
            deps.extend(uses(&code(&std::fs::read_to_string(&file).unwrap())));
        }
        deps.remove(&module);
        map.insert(module, deps);
    }
    map
}

#[test]
fn the_module_map_in_architecture_md_is_the_codes() {
    let (documented, actual) = (documented(), actual());
    let names = |m: &Map| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&documented),
        names(&actual),
        "ARCHITECTURE.md's module map names other modules than src/ has"
    );
    for (module, deps) in &actual {
        let listed = &documented[module];
        let unlisted: Vec<_> = deps.difference(listed).collect();
        let unused: Vec<_> = listed.difference(deps).collect();
        assert!(
            unlisted.is_empty() && unused.is_empty(),
            "{module} uses {unlisted:?} that ARCHITECTURE.md's map does not list, and no longer \
             uses {unused:?} that it does: make the code or the map right"
        );
    }
}

#[test]
fn dependencies_point_one_way() {
    let map = actual();
    // Depth-first search for a cycle; report it as a path.
    fn visit(m: &str, map: &Map, path: &mut Vec<String>, done: &mut BTreeSet<String>) {
        if done.contains(m) {
            return;
        }
        if let Some(start) = path.iter().position(|p| p == m) {
            panic!("a dependency cycle: {} → {m}", path[start..].join(" → "));
        }
        path.push(m.to_owned());
        for dep in map.get(m).into_iter().flatten() {
            visit(dep, map, path, done);
        }
        path.pop();
        done.insert(m.to_owned());
    }
    let mut done = BTreeSet::new();
    for module in map.keys() {
        visit(module, &map, &mut Vec::new(), &mut done);
    }
}

#[test]
fn imports_are_read_as_the_compiler_reads_them() {
    let code = code("use crate::{a::B, b::{c, d::E}, f};\n// crate::g\nlet x = crate::h::i();");
    let found: Vec<String> = uses(&code).into_iter().collect();
    assert_eq!(found, ["a", "b", "f", "h"]);
}
