//! Tidy tests over the module tree: no non-test source file over 600 lines, and no import
//! circle between the files of a crate (sea-orm's entity relations excepted).
//!
//! The import graph is read from the text, the way a reader follows it: a file depends on
//! the file that defines what a `crate::…`, `super::…` or `self::…` path names (the longest
//! module prefix of the path that is a file), and a `mod.rs` or `lib.rs` also on the child
//! modules it `use`s. Test modules (`mod tests { … }` and `tests.rs` files) are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::tidy::{report, rust_files, workspace};

/// Longest non-test source file, in lines.
const MAX_LINES: usize = 600;

/// Crates whose circles are sea-orm's entity relations (`Relation`, `Related`), which the
/// derive macros need in both directions.
const RELATION_CRATES: &[&str] = &["crates/entities/src"];

/// Whether `path` holds tests only: under a `tests/` folder or named `tests.rs`.
fn is_test_file(root: &Path, path: &Path) -> bool {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative.starts_with("tests")
        || relative
            .components()
            .any(|part| part.as_os_str() == "tests")
        || path.file_name().is_some_and(|name| name == "tests.rs")
}

#[test]
fn no_source_file_is_over_600_lines() {
    let (root, _) = workspace();
    let mut problems = Vec::new();
    for path in rust_files(&root) {
        if is_test_file(&root, &path) {
            continue;
        }
        let lines = std::fs::read_to_string(&path)
            .expect("a UTF-8 source file")
            .lines()
            .count();
        if lines > MAX_LINES {
            let relative = path.strip_prefix(&root).unwrap_or(&path);
            problems.push(format!(
                "{}: {lines} lines (at most {MAX_LINES}; split it by concern, or move its tests \
                 to a `tests.rs` beside it)",
                relative.display()
            ));
        }
    }
    report("file length", &problems);
}

/// A module path inside its crate: `[]` for `lib.rs`, `["admin", "error"]` for
/// `admin/error.rs`, `["writer"]` for `writer/mod.rs`.
type ModulePath = Vec<String>;

/// The crate's source files by module path, tests left out.
fn modules(src: &Path) -> BTreeMap<ModulePath, PathBuf> {
    let mut found = BTreeMap::new();
    for path in source_files(src) {
        let relative = path.strip_prefix(src).expect("under src");
        let mut parts: Vec<String> = relative
            .with_extension("")
            .components()
            .map(|part| part.as_os_str().to_string_lossy().into_owned())
            .collect();
        if matches!(
            parts.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            parts.pop();
        }
        if parts.last().map(String::as_str) == Some("tests") {
            continue;
        }
        found.insert(parts, path);
    }
    found
}

fn source_files(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![folder.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("a source folder") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// Identifiers and `::`, `{`, `}`, `,` of `text`, comments and strings included (a doc
/// link names a dependency too).
fn tokens(text: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte.is_ascii_alphanumeric() || byte == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            tokens.push(&text[start..i]);
            continue;
        }
        if bytes[i..].starts_with(b"::") {
            tokens.push("::");
            i += 2;
            continue;
        }
        if matches!(byte, b'{' | b'}' | b',' | b';') {
            tokens.push(&text[i..=i]);
        }
        i += 1;
    }
    tokens
}

/// The paths `crate::…`, `super::…` and `self::…` of `tokens`, each as its anchor and
/// segments; a `{…}` group yields one path per first-level name.
fn anchored_paths<'a>(tokens: &[&'a str]) -> Vec<(&'a str, Vec<&'a str>)> {
    let mut paths = Vec::new();
    for (at, anchor) in tokens.iter().enumerate() {
        if !matches!(*anchor, "crate" | "super" | "self") || tokens.get(at + 1) != Some(&"::") {
            continue;
        }
        if at > 0 && tokens[at - 1] == "::" {
            continue; // `super::super::x` is read from its first `super`.
        }
        let mut segments = Vec::new();
        let mut i = at + 1;
        while tokens.get(i) == Some(&"::") {
            match tokens.get(i + 1) {
                Some(&"{") => {
                    let mut depth = 0;
                    let mut expect_name = true;
                    for member in &tokens[i + 1..] {
                        match *member {
                            "{" => depth += 1,
                            "}" => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            "," if depth == 1 => expect_name = true,
                            name if depth == 1 && expect_name && name != "::" => {
                                let mut path = segments.clone();
                                path.push(name);
                                paths.push((*anchor, path));
                                expect_name = false;
                            }
                            _ => {}
                        }
                    }
                    segments.clear();
                    break;
                }
                Some(name) if name.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                    segments.push(*name);
                    i += 2;
                }
                _ => break,
            }
        }
        if !segments.is_empty() {
            paths.push((*anchor, segments));
        }
    }
    paths
}

/// The file a path from `module` (a `mod.rs`-like file when `owns_folder`) names.
fn target(
    files: &BTreeMap<ModulePath, PathBuf>,
    module: &ModulePath,
    owns_folder: bool,
    anchor: &str,
    segments: &[&str],
) -> Option<ModulePath> {
    let mut base: ModulePath = match anchor {
        "crate" => Vec::new(),
        "self" if owns_folder => module.clone(),
        // `self::x` in a plain file names its own inline modules.
        "self" => return None,
        _ => module[..module.len().saturating_sub(1)].to_vec(),
    };
    let mut rest = segments;
    while rest.first() == Some(&"super") {
        base.pop();
        rest = &rest[1..];
    }
    let mut path = base;
    path.extend(rest.iter().map(|segment| (*segment).to_owned()));
    (1..=path.len())
        .rev()
        .map(|length| path[..length].to_vec())
        .find(|prefix| files.contains_key(prefix))
}

