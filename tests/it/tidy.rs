//! Tidy tests: the invariants of `docs/ARCHITECTURE.md` that a machine can check, over
//! `cargo metadata` and the source tree (in the style of rust-analyzer's tidy tests).
//!
//! Each failure names the crate or file and the rule it breaks. When a rule changes on purpose,
//! change it here and in the "Invariants" section of `docs/ARCHITECTURE.md` together.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Internal crates whose tollgate dependencies are fixed: the package and every tollgate crate
/// it may depend on. The cache is generic over its key families and depends on no tollgate
/// crate; the resolver owns its families and their entity values.
const DIRECTION: &[(&str, &[&str])] = &[
    ("tollgate-entities", &[]),
    ("tollgate-cache", &[]),
    (
        "tollgate-resolver",
        &["tollgate-entities", "tollgate-cache"],
    ),
    ("tollgate-stats", &["tollgate-entities"]),
    (
        "tollgate-catalogue",
        &["tollgate-entities", "tollgate-resolver"],
    ),
    ("tollgate-accounting", &["tollgate-entities"]),
    (
        "tollgate-server",
        &[
            "tollgate-entities",
            "tollgate-cache",
            "tollgate-resolver",
            "tollgate-stats",
            "tollgate-catalogue",
            "tollgate-accounting",
            "tollgate-migrations",
        ],
    ),
    (
        "tollgate-gateway",
        &[
            "tollgate-server",
            "tollgate-cache",
            "tollgate-resolver",
            "tollgate-catalogue",
            "tollgate-accounting",
        ],
    ),
];

/// Tollgate crates any package may take as dev-dependencies on top of its allowed set.
const TEST_ONLY: &[&str] = &["tollgate-testkit", "tollgate-migrations"];

/// Crates that speak HTTP directly.
const HTTP_CRATES: &[&str] = &["axum", "hyper", "hyper-util", "reqwest", "tower-http"];

/// The packages that may depend on an HTTP crate.
const HTTP_PACKAGES: &[&str] = &["tollgate-server", "tollgate-gateway", "tollgate-e2e"];

/// One workspace package, as `cargo metadata` describes it.
pub(crate) struct Package {
    pub(crate) name: String,
    /// The package folder relative to the workspace root, `/`-separated (`bins/gateway`).
    pub(crate) folder: String,
    dependencies: Vec<Dependency>,
}

struct Dependency {
    pub(crate) name: String,
    /// `None` for a normal dependency, else `dev` or `build`.
    kind: Option<String>,
    features: Vec<String>,
}

impl Package {
    /// `bins/*` packages are binaries, whether or not they also have a library target.
    fn is_binary(&self) -> bool {
        self.folder.starts_with("bins/")
    }

    /// Binaries, the migrations, the testkit and the tests package choose database drivers.
    fn may_choose_a_driver(&self) -> bool {
        self.is_binary()
            || matches!(
                self.name.as_str(),
                "tollgate-migrations" | "tollgate-testkit" | "tollgate-e2e"
            )
    }
}

impl Dependency {
    fn is_dev(&self) -> bool {
        self.kind.as_deref() == Some("dev")
    }

    /// A `sqlx` crate, or sea-orm (or its migration crate) with a `sqlx-*` driver feature.
    fn chooses_a_driver(&self) -> bool {
        self.name.starts_with("sqlx")
            || (self.name.starts_with("sea-orm")
                && self
                    .features
                    .iter()
                    .any(|feature| feature.starts_with("sqlx-")))
    }
}

pub(crate) fn workspace() -> (PathBuf, Vec<Package>) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");
    let root = PathBuf::from(metadata["workspace_root"].as_str().expect("workspace_root"));
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let packages = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|package| {
            let manifest = PathBuf::from(text(&package["manifest_path"]).expect("manifest_path"));
            let folder = manifest
                .parent()
                .and_then(|folder| folder.strip_prefix(&root).ok())
                .expect("a member inside the workspace")
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let dependencies = package["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .map(|dependency| Dependency {
                    name: text(&dependency["name"]).expect("dependency name"),
                    kind: text(&dependency["kind"]),
                    features: dependency["features"]
                        .as_array()
                        .expect("features")
                        .iter()
                        .filter_map(text)
                        .collect(),
                })
                .collect();
            Package {
                name: text(&package["name"]).expect("package name"),
                folder,
                dependencies,
            }
        })
        .collect();
    (root, packages)
}

/// The problem `broken` finds with each dependency of each package, in the packages' order.
fn dependency_problems(
    packages: &[Package],
    broken: impl Fn(&Package, &Dependency) -> Option<String>,
) -> Vec<String> {
    packages
        .iter()
        .flat_map(|package| {
            package
                .dependencies
                .iter()
                .map(move |dependency| (package, dependency))
        })
        .filter_map(|(package, dependency)| broken(package, dependency))
        .collect()
}

/// Fails with the problem `broken` finds with each dependency of each workspace package.
fn check_dependencies(rule: &str, broken: impl Fn(&Package, &Dependency) -> Option<String>) {
    let (_, packages) = workspace();
    report(rule, &dependency_problems(&packages, broken));
}

