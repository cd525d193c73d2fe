//! The model registry as the CLI and the API read it: each model of the
//! project with its versions and the one that serves.

use sluice_project::Definition;
use sluice_store::ModelVersion;

use crate::{Result, Workspace};

/// A model of the project and what its registry holds.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// The model.
    pub name: String,
    /// `binary` or `regression`.
    pub task: &'static str,
    /// `gbdt`, `logistic`, `linear` or `onnx`.
    pub learner: &'static str,
    /// Its batch predictions asset, if any.
    pub predictions: Option<String>,
    /// The version that serves: the newest promoted one.
    pub serving: Option<u64>,
    /// Every version, oldest first.
    pub versions: Vec<ModelVersion>,
}

impl ModelInfo {
    /// The serving version's record.
    pub fn serving_version(&self) -> Option<&ModelVersion> {
        let v = self.serving?;
        self.versions.iter().find(|m| m.version == v)
    }

    /// The newest version's record, promoted or not.
    pub fn newest(&self) -> Option<&ModelVersion> {
        self.versions.last()
    }
}

/// Every model of the project, by name.
pub fn model_list(ws: &Workspace) -> Result<Vec<ModelInfo>> {
    let mut out = Vec::new();
    for (name, asset) in &ws.project.assets {
        if matches!(asset.definition, Definition::Model(_)) {
            out.push(model_info(ws, name.as_str())?);
        }
    }
    Ok(out)
}

/// One model, or an error naming the project's models.
pub fn model_info(ws: &Workspace, name: &str) -> Result<ModelInfo> {
    let def = crate::model_def(ws, name)?;
    Ok(ModelInfo {
        name: name.to_string(),
        task: def.task.as_str(),
        learner: def.learner.as_str(),
        predictions: def.predictions.clone(),
        serving: ws.metadata.serving_model_version(name)?,
        versions: ws.metadata.model_versions(name)?,
    })
}