/// The code of `path` before its inline test module.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("a UTF-8 source file");
    match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Each file's dependencies on the other files of its crate.
fn import_graph(src: &Path) -> BTreeMap<ModulePath, BTreeSet<ModulePath>> {
    let files = modules(src);
    let mut graph = BTreeMap::new();
    for (module, path) in &files {
        let owns_folder = path
            .file_name()
            .is_some_and(|name| name == "mod.rs" || name == "lib.rs" || name == "main.rs");
        let code = code_of(path);
        let tokens = tokens(&code);
        let mut targets = BTreeSet::new();
        for (anchor, segments) in anchored_paths(&tokens) {
            targets.extend(target(&files, module, owns_folder, anchor, &segments));
        }
        if owns_folder {
            // `use child::…` and `pub use child::…` in a folder's own file.
            for window in tokens.windows(3) {
                if window[0] == "use" && window[2] == "::" {
                    let mut child = module.clone();
                    child.push(window[1].to_owned());
                    if files.contains_key(&child) {
                        targets.insert(child);
                    }
                }
            }
        }
        targets.remove(module);
        graph.insert(module.clone(), targets);
    }
    graph
}

/// One circle of `graph`, as the files around it, if there is any.
fn find_circle(graph: &BTreeMap<ModulePath, BTreeSet<ModulePath>>) -> Option<Vec<ModulePath>> {
    fn visit(
        node: &ModulePath,
        graph: &BTreeMap<ModulePath, BTreeSet<ModulePath>>,
        done: &mut BTreeSet<ModulePath>,
        stack: &mut Vec<ModulePath>,
    ) -> Option<Vec<ModulePath>> {
        if let Some(at) = stack.iter().position(|entry| entry == node) {
            return Some(stack[at..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, done, stack) {
                return Some(circle);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

#[test]
fn no_import_circles_between_files() {
    let (root, packages) = workspace();
    let mut problems = Vec::new();
    let mut crates_read = 0;
    for package in &packages {
        let src = root.join(&package.folder).join("src");
        let relative = format!("{}/src", package.folder);
        if !src.is_dir() || RELATION_CRATES.contains(&relative.as_str()) {
            continue;
        }
        crates_read += 1;
        let files = modules(&src);
        let mut graph = import_graph(&src);
        // Report every circle: after each, drop its closing edge and look again.
        while let Some(circle) = find_circle(&graph) {
            let shown: Vec<String> = circle
                .iter()
                .chain(circle.first())
                .map(|module| {
                    let path = &files[module];
                    path.strip_prefix(&root)
                        .unwrap_or(path)
                        .display()
                        .to_string()
                })
                .collect();
            problems.push(format!(
                "{}: {} (move what both need into a file of its own)",
                package.name,
                shown.join(" -> ")
            ));
            let (last, first) = (&circle[circle.len() - 1], &circle[0]);
            if let Some(targets) = graph.get_mut(last) {
                targets.remove(first);
            }
        }
    }
    assert!(crates_read >= 8, "read only {crates_read} crates");
    report("import circles", &problems);
}

#[test]
fn the_circle_finder_sees_a_circle() {
    // Guards the checker itself: a two-file circle through `crate::` and a `{…}` group.
    let dir = std::env::temp_dir().join(format!("tollgate-tidy-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("admin")).expect("temp dir");
    std::fs::write(src.join("lib.rs"), "//! x\nmod app;\nmod admin;\n").expect("write");
    std::fs::write(
        src.join("app.rs"),
        "//! x\nuse crate::admin::{self, routes};\n",
    )
    .expect("write");
    std::fs::write(
        src.join("admin/mod.rs"),
        "//! x\nmod error;\npub use error::E;\n",
    )
    .expect("write");
    std::fs::write(
        src.join("admin/error.rs"),
        "//! x\nuse crate::app::State;\n",
    )
    .expect("write");
    let circle = find_circle(&import_graph(&src));
    std::fs::remove_dir_all(&dir).expect("clean up");
    let circle = circle.expect("app -> admin -> admin/error -> app is a circle");
    assert_eq!(circle.len(), 3, "{circle:?}");
}

#[test]
fn public_error_enums_are_non_exhaustive() {
    // docs/ARCHITECTURE.md, API boundaries: a new variant is not a breaking change.
    let (root, _) = workspace();
    let mut problems = Vec::new();
    let mut seen = 0;
    for path in rust_files(&root) {
        let relative = path.strip_prefix(&root).unwrap_or(&path);
        if is_test_file(&root, &path) || !relative.starts_with("crates") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a UTF-8 source file");
        let lines: Vec<&str> = text.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            let Some(rest) = line.strip_prefix("pub enum ") else {
                continue;
            };
            let name = rest.split([' ', '<', '{']).next().unwrap_or(rest);
            if !name.ends_with("Error") {
                continue;
            }
            seen += 1;
            let attributes = lines[..at]
                .iter()
                .rev()
                .take_while(|line| line.starts_with("#[") || line.starts_with("///"));
            if !attributes
                .into_iter()
                .any(|line| line.contains("non_exhaustive"))
            {
                problems.push(format!(
                    "{}:{}: `{name}` lacks #[non_exhaustive]",
                    relative.display(),
                    at + 1
                ));
            }
        }
    }
    assert!(seen >= 8, "found only {seen} public error enums");
    report("error enums", &problems);
}