/// Fails with every collected problem, one a line.
pub(crate) fn report(rule: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{rule}:\n{}\n(see the Invariants of docs/ARCHITECTURE.md)",
        problems.join("\n")
    );
}

#[test]
fn dependency_direction() {
    let (_, packages) = workspace();
    let binaries: BTreeSet<&str> = packages
        .iter()
        .filter(|package| package.is_binary())
        .map(|package| package.name.as_str())
        .collect();
    let mut problems = Vec::new();
    for &(name, allowed) in DIRECTION {
        let Some(package) = packages.iter().find(|package| package.name == name) else {
            problems.push(format!(
                "{name}: listed in the tidy rules but not a workspace member"
            ));
            continue;
        };
        for dependency in &package.dependencies {
            let name_ok = allowed.contains(&dependency.name.as_str())
                || (dependency.is_dev() && TEST_ONLY.contains(&dependency.name.as_str()));
            if dependency.name.starts_with("tollgate-") && !name_ok {
                problems.push(format!(
                    "{name} depends on {}: it may depend only on {allowed:?} (and, for its \
                     tests, on {TEST_ONLY:?})",
                    dependency.name
                ));
            }
        }
    }
    problems.extend(dependency_problems(&packages, |package, dependency| {
        // The tests package drives the binaries; it is no library.
        let library = !package.is_binary() && package.name != "tollgate-e2e";
        (library && binaries.contains(dependency.name.as_str())).then(|| {
            format!(
                "{} depends on {}: a library crate never depends on a binary (bins/*)",
                package.name, dependency.name
            )
        })
    }));
    report("dependency direction", &problems);
}

#[test]
fn only_the_gateway_speaks_http() {
    check_dependencies("HTTP crates", |package, dependency| {
        let speaks = !HTTP_PACKAGES.contains(&package.name.as_str())
            && HTTP_CRATES.contains(&dependency.name.as_str());
        speaks.then(|| {
            format!(
                "{} depends on {}: only {HTTP_PACKAGES:?} may depend on {HTTP_CRATES:?}",
                package.name, dependency.name
            )
        })
    });
}

#[test]
fn only_binaries_choose_a_database_driver() {
    check_dependencies("database drivers", |package, dependency| {
        // A library's own tests need a driver; its dependents never see dev features.
        let allowed = package.may_choose_a_driver()
            || (dependency.is_dev() && package.name != "tollgate-entities");
        (dependency.chooses_a_driver() && !allowed).then(|| {
            format!(
                "{} depends on {} with features {:?}: only binaries, the migrations, the \
                 testkit and tests choose a database driver (tollgate-entities not even in \
                 its tests)",
                package.name, dependency.name, dependency.features
            )
        })
    });
}

/// Every `.rs` file of the members' folders, `target/` left out, in a stable order.
pub(crate) fn rust_files(root: &Path) -> Vec<PathBuf> {
    fn walk(folder: &Path, files: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(folder)
            .unwrap_or_else(|error| panic!("cannot list {}: {error}", folder.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned());
            if path.is_dir() {
                if !matches!(name.as_deref(), Some("target")) {
                    walk(&path, files);
                }
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for folder in ["crates", "bins", "migrations", "tests"] {
        walk(&root.join(folder), &mut files);
    }
    assert!(files.len() > 20, "found only {} .rs files", files.len());
    files
}

#[test]
fn every_file_opens_with_a_doc_line() {
    let (root, _) = workspace();
    let mut problems = Vec::new();
    for path in rust_files(&root) {
        let text = std::fs::read_to_string(&path).expect("a UTF-8 source file");
        if !text.starts_with("//!") {
            let relative = path.strip_prefix(&root).unwrap_or(&path);
            problems.push(format!(
                "{}: the first line is not a `//!` line saying what the file is",
                relative.display()
            ));
        }
    }
    report("file headers", &problems);
}

/// The text of the attribute that starts at `start` (its `#`), up to its closing `]`.
fn attribute_at(text: &str, start: usize) -> &str {
    let mut depth = 0_usize;
    for (offset, character) in text[start..].char_indices() {
        match character {
            '[' | '(' => depth += 1,
            ']' | ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return &text[start..=start + offset];
                }
            }
            _ => {}
        }
    }
    &text[start..]
}

#[test]
fn no_allow_without_a_reason() {
    let (root, _) = workspace();
    // Built at run time so this file does not match itself.
    let patterns = [format!("#[{}(", "allow"), format!("#![{}(", "allow")];
    let mut problems = Vec::new();
    for path in rust_files(&root) {
        let text = std::fs::read_to_string(&path).expect("a UTF-8 source file");
        for pattern in &patterns {
            for (start, _) in text.match_indices(pattern.as_str()) {
                let attribute = attribute_at(&text, start);
                if !attribute.contains("reason =") {
                    let line = text[..start].matches('\n').count() + 1;
                    let relative = path.strip_prefix(&root).unwrap_or(&path);
                    problems.push(format!(
                        "{}:{line}: `{}` without `reason = \"…\"` (prefer `#[expect(…, reason = \
                         \"…\")]`)",
                        relative.display(),
                        attribute.lines().next().unwrap_or(attribute)
                    ));
                }
            }
        }
    }
    report("lint suppressions", &problems);
}
