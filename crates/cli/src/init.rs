//! `sluice init DIR`: a small project that runs as is.

use std::path::Path;

use anyhow::{Context, bail};

const FILES: &[(&str, &str)] = &[
    ("sluice.toml", include_str!("../templates/init/sluice.toml")),
    (
        "data/airlines.csv",
        include_str!("../templates/init/data/airlines.csv"),
    ),
    (
        "sql/carriers.sql",
        include_str!("../templates/init/sql/carriers.sql"),
    ),
    (".gitignore", ".sluice/\n"),
];

/// Writes the scaffold into `dir`, refusing to overwrite an existing project.
pub fn init(dir: &Path) -> anyhow::Result<()> {
    if dir.join(sluice_project::PROJECT_FILE).exists() {
        bail!(
            "{}: a project already exists here\n  help: pick another folder",
            dir.join(sluice_project::PROJECT_FILE).display()
        );
    }
    let name = dir
        .canonicalize()
        .ok()
        .or_else(|| Some(dir.to_path_buf()))
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "project".into());
    for (path, text) in FILES {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let text = text.replace("{{name}}", &name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("Created a sluice project in {}", dir.display());
    println!("Next: sluice run --project {}", dir.display());
    Ok(())
}
